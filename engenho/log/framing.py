"""Byte framing of segment files: segment headers, record frames and index sidecars.

Layouts are specified in ``docs/log-format.md``; this module is the only code that knows them.
Frames carry a CRC-32 so that a torn write is told apart from tampering: a frame whose checksum
holds but whose entry hash does not was rewritten on purpose.
"""

from __future__ import annotations

import enum
import struct
import zlib
from collections.abc import Iterator
from typing import BinaryIO

from attrs import frozen

__all__ = [
    "FRAME_HEADER",
    "FRAME_MAGIC",
    "INDEX_MAGIC",
    "MAX_PAYLOAD",
    "SEGMENT_HEADER",
    "SEGMENT_MAGIC",
    "FrameDamage",
    "FrameProblem",
    "FrameScanner",
    "SegmentHeader",
    "SegmentIndex",
    "decode_index",
    "decode_segment_header",
    "encode_frame",
    "encode_index",
    "encode_segment_header",
    "find_valid_frame",
    "segment_name",
]

FRAME_MAGIC = b"\xfeENG"
FRAME_HEADER = struct.Struct(">4sII")  # magic, payload length, crc32(length || payload)
MAX_PAYLOAD = 16 * 1024 * 1024

SEGMENT_MAGIC = b"ENGNSEG\x01"
SEGMENT_FORMAT = 1
SEGMENT_HEADER = struct.Struct(">8sHHQ32sI")  # magic, format, reserved, first index, prev, crc

INDEX_MAGIC = b"ENGNIDX\x01"
_INDEX_HEAD = struct.Struct(">8sQQQ32s")  # magic, first index, count, segment bytes, last hash
_CRC = struct.Struct(">I")


def segment_name(first_index: int) -> str:
    """Segment files are named by their first index, zero-padded so names sort by index."""
    return f"{first_index:020d}.seg"


def encode_frame(payload: bytes) -> bytes:
    length = len(payload)
    crc = zlib.crc32(payload, zlib.crc32(length.to_bytes(4, "big")))
    return FRAME_HEADER.pack(FRAME_MAGIC, length, crc) + payload


@frozen
class SegmentHeader:
    first_index: int
    prev_hash: bytes


def encode_segment_header(header: SegmentHeader) -> bytes:
    head = SEGMENT_HEADER.pack(
        SEGMENT_MAGIC, SEGMENT_FORMAT, 0, header.first_index, header.prev_hash, 0
    )[:-4]
    return head + _CRC.pack(zlib.crc32(head))


def decode_segment_header(data: bytes) -> SegmentHeader | None:
    """Decode a segment header, or ``None`` if it is short, foreign or fails its checksum."""
    if len(data) < SEGMENT_HEADER.size:
        return None
    magic, fmt, _reserved, first, prev, crc = SEGMENT_HEADER.unpack_from(data)
    if magic != SEGMENT_MAGIC or fmt != SEGMENT_FORMAT:
        return None
    if zlib.crc32(data[: SEGMENT_HEADER.size - 4]) != crc:
        return None
    return SegmentHeader(first_index=first, prev_hash=prev)


@frozen
class SegmentIndex:
    """The sidecar written when a segment is sealed: where each record starts."""

    first_index: int
    segment_bytes: int
    last_hash: bytes
    offsets: tuple[int, ...]


def encode_index(index: SegmentIndex) -> bytes:
    body = _INDEX_HEAD.pack(
        INDEX_MAGIC, index.first_index, len(index.offsets), index.segment_bytes, index.last_hash
    ) + struct.pack(f">{len(index.offsets)}Q", *index.offsets)
    return body + _CRC.pack(zlib.crc32(body))


def decode_index(data: bytes) -> SegmentIndex | None:
    """Decode an index sidecar, or ``None`` when it is damaged (it is then rebuilt)."""
    if len(data) < _INDEX_HEAD.size + 4:
        return None
    magic, first, count, size, last = _INDEX_HEAD.unpack_from(data)
    if magic != INDEX_MAGIC or len(data) != _INDEX_HEAD.size + 8 * count + 4:
        return None
    if zlib.crc32(data[:-4]) != _CRC.unpack_from(data, len(data) - 4)[0]:
        return None
    offsets = struct.unpack_from(f">{count}Q", data, _INDEX_HEAD.size)
    return SegmentIndex(first_index=first, segment_bytes=size, last_hash=last, offsets=offsets)


