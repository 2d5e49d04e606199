"""Canonical JSON: the one byte form of a JSON value that the log hashes.

The rules are specified in ``docs/log-format.md`` ("Canonical JSON"): UTF-8, no insignificant
whitespace, object members sorted by key code point, the minimal string escapes of RFC 8785,
integers in plain decimal within the 64-bit range, and finite non-integral numbers in the
shortest round-trip form with a fixed exponent rule.

orjson produces exactly this form with ``OPT_SORT_KEYS`` (the property tests check it against
an independent implementation of the document) at about a fifteenth of the cost of the
standard library's encoder, which matters on the append path.

NaN and the infinities have no canonical form. orjson would write them as ``null``, so values
must be finite when they reach the log: engenho's JSON and YAML decoders refuse them where
values enter the system.
"""

from __future__ import annotations

from typing import Any, TypeAlias

import orjson

from engenho.log.errors import EncodingError

__all__ = ["JsonValue", "canonical_json", "decode_json", "parse_canonical_json"]

JsonValue: TypeAlias = "bool | int | float | str | list[JsonValue] | dict[str, JsonValue] | None"

_SORTED = orjson.OPT_SORT_KEYS


def canonical_json(value: Any) -> bytes:
    """Encode ``value`` in canonical form, or raise :class:`EncodingError` naming the problem."""
    try:
        return orjson.dumps(value, option=_SORTED)
    except orjson.JSONEncodeError as exc:
        # Non-JSON types, non-string keys, integers beyond 64 bits, lone surrogates.
        raise EncodingError(f"value has no canonical JSON form: {exc}") from exc


def decode_json(data: bytes | memoryview) -> Any:
    """Parse UTF-8 JSON (NaN, infinities and invalid UTF-8 are refused)."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise EncodingError(f"not JSON: {exc}") from exc


def parse_canonical_json(data: bytes) -> Any:
    """Parse bytes and check they are in canonical form.

    Used by the deep verifier: bytes that decode but are not canonical (reordered keys,
    whitespace, duplicate keys, other number spellings) were not written by engenho, even when
    their hash matches.
    """
    value = decode_json(data)
    if canonical_json(value) != data:
        raise EncodingError("JSON is not in canonical form")
    return value
