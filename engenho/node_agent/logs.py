"""Container log files in the CRI format, written with rotation and read as the kubelet does.

One record per line::

    2016-10-06T00:17:09.669794202Z stdout F hello world
    <RFC3339Nano, UTC, 9 digits> <stdout|stderr> <F|P> <content>

``F`` ends a line; ``P`` is a part of a longer line that continues in the next record of the
same stream (a line longer than 16 KiB, or output that ended without a newline), as
containerd's ``cio`` writes them. The writer keeps the live file at ``path`` and rotates it to
``path.1`` ... ``path.<max_files-1>`` when it would grow past ``max_bytes``.

The reader serves ``/containerLogs``: ``tailLines`` (records at the end of the live file, as
upstream counts them), ``sinceTime``/``sinceSeconds``, ``timestamps`` (each line prefixed with
its time in Go's RFC3339Nano, trailing zeros trimmed), ``limitBytes`` and ``follow`` (reading
on through rotations until the container is no longer running). ``previous`` is a different
file: the agent passes the previous instance's path.

This module imports only the standard library, because the OCI runtime's per-container
monitor process (``runtimes/oci_shim``) writes with it and must start fast.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import itertools
import os
import re
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

__all__ = [
    "MAX_LINE_BYTES",
    "STDERR",
    "STDOUT",
    "CriLogWriter",
    "LogOptions",
    "LogRecord",
    "encode_record",
    "format_timestamp",
    "parse_record",
    "parse_timestamp",
    "read_log",
    "rotated_paths",
]

STDOUT = "stdout"
STDERR = "stderr"
MAX_LINE_BYTES = 16 * 1024
"""containerd's ``maxContainerLogLineSize``: longer lines are split into ``P`` records."""
_FULL = b"F"
_PARTIAL = b"P"
_READ_CHUNK = 64 * 1024
_TIMESTAMP = re.compile(
    rb"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$"
)


# The records are plain dataclasses rather than attrs classes: the monitor process imports
# this module and keeps its start-up to the standard library.
@dataclass(frozen=True, slots=True)
class LogRecord:
    timestamp_ns: int
    """Nanoseconds since the epoch (UTC)."""
    stream: str
    partial: bool
    content: bytes


def format_timestamp(ns: int, *, trim: bool = False) -> str:
    """RFC3339 in UTC with nanoseconds: fixed 9 digits (the file format, so that records sort
    as text), or Go's ``time.RFC3339Nano`` with trailing zeros trimmed (``trim``; what the
    kubelet prints for ``timestamps=true``)."""
    seconds, fraction = divmod(ns, 1_000_000_000)
    base = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    digits = f"{fraction:09d}"
    if trim:
        digits = digits.rstrip("0")
        return f"{base}.{digits}Z" if digits else f"{base}Z"
    return f"{base}.{digits}Z"


def parse_timestamp(text: str | bytes) -> int:
    """Nanoseconds since the epoch of an RFC3339 timestamp (any fraction, any offset)."""
    raw = text.encode() if isinstance(text, str) else text
    match = _TIMESTAMP.match(raw)
    if match is None:
        raise ValueError(f"not an RFC3339 timestamp: {raw!r}")
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    fraction = (match.group(7) or b"").ljust(9, b"0")
    zone = match.group(8)
    moment = datetime(year, month, day, hour, minute, second, tzinfo=UTC)
    seconds = int(moment.timestamp())
    if zone != b"Z":
        sign = 1 if zone[:1] == b"+" else -1
        seconds -= sign * (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60)
    return seconds * 1_000_000_000 + int(fraction)


def encode_record(record: LogRecord) -> bytes:
    tag = _PARTIAL if record.partial else _FULL
    stamp = format_timestamp(record.timestamp_ns).encode()
    return b"%s %s %s %s\n" % (stamp, record.stream.encode(), tag, record.content)


def parse_record(line: bytes) -> LogRecord:
    """One line of a CRI log file (without or with its newline). Raises ValueError."""
    if line.endswith(b"\n"):
        line = line[:-1]
    stamp, sep1, rest = line.partition(b" ")
    stream, sep2, rest = rest.partition(b" ")
    tag, sep3, content = rest.partition(b" ")
    if not (sep1 and sep2) or stream not in (b"stdout", b"stderr"):
        raise ValueError(f"not a CRI log record: {line[:80]!r}")
    if tag not in (_FULL, _PARTIAL):
        # An old CRI record without a tag: everything after the stream is content.
        return LogRecord(parse_timestamp(stamp), stream.decode(), False, rest)
    if not sep3:
        content = b""
    return LogRecord(parse_timestamp(stamp), stream.decode(), tag == _PARTIAL, content)


