"""Kubeconfig files: typed records, dumped with PyYAML through an explicit cattrs converter.

Only the subset engenho writes is modelled (one cluster, one user, one context). Keys follow
client-go's ``clientcmd/api/v1`` spelling, given per field as ``metadata={"key": ...}``.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import attrs
import cattrs
import yaml
from attrs import field, frozen
from cattrs.gen import make_dict_unstructure_fn, override

from engenho.pki.errors import KubeconfigError
from engenho.pki.files import PRIVATE_MODE, write_atomically

__all__ = [
    "Cluster",
    "Context",
    "Kubeconfig",
    "NamedCluster",
    "NamedContext",
    "NamedUser",
    "User",
    "build_kubeconfig",
    "write_kubeconfig",
]


def _key(name: str) -> dict[str, str]:
    return {"key": name}


@frozen
class Cluster:
    server: str
    certificate_authority_data: str | None = field(
        default=None, metadata=_key("certificate-authority-data")
    )
    """Base64 of the CA's PEM, as client-go expects."""


@frozen
class NamedCluster:
    name: str
    cluster: Cluster


@frozen
class User:
    token: str | None = None
    client_certificate_data: str | None = field(
        default=None, metadata=_key("client-certificate-data")
    )
    client_key_data: str | None = field(default=None, metadata=_key("client-key-data"))


@frozen
class NamedUser:
    name: str
    user: User


@frozen
class Context:
    cluster: str
    user: str
    namespace: str | None = None


@frozen
class NamedContext:
    name: str
    context: Context


@frozen(kw_only=True)
class Kubeconfig:
    api_version: str = field(default="v1", metadata=_key("apiVersion"))
    kind: str = "Config"
    clusters: tuple[NamedCluster, ...]
    users: tuple[NamedUser, ...]
    contexts: tuple[NamedContext, ...]
    current_context: str = field(metadata=_key("current-context"))

    def to_yaml(self) -> bytes:
        document = _converter.unstructure(self)
        return yaml.safe_dump(document, sort_keys=False, default_flow_style=False).encode()


def build_kubeconfig(
    *,
    server: str,
    ca_pem: bytes,
    user: str,
    token: str | None = None,
    client_cert_pem: bytes | None = None,
    client_key_pem: bytes | None = None,
    cluster: str = "engenho",
    context: str = "engenho",
    namespace: str | None = None,
) -> Kubeconfig:
    """A kubeconfig whose only context reaches ``server`` as ``user``.

    The user authenticates with ``token``, with a client certificate and key, or with both;
    anything else raises :class:`KubeconfigError`.
    """
    if (client_cert_pem is None) != (client_key_pem is None):
        raise KubeconfigError("a client certificate and its key must be given together")
    if token is None and client_cert_pem is None:
        raise KubeconfigError(f"user {user!r} has no credential: give a token or a certificate")
    credentials = User(
        token=token,
        client_certificate_data=_base64(client_cert_pem),
        client_key_data=_base64(client_key_pem),
    )
    return Kubeconfig(
        clusters=(NamedCluster(cluster, Cluster(server, _base64(ca_pem))),),
        users=(NamedUser(user, credentials),),
        contexts=(NamedContext(context, Context(cluster, user, namespace)),),
        current_context=context,
    )


def write_kubeconfig(
    path: Path,
    *,
    server: str,
    ca_pem: bytes,
    user: str,
    token: str | None = None,
    client_cert_pem: bytes | None = None,
    client_key_pem: bytes | None = None,
    cluster: str = "engenho",
    context: str = "engenho",
    namespace: str | None = None,
) -> Kubeconfig:
    """Write :func:`build_kubeconfig`'s result to ``path`` (mode 0600, atomically) and return it.

    Missing parent directories are created (for ``~/.kube/configs/``).
    """
    config = build_kubeconfig(
        server=server,
        ca_pem=ca_pem,
        user=user,
        token=token,
        client_cert_pem=client_cert_pem,
        client_key_pem=client_key_pem,
        cluster=cluster,
        context=context,
        namespace=namespace,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, config.to_yaml(), mode=PRIVATE_MODE)
    return config


def _base64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode("ascii")


def _make_converter() -> cattrs.Converter:
    converter = cattrs.Converter(unstruct_collection_overrides={tuple: list})

    def unstructure_hook(cls: type[Any]) -> Any:
        overrides: dict[str, Any] = {
            a.name: override(rename=a.metadata.get("key"), omit_if_default=a.default is None)
            for a in attrs.fields(cls)
        }
        return make_dict_unstructure_fn(cls, converter, **overrides)

    converter.register_unstructure_hook_factory(attrs.has, unstructure_hook)
    return converter


_converter = _make_converter()
