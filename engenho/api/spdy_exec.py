"""``pods/exec`` over SPDY/3.1: what kubectl before 1.30 (client-go's SPDY executor) speaks.

The upgrade never reaches the app: ``upgrading.py`` takes the connection over as soon as the
request's head is read, and :class:`SpdyExec` answers it, in the order upstream does:

1. who is asking, as the app's middleware decides it (client certificate, bearer token,
   service account JWT); anonymous callers get 401;
2. the apiserver's checks (:meth:`NodeAgents.exec_url`): the pod exists (404), the container
   is named when it must be and is the pod's (400), the pod has a node (400);
3. the kubelet's handshake: the first of the client's ``X-Stream-Protocol-Version`` values
   among ``v4.channel.k8s.io``, ``v3``, ``v2`` and ``channel.k8s.io`` (none offered: 400;
   none in common: 403 with ``X-Accepted-Stream-Protocol-Versions``);
4. the agent's exec WebSocket opens (``v5.channel.k8s.io``, whose close signal carries the
   end of stdin), so that its refusals (``container not found ("app")``, ``you must specify
   at least 1 of stdin, stdout, stderr``) become Statuses as on the WebSocket path.

A refusal is a ``metav1.Status`` answered on the connection, which then closes. Otherwise:
``101 Switching Protocols`` with ``Upgrade: SPDY/3.1`` and the chosen protocol, and the
client opens one stream per channel, named by its ``streamType`` header: ``error``, then
``stdin``, ``stdout``, ``stderr`` (not with a TTY) and, with a TTY from v3 on, ``resize``.
Once every stream the query asks for is open (within 30 s, the kubelet's stream creation
timeout) the streams are relayed:

| SPDY stream | agent channel |
|---|---|
| stdin (its FIN) | 0 (the v5 close ``[255, 0]``) |
| resize (JSON objects, one after another) | 4, one object a message |
| stdout, stderr | 1, 2 |
| error | 3: the Status JSON for v4; before v4 a failure's message and nothing on success |

The agent writes the command's outcome on channel 3 and closes; then every stream is
half-closed (FIN), which is kubectl's cue to read the outcome and close the connection (a
client that does not is sent GOAWAY after 5 s). An agent that ends without an outcome, or
the server shutting down, gives an InternalError outcome instead (kubectl exits 1 saying
so, where a bare end would read as success). The client leaving, or the server shutting
down, closes the agent's WebSocket, which ends the command.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Sequence
from http import HTTPStatus
from typing import Any

import orjson
import websockets
from attrs import frozen
from starlette.datastructures import QueryParams
from websockets.asyncio.client import ClientConnection
from websockets.typing import Subprotocol

from engenho.api.auth import ANONYMOUS, Authenticator
from engenho.api.proxying import NodeAgents
from engenho.api.spdy import SpdySession, SpdyStream, StreamClosedError
from engenho.api.tls import CLIENT_CERT_KEY
from engenho.node_agent import channels
from engenho.node_agent.serving import parse_bool
from engenho.registry import (
    BadRequestError,
    ForbiddenError,
    InternalError,
    StatusError,
    UnauthorizedError,
)

__all__ = [
    "PROTOCOL_VERSION_HEADER",
    "STREAM_PROTOCOLS",
    "SpdyExec",
    "UpgradeRequest",
    "negotiate_stream_protocol",
]

_log = logging.getLogger("engenho.api.spdy_exec")

PROTOCOL_VERSION_HEADER = "X-Stream-Protocol-Version"
_ACCEPTED_HEADER = "X-Accepted-Stream-Protocol-Versions"
STREAM_PROTOCOLS = ("v4.channel.k8s.io", "v3.channel.k8s.io", "v2.channel.k8s.io", "channel.k8s.io")
"""What the kubelet serves over SPDY, in its order of preference."""
_RESIZING = frozenset(STREAM_PROTOCOLS[:2])
_EXEC_PATH = re.compile(r"/api/v1/namespaces/([^/]+)/pods/([^/]+)/exec")
_AGENT_PROTOCOL = channels.PROTOCOLS["v5.channel.k8s.io"]
_BEFORE_V4 = channels.PROTOCOLS["channel.k8s.io"]
"""How the outcome is written for v1 to v3: the failure's message, nothing on success."""
_STREAM_CREATION_SECONDS = 30.0
_CLOSE_GRACE_SECONDS = 5.0
_RESIZE_BUFFER_LIMIT = 64 * 1024


