"""The server's end of a SPDY/3.1 session, as an asyncio protocol.

It answers every stream the client opens with a SYN_REPLY and hands it out through
:meth:`SpdySession.accept`, echoes the client's PINGs, and sends a GOAWAY before it closes
the connection itself. A stream reads to ``b""`` once the client half-closes it (FIN), resets
it, or the connection ends; :meth:`SpdyStream.close` half-closes our side.

Flow control (§2.6.8, and the session window of 3.1). What the reader consumes is given back
to the client in WINDOW_UPDATEs, per stream and for the session; the client is not held to
its windows (spdystream keeps none), but while unread data piles up past a limit the
transport stops reading, and TCP pushes back. Data
we send is counted against the peer's windows, which start at 64 KiB (or the peer's
SETTINGS_INITIAL_WINDOW_SIZE) and grow with its WINDOW_UPDATEs; writers wait when a window is
spent, once the peer has shown that it keeps windows: a WINDOW_UPDATE or an initial window
size for streams, a WINDOW_UPDATE on stream 0 for the session. A peer that never says a word
about windows is taken to keep none, as spdystream, on both ends of every Kubernetes SPDY
connection, neither sends nor honours them: holding to 64 KiB for it would stall each exec
after 64 KiB of output. Writers always wait for the transport to drain.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Sequence
from typing import cast

from engenho.api.spdy.framing import (
    CANCEL,
    DEFAULT_WINDOW,
    FLOW_CONTROL_ERROR,
    GOAWAY_OK,
    GOAWAY_PROTOCOL_ERROR,
    INVALID_STREAM,
    MAX_ID,
    REFUSED_STREAM,
    SETTINGS_INITIAL_WINDOW_SIZE,
    STREAM_ALREADY_CLOSED,
    Data,
    FrameDecoder,
    FrameEncoder,
    GoAway,
    Headers,
    HeadersFrame,
    Ping,
    RstStream,
    Settings,
    SpdyFrame,
    SpdyProtocolError,
    StreamClosedError,
    SynReply,
    SynStream,
    WindowUpdate,
    header_value,
)

__all__ = ["SpdySession", "SpdyStream"]

_log = logging.getLogger("engenho.api.spdy")

_MAX_DATA_FRAME = 32 * 1024
_READ_HIGH, _READ_LOW = 1024 * 1024, 256 * 1024
"""Unread bytes at which the transport stops reading, and starts again."""
_MAX_STREAMS = 100
_REMEMBERED_RESETS = 256


class _Signal:
    """Wakes every waiter on each :meth:`notify` (window changes, resets, the end)."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def notify(self) -> None:
        self._event.set()
        self._event = asyncio.Event()

    async def wait(self) -> None:
        await self._event.wait()


