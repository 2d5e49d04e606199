"""The persisted commit index: a small file of two alternating, checksummed slots.

Raft does not need the commit index to be durable for safety; engenho persists it so that a
restart knows which entries were already acknowledged (damage at or below it is never treated
as a torn tail) and so that ``audit verify`` can tell a log cut short from a complete one.
Writing the slot the last write did not use means a torn write leaves the other slot intact.
"""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

__all__ = ["CommitState", "read_commit_index"]

_MAGIC = b"ENGNCMT\x01"
_SLOT = struct.Struct(">8sQQI4x")  # magic, sequence, commit index, crc32 of the first 24 bytes


def _decode(raw: bytes) -> tuple[int, int] | None:
    if len(raw) < _SLOT.size:
        return None
    magic, seq, commit, crc = _SLOT.unpack_from(raw)
    if magic != _MAGIC or zlib.crc32(raw[:24]) != crc:
        return None
    return seq, commit


def _read(path: Path) -> tuple[int, int]:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return 0, 0
    slots = [_decode(raw[i * _SLOT.size : (i + 1) * _SLOT.size]) for i in range(2)]
    return max((s for s in slots if s is not None), default=(0, 0))


def read_commit_index(path: Path) -> int:
    """The newest intact slot's commit index; 0 when the file is missing or both slots are bad."""
    return _read(path)[1]


class CommitState:
    """Owns the commit file of one log directory."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._seq, self.persisted = _read(path)
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)

    def write(self, commit_index: int) -> None:
        """Write ``commit_index`` to the next slot and fdatasync (blocking; call off the loop)."""
        self._seq += 1
        head = _SLOT.pack(_MAGIC, self._seq, commit_index, 0)[:24]
        slot = head + struct.pack(">I", zlib.crc32(head)) + bytes(4)
        os.pwrite(self._fd, slot, (self._seq % 2) * _SLOT.size)
        os.fdatasync(self._fd)
        self.persisted = commit_index

    def close(self) -> None:
        os.close(self._fd)
