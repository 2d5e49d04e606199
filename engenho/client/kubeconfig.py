"""Kubeconfig files: read, resolve relative paths, merge several as kubectl does.

Which files (client-go ``clientcmd`` loading rules):

1. an explicit path: that file alone, which must exist;
2. otherwise ``$KUBECONFIG``, a list separated by ``os.pathsep``: empty entries and
   duplicates are skipped, files that do not exist are ignored;
3. otherwise ``~/.kube/config`` if it exists.

How they merge: for clusters, users and contexts the *first* file that defines a name wins
(later definitions of the same name are ignored, not merged field by field), and so does the
first file that sets ``current-context``. Relative paths (``certificate-authority``,
``client-certificate``, ``client-key``, ``tokenFile``, and an exec ``command`` that contains a
path separator) are relative to the directory of the file that holds them, resolved before
merging. ``*-data`` fields are base64 and decoded here.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
import yaml
from attrs import field, frozen

from engenho.client.errors import ConfigError

__all__ = [
    "EXEC_API_VERSIONS",
    "ClusterEntry",
    "ContextEntry",
    "ExecConfig",
    "Kubeconfig",
    "UserEntry",
    "default_kubeconfig_paths",
    "load_kubeconfig",
    "parse_kubeconfig",
]

EXEC_API_VERSIONS = (
    "client.authentication.k8s.io/v1",
    "client.authentication.k8s.io/v1beta1",
)
_INTERACTIVE_MODES = ("Never", "IfAvailable", "Always")


def _frozen_mapping(value: Mapping[str, Any]) -> Mapping[str, Any]:
    return dict(value)


@frozen(kw_only=True)
class ClusterEntry:
    """A ``clusters[].cluster``: where the API server is and how to trust it."""

    server: str
    certificate_authority: Path | None = None
    certificate_authority_data: bytes | None = field(default=None, repr=False)
    insecure_skip_tls_verify: bool = False
    tls_server_name: str | None = None
    proxy_url: str | None = None


@frozen(kw_only=True)
class ExecConfig:
    """A ``users[].user.exec`` credential plugin (client.authentication.k8s.io v1/v1beta1)."""

    api_version: str
    command: str
    args: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    interactive_mode: str = "IfAvailable"
    provide_cluster_info: bool = False
    install_hint: str = ""


@frozen(kw_only=True)
class UserEntry:
    """A ``users[].user``: the credentials to present."""

    token: str | None = field(default=None, repr=False)
    token_file: Path | None = None
    client_certificate: Path | None = None
    client_certificate_data: bytes | None = field(default=None, repr=False)
    client_key: Path | None = None
    client_key_data: bytes | None = field(default=None, repr=False)
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    exec: ExecConfig | None = None
    auth_provider: str | None = None
    """The name of a legacy ``auth-provider`` plugin; kept only to refuse it clearly."""


@frozen
class ContextEntry:
    """A ``contexts[].context``: a cluster, a user and a default namespace."""

    cluster: str
    user: str
    namespace: str | None = None


@frozen(kw_only=True)
class Kubeconfig:
    """One or several kubeconfig files, merged. Empty when no file was found."""

    clusters: Mapping[str, ClusterEntry] = field(factory=dict, converter=_frozen_mapping)
    users: Mapping[str, UserEntry] = field(factory=dict, converter=_frozen_mapping)
    contexts: Mapping[str, ContextEntry] = field(factory=dict, converter=_frozen_mapping)
    current_context: str | None = None
    sources: tuple[Path, ...] = ()
    """The files read, in merge order."""

    def merged_with(self, later: Kubeconfig) -> Kubeconfig:
        """This configuration with ``later``'s names added where this one lacks them."""
        return Kubeconfig(
            clusters={**later.clusters, **self.clusters},
            users={**later.users, **self.users},
            contexts={**later.contexts, **self.contexts},
            current_context=self.current_context or later.current_context,
            sources=(*self.sources, *later.sources),
        )


