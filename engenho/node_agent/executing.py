"""One ``exec`` session: a command in a container, its streams on a WebSocket.

The kubelet's order of events (``remotecommand`` over ``wsstream``): accept with the
negotiated subprotocol; send an empty message on the lowest writable channel (stdout, else
stderr, else error) so the client knows the streams are up; run the command with the
client's stdin (until a v5 close signal or the connection ends), its output on channels 1
and 2 (with a TTY everything comes on 1) and terminal sizes from channel 4; then write the
outcome on channel 3 and close the connection normally (1000), which ends the client's
streams. A client that goes away cancels the command.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Sequence
from typing import Any, Protocol

from attrs import frozen

from engenho.node_agent import channels
from engenho.node_agent.channels import ChannelProtocol, CloseSignal, Frame
from engenho.node_agent.runtime import ByteSink, ContainerRuntimeError, TerminalSize

__all__ = ["ExecOptions", "ExecRunner", "WebSocketLike", "run_exec_session"]

_log = logging.getLogger("engenho.node_agent.exec")
_STDIN_BACKLOG = 64
"""Messages of stdin queued before the reader stops taking more (backpressure)."""
_NORMAL_CLOSURE = 1000


@frozen
class ExecOptions:
    command: tuple[str, ...]
    stdin: bool
    stdout: bool
    stderr: bool
    tty: bool


class ExecRunner(Protocol):
    """``ContainerRuntime.exec``, as far as a session uses it."""

    def __call__(
        self,
        argv: Sequence[str],
        *,
        stdin: AsyncIterable[bytes] | None,
        stdout: ByteSink | None,
        stderr: ByteSink | None,
        tty: bool,
        resize: AsyncIterable[TerminalSize] | None,
    ) -> Awaitable[int]: ...


class WebSocketLike(Protocol):
    """The accepted connection (Starlette's ``WebSocket``), as raw ASGI messages."""

    async def receive(self) -> Any: ...

    async def send_bytes(self, data: bytes) -> None: ...

    async def send_text(self, data: str) -> None: ...

    async def close(self, code: int = 1000, reason: str | None = None) -> None: ...


async def _drain(queue: asyncio.Queue[Any]) -> AsyncIterator[Any]:
    while (item := await queue.get()) is not None:
        yield item


class _Session:
    def __init__(
        self, socket: WebSocketLike, protocol: ChannelProtocol, options: ExecOptions
    ) -> None:
        self.socket = socket
        self.protocol = protocol
        self.options = options
        self.stdin: asyncio.Queue[bytes | None] = asyncio.Queue(_STDIN_BACKLOG)
        self.resize: asyncio.Queue[TerminalSize | None] = asyncio.Queue(_STDIN_BACKLOG)
        self.gone = asyncio.Event()
        self.stdin_open = options.stdin
        self._sending = asyncio.Lock()

    async def send(self, channel: int, data: bytes) -> None:
        message = channels.encode(self.protocol, channel, data)
        async with self._sending:
            if self.gone.is_set():
                return
            try:
                if isinstance(message, str):
                    await self.socket.send_text(message)
                else:
                    await self.socket.send_bytes(message)
            except Exception:  # any send failure means the client is gone
                self.gone.set()

    def sink(self, channel: int) -> ByteSink:
        async def write(data: bytes) -> None:
            if data:
                await self.send(channel, data)

        return write

    def _end_stdin(self) -> None:
        if self.stdin_open:
            self.stdin_open = False
            with contextlib.suppress(asyncio.QueueFull):
                self.stdin.put_nowait(None)

    async def read_client(self) -> None:
        """Route the client's messages until it goes away."""
        try:
            while True:
                message = await self.socket.receive()
                if message.get("type") != "websocket.receive":
                    return
                data = message.get("bytes")
                if data is None:
                    data = message.get("text") or ""
                frame = channels.decode(self.protocol, data)
                if isinstance(frame, CloseSignal):
                    if frame.channel == channels.STDIN:
                        self._end_stdin()
                elif isinstance(frame, Frame):
                    await self._route(frame)
        except Exception:  # a broken connection is a client that went away
            _log.debug("exec client connection ended", exc_info=True)
        finally:
            self.gone.set()
            self._end_stdin()
            with contextlib.suppress(asyncio.QueueFull):
                self.resize.put_nowait(None)

    async def _route(self, frame: Frame) -> None:
        if frame.channel == channels.STDIN and self.stdin_open and frame.data:
            await self.stdin.put(frame.data)
        elif frame.channel == channels.RESIZE:
            size = channels.parse_resize(frame.data)
            if size is not None and self.resize.qsize() < _STDIN_BACKLOG - 1:
                self.resize.put_nowait(TerminalSize(*size))

    async def finish(self, status: dict[str, Any]) -> None:
        payload = channels.status_payload(self.protocol, status)
        if payload is not None:
            await self.send(channels.ERROR, payload)
        if not self.gone.is_set():
            with contextlib.suppress(Exception):
                await self.socket.close(_NORMAL_CLOSURE)


async def run_exec_session(
    socket: WebSocketLike,
    protocol: ChannelProtocol,
    options: ExecOptions,
    run: ExecRunner,
    *,
    stop: asyncio.Event | None = None,
) -> int | None:
    """Serve one accepted exec connection; the command's exit code, or None when it did not
    finish (the client left, the agent is stopping, or it could not run)."""
    session = _Session(socket, protocol, options)
    first = channels.STDOUT if options.stdout else channels.STDERR if options.stderr else None
    await session.send(first if first is not None else channels.ERROR, b"")
    stderr_wanted = options.stderr and not options.tty
    command = asyncio.ensure_future(
        run(
            options.command,
            stdin=_drain(session.stdin) if options.stdin else None,
            stdout=session.sink(channels.STDOUT) if options.stdout else None,
            stderr=session.sink(channels.STDERR) if stderr_wanted else None,
            tty=options.tty,
            resize=_drain(session.resize) if options.tty else None,
        )
    )
    reader = asyncio.create_task(session.read_client(), name="exec-client-reader")
    waits: set[asyncio.Future[Any]] = {command, asyncio.ensure_future(session.gone.wait())}
    if stop is not None:
        waits.add(asyncio.ensure_future(stop.wait()))
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        if not command.done():
            command.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await command
            await session.finish(channels.internal_error_status("the exec session was ended"))
            return None
        try:
            code = command.result()
        except ContainerRuntimeError as exc:
            await session.finish(channels.internal_error_status(str(exc)))
            return None
        await session.finish(
            channels.success_status() if code == 0 else channels.exit_status(code, options.command)
        )
        return code
    finally:
        for waiting in waits:
            waiting.cancel()
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await reader