class SpdyStream:
    """One stream the client opened: its SYN_STREAM's headers, what it sends (:meth:`read`)
    and what we send it (:meth:`write`, :meth:`close`)."""

    def __init__(
        self, session: SpdySession, stream_id: int, headers: Headers, *, send_window: int
    ) -> None:
        self._session = session
        self.id = stream_id
        self.headers = headers
        self._chunks: deque[bytes] = deque()
        self._readable = asyncio.Event()
        self.remote_closed = False
        """The client sent FIN, reset the stream, or the connection ended."""
        self.local_closed = False
        """We sent FIN or reset the stream (or the connection ended): no more writes."""
        self.reset_status: int | None = None
        self.send_window = send_window
        self._unacknowledged = 0
        """Bytes read since the last WINDOW_UPDATE of this stream."""

    def header(self, name: str) -> str | None:
        return header_value(self.headers, name)

    async def read(self) -> bytes:
        """The next bytes the client sent; ``b""`` once it sends no more."""
        while not self._chunks:
            if self.remote_closed:
                return b""
            self._readable.clear()
            await self._readable.wait()
        chunk = self._chunks.popleft()
        self._session._consumed(self, len(chunk))
        return chunk

    async def write(self, data: bytes) -> None:
        """Send ``data`` (in frames the peer's windows allow); raises
        :class:`StreamClosedError` when our side is closed or the stream was reset."""
        view = memoryview(data)
        while view:
            await self._session._drain()
            self._check_open()
            size = self._session._sendable(self, len(view))
            if size <= 0:
                await self._session._flow.wait()
                continue
            self._session._send_data(self, bytes(view[:size]))
            view = view[size:]

    async def close(self) -> None:
        """Half-close our side (an empty DATA frame with FIN); nothing once closed."""
        if self.local_closed:
            return
        await self._session._drain()
        if not self.local_closed:
            self._session._finish(self)

    def reset(self, status: int = CANCEL) -> None:
        """End both sides at once (RST_STREAM)."""
        self._session._reset(self, status)

    def _check_open(self) -> None:
        if self.reset_status is not None:
            raise StreamClosedError(f"stream {self.id} was reset ({self.reset_status})")
        if self.local_closed:
            raise StreamClosedError(f"stream {self.id} is closed for sending")

    def _deliver(self, data: bytes) -> None:
        if data:
            self._chunks.append(data)
        self._readable.set()

    def _end_remote(self) -> None:
        self.remote_closed = True
        self._readable.set()