def default_kubeconfig_paths(environ: Mapping[str, str] | None = None) -> list[Path]:
    """The files ``$KUBECONFIG`` names (deduplicated, in order), else ``~/.kube/config``."""
    env = os.environ if environ is None else environ
    listed = env.get("KUBECONFIG", "")
    if listed:
        paths: list[Path] = []
        for entry in listed.split(os.pathsep):
            if entry and Path(entry) not in paths:
                paths.append(Path(entry))
        return paths
    home = env.get("HOME")
    base = Path(home) if home else Path.home()
    return [base / ".kube" / "config"]


def load_kubeconfig(
    path: Path | str | None = None, *, environ: Mapping[str, str] | None = None
) -> Kubeconfig:
    """Read and merge kubeconfig files by the loading rules above.

    An explicit ``path`` must exist; files found through ``$KUBECONFIG`` or the home
    directory may be missing. Raises :class:`ConfigError` for unreadable or malformed files.
    """
    if path is not None:
        return _read(Path(path), required=True)
    merged = Kubeconfig()
    for candidate in default_kubeconfig_paths(environ):
        merged = merged.merged_with(_read(candidate, required=False))
    return merged


def _read(path: Path, *, required: bool) -> Kubeconfig:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        if required:
            raise ConfigError(f"kubeconfig {path} does not exist") from exc
        return Kubeconfig()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"kubeconfig {path} cannot be read: {exc}") from exc
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"kubeconfig {path} is not valid YAML: {exc}") from exc
    return parse_kubeconfig(document, base=path.parent, source=path)


def parse_kubeconfig(
    document: Any, *, base: Path | None = None, source: Path | None = None
) -> Kubeconfig:
    """A kubeconfig document (already decoded from YAML or JSON); relative paths resolve
    against ``base`` (the current directory when None)."""
    where = str(source) if source is not None else "kubeconfig"
    if document is None:
        return Kubeconfig(sources=() if source is None else (source,))
    if not isinstance(document, Mapping):
        raise ConfigError(f"{where}: a kubeconfig must be a mapping")
    reader = _Reader(where, base or Path.cwd())
    clusters = reader.named(document, "clusters", "cluster", reader.cluster)
    users = reader.named(document, "users", "user", reader.user)
    contexts = reader.named(document, "contexts", "context", reader.context)
    current = document.get("current-context")
    if current is not None and not isinstance(current, str):
        raise ConfigError(f"{where}: current-context must be a string")
    return Kubeconfig(
        clusters=clusters,
        users=users,
        contexts=contexts,
        current_context=current or None,
        sources=() if source is None else (source,),
    )


