"""The append-only, BLAKE3-chained log: the only source of truth (DESIGN.md rule 1).

Nothing here imports any other part of engenho.
"""

from engenho.log.canonical import JsonValue, canonical_json
from engenho.log.command import (
    COMMAND_SCHEMA_VERSION,
    Actor,
    Precondition,
    ResourceCommand,
    ResourceKey,
    Verb,
    decode_command,
    encode_command,
)
from engenho.log.entry import ENTRY_TAG, GENESIS_HASH, Entry, entry_hash, seal_payload
from engenho.log.errors import (
    CommittedTruncationError,
    CorruptLogError,
    EncodingError,
    IndexOutOfRangeError,
    LogClosedError,
    LogError,
    LogFailedError,
    LogLockedError,
    LogUnavailableError,
)
from engenho.log.store import LogOptions, LogStats, LogStore
from engenho.log.verify import VerifyFailure, VerifyReport, verify_log

__all__ = [
    "COMMAND_SCHEMA_VERSION",
    "ENTRY_TAG",
    "GENESIS_HASH",
    "Actor",
    "CommittedTruncationError",
    "CorruptLogError",
    "EncodingError",
    "Entry",
    "IndexOutOfRangeError",
    "JsonValue",
    "LogClosedError",
    "LogError",
    "LogFailedError",
    "LogLockedError",
    "LogOptions",
    "LogStats",
    "LogStore",
    "LogUnavailableError",
    "Precondition",
    "ResourceCommand",
    "ResourceKey",
    "Verb",
    "VerifyFailure",
    "VerifyReport",
    "canonical_json",
    "decode_command",
    "encode_command",
    "entry_hash",
    "seal_payload",
    "verify_log",
]