@frozen
class UpgradeRequest:
    """The head of a request asking for SPDY/3.1, as the HTTP protocol read it."""

    method: str
    path: str
    """Percent-decoded, as in an ASGI scope."""
    query_string: bytes
    headers: tuple[tuple[bytes, bytes], ...]
    """Names lower case, in order."""
    client_cert: bytes | None = None
    """The verified TLS client certificate (DER), if the connection has one."""

    def values(self, name: bytes) -> list[str]:
        return [value.decode("latin-1") for key, value in self.headers if key == name]

    def scope(self) -> dict[str, Any]:
        """An ASGI-like scope for the :class:`Authenticator`."""
        scope: dict[str, Any] = {
            "type": "http",
            "method": self.method,
            "path": self.path,
            "query_string": self.query_string,
            "headers": list(self.headers),
        }
        if self.client_cert is not None:
            scope["extensions"] = {"tls": {CLIENT_CERT_KEY: self.client_cert}}
        return scope


class _NoCommonProtocolError(ForbiddenError):
    """No protocol in common: answered with the ones we accept in a header."""


def _go_list(items: Sequence[str]) -> str:
    return "[" + " ".join(items) + "]"  # Go's %v of a []string


def negotiate_stream_protocol(values: Sequence[str], header_count: int) -> str:
    """The kubelet's handshake (apimachinery ``httpstream.Handshake``): the first protocol
    the client offers that we serve; ``values`` are its ``X-Stream-Protocol-Version``
    headers, each possibly a comma-separated list."""
    if not values:
        raise BadRequestError(
            f"unable to upgrade: header {PROTOCOL_VERSION_HEADER} does not exist in request "
            f"with {header_count} headers"
        )
    offered = [p.strip() for value in values for p in value.split(",") if p.strip()]
    if not offered:
        raise BadRequestError(
            f"unable to upgrade: header {PROTOCOL_VERSION_HEADER} contains {_go_list(values)}, "
            "but no valid protocols"
        )
    for protocol in offered:
        if protocol in STREAM_PROTOCOLS:
            return protocol
    raise _NoCommonProtocolError(
        f"unable to upgrade: unable to negotiate protocol: client supports {_go_list(offered)}, "
        f"server accepts {_go_list(STREAM_PROTOCOLS)}"
    )


@frozen
class _Wanted:
    """The streams an exec request asks for (the kubelet's ``remotecommand.Options``)."""

    stdin: bool
    stdout: bool
    stderr: bool
    tty: bool

    @classmethod
    def of(cls, params: QueryParams) -> _Wanted:
        tty = parse_bool(params.get("tty"))
        return cls(
            stdin=parse_bool(params.get("stdin")),
            stdout=parse_bool(params.get("stdout")),
            stderr=parse_bool(params.get("stderr")) and not tty,  # a terminal carries both
            tty=tty,
        )

    def stream_types(self, protocol: str) -> frozenset[str]:
        wanted = {"error"}
        wanted |= {"stdin"} if self.stdin else set()
        wanted |= {"stdout"} if self.stdout else set()
        wanted |= {"stderr"} if self.stderr else set()
        wanted |= {"resize"} if self.tty and protocol in _RESIZING else set()
        return frozenset(wanted)


def _respond(
    transport: asyncio.Transport, error: StatusError, headers: Sequence[tuple[str, str]] = ()
) -> None:
    """Answer the request with a Status and close the connection."""
    body = orjson.dumps(error.status())
    lines = [
        f"HTTP/1.1 {error.code} {HTTPStatus(error.code).phrase}",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
        "Connection: close",
        *(f"{name}: {value}" for name, value in headers),
    ]
    transport.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
    transport.close()


def _switching(protocol: str) -> bytes:
    return (
        "HTTP/1.1 101 Switching Protocols\r\n"
        "Connection: Upgrade\r\n"
        "Upgrade: SPDY/3.1\r\n"
        f"{PROTOCOL_VERSION_HEADER}: {protocol}\r\n\r\n"
    ).encode("ascii")


