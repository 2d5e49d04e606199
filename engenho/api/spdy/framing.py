"""SPDY/3 frames and their header compression (the SPDY/3 draft, §2.2 and §2.6).

Every integer is big-endian::

    control  |1| version = 3 (15 bits) | type (16) | flags (8) | length (24) | payload
    data     |0| stream id (31 bits)              | flags (8) | length (24) | data

| type | frame | payload | flags |
|---|---|---|---|
| 1 | SYN_STREAM | stream id, associated-to id, priority, slot, header block | FIN, UNIDIRECTIONAL |
| 2 | SYN_REPLY | stream id, header block | FIN |
| 3 | RST_STREAM | stream id, status | |
| 4 | SETTINGS | count, then (flags 8, id 24, value 32) each | CLEAR_SETTINGS |
| 6 | PING | id (the client's odd, the server's even) | |
| 7 | GOAWAY | last good stream id, status | |
| 8 | HEADERS | stream id, header block | FIN |
| 9 | WINDOW_UPDATE | stream id (0: the whole session, SPDY/3.1), delta (31 bits) | |
| — | DATA | bytes | FIN |

A header block is a count of pairs, each a length-prefixed name (lower case) and value
(several values joined by NUL), compressed with zlib: one compression stream per direction
for the whole session, primed with the dictionary of §2.6.10.1 and flushed with SYNC_FLUSH
after every block, so both ends must see every block in order. Other control frame types
(NOOP, CREDENTIAL, unknown ones) are read past and ignored.

Errors::

    SpdyError                 base
    ├── SpdyProtocolError     malformed or out-of-order input: the session ends (GOAWAY)
    └── StreamClosedError     writing to a stream that is half-closed, reset or gone
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator

from attrs import frozen

__all__ = [
    "CANCEL",
    "DEFAULT_WINDOW",
    "DICTIONARY",
    "FLAG_FIN",
    "FLOW_CONTROL_ERROR",
    "GOAWAY_OK",
    "GOAWAY_PROTOCOL_ERROR",
    "INTERNAL_ERROR",
    "INVALID_STREAM",
    "MAX_ID",
    "PROTOCOL_ERROR",
    "REFUSED_STREAM",
    "SETTINGS_INITIAL_WINDOW_SIZE",
    "STREAM_ALREADY_CLOSED",
    "VERSION",
    "Data",
    "FrameDecoder",
    "FrameEncoder",
    "GoAway",
    "HeaderCompressor",
    "HeaderDecompressor",
    "Headers",
    "HeadersFrame",
    "Ping",
    "RstStream",
    "Setting",
    "Settings",
    "SpdyError",
    "SpdyFrame",
    "SpdyProtocolError",
    "StreamClosedError",
    "SynReply",
    "SynStream",
    "WindowUpdate",
    "header_value",
]

VERSION = 3
DEFAULT_WINDOW = 64 * 1024
"""The initial window of every stream, and of the session (SPDY/3.1)."""

# Control frame types (§2.6).
SYN_STREAM, SYN_REPLY, RST_STREAM, SETTINGS, PING, GOAWAY, HEADERS, WINDOW_UPDATE = (
    1, 2, 3, 4, 6, 7, 8, 9
)  # fmt: skip
FLAG_FIN = 0x01
FLAG_UNIDIRECTIONAL = 0x02
FLAG_CLEAR_SETTINGS = 0x01
SETTINGS_INITIAL_WINDOW_SIZE = 7

# RST_STREAM status codes (§2.6.3).
PROTOCOL_ERROR, INVALID_STREAM, REFUSED_STREAM, CANCEL, INTERNAL_ERROR = 1, 2, 3, 5, 6
FLOW_CONTROL_ERROR, STREAM_ALREADY_CLOSED = 7, 9
# GOAWAY status codes (§2.6.6).
GOAWAY_OK, GOAWAY_PROTOCOL_ERROR = 0, 1

MAX_ID = 0x7FFFFFFF
"""The largest stream id (31 bits); also the largest window."""
_MAX_LENGTH = 0xFFFFFF
_MAX_HEADER_BLOCK = 256 * 1024
"""Decompressed bytes one header block may take; kubectl's are a few dozen."""