class FrameProblem(enum.Enum):
    """Why a frame could not be read."""

    INCOMPLETE = "record runs past the end of the file"
    BAD_MAGIC = "record does not start with the frame marker"
    BAD_LENGTH = "record length is out of range"
    BAD_CHECKSUM = "record checksum mismatch"


def _check_frame(buf: memoryview, pos: int) -> FrameProblem | int:
    """Check the frame at ``pos``; return its payload length or the problem."""
    if pos + FRAME_HEADER.size > len(buf):
        return FrameProblem.INCOMPLETE
    magic, length, crc = FRAME_HEADER.unpack_from(buf, pos)
    if magic != FRAME_MAGIC:
        return FrameProblem.BAD_MAGIC
    if length > MAX_PAYLOAD:
        return FrameProblem.BAD_LENGTH
    start = pos + FRAME_HEADER.size
    if start + length > len(buf):
        return FrameProblem.INCOMPLETE
    if zlib.crc32(buf[start : start + length], zlib.crc32(buf[pos + 4 : pos + 8])) != crc:
        return FrameProblem.BAD_CHECKSUM
    return int(length)


def find_valid_frame(buf: bytes | memoryview, start: int) -> int | None:
    """Offset of the first complete frame with a valid checksum at or after ``start``."""
    view = memoryview(buf)
    data = bytes(view) if isinstance(buf, memoryview) else buf
    pos = data.find(FRAME_MAGIC, start)
    while pos != -1:
        if isinstance(_check_frame(view, pos), int):
            return pos
        pos = data.find(FRAME_MAGIC, pos + 1)
    return None


@frozen
class FrameDamage:
    """The first unreadable frame of a scan, and whether a readable frame follows it."""

    offset: int
    problem: FrameProblem
    later_frame_offset: int | None

    @property
    def is_torn_tail(self) -> bool:
        """A crash mid-write leaves damage with nothing readable after it (log-format.md)."""
        return self.later_frame_offset is None


class FrameScanner:
    """Stream the frames of one segment file from ``start`` to its end.

    Iterating yields ``(offset, payload)`` for every readable frame, in order, and stops at the
    end of the file or at the first unreadable frame; ``damage`` then describes that frame.
    Reads in large chunks so that verification runs at disk speed.
    """

    def __init__(self, file: BinaryIO, start: int, *, chunk_size: int = 8 * 1024 * 1024) -> None:
        self._file = file
        self._start = start
        self._chunk = chunk_size
        self.damage: FrameDamage | None = None
        self.end_offset = start
        """Offset just past the last readable frame."""

    def __iter__(self) -> Iterator[tuple[int, memoryview]]:
        file = self._file
        file.seek(self._start)
        base = self._start  # file offset of buf[0]
        buf = memoryview(file.read(self._chunk))
        pos = 0
        eof = len(buf) < self._chunk
        while True:
            if pos == len(buf) and eof:
                return
            checked = _check_frame(buf, pos)
            if isinstance(checked, int):
                end = pos + FRAME_HEADER.size + checked
                yield base + pos, buf[pos + FRAME_HEADER.size : end]
                pos = end
                self.end_offset = base + pos
                continue
            if checked is FrameProblem.INCOMPLETE and not eof:
                # The frame straddles the chunk boundary: keep the remainder and read more.
                rest = bytes(buf[pos:])
                wanted = max(self._chunk, self._frame_len(rest))
                more = file.read(wanted)
                eof = len(more) < wanted
                base += pos
                buf = memoryview(rest + more)
                pos = 0
                continue
            self.damage = FrameDamage(base + pos, checked, self._later_frame(base + pos))
            return

    @staticmethod
    def _frame_len(rest: bytes) -> int:
        if len(rest) >= FRAME_HEADER.size:
            _, length, _ = FRAME_HEADER.unpack_from(rest)
            return int(min(length, MAX_PAYLOAD)) + FRAME_HEADER.size
        return FRAME_HEADER.size

    def _later_frame(self, damaged_at: int) -> int | None:
        # Damage is rare, so reading the rest of the file whole is fine here.
        self._file.seek(damaged_at)
        rest = self._file.read()
        found = find_valid_frame(rest, 1)
        return None if found is None else damaged_at + found