class SpdyExec:
    """Serves ``pods/exec`` upgrades to SPDY/3.1 (see the module docstring), reaching the
    agents through ``node_agents`` and knowing callers through ``authenticator``, the
    app's own two."""

    def __init__(self, node_agents: NodeAgents, authenticator: Authenticator) -> None:
        self.node_agents = node_agents
        self.authenticator = authenticator

    @staticmethod
    def serves(method: str, path: str) -> bool:
        """Whether a SPDY upgrade of ``method path`` is ours (kubectl POSTs, others GET)."""
        return method in ("GET", "POST") and _EXEC_PATH.fullmatch(path) is not None

    async def serve(
        self, request: UpgradeRequest, transport: asyncio.Transport, early: bytearray
    ) -> None:
        """Answer ``request`` on ``transport`` (whose reading is paused) and, once upgraded,
        run the session; ``early`` collects what the client sends meanwhile."""
        try:
            prepared = await self._prepare(request, transport)
        except _NoCommonProtocolError as exc:
            _respond(transport, exc, [(_ACCEPTED_HEADER, p) for p in STREAM_PROTOCOLS])
            return
        except StatusError as exc:
            _respond(transport, exc)
            return
        except Exception as exc:
            _log.exception("internal error serving a SPDY exec upgrade of %s", request.path)
            _respond(transport, InternalError(f"Internal error occurred: {exc}"))
            return
        protocol, wanted, agent = prepared
        try:
            if transport.is_closing():
                return  # the client left while we asked the agent
            transport.write(_switching(protocol))
            session = SpdySession()
            transport.set_protocol(session)
            session.connection_made(transport)
            if early:
                session.data_received(bytes(early))
                early.clear()
            transport.resume_reading()
            await self._bridge(session, agent, protocol, wanted.stream_types(protocol))
        except Exception:
            _log.exception("a SPDY exec session of %s failed", request.path)
            transport.abort()
        finally:
            await agent.close()

    async def _prepare(
        self, request: UpgradeRequest, transport: asyncio.Transport
    ) -> tuple[str, _Wanted, ClientConnection]:
        actor = await self.authenticator.authenticate(request.scope())
        if actor is ANONYMOUS:
            raise UnauthorizedError("Unauthorized")
        match = _EXEC_PATH.fullmatch(request.path)
        assert match is not None  # serves() said so
        namespace, name = match.groups()
        params = QueryParams(request.query_string)
        url = await self.node_agents.exec_url(params, namespace, name)
        protocol = negotiate_stream_protocol(
            request.values(PROTOCOL_VERSION_HEADER.lower().encode()), len(request.headers)
        )
        agent = await self.node_agents.connect_exec(url, [Subprotocol(_AGENT_PROTOCOL.name)])
        return protocol, _Wanted.of(params), agent

    async def _bridge(
        self,
        session: SpdySession,
        agent: ClientConnection,
        protocol: str,
        wanted: frozenset[str],
    ) -> None:
        try:
            async with asyncio.timeout(_STREAM_CREATION_SECONDS):
                streams = await _accept_streams(session, wanted)
        except TimeoutError:
            _log.info("timed out waiting for the client to create streams %s", sorted(wanted))
            await session.close()
            return
        if streams is None:
            return  # the client left
        relay = _Relay(session, agent, protocol, streams)
        tasks = [asyncio.create_task(relay.refuse_more_streams(), name="spdy-exec-extra")]
        if "stdin" in streams:
            tasks.append(asyncio.create_task(relay.stdin(streams["stdin"]), name="spdy-stdin"))
        if "resize" in streams:
            tasks.append(asyncio.create_task(relay.resize(streams["resize"]), name="spdy-resize"))
        from_agent = asyncio.create_task(relay.from_agent(), name="spdy-exec-from-agent")
        client_gone = asyncio.create_task(session.wait_closed(), name="spdy-exec-client")
        stopping = asyncio.create_task(self.node_agents.shutdown.wait(), name="spdy-exec-stop")
        ends = [from_agent, client_gone, stopping]
        try:
            await asyncio.wait(ends, return_when=asyncio.FIRST_COMPLETED)
            if session.closed:
                return  # the client left: the agent's WebSocket closes, ending the command
            if from_agent.done():
                code = agent.close_code
                await relay.finish(f"the node agent ended the exec session ({code})")
                await session.close(grace=_CLOSE_GRACE_SECONDS)
            else:
                from_agent.cancel()
                await relay.finish("the server is shutting down")
                await session.close()
        finally:
            for task in (*tasks, *ends):
                task.cancel()
            await asyncio.gather(*tasks, *ends, return_exceptions=True)


