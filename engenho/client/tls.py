"""TLS for client connections: verify the server (on by default) and present a certificate.

Python's ``ssl`` loads certificate chains only from files, so a certificate given as data
(``client-certificate-data``, an exec plugin's PEM) is written to a private temporary
directory, loaded and removed at once.
"""

from __future__ import annotations

import os
import ssl
import tempfile
from pathlib import Path

from attrs import field, frozen

__all__ = ["CertificatePair", "TLSConfig", "ssl_context"]


@frozen
class CertificatePair:
    """A client certificate and its private key, both PEM."""

    certificate_pem: bytes = field(repr=False)
    key_pem: bytes = field(repr=False)


@frozen(kw_only=True)
class TLSConfig:
    """How to trust the server.

    ``ca_pem`` None means the system's trust store; ``insecure`` turns verification off
    entirely (``insecure-skip-tls-verify``); ``server_name`` is the name to verify and send
    as SNI instead of the URL's host (``tls-server-name``).
    """

    ca_pem: bytes | None = field(default=None, repr=False)
    insecure: bool = False
    server_name: str | None = None


def ssl_context(tls: TLSConfig, certificate: CertificatePair | None = None) -> ssl.SSLContext:
    """A client context for ``tls``, presenting ``certificate`` when given."""
    if tls.insecure:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    elif tls.ca_pem is not None:
        context = ssl.create_default_context(cadata=tls.ca_pem.decode("ascii"))
    else:
        context = ssl.create_default_context()
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if certificate is not None:
        _load_certificate(context, certificate)
    return context


def _load_certificate(context: ssl.SSLContext, certificate: CertificatePair) -> None:
    with tempfile.TemporaryDirectory(prefix="engenho-client-") as directory:
        cert_path, key_path = Path(directory, "tls.crt"), Path(directory, "tls.key")
        for path, data in (
            (cert_path, certificate.certificate_pem),
            (key_path, certificate.key_pem),
        ):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
        context.load_cert_chain(cert_path, key_path)
