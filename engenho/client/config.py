"""Where the API server is and who we are to it: a :class:`ClientConfig`, from kubeconfig
files, from a pod's service account, or given directly.

:func:`load_config` follows kubectl: an explicit kubeconfig, else ``$KUBECONFIG`` (merged),
else ``~/.kube/config``, and when none of those defines a context, the in-cluster
configuration. Everything a kubeconfig refers to by path (CA, client certificate and key) is
read here, so a bad path fails at load time; only a ``tokenFile`` stays a path, because it
is re-read whenever it changes.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from attrs import evolve, field, frozen

from engenho.client.auth import Credentials
from engenho.client.errors import ConfigError
from engenho.client.exec_plugin import ExecPlugin
from engenho.client.kubeconfig import ExecConfig, Kubeconfig, load_kubeconfig
from engenho.client.tls import CertificatePair, TLSConfig

__all__ = [
    "SERVICE_ACCOUNT_DIR",
    "ClientConfig",
    "from_kubeconfig",
    "in_cluster_config",
    "load_config",
]

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
"""Where a pod's service-account token, CA and namespace are mounted."""

_DEFAULT_NAMESPACE = "default"


@frozen(kw_only=True)
class ClientConfig:
    """Everything needed to reach one API server as one user."""

    server: str
    """``https://host:port`` (``http://`` is allowed for test servers)."""
    tls: TLSConfig = field(factory=TLSConfig)
    namespace: str = _DEFAULT_NAMESPACE
    """The namespace used when a namespaced call names none."""
    token: str | None = field(default=None, repr=False)
    token_file: Path | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    certificate: CertificatePair | None = None
    exec: ExecConfig | None = None
    proxy_url: str | None = None
    context: str | None = None
    """The kubeconfig context this came from, if any."""

    def credentials(self) -> Credentials:
        """A fresh :class:`Credentials` for this user (each client keeps its own cache)."""
        plugin = None
        if self.exec is not None:
            plugin = ExecPlugin(self.exec, cluster=self.cluster_info())
        return Credentials(
            token=self.token,
            token_file=self.token_file,
            username=self.username,
            password=self.password,
            certificate=self.certificate,
            exec_plugin=plugin,
        )

    def cluster_info(self) -> dict[str, Any]:
        """The ``spec.cluster`` an exec plugin with ``provideClusterInfo`` is given."""
        info: dict[str, Any] = {"server": self.server}
        if self.tls.server_name:
            info["tls-server-name"] = self.tls.server_name
        if self.tls.insecure:
            info["insecure-skip-tls-verify"] = True
        if self.tls.ca_pem is not None:
            info["certificate-authority-data"] = base64.b64encode(self.tls.ca_pem).decode()
        if self.proxy_url:
            info["proxy-url"] = self.proxy_url
        return info


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read the {what} {path}: {exc}") from exc


def from_kubeconfig(
    kubeconfig: Kubeconfig, *, context: str | None = None, namespace: str | None = None
) -> ClientConfig:
    """The configuration of ``context`` (default: the current context) in ``kubeconfig``;
    ``namespace`` overrides the context's."""
    name = context or kubeconfig.current_context
    sources = ", ".join(str(s) for s in kubeconfig.sources) or "no kubeconfig files"
    if not name:
        raise ConfigError(f"no context is selected and no current-context is set ({sources})")
    entry = kubeconfig.contexts.get(name)
    if entry is None:
        raise ConfigError(f'context "{name}" does not exist ({sources})')
    cluster = kubeconfig.clusters.get(entry.cluster)
    if cluster is None:
        raise ConfigError(f'cluster "{entry.cluster}" of context "{name}" does not exist')
    user = None
    if entry.user:
        user = kubeconfig.users.get(entry.user)
        if user is None:
            raise ConfigError(f'user "{entry.user}" of context "{name}" does not exist')
    ca_pem = cluster.certificate_authority_data
    if ca_pem is None and cluster.certificate_authority is not None:
        ca_pem = _read(cluster.certificate_authority, "certificate authority")
    tls = TLSConfig(
        ca_pem=ca_pem,
        insecure=cluster.insecure_skip_tls_verify,
        server_name=cluster.tls_server_name,
    )
    settings: dict[str, Any] = {}
    if user is not None:
        if user.auth_provider is not None:
            raise ConfigError(
                f'user "{entry.user}" uses the auth-provider plugin "{user.auth_provider}", '
                "which is not supported: use an exec credential plugin instead"
            )
        cert = user.client_certificate_data
        if cert is None and user.client_certificate is not None:
            cert = _read(user.client_certificate, "client certificate")
        key = user.client_key_data
        if key is None and user.client_key is not None:
            key = _read(user.client_key, "client key")
        if (cert is None) != (key is None):
            raise ConfigError(f'user "{entry.user}" has a client certificate without its key')
        settings = {
            "token": user.token,
            "token_file": user.token_file,
            "username": user.username,
            "password": user.password,
            "certificate": CertificatePair(cert, key) if cert and key else None,
            "exec": user.exec,
        }
    return ClientConfig(
        server=cluster.server,
        tls=tls,
        namespace=namespace or entry.namespace or _DEFAULT_NAMESPACE,
        proxy_url=cluster.proxy_url,
        context=name,
        **settings,
    )


def in_cluster_config(
    *, root: Path = SERVICE_ACCOUNT_DIR, environ: Mapping[str, str] | None = None
) -> ClientConfig:
    """The configuration of a pod: ``KUBERNETES_SERVICE_HOST``/``_PORT``, and the mounted
    service-account token (re-read as the kubelet rotates it), CA and namespace."""
    env = os.environ if environ is None else environ
    host, port = env.get("KUBERNETES_SERVICE_HOST"), env.get("KUBERNETES_SERVICE_PORT")
    if not host or not port:
        raise ConfigError(
            "unable to load in-cluster configuration, KUBERNETES_SERVICE_HOST and "
            "KUBERNETES_SERVICE_PORT must be defined"
        )
    token_file = root / "token"
    if not token_file.is_file():
        raise ConfigError(f"unable to load in-cluster configuration: no token at {token_file}")
    ca_path = root / "ca.crt"
    ca_pem = _read(ca_path, "service-account CA") if ca_path.exists() else None
    try:
        namespace = (root / "namespace").read_text(encoding="utf-8").strip()
    except OSError:
        namespace = ""
    address = f"[{host}]" if ":" in host else host
    return ClientConfig(
        server=f"https://{address}:{port}",
        tls=TLSConfig(ca_pem=ca_pem),
        namespace=namespace or _DEFAULT_NAMESPACE,
        token_file=token_file,
    )


def load_config(
    path: Path | str | None = None,
    *,
    context: str | None = None,
    namespace: str | None = None,
    environ: Mapping[str, str] | None = None,
    service_account_dir: Path = SERVICE_ACCOUNT_DIR,
) -> ClientConfig:
    """The configuration kubectl would use (see the module docstring)."""
    kubeconfig = load_kubeconfig(path, environ=environ)
    env = os.environ if environ is None else environ
    if path is None and not kubeconfig.contexts and env.get("KUBERNETES_SERVICE_HOST"):
        config = in_cluster_config(root=service_account_dir, environ=env)
        return config if namespace is None else evolve(config, namespace=namespace)
    return from_kubeconfig(kubeconfig, context=context, namespace=namespace)
