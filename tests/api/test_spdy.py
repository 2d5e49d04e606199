"""SPDY/3.1 framing and sessions (:mod:`engenho.api.spdy`).

Framing: the header dictionary is the draft's (length, Adler-32, and the id a zlib stream
primed with it announces); frames have the draft's byte layout; a SYN_STREAM compressed here
with zlib directly reads back; hypothesis round-trips every frame type through the encoder
and decoder, fed in arbitrary pieces, and sequences of header blocks through one compression
stream; malformed input is a protocol error after the frames before it.

Sessions, over a socket pair with the test client of ``spdy_client.py``: streams are answered
and carry data both ways to FIN; PINGs are echoed; what is read is given back in
WINDOW_UPDATEs; the peer's window holds output back once the peer keeps one, and does not
while it says nothing (spdystream); unread data stops the transport reading until it is
read; resets, unknown streams, ids out of order, too many streams, a lost connection and
both ways of closing.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import zlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engenho.api.spdy import (
    CANCEL,
    DICTIONARY,
    INVALID_STREAM,
    REFUSED_STREAM,
    SETTINGS_INITIAL_WINDOW_SIZE,
    Data,
    FrameDecoder,
    FrameEncoder,
    GoAway,
    HeaderCompressor,
    HeaderDecompressor,
    Headers,
    HeadersFrame,
    Ping,
    RstStream,
    Setting,
    Settings,
    SpdyFrame,
    SpdyProtocolError,
    SpdySession,
    StreamClosedError,
    SynReply,
    SynStream,
    WindowUpdate,
    header_value,
)

from .spdy_client import SpdyClient

# -- the dictionary and byte layouts -------------------------------------------------------


def test_the_dictionary_is_the_drafts() -> None:
    assert len(DICTIONARY) == 1423
    assert zlib.adler32(DICTIONARY) == 0xE3C6A7C2
    assert DICTIONARY.startswith(b"\x00\x00\x00\x07options\x00\x00\x00\x04head")
    assert b"\x00\x00\x00\x06200 OK\x00\x00\x00\x07version" in DICTIONARY
    assert b"\x00\x00\x00\x06origin100101201202205" in DICTIONARY
    assert DICTIONARY.endswith(b"charset=utf-8charset=iso-8859-1,utf-,*,enq=0.")


def test_a_header_block_announces_the_dictionary() -> None:
    block = HeaderCompressor().compress((("streamtype", "stdout"),))
    header, dictionary_id = block[:2], block[2:6]
    assert header[1] & 0x20  # FDICT (RFC 1950)
    assert dictionary_id == struct.pack(">I", zlib.adler32(DICTIONARY))


def test_byte_layouts() -> None:
    encoder = FrameEncoder()
    assert encoder.encode(Ping(1)) == bytes.fromhex("80030006 00000004 00000001")
    assert encoder.encode(Data(5, b"hi", fin=True)) == bytes.fromhex("00000005 01000002 6869")
    assert encoder.encode(RstStream(3, CANCEL)) == bytes.fromhex(
        "80030003 00000008 00000003 00000005"
    )
    assert encoder.encode(GoAway(7)) == bytes.fromhex("80030007 00000008 00000007 00000000")
    assert encoder.encode(WindowUpdate(0, 65536)) == bytes.fromhex(
        "80030009 00000008 00000000 00010000"
    )
    settings = Settings((Setting(SETTINGS_INITIAL_WINDOW_SIZE, 1024, flags=1),), clear=True)
    assert encoder.encode(settings) == bytes.fromhex("80030004 0100000c 00000001 01000007 00000400")


def test_a_syn_stream_compressed_by_zlib_itself_reads_back() -> None:
    pairs = [(b"streamtype", b"stdin"), (b"multi", b"a\0b")]
    block = struct.pack(">I", len(pairs)) + b"".join(
        struct.pack(">I", len(n)) + n + struct.pack(">I", len(v)) + v for n, v in pairs
    )
    compressor = zlib.compressobj(zdict=DICTIONARY)
    compressed = compressor.compress(block) + compressor.flush(zlib.Z_SYNC_FLUSH)
    payload = struct.pack(">II", 3, 0) + bytes((0b01100000, 0)) + compressed
    raw = struct.pack(">HHI", 0x8003, 1, 0x01 << 24 | len(payload)) + payload
    decoder = FrameDecoder()
    decoder.feed(raw)
    (frame,) = list(decoder)
    assert frame == SynStream(3, (("streamtype", "stdin"), ("multi", "a\0b")), priority=3, fin=True)
    assert isinstance(frame, SynStream)
    assert header_value(frame.headers, "multi") == "a"
    assert header_value(frame.headers, "absent") is None


# -- round trips -----------------------------------------------------------------------------

_ids = st.integers(1, 2**31 - 1)
_names = st.text("abcdefghijklmnopqrstuvwxyz0123456789-:", min_size=1, max_size=16)
_values = st.text(st.characters(max_codepoint=255), max_size=32)
_headers = st.lists(st.tuples(_names, _values), max_size=6).map(tuple)
_u32 = st.integers(0, 2**32 - 1)
_frames: st.SearchStrategy[SpdyFrame] = st.one_of(
    st.builds(
        SynStream,
        _ids,
        _headers,
        associated_to=st.integers(0, 2**31 - 1),
        priority=st.integers(0, 7),
        slot=st.integers(0, 255),
        fin=st.booleans(),
        unidirectional=st.booleans(),
    ),
    st.builds(SynReply, _ids, _headers, fin=st.booleans()),
    st.builds(HeadersFrame, _ids, _headers, fin=st.booleans()),
    st.builds(RstStream, _ids, st.integers(1, 2**32 - 1)),
    st.builds(
        Settings,
        st.lists(
            st.builds(Setting, st.integers(0, 2**24 - 1), _u32, flags=st.integers(0, 255)),
            max_size=4,
        ).map(tuple),
        clear=st.booleans(),
    ),
    st.builds(Ping, _u32),
    st.builds(GoAway, st.integers(0, 2**31 - 1), _u32),
    st.builds(WindowUpdate, st.integers(0, 2**31 - 1), st.integers(1, 2**31 - 1)),
    st.builds(Data, _ids, st.binary(max_size=200), fin=st.booleans()),
)


@given(frames=st.lists(_frames, max_size=12), data=st.data())
def test_frames_round_trip_in_any_pieces(frames: list[SpdyFrame], data: st.DataObject) -> None:
    encoder = FrameEncoder()
    wire = b"".join(encoder.encode(frame) for frame in frames)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(wire)), max_size=6)))
    decoder = FrameDecoder()
    decoded: list[SpdyFrame] = []
    for start, end in zip([0, *cuts], [*cuts, len(wire)], strict=True):
        decoder.feed(wire[start:end])
        decoded += list(decoder)
    assert decoded == frames


@given(st.lists(_headers, min_size=1, max_size=8))
def test_header_blocks_share_one_compression_stream(blocks: list[Headers]) -> None:
    compressor, decompressor = HeaderCompressor(), HeaderDecompressor()
    for headers in blocks:
        assert decompressor.decompress(compressor.compress(headers)) == headers


# -- malformed input -------------------------------------------------------------------------


def _decode(raw: bytes) -> tuple[list[SpdyFrame], SpdyProtocolError | None]:
    decoder = FrameDecoder()
    decoder.feed(raw)
    frames: list[SpdyFrame] = []
    iterator = iter(decoder)
    while True:
        try:
            frame = next(iterator, None)
        except SpdyProtocolError as exc:
            return frames, exc
        if frame is None:
            return frames, None
        frames.append(frame)


@pytest.mark.parametrize(
    "bad",
    [
        bytes.fromhex("80020006 00000004 00000001"),  # SPDY/2
        bytes.fromhex("00000000 00000001 00"),  # data on stream 0
        bytes.fromhex("80030003 00000004 00000001"),  # RST_STREAM of 4 bytes
        bytes.fromhex("80030003 00000008 00000001 00000000"),  # RST_STREAM status 0
        bytes.fromhex("80030002 00000008 00000001 deadbeef"),  # a header block that is not zlib
        bytes.fromhex("80030004 00000008 00000002 00000007"),  # SETTINGS shorter than its count
    ],
)
def test_malformed_frames_are_protocol_errors_after_the_good_ones(bad: bytes) -> None:
    good = FrameEncoder().encode(Ping(1))
    frames, error = _decode(good + bad)
    assert frames == [Ping(1)]
    assert error is not None


def test_unknown_control_frames_are_skipped() -> None:
    credential = bytes.fromhex("8003000a 00000002 0001")
    frames, error = _decode(credential + FrameEncoder().encode(Ping(3)))
    assert (frames, error) == ([Ping(3)], None)


def test_a_header_block_too_large_is_refused() -> None:
    headers = (("big", "x" * 300_000),)
    raw = FrameEncoder().encode(SynReply(1, headers))
    assert _decode(raw)[1] is not None


# -- sessions --------------------------------------------------------------------------------


@asynccontextmanager
async def connected(**options: int) -> AsyncIterator[tuple[SpdySession, SpdyClient]]:
    """A session on one end of a socket pair, the test client on the other."""
    server_socket, client_socket = socket.socketpair()
    session = SpdySession(**options)
    loop = asyncio.get_running_loop()
    await loop.connect_accepted_socket(lambda: session, server_socket)
    reader, writer = await asyncio.open_connection(sock=client_socket)
    client = SpdyClient(reader, writer)
    try:
        yield session, client
    finally:
        await client.close()
        session.abort()
        await session.wait_closed()


async def test_a_stream_is_answered_and_carries_data_both_ways() -> None:
    async with connected() as (session, client):
        stream_id = await client.open([("streamtype", "stdout"), ("x", "1")])
        stream = await session.accept()
        assert stream is not None
        assert (stream.id, stream.header("streamtype")) == (stream_id, "stdout")
        assert await client.frame() == SynReply(stream_id, ())
        await stream.write(b"hello")
        assert await client.frame() == Data(stream_id, b"hello")
        await client.send(Data(stream_id, b"in"), Data(stream_id, b"put", fin=True))
        assert await stream.read() == b"in"
        assert await stream.read() == b"put"
        assert await stream.read() == b""
        await stream.close()
        assert await client.frame() == Data(stream_id, b"", fin=True)
        assert session.streams == ()  # closed both ways
        with pytest.raises(StreamClosedError):
            await stream.write(b"late")


async def test_large_writes_go_in_frames() -> None:
    async with connected() as (session, client):
        stream_id = await client.open_and_wait([("streamtype", "stdout")])
        stream = await session.accept()
        assert stream is not None
        payload = bytes(range(256)) * 800  # 200 KiB
        await stream.write(payload)
        await stream.close()
        # No WINDOW_UPDATE from the client, as spdystream sends none: nothing is held back.
        assert (await client.read_until_fin([stream_id]))[stream_id] == payload


async def test_pings_from_the_client_are_echoed() -> None:
    async with connected() as (_, client):
        await client.send(Ping(2), Ping(7))  # even ids are the server's own: not echoed
        assert await client.frame() == Ping(7)


async def test_what_is_read_is_given_back_in_window_updates() -> None:
    async with connected() as (session, client):
        stream_id = await client.open_and_wait([("streamtype", "stdin")])
        stream = await session.accept()
        assert stream is not None
        chunk = b"x" * 16384
        await client.send(*(Data(stream_id, chunk) for _ in range(3)))
        read = b""
        while len(read) < 3 * len(chunk):
            read += await stream.read()
        updates = [await client.frame(), await client.frame()]
        assert WindowUpdate(stream_id, 32768) in updates
        assert WindowUpdate(0, 32768) in updates


async def test_the_peers_window_holds_output_once_it_keeps_one() -> None:
    async with connected() as (session, client):
        await client.send(Settings((Setting(SETTINGS_INITIAL_WINDOW_SIZE, 10),)))
        stream_id = await client.open_and_wait([("streamtype", "stdout")])
        stream = await session.accept()
        assert stream is not None
        writing = asyncio.create_task(stream.write(b"0123456789abcdefghijklmno"))
        assert await client.frame() == Data(stream_id, b"0123456789")
        await client.send(Ping(9))
        assert await client.frame() == Ping(9)  # nothing more came first: the window is spent
        assert not writing.done()
        await client.send(WindowUpdate(stream_id, 100))
        assert await client.frame() == Data(stream_id, b"abcdefghijklmno")
        await writing


async def test_the_session_window_holds_output_once_the_peer_updates_it() -> None:
    async with connected() as (session, client):
        stream_id = await client.open_and_wait([("streamtype", "stdout")])
        stream = await session.accept()
        assert stream is not None
        await client.send(WindowUpdate(0, 1), WindowUpdate(stream_id, 1000))
        await client.send(Ping(1))
        assert await client.frame() == Ping(1)  # both updates are in
        writing = asyncio.create_task(stream.write(b"z" * (64 * 1024 + 10)))
        received = 0
        while received < 64 * 1024 + 1:  # the session's 64 KiB, plus the 1 given
            frame = await client.frame()
            assert isinstance(frame, Data)
            received += len(frame.data)
        assert received == 64 * 1024 + 1
        await client.send(WindowUpdate(0, 100))
        frame = await client.frame()
        assert frame == Data(stream_id, b"z" * 9)
        await writing


async def test_a_reset_from_the_client_ends_the_stream() -> None:
    async with connected() as (session, client):
        stream_id = await client.open_and_wait([("streamtype", "stdout")])
        stream = await session.accept()
        assert stream is not None
        await client.send(RstStream(stream_id, CANCEL))
        assert await stream.read() == b""
        with pytest.raises(StreamClosedError):
            await stream.write(b"after")
        assert stream.reset_status == CANCEL


async def test_our_reset_and_data_for_unknown_streams() -> None:
    async with connected() as (session, client):
        stream_id = await client.open_and_wait([("streamtype", "resize")])
        stream = await session.accept()
        assert stream is not None
        stream.reset()
        assert await client.frame() == RstStream(stream_id, CANCEL)
        await client.send(Data(stream_id, b"in flight"), Data(99, b"never opened"))
        assert await client.frame() == RstStream(99, INVALID_STREAM)


async def test_stream_ids_out_of_order_end_the_session() -> None:
    async with connected() as (session, client):
        client.next_stream = 5
        await client.open_and_wait([("streamtype", "error")])
        client.next_stream = 3
        await client.open([("streamtype", "stdin")])
        assert await client.frame() == GoAway(5, 1)
        assert await client.frame() is None
        await session.wait_closed()


async def test_streams_past_the_limit_are_refused() -> None:
    async with connected(max_streams=1) as (session, client):
        await client.open_and_wait([("streamtype", "error")])
        second = await client.open([("streamtype", "stdout")])
        assert await client.frame() == RstStream(second, REFUSED_STREAM)
        assert (await session.accept()) is not None


async def test_a_lost_connection_ends_every_stream() -> None:
    async with connected() as (session, client):
        await client.open_and_wait([("streamtype", "stdin")])
        stream = await session.accept()
        assert stream is not None
        await client.close()
        assert await stream.read() == b""
        assert await session.accept() is None
        assert await session.accept() is None
        with pytest.raises(StreamClosedError):
            await stream.write(b"to nobody")


async def test_close_says_goaway_when_the_client_stays() -> None:
    async with connected() as (session, client):
        await client.open_and_wait([("streamtype", "error")])
        await session.close()
        assert await client.frame() == GoAway(1, 0)
        assert await client.frame() is None


async def test_close_waits_for_the_client_to_go() -> None:
    async with connected() as (session, client):
        closing = asyncio.create_task(session.close(grace=30))
        await asyncio.sleep(0)
        assert not closing.done()
        await client.close()
        await closing
        assert session.closed


async def test_unread_data_stops_the_transport_until_it_is_read() -> None:
    server_socket, client_socket = socket.socketpair()
    session = SpdySession()
    transport, _ = await asyncio.get_running_loop().connect_accepted_socket(
        lambda: session, server_socket
    )
    client = SpdyClient(*await asyncio.open_connection(sock=client_socket))
    try:
        stream_id = await client.open_and_wait([("streamtype", "stdin")])
        stream = await session.accept()
        assert stream is not None
        chunk, count = b"y" * 16384, 96  # 1.5 MiB, past the 1 MiB the session buffers
        frames = [Data(stream_id, chunk) for _ in range(count)]
        sending = asyncio.create_task(client.send(*frames, Ping(11)))
        async with asyncio.timeout(10):
            while transport.is_reading():
                await asyncio.sleep(0.01)
        received = 0
        while received < count * len(chunk):
            received += len(await stream.read())
        await sending
        seen: list[SpdyFrame | None] = []
        while Ping(11) not in seen:
            seen.append(await client.frame())
        assert WindowUpdate(stream_id, 32768) in seen
        assert transport.is_reading()
    finally:
        await client.close()
        session.abort()
        await session.wait_closed()