def _dictionary() -> bytes:
    """The header compression dictionary of the SPDY/3 draft (§2.6.10.1): header names and
    common values, each prefixed by its length as a 32-bit integer, then a run of status
    codes, reason phrases, dates and content types without prefixes. 1423 bytes."""
    # fmt: off
    words = (
        "options", "head", "post", "put", "delete", "trace", "accept", "accept-charset",
        "accept-encoding", "accept-language", "accept-ranges", "age", "allow", "authorization",
        "cache-control", "connection", "content-base", "content-encoding", "content-language",
        "content-length", "content-location", "content-md5", "content-range", "content-type",
        "date", "etag", "expect", "expires", "from", "host", "if-match", "if-modified-since",
        "if-none-match", "if-range", "if-unmodified-since", "last-modified", "location",
        "max-forwards", "pragma", "proxy-authenticate", "proxy-authorization", "range",
        "referer", "retry-after", "server", "te", "trailer", "transfer-encoding", "upgrade",
        "user-agent", "vary", "via", "warning", "www-authenticate", "method", "get", "status",
        "200 OK", "version", "HTTP/1.1", "url", "public", "set-cookie", "keep-alive", "origin",
    )
    # fmt: on
    codes = "100 101 201 202 205 206 300 302 303 304 305 306 307 402 405 406 407 408 409 410"
    codes += " 411 412 413 414 415 416 417 502 504 505"
    tail = "".join(codes.split()) + "".join(
        (
            "203 Non-Authoritative Information",
            "204 No Content",
            "301 Moved Permanently",
            "400 Bad Request",
            "401 Unauthorized",
            "403 Forbidden",
            "404 Not Found",
            "500 Internal Server Error",
            "501 Not Implemented",
            "503 Service Unavailable",
            "Jan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec ",
            "00:00:00 ",
            "Mon, Tue, Wed, Thu, Fri, Sat, Sun, ",
            "GMT",
            "chunked,text/html,image/png,image/jpg,image/gif,application/xml,",
            "application/xhtml+xml,text/plain,text/javascript,",
            "publicprivatemax-age=gzip,deflate,sdch",
            "charset=utf-8charset=iso-8859-1,utf-,*,enq=0.",
        )
    )
    prefixed = b"".join(struct.pack(">I", len(word)) + word.encode("ascii") for word in words)
    return prefixed + tail.encode("ascii")


DICTIONARY = _dictionary()


# -- errors --------------------------------------------------------------------------------


class SpdyError(Exception):
    """Base of this module's errors."""


class SpdyProtocolError(SpdyError):
    """The peer sent something SPDY/3 does not allow (a malformed frame, a stream id out of
    order, a header block that does not decompress); the session cannot go on."""


class StreamClosedError(SpdyError):
    """A write to a stream whose sending side is closed: we sent FIN, either end reset it,
    or the connection is gone."""


# -- frames --------------------------------------------------------------------------------

Headers = tuple[tuple[str, str], ...]
"""Name/value pairs in order; names lower case, several values of one name joined by NUL."""


def header_value(headers: Headers, name: str) -> str | None:
    """The first value of ``name`` (Go's ``http.Header.Get``), or None."""
    for key, value in headers:
        if key == name:
            return value.split("\0", 1)[0]
    return None


@frozen
class SynStream:
    stream_id: int
    headers: Headers
    associated_to: int = 0
    priority: int = 0
    slot: int = 0
    fin: bool = False
    unidirectional: bool = False


@frozen
class SynReply:
    stream_id: int
    headers: Headers
    fin: bool = False


@frozen
class RstStream:
    stream_id: int
    status: int


@frozen
class Setting:
    id: int
    value: int
    flags: int = 0


@frozen
class Settings:
    entries: tuple[Setting, ...]
    clear: bool = False


@frozen
class Ping:
    id: int


@frozen
class GoAway:
    last_good_stream_id: int
    status: int = GOAWAY_OK


@frozen
class HeadersFrame:
    stream_id: int
    headers: Headers
    fin: bool = False


@frozen
class WindowUpdate:
    stream_id: int
    """0 for the session's window (SPDY/3.1)."""
    delta: int


@frozen
class Data:
    stream_id: int
    data: bytes
    fin: bool = False


SpdyFrame = (
    SynStream | SynReply | RstStream | Settings | Ping | GoAway | HeadersFrame | WindowUpdate | Data
)


# -- header blocks -------------------------------------------------------------------------


def _pack_headers(headers: Headers) -> bytes:
    parts = [struct.pack(">I", len(headers))]
    for name, value in headers:
        raw_name, raw_value = name.encode("latin-1"), value.encode("latin-1")
        parts += [struct.pack(">I", len(raw_name)), raw_name]
        parts += [struct.pack(">I", len(raw_value)), raw_value]
    return b"".join(parts)


