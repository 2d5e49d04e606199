"""Taking an HTTP connection over for SPDY/3.1 (``pods/exec`` from kubectl before 1.30).

ASGI cannot hand an app its raw connection, and uvicorn upgrades only to WebSocket: any other
``Upgrade`` it logs as unsupported and passes on as a plain request. So the hook sits in the
HTTP protocol itself, the one the server already runs (:class:`ClientCertProtocol`, uvicorn's
httptools protocol with the client certificate): a request whose head asks for
``Upgrade: SPDY/3.1`` on ``/api/v1/namespaces/{namespace}/pods/{name}/exec`` never reaches
the app. Reading stops, the connection leaves uvicorn's set of HTTP connections (the exec's
task stays in its set of tasks, so a graceful shutdown waits for it), and
:meth:`SpdyExec.serve` answers it, with bytes that arrived meanwhile passed on. Every other
request, and SPDY upgrades of other paths, go on exactly as before.
"""

from __future__ import annotations

import urllib.parse
from typing import Any, ClassVar

import httptools

from engenho.api.spdy_exec import SpdyExec, UpgradeRequest
from engenho.api.tls import ClientCertProtocol

__all__ = ["SpdyUpgradeProtocol", "spdy_upgrading"]

_SPDY = b"spdy/3.1"


class SpdyUpgradeProtocol(ClientCertProtocol):
    """:class:`ClientCertProtocol` that hands SPDY exec upgrades to :attr:`spdy_exec` (set by
    :func:`spdy_upgrading`; without one it is :class:`ClientCertProtocol`)."""

    spdy_exec: ClassVar[SpdyExec | None] = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._early: bytearray | None = None

    def _target(self) -> tuple[str, bytes]:
        parsed = httptools.parse_url(self.url)
        path = parsed.path.decode("ascii")
        return (urllib.parse.unquote(path) if "%" in path else path), parsed.query or b""

    def _is_spdy_exec(self) -> bool:
        spdy_exec = type(self).spdy_exec
        if spdy_exec is None or not self.headers:
            return False
        upgrade = self._get_upgrade()
        # apimachinery checks the header contains the token, not that it equals it
        if upgrade is None or _SPDY not in upgrade:
            return False
        return spdy_exec.serves(self.scope["method"], self._target()[0])

    def _should_upgrade(self) -> bool:
        # uvicorn asks this while reading the head: True keeps the request from the app.
        return super()._should_upgrade() or self._is_spdy_exec()

    def data_received(self, data: bytes) -> None:
        if self._early is not None:
            self._early += data  # reading is paused; whatever still comes is the session's
            return
        # uvicorn's own data_received, but for the upgrade it cannot make.
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            message = "Invalid HTTP request received."
            self.logger.warning(message)
            self.send_400_response(message)
        except httptools.HttpParserUpgrade as upgrade:
            if self._is_spdy_exec():
                self._take_over(data[upgrade.args[0] :])
            elif self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()

    def _take_over(self, rest: bytes) -> None:
        spdy_exec = type(self).spdy_exec
        assert spdy_exec is not None
        self.connections.discard(self)
        self.transport.pause_reading()
        self._early = bytearray(rest)
        path, query = self._target()
        ssl_object = self.transport.get_extra_info("ssl_object")
        der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
        request = UpgradeRequest(
            method=self.scope["method"],
            path=path,
            query_string=query,
            headers=tuple(self.headers),
            client_cert=der or None,
        )
        task = self.loop.create_task(
            spdy_exec.serve(request, self.transport, self._early), name="spdy exec"
        )
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)


def spdy_upgrading(spdy_exec: SpdyExec) -> type[SpdyUpgradeProtocol]:
    """The HTTP protocol class for uvicorn's ``http=``, serving SPDY exec with ``spdy_exec``."""

    class WithSpdyExec(SpdyUpgradeProtocol):
        pass

    WithSpdyExec.spdy_exec = spdy_exec
    return WithSpdyExec
