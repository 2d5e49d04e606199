"""Expose the TLS client certificate to the ASGI app.

uvicorn does not put the peer certificate into the ASGI scope. The HTTP protocol below is
uvicorn's own (httptools) with one addition: once the TLS handshake is done it reads the
verified peer certificate and hands it to every request of that connection as
``scope["extensions"]["tls"]["client_cert_der"]``. The TLS layer (the cluster CA with
``CERT_OPTIONAL``) has already verified the chain; a connection without a certificate simply
has none.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

__all__ = ["CLIENT_CERT_KEY", "ClientCertProtocol", "client_certificate"]

CLIENT_CERT_KEY = "client_cert_der"


class ClientCertProtocol(HttpToolsProtocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        ssl_object = transport.get_extra_info("ssl_object")
        der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
        if der:
            app = self.app

            async def with_certificate(scope: Any, receive: Any, send: Any) -> None:
                scope.setdefault("extensions", {})["tls"] = {CLIENT_CERT_KEY: der}
                await app(scope, receive, send)

            self.app = with_certificate

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
