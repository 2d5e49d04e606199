"""The apiserver's HTTP protocol: uvicorn's, exposing the TLS client certificate
(:mod:`engenho.pki.peer`, shared with the node agent's endpoint)."""

from __future__ import annotations

from engenho.pki.peer import CLIENT_CERT_KEY, client_certificate
from engenho.pki.peer import PeerCertificateProtocol as ClientCertProtocol

__all__ = ["CLIENT_CERT_KEY", "ClientCertProtocol", "client_certificate"]