def rotated_paths(path: Path, max_files: int) -> list[Path]:
    """The rotated files of ``path``, oldest first (``path.N`` ... ``path.1``)."""
    return [path.with_name(f"{path.name}.{n}") for n in range(max_files - 1, 0, -1)]


class CriLogWriter:
    """Writes a container's output to ``path`` in the CRI format, rotating by size.

    ``write(stream, data)`` takes raw bytes as they come from a pipe: complete lines become
    ``F`` records, a line longer than ``max_line`` is cut into ``P`` records, and an
    unterminated tail waits for the rest of its line (or for ``close``, which writes it as
    ``P``, as containerd does at end of stream). Thread-safe: the OCI monitor writes stdout
    and stderr from two threads.
    """

    def __init__(
        self,
        path: Path,
        *,
        max_bytes: int = 10 * 1024 * 1024,
        max_files: int = 5,
        max_line: int = MAX_LINE_BYTES,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        if max_files < 1:
            raise ValueError("max_files must be at least 1")
        self.path = path
        self._max_bytes = max_bytes
        self._max_files = max_files
        self._max_line = max_line
        self._clock = clock
        self._pending: dict[str, bytearray] = {STDOUT: bytearray(), STDERR: bytearray()}
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file: BinaryIO = path.open("ab")
        self._size = self._file.tell()

    def write(self, stream: str, data: bytes) -> None:
        if stream not in self._pending:
            raise ValueError(f"unknown stream {stream!r}")
        with self._lock:
            pending = self._pending[stream]
            pending += data
            records: list[bytes] = []
            now = self._clock()
            while True:
                newline = pending.find(b"\n")
                if newline == -1 or newline > self._max_line:
                    if len(pending) > self._max_line:
                        records.append(
                            self._encode(now, stream, True, bytes(pending[: self._max_line]))
                        )
                        del pending[: self._max_line]
                        continue
                    break
                records.append(self._encode(now, stream, False, bytes(pending[:newline])))
                del pending[: newline + 1]
            self._append(records)

    def write_line(self, stream: str, line: str) -> None:
        """One complete line (the fake runtime's way to log)."""
        self.write(stream, line.encode() + b"\n")

    def flush(self) -> None:
        with self._lock:
            self._file.flush()

    def close(self) -> None:
        """Write unterminated output as ``P`` records and close the file."""
        with self._lock:
            if self._file.closed:
                return
            now = self._clock()
            records = [
                self._encode(now, stream, True, bytes(pending))
                for stream, pending in self._pending.items()
                if pending
            ]
            for pending in self._pending.values():
                pending.clear()
            self._append(records)
            self._file.close()

    def _encode(self, now: int, stream: str, partial: bool, content: bytes) -> bytes:
        return encode_record(LogRecord(now, stream, partial, content))

    def _append(self, records: list[bytes]) -> None:
        for record in records:
            if self._size and self._size + len(record) > self._max_bytes:
                self._rotate()
            self._file.write(record)
            self._size += len(record)
        if records:
            self._file.flush()

    def _rotate(self) -> None:
        self._file.close()
        if self._max_files == 1:
            self.path.unlink(missing_ok=True)
        else:
            olds = rotated_paths(self.path, self._max_files)
            with contextlib.suppress(FileNotFoundError):
                olds[0].unlink()
            for older, newer in itertools.pairwise(olds):
                with contextlib.suppress(FileNotFoundError):
                    os.replace(newer, older)
            os.replace(self.path, olds[-1])
        self._file = self.path.open("ab")
        self._size = 0


@dataclass(frozen=True, slots=True)
class LogOptions:
    """The kubelet's ``/containerLogs`` query, decoded."""

    tail_lines: int | None = None
    since_ns: int | None = None
    """Skip records older than this (``sinceTime``, or now minus ``sinceSeconds``)."""
    timestamps: bool = False
    limit_bytes: int | None = None
    follow: bool = False
    stream: str | None = None
    """Only ``stdout`` or ``stderr`` (``stream`` of the PodLogOptions); None for both."""


StillRunning = Callable[[], bool | Awaitable[bool]]


async def read_log(
    path: Path,
    options: LogOptions = LogOptions(),
    *,
    still_running: StillRunning | None = None,
    poll_interval: float = 0.1,
) -> AsyncIterator[bytes]:
    """The log at ``path`` as the kubelet serves it, in chunks of whole output lines.

    With ``follow`` it keeps reading, through rotations, while ``still_running()`` says the
    container runs (without that callable, until the caller stops iterating). A missing file
    reads as empty.
    """
    state = _Reader(path, options)
    try:
        state.open_at_start()
        while True:
            chunk = state.read_available()
            if chunk:
                yield chunk
                if state.limit_reached:
                    return
                continue
            if not options.follow:
                return
            if state.rotated():
                state.reopen()
                continue
            if still_running is not None:
                running = still_running()
                if inspect.isawaitable(running):
                    running = await running
                if not running:
                    # One last read: output written between the read and the check, even
                    # if the file was rotated meanwhile.
                    while True:
                        while chunk := state.read_available():
                            yield chunk
                            if state.done():
                                return
                        if not state.rotated():
                            return
                        state.reopen()
            await asyncio.sleep(poll_interval)
    finally:
        state.close()


class _Reader:
    def __init__(self, path: Path, options: LogOptions) -> None:
        self.path = path
        self.options = options
        self.file: BinaryIO | None = None
        self.inode: int | None = None
        self.buffer = b""
        self.pending_output = b""
        self.at_line_start: dict[str, bool] = {STDOUT: True, STDERR: True}
        self.sent = 0
        self.limit_reached = False

    def open_at_start(self) -> None:
        try:
            self.file = self.path.open("rb")
        except FileNotFoundError:
            return
        self.inode = os.fstat(self.file.fileno()).st_ino
        if self.options.tail_lines is not None:
            self.file.seek(_tail_offset(self.file, self.options.tail_lines))

    def rotated(self) -> bool:
        """Whether ``path`` is now another file (rotated, or created since we looked)."""
        try:
            inode = self.path.stat().st_ino
        except FileNotFoundError:
            return False
        return inode != self.inode

    def reopen(self) -> None:
        # Whatever was appended to the old file before its rename is read first; a record
        # the writer never finished is dropped with it.
        self.pending_output = self.read_available() if self.file is not None else b""
        if self.file is not None:
            self.file.close()
        self.file = None
        self.buffer = b""
        try:
            self.file = self.path.open("rb")
        except FileNotFoundError:
            self.inode = None
            return
        self.inode = os.fstat(self.file.fileno()).st_ino

    def read_available(self) -> bytes:
        """Rendered output of the complete records written so far (up to a chunk)."""
        out = bytearray(self.pending_output)
        self.pending_output = b""
        while self.file is not None and not self.limit_reached and len(out) < _READ_CHUNK:
            data = self.file.read(_READ_CHUNK)
            if not data:
                break
            *lines, self.buffer = (self.buffer + data).split(b"\n")
            for line in lines:
                out += self._render(line)
                if self.done():
                    break
        return bytes(out)

    def done(self) -> bool:
        """``limitBytes`` is reached: nothing more is to be sent."""
        return self.limit_reached

    def _render(self, line: bytes) -> bytes:
        try:
            record = parse_record(line)
        except ValueError:
            return b""  # upstream skips what it cannot parse
        options = self.options
        if options.stream is not None and record.stream != options.stream:
            return b""
        if options.since_ns is not None and record.timestamp_ns < options.since_ns:
            return b""
        piece = b""
        if options.timestamps and self.at_line_start[record.stream]:
            piece = format_timestamp(record.timestamp_ns, trim=True).encode() + b" "
        piece += record.content
        if not record.partial:
            piece += b"\n"
        self.at_line_start[record.stream] = not record.partial
        if options.limit_bytes is not None:
            room = options.limit_bytes - self.sent
            if len(piece) >= room:
                piece = piece[: max(room, 0)]
                self.limit_reached = True
        self.sent += len(piece)
        return piece

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None


def _tail_offset(file: BinaryIO, lines: int) -> int:
    """The offset where the last ``lines`` records of the file start (upstream's
    ``findTailLineStartIndex``: a trailing newline does not start an empty record)."""
    end = file.seek(0, os.SEEK_END)
    if lines <= 0:
        return end
    position = end
    count = 0
    # Skip the newline that ends the last record.
    scan_end = end
    while position > 0:
        start = max(0, position - _READ_CHUNK)
        file.seek(start)
        block = file.read(position - start)
        index = len(block)
        while True:
            index = block.rfind(b"\n", 0, index)
            if index == -1:
                break
            absolute = start + index
            if absolute == scan_end - 1:
                continue
            count += 1
            if count == lines:
                return absolute + 1
        position = start
    return 0
