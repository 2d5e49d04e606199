"""Errors raised by the log.

::

    LogError                      base of every error in this package
    ├── EncodingError             a value has no canonical form (bad input; nothing appended)
    ├── CorruptLogError           bytes on disk fail framing, checksum, hash or chain checks
    ├── LogLockedError            another process holds the log directory
    ├── LogClosedError            the store was closed (or is closing) when the call was made
    ├── LogUnavailableError       an append could not be made durable; nothing was appended
    │   └── LogFailedError        fsync failed: durability is unknown, the store must be reopened
    ├── CommittedTruncationError  a truncation would remove a committed entry
    └── IndexOutOfRangeError      a read asked for an index the log does not hold
"""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "CommittedTruncationError",
    "CorruptLogError",
    "EncodingError",
    "IndexOutOfRangeError",
    "LogClosedError",
    "LogError",
    "LogFailedError",
    "LogLockedError",
    "LogUnavailableError",
]


class LogError(Exception):
    """Base class of every error raised by :mod:`engenho.log`."""


class EncodingError(LogError, ValueError):
    """Raised when a command or JSON value cannot be put in canonical form.

    The value came from outside (a request body); nothing reaches the log.
    """


class CorruptLogError(LogError):
    """Raised when stored bytes fail a framing, checksum, hash or chain check.

    Names the first bad entry (``index``, the index the bytes should hold), the segment file
    and the byte offset of the record, and the reason. Never repaired silently.
    """

    def __init__(self, reason: str, *, index: int, segment: Path | None, offset: int | None):
        self.reason = reason
        self.index = index
        self.segment = segment
        self.offset = offset
        where = ""
        if segment is not None:
            where = f" in {segment.name}" + (f" at byte {offset}" if offset is not None else "")
        super().__init__(f"log entry {index}{where}: {reason}")


class LogLockedError(LogError):
    """Raised by ``open`` when another process holds the log directory's lock."""


class LogClosedError(LogError):
    """Raised by calls made on a store that is closed or closing."""


class LogUnavailableError(LogError):
    """Raised when an append could not be made durable (for example, the disk is full).

    The batch was rolled back: none of its entries exist and the store stays usable.
    """


class LogFailedError(LogUnavailableError):
    """Raised when fsync failed: what reached the disk is unknown.

    The store refuses all further writes; reopening it re-reads the disk and recovers.
    """


class CommittedTruncationError(LogError):
    """Raised when a truncation would remove an entry at or below the commit index."""


class IndexOutOfRangeError(LogError, IndexError):
    """Raised when a read asks for an index the log does not hold."""