def _unpack_headers(block: bytes) -> Headers:
    def take(offset: int, size: int) -> bytes:
        if offset + size > len(block):
            raise SpdyProtocolError("a header block ends inside a name or value")
        return block[offset : offset + size]

    (count,) = struct.unpack(">I", take(0, 4))
    offset = 4
    pairs: list[tuple[str, str]] = []
    for _ in range(count):
        (size,) = struct.unpack(">I", take(offset, 4))
        name = take(offset + 4, size).decode("latin-1")
        offset += 4 + size
        (size,) = struct.unpack(">I", take(offset, 4))
        value = take(offset + 4, size).decode("latin-1")
        offset += 4 + size
        if not name:
            raise SpdyProtocolError("a header with an empty name")
        # spdystream lower-cases names it is sent in upper case; so do we.
        pairs.append((name.lower(), value))
    if offset != len(block):
        raise SpdyProtocolError("bytes after the last header of a block")
    return tuple(pairs)


class HeaderCompressor:
    """The sending side's zlib stream of header blocks."""

    def __init__(self) -> None:
        self._zlib = zlib.compressobj(
            zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, 15, zdict=DICTIONARY
        )

    def compress(self, headers: Headers) -> bytes:
        return self._zlib.compress(_pack_headers(headers)) + self._zlib.flush(zlib.Z_SYNC_FLUSH)


class HeaderDecompressor:
    """The receiving side's zlib stream of header blocks."""

    def __init__(self) -> None:
        self._zlib = zlib.decompressobj(zdict=DICTIONARY)

    def decompress(self, data: bytes) -> Headers:
        try:
            block = self._zlib.decompress(data, _MAX_HEADER_BLOCK)
        except zlib.error as exc:
            raise SpdyProtocolError(f"a header block does not decompress: {exc}") from exc
        if self._zlib.unconsumed_tail:
            raise SpdyProtocolError(f"a header block of more than {_MAX_HEADER_BLOCK} bytes")
        if len(block) < 4:
            raise SpdyProtocolError("a header block without its count of pairs")
        return _unpack_headers(block)


# -- encoding and decoding -----------------------------------------------------------------


def _control(kind: int, flags: int, payload: bytes) -> bytes:
    if len(payload) > _MAX_LENGTH:
        raise ValueError(f"a control frame of {len(payload)} bytes")
    return struct.pack(">HHI", 0x8000 | VERSION, kind, flags << 24 | len(payload)) + payload


def _stream_id(value: int) -> bytes:
    if not 0 <= value <= MAX_ID:
        raise ValueError(f"stream id {value} is not 31 bits")
    return struct.pack(">I", value)


class FrameEncoder:
    """Frames to bytes, with the session's outgoing header compression: encode frames in the
    order they are sent."""

    def __init__(self) -> None:
        self._headers = HeaderCompressor()

    def encode(self, frame: SpdyFrame) -> bytes:
        match frame:
            case Data(stream_id, data, fin):
                if stream_id == 0 or len(data) > _MAX_LENGTH:
                    raise ValueError("a data frame needs a stream and at most 16 MiB")
                flags = FLAG_FIN if fin else 0
                return _stream_id(stream_id) + struct.pack(">I", flags << 24 | len(data)) + data
            case SynStream():
                flags = (FLAG_FIN if frame.fin else 0) | (
                    FLAG_UNIDIRECTIONAL if frame.unidirectional else 0
                )
                payload = (
                    _stream_id(frame.stream_id)
                    + _stream_id(frame.associated_to)
                    + bytes(((frame.priority & 0x7) << 5, frame.slot & 0xFF))
                    + self._headers.compress(frame.headers)
                )
                return _control(SYN_STREAM, flags, payload)
            case SynReply(stream_id, headers, fin):
                payload = _stream_id(stream_id) + self._headers.compress(headers)
                return _control(SYN_REPLY, FLAG_FIN if fin else 0, payload)
            case HeadersFrame(stream_id, headers, fin):
                payload = _stream_id(stream_id) + self._headers.compress(headers)
                return _control(HEADERS, FLAG_FIN if fin else 0, payload)
            case RstStream(stream_id, status):
                return _control(RST_STREAM, 0, _stream_id(stream_id) + struct.pack(">I", status))
            case Settings(entries, clear):
                payload = struct.pack(">I", len(entries)) + b"".join(
                    struct.pack(">II", (e.flags & 0xFF) << 24 | (e.id & 0xFFFFFF), e.value)
                    for e in entries
                )
                return _control(SETTINGS, FLAG_CLEAR_SETTINGS if clear else 0, payload)
            case Ping(ping_id):
                return _control(PING, 0, struct.pack(">I", ping_id))
            case GoAway(last, status):
                return _control(GOAWAY, 0, _stream_id(last) + struct.pack(">I", status))
            case WindowUpdate(stream_id, delta):
                return _control(WINDOW_UPDATE, 0, _stream_id(stream_id) + _stream_id(delta))
        raise TypeError(f"not a SPDY frame: {frame!r}")