async def _accept_streams(
    session: SpdySession, wanted: frozenset[str]
) -> dict[str, SpdyStream] | None:
    """The client's streams by type, once it opened every one in ``wanted``; None when it
    left first. A stream of another type, or a second of one type, is reset."""
    streams: dict[str, SpdyStream] = {}
    while len(streams) < len(wanted):
        stream = await session.accept()
        if stream is None:
            return None
        kind = (stream.header("streamtype") or "").lower()
        if kind not in wanted or kind in streams:
            _log.info("unexpected exec stream type %r on stream %d", kind, stream.id)
            stream.reset()
            continue
        streams[kind] = stream
    return streams


class _Relay:
    """One exec's streams between the client's SPDY session and the agent's WebSocket."""

    def __init__(
        self,
        session: SpdySession,
        agent: ClientConnection,
        protocol: str,
        streams: dict[str, SpdyStream],
    ) -> None:
        self.session = session
        self.agent = agent
        self.protocol = protocol
        self.streams = streams
        self.outcome_sent = False

    async def from_agent(self) -> None:
        """The agent's messages to the client's streams, until the agent closes."""
        with contextlib.suppress(websockets.exceptions.ConnectionClosed):
            async for message in self.agent:
                frame = channels.decode(_AGENT_PROTOCOL, message)
                if not isinstance(frame, channels.Frame) or not frame.data:
                    continue  # the empty "streams are up" message, close signals
                if frame.channel == channels.STDOUT:
                    await self._write("stdout", frame.data)
                elif frame.channel == channels.STDERR:
                    await self._write("stderr", frame.data)
                elif frame.channel == channels.ERROR:
                    await self._outcome(frame.data)

    async def _outcome(self, payload: bytes) -> None:
        self.outcome_sent = True
        if self.protocol != STREAM_PROTOCOLS[0]:
            try:
                status = orjson.loads(payload)
            except orjson.JSONDecodeError:
                status = {"status": "Failure", "message": payload.decode("utf-8", "replace")}
            payload = channels.status_payload(_BEFORE_V4, status) or b""
        if payload:
            await self._write("error", payload)

    async def _write(self, kind: str, data: bytes) -> None:
        stream = self.streams.get(kind)
        if stream is not None:
            with contextlib.suppress(StreamClosedError):  # the client reset it: drop
                await stream.write(data)

    async def finish(self, why: str) -> None:
        """The end: an InternalError outcome saying ``why`` unless the agent gave its own,
        then FIN on every stream."""
        if not self.outcome_sent:
            await self._outcome(orjson.dumps(channels.internal_error_status(why)))
        for stream in self.streams.values():
            await stream.close()

    async def stdin(self, stream: SpdyStream) -> None:
        """The client's stdin to the agent; its end as the v5 close signal."""
        with contextlib.suppress(websockets.exceptions.ConnectionClosed):
            while chunk := await stream.read():
                await self.agent.send(channels.encode(_AGENT_PROTOCOL, channels.STDIN, chunk))
            await self.agent.send(channels.encode_close(channels.STDIN))

    async def resize(self, stream: SpdyStream) -> None:
        """Terminal sizes: JSON objects one after another (Go's ``json.Encoder``), each sent
        to the agent as one message. Reading stops at the first that does not parse, as the
        kubelet's does."""
        pending = b""
        with contextlib.suppress(websockets.exceptions.ConnectionClosed):
            while chunk := await stream.read():
                pending += chunk
                while b"}" in pending:
                    text, _, pending = pending.partition(b"}")
                    size = channels.parse_resize(text + b"}")
                    if size is None:
                        return
                    body = orjson.dumps({"Width": size[0], "Height": size[1]})
                    await self.agent.send(channels.encode(_AGENT_PROTOCOL, channels.RESIZE, body))
                if len(pending) > _RESIZE_BUFFER_LIMIT:
                    return

    async def refuse_more_streams(self) -> None:
        """Streams opened after the exec's own are reset."""
        while (stream := await self.session.accept()) is not None:
            _log.info("an extra stream %d on an exec session", stream.id)
            stream.reset()
