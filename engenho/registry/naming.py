"""Names and identities decided before a command is proposed (DESIGN.md rule 2)."""

from __future__ import annotations

import secrets
import uuid
from datetime import UTC, datetime

__all__ = ["SUFFIX_ALPHABET", "format_timestamp", "generated_name", "new_uid", "parse_timestamp"]

SUFFIX_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
"""Upstream's alphabet for generated suffixes: no vowels (no words), no 0/1/3 (look-alikes)."""

_MAX_NAME = 253
_SUFFIX = 5


def generated_name(prefix: str) -> str:
    """``prefix`` plus five random characters, truncating the prefix as upstream does."""
    if len(prefix) > _MAX_NAME - _SUFFIX:
        prefix = prefix[: _MAX_NAME - _SUFFIX]
    return prefix + "".join(secrets.choice(SUFFIX_ALPHABET) for _ in range(_SUFFIX))


def new_uid() -> str:
    return str(uuid.uuid4())


def format_timestamp(moment: datetime) -> str:
    """``metav1.Time``: RFC 3339, UTC, whole seconds."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_timestamp(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