class SpdySession(asyncio.Protocol):
    """The server's end of one SPDY/3.1 connection (see the module docstring). Streams from
    the client come out of :meth:`accept`; :meth:`close` ends the session politely."""

    def __init__(self, *, max_streams: int = _MAX_STREAMS) -> None:
        self._max_streams = max_streams
        self._transport: asyncio.Transport | None = None
        self._decoder = FrameDecoder()
        self._encoder = FrameEncoder()
        self._streams: dict[int, SpdyStream] = {}
        self._incoming: asyncio.Queue[SpdyStream | None] = asyncio.Queue()
        self._last_peer_stream = 0
        self._reset_by_us: deque[int] = deque(maxlen=_REMEMBERED_RESETS)
        self._going_away = False
        """We sent GOAWAY: new streams are ignored."""
        self.peer_going_away = False
        self._closed = asyncio.Event()
        self._writable = asyncio.Event()
        self._writable.set()
        self._flow = _Signal()
        self._reading_paused = False
        self._buffered = 0
        # The peer's windows for what we send, and whether it keeps them (module docstring).
        self._peer_initial_window = DEFAULT_WINDOW
        self._peer_stream_windows = False
        self._peer_session_window = False
        self._session_send_window = DEFAULT_WINDOW
        self._session_unacknowledged = 0

    # -- asyncio.Protocol ----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's TLS transport has the Transport methods without being a subclass.
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if self._closed.is_set():
            return
        self._decoder.feed(data)
        try:
            for frame in self._decoder:
                self._handle(frame)
        except SpdyProtocolError as exc:
            _log.info("ending a SPDY session: %s", exc)
            self._going_away = True
            self._send(GoAway(self._last_peer_stream, GOAWAY_PROTOCOL_ERROR))
            if self._transport is not None:
                self._transport.close()  # after the GOAWAY is written (abort would drop it)

    def eof_received(self) -> bool | None:
        return None  # the transport closes itself; connection_lost ends the streams

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed.set()
        for stream in self._streams.values():
            stream.local_closed = True
            stream._end_remote()
        self._streams.clear()
        self._incoming.put_nowait(None)
        self._writable.set()
        self._flow.notify()

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    # -- the public surface --------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    async def accept(self) -> SpdyStream | None:
        """The next stream the client opened (already answered with a SYN_REPLY); None once
        the connection is gone."""
        if self._closed.is_set() and self._incoming.empty():
            return None
        stream = await self._incoming.get()
        if stream is None:
            self._incoming.put_nowait(None)  # every later accept() sees the end too
        return stream

    async def wait_closed(self) -> None:
        await self._closed.wait()

    async def close(self, *, grace: float = 0) -> None:
        """End the session: wait up to ``grace`` seconds for the client to close the
        connection (kubectl does, once it has read every stream to its end), then send
        GOAWAY and close it ourselves."""
        if grace > 0 and not self._closed.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(grace):
                    await self._closed.wait()
        if self._closed.is_set() or self._transport is None:
            return
        self._going_away = True
        self._send(GoAway(self._last_peer_stream, GOAWAY_OK))
        self._transport.close()

    def abort(self) -> None:
        """Drop the connection at once."""
        if self._transport is not None:
            self._transport.abort()

    # -- frames in -----------------------------------------------------------------------

    def _handle(self, frame: SpdyFrame) -> None:
        match frame:
            case Data():
                self._on_data(frame)
            case SynStream():
                self._on_syn_stream(frame)
            case RstStream(stream_id, status):
                stream = self._streams.pop(stream_id, None)
                if stream is not None:
                    stream.reset_status = status
                    stream.local_closed = True
                    self._discard(stream)
                    self._flow.notify()
            case WindowUpdate():
                self._on_window_update(frame)
            case Settings():
                self._on_settings(frame)
            case Ping(ping_id):
                if ping_id % 2 == 1:  # the client's; ours (even) we never send
                    self._send(frame)
            case GoAway():
                self.peer_going_away = True
            case HeadersFrame(stream_id, _, fin):
                stream = self._streams.get(stream_id)
                if stream is None:
                    self._refuse_unknown(stream_id)
                elif fin:
                    self._end_remote(stream)
            case SynReply(stream_id):
                # We open no streams: a reply to one is for a stream that does not exist.
                self._reset_id(stream_id, INVALID_STREAM)

    def _on_syn_stream(self, frame: SynStream) -> None:
        stream_id = frame.stream_id
        if self._going_away:
            return  # after GOAWAY new streams are ignored (§2.6.6)
        if stream_id % 2 == 0 or stream_id <= self._last_peer_stream:
            raise SpdyProtocolError(
                f"stream {stream_id} after {self._last_peer_stream}: a client's stream ids "
                "are odd and increase"
            )
        self._last_peer_stream = stream_id
        if len(self._streams) >= self._max_streams:
            self._reset_id(stream_id, REFUSED_STREAM)
            return
        stream = SpdyStream(self, stream_id, frame.headers, send_window=self._peer_initial_window)
        self._streams[stream_id] = stream
        if frame.unidirectional:
            stream.local_closed = True  # the client sends, we do not even reply
        else:
            self._send(SynReply(stream_id, ()))
        if frame.fin:
            self._end_remote(stream)
        self._incoming.put_nowait(stream)

    def _on_data(self, frame: Data) -> None:
        stream = self._streams.get(frame.stream_id)
        if stream is None:
            self._refuse_unknown(frame.stream_id)
            return
        if stream.remote_closed:
            self._reset(stream, STREAM_ALREADY_CLOSED)
            return
        # Our windows are not enforced on the client (spdystream keeps none); the transport
        # stops reading when too much is unread instead (module docstring).
        self._buffered += len(frame.data)
        stream._deliver(frame.data)
        if frame.fin:
            self._end_remote(stream)
        if self._buffered > _READ_HIGH and not self._reading_paused and self._transport:
            self._reading_paused = True
            self._transport.pause_reading()

    def _on_window_update(self, frame: WindowUpdate) -> None:
        if frame.stream_id == 0:
            self._peer_session_window = True
            self._session_send_window = min(MAX_ID, self._session_send_window + frame.delta)
            self._flow.notify()
            return
        self._peer_stream_windows = True
        stream = self._streams.get(frame.stream_id)
        if stream is None or stream.local_closed:
            return  # ignored after our FIN (§2.6.8)
        if stream.send_window + frame.delta > MAX_ID:
            self._reset(stream, FLOW_CONTROL_ERROR)
            return
        stream.send_window += frame.delta
        self._flow.notify()

    def _on_settings(self, frame: Settings) -> None:
        for entry in frame.entries:
            if entry.id == SETTINGS_INITIAL_WINDOW_SIZE:
                self._peer_stream_windows = True
                delta = entry.value - self._peer_initial_window
                self._peer_initial_window = entry.value
                for stream in self._streams.values():
                    stream.send_window += delta  # may go negative (§2.6.8)
                self._flow.notify()

    def _refuse_unknown(self, stream_id: int) -> None:
        if self._going_away or stream_id in self._reset_by_us:
            return  # in flight when we reset it, or after our GOAWAY
        self._reset_id(stream_id, INVALID_STREAM)

    def _end_remote(self, stream: SpdyStream) -> None:
        stream._end_remote()
        self._forget_if_done(stream)

    # -- frames out ----------------------------------------------------------------------

    def _send(self, frame: SpdyFrame) -> None:
        """Encode and write at once: header blocks must reach the peer in the order they
        were compressed."""
        if self._transport is None or self._transport.is_closing():
            return
        self._transport.write(self._encoder.encode(frame))

    async def _drain(self) -> None:
        await self._writable.wait()

    def _sendable(self, stream: SpdyStream, wanted: int) -> int:
        size = min(wanted, _MAX_DATA_FRAME)
        if self._peer_stream_windows:
            size = min(size, stream.send_window)
        if self._peer_session_window:
            size = min(size, self._session_send_window)
        return size

    def _send_data(self, stream: SpdyStream, data: bytes) -> None:
        if self._closed.is_set():
            raise StreamClosedError(f"stream {stream.id}: the connection is gone")
        stream.send_window -= len(data)
        self._session_send_window -= len(data)
        self._send(Data(stream.id, data))

    def _finish(self, stream: SpdyStream) -> None:
        stream.local_closed = True
        self._send(Data(stream.id, b"", fin=True))
        self._forget_if_done(stream)

    def _reset(self, stream: SpdyStream, status: int) -> None:
        if stream.reset_status is not None or self._streams.get(stream.id) is not stream:
            return
        stream.reset_status = status
        stream.local_closed = True
        self._discard(stream)
        self._streams.pop(stream.id, None)
        self._reset_id(stream.id, status)
        self._flow.notify()

    def _reset_id(self, stream_id: int, status: int) -> None:
        self._reset_by_us.append(stream_id)
        self._send(RstStream(stream_id, status))

    def _discard(self, stream: SpdyStream) -> None:
        """A reset stream: what it did not read is dropped (it no longer holds reading up),
        and it reads to its end."""
        unread = sum(len(chunk) for chunk in stream._chunks)
        stream._chunks.clear()
        self._consumed_bytes(unread)
        stream._end_remote()

    def _forget_if_done(self, stream: SpdyStream) -> None:
        if stream.local_closed and stream.remote_closed:
            self._streams.pop(stream.id, None)

    def _consumed(self, stream: SpdyStream, size: int) -> None:
        """``size`` bytes were read: give them back to the client's windows."""
        self._consumed_bytes(size)
        stream._unacknowledged += size
        if (
            stream._unacknowledged >= DEFAULT_WINDOW // 2
            and not stream.remote_closed
            and stream.reset_status is None
        ):
            self._send(WindowUpdate(stream.id, stream._unacknowledged))
            stream._unacknowledged = 0
        self._session_unacknowledged += size
        if self._session_unacknowledged >= DEFAULT_WINDOW // 2:
            self._send(WindowUpdate(0, self._session_unacknowledged))
            self._session_unacknowledged = 0

    def _consumed_bytes(self, size: int) -> None:
        self._buffered -= size
        if self._reading_paused and self._buffered < _READ_LOW and self._transport:
            self._reading_paused = False
            self._transport.resume_reading()

    @property
    def streams(self) -> Sequence[SpdyStream]:
        """The streams still open in either direction."""
        return tuple(self._streams.values())