@attrs.define
class _Reader:
    """Typed access to one file's fields, with errors that name the file and the entry."""

    where: str
    base: Path

    def fail(self, message: str) -> ConfigError:
        return ConfigError(f"{self.where}: {message}")

    def named(
        self, document: Mapping[str, Any], section: str, key: str, parse: Any
    ) -> dict[str, Any]:
        rows = document.get(section) or []
        if not isinstance(rows, list):
            raise self.fail(f"{section} must be a list")
        entries: dict[str, Any] = {}
        for index, row in enumerate(rows):
            if not isinstance(row, Mapping):
                raise self.fail(f"{section}[{index}] must be a mapping")
            name = row.get("name")
            if not isinstance(name, str) or not name:
                raise self.fail(f"{section}[{index}] has no name")
            body = row.get(key)
            if body is None:
                body = {}
            if not isinstance(body, Mapping):
                raise self.fail(f"{section}[{name}].{key} must be a mapping")
            # Within one file the first definition of a name wins too, as clientcmd's map does.
            entries.setdefault(name, parse(name, body))
        return entries

    def string(self, body: Mapping[str, Any], key: str, what: str) -> str | None:
        value = body.get(key)
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            raise self.fail(f"{what}.{key} must be a string")
        return value

    def flag(self, body: Mapping[str, Any], key: str, what: str) -> bool:
        value = body.get(key, False)
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        if not isinstance(value, bool):
            raise self.fail(f"{what}.{key} must be true or false")
        return value

    def path(self, body: Mapping[str, Any], key: str, what: str) -> Path | None:
        value = self.string(body, key, what)
        return None if value is None else self.base / value

    def data(self, body: Mapping[str, Any], key: str, what: str) -> bytes | None:
        value = self.string(body, key, what)
        if value is None:
            return None
        try:
            return base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise self.fail(f"{what}.{key} is not valid base64") from exc

    def cluster(self, name: str, body: Mapping[str, Any]) -> ClusterEntry:
        what = f"clusters[{name}]"
        server = self.string(body, "server", what)
        if server is None:
            raise self.fail(f"{what} has no server")
        return ClusterEntry(
            server=server.rstrip("/"),
            certificate_authority=self.path(body, "certificate-authority", what),
            certificate_authority_data=self.data(body, "certificate-authority-data", what),
            insecure_skip_tls_verify=self.flag(body, "insecure-skip-tls-verify", what),
            tls_server_name=self.string(body, "tls-server-name", what),
            proxy_url=self.string(body, "proxy-url", what),
        )

    def user(self, name: str, body: Mapping[str, Any]) -> UserEntry:
        what = f"users[{name}]"
        exec_body = body.get("exec")
        provider = body.get("auth-provider")
        provider_name = None
        if isinstance(provider, Mapping):
            provider_name = str(provider.get("name") or "unnamed")
        return UserEntry(
            token=self.string(body, "token", what),
            token_file=self.path(body, "tokenFile", what),
            client_certificate=self.path(body, "client-certificate", what),
            client_certificate_data=self.data(body, "client-certificate-data", what),
            client_key=self.path(body, "client-key", what),
            client_key_data=self.data(body, "client-key-data", what),
            username=self.string(body, "username", what),
            password=self.string(body, "password", what),
            exec=None if exec_body is None else self.exec(exec_body, f"{what}.exec"),
            auth_provider=provider_name,
        )

    def exec(self, body: Any, what: str) -> ExecConfig:
        if not isinstance(body, Mapping):
            raise self.fail(f"{what} must be a mapping")
        api_version = self.string(body, "apiVersion", what)
        if api_version not in EXEC_API_VERSIONS:
            raise self.fail(
                f"{what}.apiVersion {api_version!r} is not supported; "
                f"use one of {', '.join(EXEC_API_VERSIONS)}"
            )
        command = self.string(body, "command", what)
        if command is None:
            raise self.fail(f"{what}.command is required")
        if os.sep in command and not Path(command).is_absolute():
            command = str(self.base / command)
        args = body.get("args") or []
        if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
            raise self.fail(f"{what}.args must be a list of strings")
        env_rows = body.get("env") or []
        env: list[tuple[str, str]] = []
        if not isinstance(env_rows, list):
            raise self.fail(f"{what}.env must be a list")
        for row in env_rows:
            if not isinstance(row, Mapping) or not isinstance(row.get("name"), str):
                raise self.fail(f"{what}.env entries need a name and a value")
            env.append((row["name"], str(row.get("value") or "")))
        mode = self.string(body, "interactiveMode", what)
        if mode is None:
            if api_version.endswith("/v1"):
                raise self.fail(f"{what}.interactiveMode must be specified for apiVersion v1")
            mode = "IfAvailable"
        if mode not in _INTERACTIVE_MODES:
            raise self.fail(
                f"{what}.interactiveMode {mode!r} must be one of {', '.join(_INTERACTIVE_MODES)}"
            )
        return ExecConfig(
            api_version=api_version,
            command=command,
            args=tuple(args),
            env=tuple(env),
            interactive_mode=mode,
            provide_cluster_info=self.flag(body, "provideClusterInfo", what),
            install_hint=self.string(body, "installHint", what) or "",
        )

    def context(self, name: str, body: Mapping[str, Any]) -> ContextEntry:
        what = f"contexts[{name}]"
        cluster = self.string(body, "cluster", what)
        user = self.string(body, "user", what)
        if cluster is None:
            raise self.fail(f"{what} names no cluster")
        return ContextEntry(cluster, user or "", self.string(body, "namespace", what))
