"""A SPDY/3 client for tests: the other end of :class:`engenho.api.spdy.SpdySession`.

It frames with the module's own codec (whose bytes ``test_spdy.py`` checks against the draft
and an independent zlib stream, and kubectl checks end to end), and otherwise does only what
a test tells it: open streams, send frames, read the next frame. ``upgrade`` asks a server
for SPDY/3.1 over HTTP/1.1 as client-go's round tripper does.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Sequence

from engenho.api.spdy import (
    Data,
    FrameDecoder,
    FrameEncoder,
    SpdyFrame,
    SynReply,
    SynStream,
)

TIMEOUT = 15.0


class SpdyClient:
    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, early: bytes = b""
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.encoder = FrameEncoder()
        self.decoder = FrameDecoder()
        self.decoder.feed(early)
        self._frames = iter(self.decoder)
        self.next_stream = 1

    async def send(self, *frames: SpdyFrame) -> None:
        for frame in frames:
            self.writer.write(self.encoder.encode(frame))
        await self.writer.drain()

    async def frame(self) -> SpdyFrame | None:
        """The next frame from the server; None once it closed the connection."""
        async with asyncio.timeout(TIMEOUT):
            while True:
                frame = next(self._frames, None)
                if frame is not None:
                    return frame
                data = await self.reader.read(65536)
                if not data:
                    return None
                self.decoder.feed(data)
                self._frames = iter(self.decoder)

    async def open(self, headers: Sequence[tuple[str, str]], *, fin: bool = False) -> int:
        """Open a stream (SYN_STREAM); its id."""
        stream_id = self.next_stream
        self.next_stream += 2
        await self.send(SynStream(stream_id, tuple(headers), fin=fin))
        return stream_id

    async def open_and_wait(self, headers: Sequence[tuple[str, str]]) -> int:
        """Open a stream and read its SYN_REPLY (client-go waits for it too)."""
        stream_id = await self.open(headers)
        reply = await self.frame()
        assert reply == SynReply(stream_id, ()), reply
        return stream_id

    async def read_until_fin(self, streams: Sequence[int]) -> dict[int, bytes]:
        """Data of ``streams`` until each had FIN (other frames are skipped)."""
        received = dict.fromkeys(streams, b"")
        open_ = set(streams)
        while open_:
            frame = await self.frame()
            assert frame is not None, f"the connection ended before FIN on {sorted(open_)}"
            if isinstance(frame, Data) and frame.stream_id in received:
                received[frame.stream_id] += frame.data
                if frame.fin:
                    open_.discard(frame.stream_id)
        return received

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError, ssl.SSLError):  # the server closed first
            await self.writer.wait_closed()


async def upgrade(
    host: str,
    port: int,
    path: str,
    headers: Sequence[tuple[str, str]],
    *,
    context: ssl.SSLContext,
    method: str = "POST",
) -> tuple[int, dict[str, list[str]], bytes, SpdyClient | None]:
    """Ask for SPDY/3.1: the status, headers (lower-case names, every value) and body of the
    answer, and on 101 the client of the session."""
    reader, writer = await asyncio.open_connection(host, port, ssl=context)
    head = [
        f"{method} {path} HTTP/1.1",
        f"Host: {host}:{port}",
        "Connection: Upgrade",
        "Upgrade: SPDY/3.1",
        *(f"{name}: {value}" for name, value in headers),
    ]
    writer.write(("\r\n".join(head) + "\r\n\r\n").encode())
    async with asyncio.timeout(TIMEOUT):
        raw = await reader.readuntil(b"\r\n\r\n")
    status_line, *lines = raw.decode("latin-1").split("\r\n")
    status = int(status_line.split(" ")[1])
    answer: dict[str, list[str]] = {}
    for line in lines:
        if line:
            name, _, value = line.partition(":")
            answer.setdefault(name.strip().lower(), []).append(value.strip())
    if status == 101:
        return status, answer, b"", SpdyClient(reader, writer)
    async with asyncio.timeout(TIMEOUT):
        body = await reader.readexactly(int(answer.get("content-length", ["0"])[0]))
    await SpdyClient(reader, writer).close()
    return status, answer, body, None
