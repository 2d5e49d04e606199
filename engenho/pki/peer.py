"""Expose a TLS client certificate to an ASGI app served by uvicorn.

uvicorn does not put the peer certificate into the ASGI scope. The HTTP protocol below is
uvicorn's own (httptools) with one addition: once the TLS handshake is done it reads the
verified peer certificate and hands it to every request of that connection, and to WebSocket
upgrades of it, as ``scope["extensions"]["tls"]["client_cert_der"]``. The TLS layer (the
cluster CA with ``CERT_OPTIONAL``) has already verified the chain; a connection without a
certificate simply has none. The apiserver and the node agent's endpoint both serve with it.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

__all__ = ["CLIENT_CERT_KEY", "PeerCertificateProtocol", "client_certificate"]

CLIENT_CERT_KEY = "client_cert_der"


def _with_certificate(app: Any, der: bytes) -> Any:
    async def with_certificate(scope: Any, receive: Any, send: Any) -> None:
        scope.setdefault("extensions", {})["tls"] = {CLIENT_CERT_KEY: der}
        await app(scope, receive, send)

    return with_certificate


def _peer_certificate(transport: asyncio.BaseTransport) -> bytes | None:
    ssl_object = transport.get_extra_info("ssl_object")
    der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
    return der or None


_WEBSOCKET_CLASSES: dict[type, type] = {}


def _websocket_class(base: type) -> type:
    """uvicorn's WebSocket protocol, also handing the certificate to the app: an upgraded
    connection (``pods/exec``) gets a new protocol object, which would lose it."""
    known = _WEBSOCKET_CLASSES.get(base)
    if known is None:

        class WithCertificate(base):  # type: ignore[misc]
            app: Any

            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                der = _peer_certificate(transport)
                if der is not None:
                    self.app = _with_certificate(self.app, der)
                super().connection_made(transport)

        known = _WEBSOCKET_CLASSES[base] = WithCertificate
    return known


class PeerCertificateProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, exposing the verified client certificate."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.ws_protocol_class is not None:
            self.ws_protocol_class = _websocket_class(self.ws_protocol_class)

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        der = _peer_certificate(transport)
        if der is not None:
            self.app = _with_certificate(self.app, der)

    # A TLS close waits for the peer's close_notify, which an idle pooled client connection
    # never sends: uvicorn's graceful shutdown then sat out its whole timeout. At shutdown
    # the server drops connections instead, once no response is in flight on them.

    def shutdown(self) -> None:
        self._shutting_down = True
        if self.cycle is None or self.cycle.response_complete:
            self.transport.abort()
        else:
            self.cycle.keep_alive = False

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if getattr(self, "_shutting_down", False) and self.transport.is_closing():
            self.transport.abort()


def client_certificate(scope: Any) -> bytes | None:
    """The DER client certificate of the connection a request arrived on, if any."""
    tls = scope.get("extensions", {}).get("tls") or {}
    der = tls.get(CLIENT_CERT_KEY)
    return der if isinstance(der, bytes) else None