class FrameDecoder:
    """Bytes to frames, with the session's incoming header decompression: :meth:`feed` what
    arrives, then iterate for the frames it completes (a frame split across reads waits for
    the rest). Raises :class:`SpdyProtocolError` at a frame SPDY/3 does not allow; the
    frames before it have been yielded."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._headers = HeaderDecompressor()

    def feed(self, data: bytes) -> None:
        self._buffer += data

    def __iter__(self) -> Iterator[SpdyFrame]:
        while len(self._buffer) >= 8:
            first, second = struct.unpack_from(">II", self._buffer)
            flags, length = second >> 24, second & _MAX_LENGTH
            if len(self._buffer) < 8 + length:
                return
            payload = bytes(self._buffer[8 : 8 + length])
            del self._buffer[: 8 + length]
            if first & 0x80000000:
                frame = self._control((first >> 16) & 0x7FFF, first & 0xFFFF, flags, payload)
            else:
                frame = self._data(first & MAX_ID, flags, payload)
            if frame is not None:
                yield frame

    @staticmethod
    def _data(stream_id: int, flags: int, payload: bytes) -> Data:
        if stream_id == 0:
            raise SpdyProtocolError("a data frame on stream 0")
        return Data(stream_id, payload, fin=bool(flags & FLAG_FIN))

    def _control(self, version: int, kind: int, flags: int, payload: bytes) -> SpdyFrame | None:
        if version != VERSION:
            raise SpdyProtocolError(f"SPDY version {version}: this session speaks {VERSION}")

        def words(count: int) -> tuple[int, ...]:
            if len(payload) < 4 * count:
                raise SpdyProtocolError(f"a control frame of type {kind} is too short")
            return struct.unpack_from(f">{count}I", payload)

        def exactly(size: int) -> None:
            if len(payload) != size:
                raise SpdyProtocolError(f"a control frame of type {kind} is not {size} bytes")

        fin = bool(flags & FLAG_FIN)
        if kind == SYN_STREAM:
            if len(payload) < 10:
                raise SpdyProtocolError("a SYN_STREAM frame is too short")
            stream_id, associated = (w & MAX_ID for w in words(2))
            headers = self._headers.decompress(payload[10:])
            if stream_id == 0:
                raise SpdyProtocolError("a SYN_STREAM for stream 0")
            return SynStream(
                stream_id,
                headers,
                associated_to=associated,
                priority=payload[8] >> 5,
                slot=payload[9],
                fin=fin,
                unidirectional=bool(flags & FLAG_UNIDIRECTIONAL),
            )
        if kind in (SYN_REPLY, HEADERS):
            stream_id = words(1)[0] & MAX_ID
            headers = self._headers.decompress(payload[4:])
            if stream_id == 0:
                raise SpdyProtocolError(f"a control frame of type {kind} for stream 0")
            if kind == SYN_REPLY:
                return SynReply(stream_id, headers, fin=fin)
            return HeadersFrame(stream_id, headers, fin=fin)
        if kind == RST_STREAM:
            exactly(8)
            stream_id, status = words(2)
            if stream_id & MAX_ID == 0 or status == 0:
                raise SpdyProtocolError("a RST_STREAM for stream 0 or with status 0")
            return RstStream(stream_id & MAX_ID, status)
        if kind == SETTINGS:
            (count,) = words(1)
            exactly(4 + 8 * count)
            values = struct.unpack_from(f">{2 * count}I", payload, 4)
            entries = tuple(
                Setting(word & 0xFFFFFF, value, flags=word >> 24)
                for word, value in zip(values[::2], values[1::2], strict=True)
            )
            return Settings(entries, clear=bool(flags & FLAG_CLEAR_SETTINGS))
        if kind == PING:
            exactly(4)
            return Ping(words(1)[0])
        if kind == GOAWAY:
            exactly(8)
            last, status = words(2)
            return GoAway(last & MAX_ID, status)
        if kind == WINDOW_UPDATE:
            exactly(8)
            stream_id, delta = (w & MAX_ID for w in words(2))
            return WindowUpdate(stream_id, delta)
        return None  # NOOP, CREDENTIAL and unknown types are ignored (§2.2.1)
