"""Segment files: one file of framed entries per range of indices.

A segment starts with a header naming its first index and the hash of the entry before it, so
segments chain to each other as entries do. The last segment is the active one; the others are
*sealed* and have an index sidecar (``.idx``) listing where each record starts. Sidecars are
derived data: a missing or damaged one is rebuilt by scanning the segment.

All functions here block on file I/O; the store calls them from worker threads.
"""

from __future__ import annotations

import contextlib
import os
from array import array
from collections.abc import Callable
from pathlib import Path

from blake3 import blake3

from engenho.log.canonical import parse_canonical_json
from engenho.log.command import decode_command
from engenho.log.entry import ENTRY_TAG, HASH_SIZE, PAYLOAD_HEADER
from engenho.log.errors import CorruptLogError, EncodingError
from engenho.log.framing import (
    SEGMENT_HEADER,
    FrameDamage,
    FrameScanner,
    SegmentHeader,
    SegmentIndex,
    decode_index,
    decode_segment_header,
    encode_index,
    encode_segment_header,
    segment_name,
)

__all__ = [
    "Segment",
    "WalkResult",
    "fsync_directory",
    "list_segments",
    "read_term",
    "walk_segment",
]


def fsync_directory(directory: Path) -> None:
    """Make a file creation, rename or removal in ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def list_segments(directory: Path) -> list[tuple[int, Path]]:
    """Segment files of a log directory as ``(first index from the name, path)``, in order."""
    found = []
    for path in directory.glob("*.seg"):
        stem = path.stem
        if len(stem) == 20 and stem.isdigit():
            found.append((int(stem), path))
    return sorted(found)


class WalkResult:
    """What :func:`walk_segment` learnt about one segment."""

    def __init__(self, header: SegmentHeader) -> None:
        self.header = header
        self.offsets = array("Q")
        self.last_hash = header.prev_hash
        self.last_term = 0
        self.end_offset = SEGMENT_HEADER.size
        self.damage: FrameDamage | None = None

    @property
    def next_index(self) -> int:
        return self.header.first_index + len(self.offsets)


def walk_segment(
    path: Path,
    *,
    expected_first: int,
    expected_prev: bytes,
    prev_term: int = 0,
    deep: bool = False,
    on_bytes: Callable[[int], None] | None = None,
) -> WalkResult:
    """Read a whole segment and check every record: checksum, entry hash, index and chain.

    Raises :class:`CorruptLogError` on the first record that is readable but wrong (altered,
    out of place or unchained) and on a bad header. Stops quietly at the first *unreadable*
    record and reports it in ``damage``: whether that is a torn tail or corruption is the
    caller's decision. ``deep`` also decodes every command and checks its bytes are canonical.
    """
    with path.open("rb") as file:
        header = decode_segment_header(file.read(SEGMENT_HEADER.size))
        if header is None:
            raise CorruptLogError(
                "segment header is missing or damaged", index=expected_first, segment=path, offset=0
            )
        if header.first_index != expected_first:
            raise CorruptLogError(
                f"segment starts at index {header.first_index}, expected {expected_first}",
                index=expected_first,
                segment=path,
                offset=0,
            )
        if header.prev_hash != expected_prev:
            raise CorruptLogError(
                "segment header's prev_hash does not match the previous entry's hash",
                index=expected_first,
                segment=path,
                offset=0,
            )
        result = WalkResult(header)
        expected = expected_first
        prev = expected_prev
        term = prev_term
        unpack = PAYLOAD_HEADER.unpack_from
        head_size = PAYLOAD_HEADER.size
        reported = SEGMENT_HEADER.size
        scanner = FrameScanner(file, SEGMENT_HEADER.size)
        for offset, payload in scanner:
            size = len(payload)
            problem = None
            if size < head_size + HASH_SIZE:
                problem = "payload is too short to hold an entry"
            else:
                p_prev, p_index, p_term, p_schema, p_len = unpack(payload)
                end = head_size + p_len
                hasher = blake3(ENTRY_TAG)
                hasher.update(payload[:end])
                if end + HASH_SIZE != size:
                    problem = "payload lengths are inconsistent"
                elif hasher.digest() != payload[end:]:
                    problem = "entry hash mismatch: the record was altered"
                elif p_index != expected:
                    problem = f"record holds index {p_index} where {expected} was expected"
                elif p_prev != prev:
                    problem = f"prev_hash does not match the hash of entry {expected - 1}"
                elif p_term < term:
                    problem = f"term {p_term} is lower than the previous entry's term {term}"
                elif deep:
                    problem = _deep_problem(bytes(payload[head_size:end]), p_schema)
            if problem is not None:
                raise CorruptLogError(problem, index=expected, segment=path, offset=offset)
            result.offsets.append(offset)
            prev = bytes(payload[end:])
            term = p_term
            expected += 1
            if on_bytes is not None and offset - reported >= 1 << 20:
                on_bytes(offset - reported)
                reported = offset
        result.last_hash = prev
        result.last_term = term
        result.end_offset = scanner.end_offset
        result.damage = scanner.damage
        if on_bytes is not None:
            on_bytes(scanner.end_offset - reported)
        return result


def _deep_problem(command_bytes: bytes, schema_version: int) -> str | None:
    try:
        parse_canonical_json(command_bytes)
        decode_command(command_bytes, schema_version)
    except EncodingError as exc:
        return f"command does not decode: {exc}"
    return None


class Segment:
    """In-memory state of one segment: where its records are and how it ends."""

    def __init__(
        self,
        path: Path,
        header: SegmentHeader,
        offsets: array[int],
        size: int,
        last_hash: bytes,
    ) -> None:
        self.path = path
        self.first_index = header.first_index
        self.prev_hash = header.prev_hash
        self.offsets = offsets
        self.size = size
        self.last_hash = last_hash

    @property
    def count(self) -> int:
        return len(self.offsets)

    @property
    def last_index(self) -> int:
        return self.first_index + len(self.offsets) - 1

    def span(self, start: int, end: int) -> tuple[int, int]:
        """Byte range holding the records ``start..end`` (inclusive)."""
        first = self.offsets[start - self.first_index]
        stop = self.offsets[end - self.first_index + 1] if end < self.last_index else self.size
        return first, stop

    def sidecar(self) -> SegmentIndex:
        return SegmentIndex(
            first_index=self.first_index,
            segment_bytes=self.size,
            last_hash=self.last_hash,
            offsets=tuple(self.offsets),
        )

    @classmethod
    def create(cls, directory: Path, first_index: int, prev_hash: bytes) -> Segment:
        """Create an empty segment file and make it durable."""
        header = SegmentHeader(first_index=first_index, prev_hash=prev_hash)
        path = directory / segment_name(first_index)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            os.write(fd, encode_segment_header(header))
            os.fdatasync(fd)
        finally:
            os.close(fd)
        fsync_directory(directory)
        return cls(path, header, array("Q"), SEGMENT_HEADER.size, prev_hash)

    def write_sidecar(self) -> None:
        """Write the ``.idx`` sidecar of a sealed segment (atomically, by rename)."""
        data = encode_index(self.sidecar())
        target = self.path.with_suffix(".idx")
        tmp = target.with_suffix(".idx.tmp")
        tmp.write_bytes(data)
        with tmp.open("rb+") as file:
            os.fdatasync(file.fileno())
        tmp.replace(target)

    def remove_sidecar(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.with_suffix(".idx").unlink()

    @classmethod
    def load_sealed(
        cls, path: Path, *, expected_first: int, expected_prev: bytes, prev_term: int
    ) -> tuple[Segment, int]:
        """Load a sealed segment from its sidecar, or scan it when the sidecar is unusable.

        Returns the segment and the term of its last entry.
        """
        size = path.stat().st_size
        with path.open("rb") as file:
            header = decode_segment_header(file.read(SEGMENT_HEADER.size))
        try:
            sidecar = decode_index(path.with_suffix(".idx").read_bytes())
        except FileNotFoundError:
            sidecar = None
        if (
            header is not None
            and header.first_index == expected_first
            and header.prev_hash == expected_prev
            and sidecar is not None
            and sidecar.first_index == expected_first
            and sidecar.segment_bytes == size
            and sidecar.offsets
        ):
            segment = cls(path, header, array("Q", sidecar.offsets), size, sidecar.last_hash)
            return segment, read_term(path, sidecar.offsets[-1])
        walked = walk_segment(
            path, expected_first=expected_first, expected_prev=expected_prev, prev_term=prev_term
        )
        if walked.damage is not None or walked.end_offset != size:
            offset = walked.damage.offset if walked.damage else walked.end_offset
            raise CorruptLogError(
                walked.damage.problem.value
                if walked.damage
                else "trailing bytes after last record",
                index=walked.next_index,
                segment=path,
                offset=offset,
            )
        if not walked.offsets:
            raise CorruptLogError(
                "sealed segment holds no entries",
                index=expected_first,
                segment=path,
                offset=SEGMENT_HEADER.size,
            )
        segment = cls(path, walked.header, walked.offsets, size, walked.last_hash)
        segment.write_sidecar()
        return segment, walked.last_term


def read_term(path: Path, offset: int) -> int:
    """The term of the record framed at ``offset`` (read without checks: used for sidecars)."""
    with path.open("rb") as file:
        file.seek(offset + 12)  # frame header
        head = file.read(PAYLOAD_HEADER.size)
    return int(PAYLOAD_HEADER.unpack_from(head)[2])
