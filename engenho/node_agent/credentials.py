"""The agent endpoint's TLS: its serving certificate, and the client certificate of a caller.

The serving certificate is signed by the cluster CA (as k3s signs kubelet serving
certificates), so the apiserver verifies the agent it proxies ``kubectl logs``/``exec`` to.
It lives beside the agent's state (``DATA_DIR/node/pki/``) and is reissued when it no
longer covers the node's addresses or nears its end, like the apiserver's own.

Callers authenticate with a client certificate signed by the same CA (the apiserver's
``kube-apiserver-kubelet-client``) or a bearer token. uvicorn does not put the peer
certificate into the ASGI scope; :class:`PeerCertificateProtocol` does, for plain requests
and for WebSocket upgrades (``exec``), as ``scope["extensions"]["tls"]["client_cert_der"]``.
"""

from __future__ import annotations

import ssl
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from engenho.pki.certificates import (
    build_serving_certificate,
    certificate_hosts,
    certificate_pem,
    is_issued_by,
    key_matches,
    key_pem,
    load_certificate,
    load_key,
    needs_renewal,
    parse_host,
)
from engenho.pki.files import PRIVATE_MODE, PUBLIC_MODE, write_atomically
from engenho.pki.peer import CLIENT_CERT_KEY, PeerCertificateProtocol, client_certificate

__all__ = [
    "CLIENT_CERT_KEY",
    "PeerCertificateProtocol",
    "client_certificate",
    "ensure_serving_certificate",
    "server_ssl_context",
]

_CERT, _KEY = "agent.crt", "agent.key"


def ensure_serving_certificate(
    directory: Path, *, ca_cert_path: Path, ca_key_path: Path, hosts: Sequence[str]
) -> tuple[Path, Path]:
    """``(certificate, key)`` paths of a serving certificate for ``hosts`` signed by the CA at
    ``ca_cert_path``/``ca_key_path``; kept while it still fits, reissued otherwise."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    cert_path, key_path = directory / _CERT, directory / _KEY
    wanted = {parse_host(host) for host in hosts}
    ca_certificate = load_certificate(ca_cert_path.read_bytes())
    now = datetime.now(UTC)
    try:
        current = load_certificate(cert_path.read_bytes())
        current_key = load_key(key_path.read_bytes())
    except (FileNotFoundError, ValueError):
        pass
    else:
        if (
            key_matches(current, current_key)
            and is_issued_by(current, ca_certificate)
            and not needs_renewal(current, now=now)
            and wanted <= certificate_hosts(current)
        ):
            return cert_path, key_path
    ca_key = load_key(ca_key_path.read_bytes())
    certificate, key = build_serving_certificate(
        ca_certificate, ca_key, hosts=sorted(wanted, key=str), now=now
    )
    write_atomically(key_path, key_pem(key), mode=PRIVATE_MODE)
    write_atomically(cert_path, certificate_pem(certificate), mode=PUBLIC_MODE)
    return cert_path, key_path


def server_ssl_context(cert_path: Path, key_path: Path, ca_pem: bytes) -> ssl.SSLContext:
    """Serve with the certificate; ask callers for a client certificate chaining to the
    cluster CA without requiring one (token callers have none)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert_path, key_path)
    context.load_verify_locations(cadata=ca_pem.decode("ascii"))
    context.verify_mode = ssl.CERT_OPTIONAL
    return context
