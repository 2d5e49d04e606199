"""Canonical JSON (docs/log-format.md §8): the encoder against an independent implementation of
the document, stability under decode/encode, and refusal of values with no canonical form."""

from __future__ import annotations

import math
import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engenho.log import EncodingError, canonical_json
from engenho.log.canonical import decode_json, parse_canonical_json

_SHORT_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\b": "\\b",
    "\t": "\\t",
    "\n": "\\n",
    "\f": "\\f",
    "\r": "\\r",
}


def _float_text(value: float) -> str:
    """Rule 7, written from the document: shortest digits from repr, then our own notation."""
    if value == 0:
        return "-0.0" if math.copysign(1.0, value) < 0 else "0.0"
    sign = "-" if value < 0 else ""
    text = repr(abs(value))
    match = re.fullmatch(r"(\d)(?:\.(\d+))?e([+-]\d+)", text)
    if match:
        digits = match.group(1) + (match.group(2) or "")
        exponent = int(match.group(3))
    else:
        whole, fraction = text.split(".")
        if whole != "0":
            exponent = len(whole) - 1
            digits = whole + fraction
        else:
            exponent = -(len(fraction) - len(fraction.lstrip("0")) + 1)
            digits = fraction.lstrip("0")
    digits = digits.rstrip("0") or "0"
    if -5 <= exponent < 16:
        if exponent >= 0:
            whole = digits[: exponent + 1].ljust(exponent + 1, "0")
            fraction = digits[exponent + 1 :] or "0"
        else:
            whole, fraction = "0", "0" * (-exponent - 1) + digits
        return f"{sign}{whole}.{fraction}"
    mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
    return f"{sign}{mantissa}e{'+' if exponent >= 0 else '-'}{abs(exponent)}"


def _string_text(value: str) -> str:
    out = []
    for char in value:
        if char in _SHORT_ESCAPES:
            out.append(_SHORT_ESCAPES[char])
        elif ord(char) < 0x20:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def reference(value: Any) -> bytes:
    """An independent encoder written from docs/log-format.md §8."""

    def text(v: Any) -> str:
        if v is None:
            return "null"
        if v is True:
            return "true"
        if v is False:
            return "false"
        if isinstance(v, int):
            return str(v)
        if isinstance(v, float):
            return _float_text(v)
        if isinstance(v, str):
            return _string_text(v)
        if isinstance(v, list):
            return "[" + ",".join(text(x) for x in v) + "]"
        return "{" + ",".join(_string_text(k) + ":" + text(v[k]) for k in sorted(v)) + "}"

    return text(value).encode("utf-8")


finite = st.floats(allow_nan=False, allow_infinity=False)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | finite
    | st.text(st.characters(exclude_categories=["Cs"]))
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=5)
        | st.dictionaries(st.text(st.characters(exclude_categories=["Cs"])), inner, max_size=5)
    ),
    max_leaves=25,
)


@given(json_values)
def test_matches_the_document(value: Any) -> None:
    assert canonical_json(value) == reference(value)


@given(json_values)
def test_decode_then_encode_is_stable(value: Any) -> None:
    data = canonical_json(value)
    assert canonical_json(decode_json(data)) == data
    assert parse_canonical_json(data) == decode_json(data)


@given(finite)
def test_floats_follow_rule_seven(value: float) -> None:
    assert canonical_json(value).decode() == _float_text(value)
    assert decode_json(canonical_json(value)) == value


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1.0, "1.0"),
        (0.00001, "0.00001"),
        (1234.5, "1234.5"),
        (1e15, "1000000000000000.0"),
        (1e16, "1e+16"),
        (1.5e-6, "1.5e-6"),
        (5e-324, "5e-324"),
        (-0.0, "-0.0"),
        (0.0, "0.0"),
        (1, "1"),
        (-(2**63), "-9223372036854775808"),
        (2**64 - 1, "18446744073709551615"),
        ('\x00\x1f\x7f\u2028é"\\\n', '"\\u0000\\u001f\x7f\u2028é\\"\\\\\\n"'),
        ({"b": 1, "a": [True, None], "é": {}, "Z": ""}, '{"Z":"","a":[true,null],"b":1,"é":{}}'),
    ],
)
def test_examples_from_the_document(value: Any, text: str) -> None:
    assert canonical_json(value) == text.encode("utf-8")


@pytest.mark.parametrize(
    "value",
    [
        "\ud800",
        {"\udfff": 1},
        2**64,
        -(2**63) - 1,
        {1: "non-string key"},
        b"bytes",
        {1, 2},
        object(),
    ],
)
def test_values_without_a_canonical_form_are_refused(value: Any) -> None:
    with pytest.raises(EncodingError):
        canonical_json(value)


@pytest.mark.parametrize(
    "data",
    [
        b'{"b":1,"a":2}',  # unsorted
        b'{"a": 1}',  # whitespace
        b'{"a":1,"a":1}',  # duplicate key
        b"1.50",  # not the shortest form
        b"1e16",  # not rule 7's exponent form
        b'"\\u0041"',  # needless escape
    ],
)
def test_non_canonical_bytes_are_detected(data: bytes) -> None:
    with pytest.raises(EncodingError, match="canonical"):
        parse_canonical_json(data)


@pytest.mark.parametrize("data", [b"NaN", b"Infinity", b"1e400", b"{", b"\xff", b'"\\ud800"'])
def test_decoder_refuses_what_has_no_value(data: bytes) -> None:
    with pytest.raises(EncodingError):
        decode_json(data)
