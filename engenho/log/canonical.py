"""Canonical JSON: the one byte form of a JSON value that the log hashes.

The rules are specified in ``docs/log-format.md`` ("Canonical JSON"); in short: UTF-8, no
insignificant whitespace, object members sorted by key code point, the minimal escapes of
RFC 8785, integers in plain decimal and finite non-integral numbers in the shortest form that
round-trips (Python's ``repr`` for ``float``). NaN, infinities and lone surrogates have no
canonical form and are refused.

The standard library's C encoder already produces exactly this form when configured as below,
so encoding costs one ``json.dumps`` call.
"""

from __future__ import annotations

import json
import math
from typing import Any, TypeAlias

from engenho.log.errors import EncodingError

__all__ = ["JsonValue", "canonical_json", "decode_json", "parse_canonical_json"]

JsonValue: TypeAlias = "bool | int | float | str | list[JsonValue] | dict[str, JsonValue] | None"

_ENCODER = json.JSONEncoder(
    ensure_ascii=False,
    sort_keys=True,
    separators=(",", ":"),
    allow_nan=False,
    check_circular=False,
)


def canonical_json(value: Any) -> bytes:
    """Encode ``value`` in canonical form, or raise :class:`EncodingError` naming the problem."""
    try:
        text = _ENCODER.encode(value)
    except ValueError as exc:  # NaN or infinity
        raise EncodingError(f"value has no canonical JSON form: {exc}") from exc
    except TypeError as exc:  # a non-JSON type such as bytes or a set, or a non-string key
        raise EncodingError(f"value is not JSON: {exc}") from exc
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise EncodingError("value contains a lone surrogate, which UTF-8 cannot encode") from exc


def _refuse_constant(name: str) -> float:
    raise EncodingError(f"{name} is not a JSON number")


def _refuse_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise EncodingError(f"duplicate object key {key!r}")
            seen.add(key)
    return result


def _finite(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise EncodingError(f"number {text} overflows a binary64 float")
    return number


_DECODER = json.JSONDecoder(
    object_pairs_hook=_refuse_duplicates,
    parse_constant=_refuse_constant,
    parse_float=_finite,
)


def decode_json(data: bytes) -> Any:
    """Parse UTF-8 JSON strictly: duplicate keys, NaN and infinities are refused."""
    try:
        value = _DECODER.decode(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise EncodingError(f"not UTF-8 at byte {exc.start}") from exc
    except json.JSONDecodeError as exc:
        raise EncodingError(f"not JSON: {exc.msg} at byte {exc.pos}") from exc
    return value


def parse_canonical_json(data: bytes) -> Any:
    """Parse bytes and check they are in canonical form.

    Used by the deep verifier: bytes that decode but are not canonical were not written by
    engenho, even when their hash matches.
    """
    value = decode_json(data)
    if canonical_json(value) != data:
        raise EncodingError("JSON is not in canonical form")
    return value
