"""Entry: a command at a position in the log, bound to everything before it by a hash.

The byte layout of an entry's *payload* (``docs/log-format.md``, "Entry payload")::

    offset  size  field
    0       32    prev_hash        hash of entry index-1; 32 zero bytes for index 1
    32      8     index            u64 big-endian, 1-based, dense
    40      8     term             u64 big-endian
    48      2     schema_version   u16 big-endian (the command schema)
    50      4     command_length   u32 big-endian, C
    54      C     command          canonical JSON of the command
    54+C    32    hash             BLAKE3(ENTRY_TAG || payload[0 : 54+C])

so ``hash = BLAKE3(domain tag || prev_hash || canonical bytes)`` where the canonical bytes are
``index || term || schema_version || command_length || command``.
"""

from __future__ import annotations

import struct
from zlib import crc32

from attrs import field, frozen
from blake3 import blake3

from engenho.log.command import COMMAND_SCHEMA_VERSION, ResourceCommand, decode_command
from engenho.log.framing import FRAME_HEADER, FRAME_MAGIC, MAX_PAYLOAD

__all__ = [
    "ENTRY_TAG",
    "GENESIS_HASH",
    "HASH_SIZE",
    "MAX_COMMAND",
    "PAYLOAD_HEADER",
    "RECORD_OVERHEAD",
    "Entry",
    "PayloadFields",
    "entry_hash",
    "seal_payload",
    "seal_record",
    "split_payload",
]

ENTRY_TAG = b"engenho/log/entry/v1\x00"
"""Domain separation tag prefixed to every entry's hash input."""

HASH_SIZE = 32
GENESIS_HASH = bytes(HASH_SIZE)
PAYLOAD_HEADER = struct.Struct(">32sQQHI")
_MIN_PAYLOAD = PAYLOAD_HEADER.size + HASH_SIZE
RECORD_OVERHEAD = FRAME_HEADER.size + PAYLOAD_HEADER.size + HASH_SIZE
"""Bytes a record frame adds to its command: frame header, payload header and hash."""
MAX_COMMAND = MAX_PAYLOAD - PAYLOAD_HEADER.size - HASH_SIZE
"""The largest command a frame can hold: a longer frame would read back as damage."""
_LENGTH = struct.Struct(">I")


_TAGGED = blake3(ENTRY_TAG)


def entry_hash(hashed_part: bytes | memoryview) -> bytes:
    """BLAKE3 of the domain tag followed by ``payload[0 : 54 + C]``."""
    hasher = _TAGGED.copy()  # resumes after the tag instead of hashing it again
    hasher.update(hashed_part)
    return hasher.digest()


def seal_payload(
    prev_hash: bytes,
    index: int,
    term: int,
    command_bytes: bytes,
    schema_version: int = COMMAND_SCHEMA_VERSION,
) -> tuple[bytes, bytes]:
    """Lay out a payload and return ``(payload, hash)``."""
    hashed = (
        PAYLOAD_HEADER.pack(prev_hash, index, term, schema_version, len(command_bytes))
        + command_bytes
    )
    digest = entry_hash(hashed)
    return hashed + digest, digest


def seal_record(
    prev_hash: bytes,
    index: int,
    term: int,
    command_bytes: bytes,
    parts: list[bytes],
    schema_version: int = COMMAND_SCHEMA_VERSION,
) -> bytes:
    """Append an entry's whole record frame to ``parts``, in pieces; return the entry's hash.

    ``b"".join`` of the pieces is ``encode_frame(seal_payload(...)[0])``. This is the append
    path's form of the same bytes: the hash and the frame CRC are computed over the pieces in
    turn, so the command is copied once (when the batch is joined) instead of three times.
    """
    head = PAYLOAD_HEADER.pack(prev_hash, index, term, schema_version, len(command_bytes))
    hasher = _TAGGED.copy()
    hasher.update(head)
    hasher.update(command_bytes)
    digest = hasher.digest()
    length = PAYLOAD_HEADER.size + len(command_bytes) + HASH_SIZE
    crc = crc32(digest, crc32(command_bytes, crc32(head, crc32(_LENGTH.pack(length)))))
    parts += (FRAME_HEADER.pack(FRAME_MAGIC, length, crc), head, command_bytes, digest)
    return digest


@frozen
class PayloadFields:
    """The fields of a payload, split without decoding the command."""

    prev_hash: bytes
    index: int
    term: int
    schema_version: int
    command_bytes: bytes
    hash: bytes
    hash_ok: bool


def split_payload(payload: bytes | memoryview) -> PayloadFields | None:
    """Split a payload into its fields and check its own hash.

    Returns ``None`` when the layout is inconsistent (lengths do not add up). ``hash_ok`` tells
    whether the stored hash matches the recomputed one; chain links are the caller's to check.
    """
    if len(payload) < _MIN_PAYLOAD:
        return None
    prev, index, term, schema, length = PAYLOAD_HEADER.unpack_from(payload)
    end = PAYLOAD_HEADER.size + length
    if end + HASH_SIZE != len(payload):
        return None
    view = memoryview(payload)
    stored = bytes(view[end:])
    return PayloadFields(
        prev_hash=prev,
        index=index,
        term=term,
        schema_version=schema,
        command_bytes=bytes(view[PAYLOAD_HEADER.size : end]),
        hash=stored,
        hash_ok=entry_hash(view[:end]) == stored,
    )


@frozen
class Entry:
    """A committed or appended log entry with its decoded command."""

    index: int
    term: int
    prev_hash: bytes = field(repr=lambda b: b.hex()[:16])
    hash: bytes = field(repr=lambda b: b.hex()[:16])
    schema_version: int
    command: ResourceCommand
    command_bytes: bytes = field(eq=False, repr=False)

    @classmethod
    def from_fields(cls, fields: PayloadFields) -> Entry:
        return cls(
            index=fields.index,
            term=fields.term,
            prev_hash=fields.prev_hash,
            hash=fields.hash,
            schema_version=fields.schema_version,
            command=decode_command(fields.command_bytes, fields.schema_version),
            command_bytes=fields.command_bytes,
        )

    def payload(self) -> bytes:
        """The payload bytes this entry is stored as."""
        return (
            PAYLOAD_HEADER.pack(
                self.prev_hash, self.index, self.term, self.schema_version, len(self.command_bytes)
            )
            + self.command_bytes
            + self.hash
        )
