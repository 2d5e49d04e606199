"""Quantity: parsing, the upstream canonical form, exact comparison and arithmetic, JSON
numbers, and round trips of the original spelling."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engenho.schema import Quantity, QuantityError, QuantityFormat
from engenho.schema.quantity import is_quantity

# (input, canonical) pairs from apimachinery's quantity_test.go and the API conventions.
CANONICAL = [
    ("0", "0"),
    ("0.5", "500m"),
    ("1.5", "1500m"),
    ("100m", "100m"),
    ("2000m", "2"),
    ("1000", "1k"),
    ("1024", "1024"),
    ("1k", "1k"),
    ("1Ki", "1Ki"),
    ("1024Mi", "1Gi"),
    ("1.5Gi", "1536Mi"),
    ("0.5Ki", "512"),
    ("1000Mi", "1000Mi"),
    ("0Gi", "0"),
    ("1e3", "1e3"),
    ("1E3", "1e3"),
    ("12e2", "1200"),
    ("1e-9", "1e-9"),
    ("0.1m", "100u"),
    ("1n", "1n"),
    ("-1.5", "-1500m"),
    ("+1", "1"),
    (".5", "500m"),
    ("5.", "5"),
    ("1M", "1M"),
    ("8G", "8G"),
]


@pytest.mark.parametrize(("text", "canonical"), CANONICAL)
def test_canonical_form_matches_upstream(text: str, canonical: str) -> None:
    quantity = Quantity.parse(text)
    assert quantity.canonical() == canonical
    assert str(quantity) == canonical
    assert quantity.wire == text


@pytest.mark.parametrize(
    "text",
    ["", ".", "1 Gi", " 1", "abc", "1K", "Ki", "1.2.3", "--1", "1e", "1Gib", "1e1.5", "0x10"],
)
def test_malformed_strings_are_refused(text: str) -> None:
    assert not is_quantity(text)
    with pytest.raises(QuantityError, match="regular expression"):
        Quantity.parse(text)


def test_values_finer_than_a_nano_round_up_away_from_zero() -> None:
    assert Quantity.parse("1e-20").nanos == 1
    assert Quantity.parse("-1e-20").nanos == -1
    assert Quantity.parse("0.1n").canonical() == "1n"


def test_formats_are_remembered() -> None:
    assert Quantity.parse("1Mi").format is QuantityFormat.BINARY_SI
    assert Quantity.parse("1M").format is QuantityFormat.DECIMAL_SI
    assert Quantity.parse("1e6").format is QuantityFormat.DECIMAL_EXPONENT


def test_comparison_is_by_value_not_spelling() -> None:
    assert Quantity.parse("500m") == Quantity.parse("0.5")
    assert Quantity.parse("1Gi") > Quantity.parse("1G")
    assert Quantity.parse("1Ki") == Quantity.parse("1024")
    assert len({Quantity.parse("1k"), Quantity.parse("1000"), Quantity.parse("1e3")}) == 1
    assert Quantity.parse("1") != "1"


def test_json_numbers_parse_and_keep_their_wire_value() -> None:
    assert Quantity.from_json(1).canonical() == "1"
    assert Quantity.from_json(1).wire == 1
    assert Quantity.from_json(0.25).canonical() == "250m"
    assert Quantity.from_json(1e21).canonical() == "1e21"
    with pytest.raises(QuantityError):
        Quantity.from_json(True)
    with pytest.raises(QuantityError):
        Quantity.from_json(None)


def test_value_accessors_round_up() -> None:
    assert Quantity.parse("1500m").value() == 2
    assert Quantity.parse("1500m").milli_value() == 1500
    assert Quantity.parse("1n").milli_value() == 1
    assert Quantity.parse("-1500m").value() == -1


decimal_text = st.builds(
    lambda sign, whole, fraction, suffix: f"{sign}{whole}{fraction}{suffix}",
    st.sampled_from(["", "+", "-"]),
    st.integers(0, 10**12).map(str),
    st.one_of(st.just(""), st.integers(0, 10**6).map(lambda n: f".{n}")),
    st.sampled_from(
        ["", "n", "u", "m", "k", "M", "G", "T", "P", "E", "Ki", "Mi", "Gi", "Ti", "e3", "e-4", "E2"]
    ),
)


@given(decimal_text)
def test_canonical_form_is_a_fixed_point(text: str) -> None:
    quantity = Quantity.parse(text)
    canonical = Quantity.parse(quantity.canonical())
    assert canonical == quantity
    assert canonical.canonical() == quantity.canonical()


@given(decimal_text, decimal_text)
def test_order_agrees_with_exact_fractions(a: str, b: str) -> None:
    qa, qb = Quantity.parse(a), Quantity.parse(b)
    assert (qa < qb) == (qa.as_fraction() < qb.as_fraction())
    assert (qa == qb) == (qa.as_fraction() == qb.as_fraction())


@given(decimal_text, decimal_text)
def test_arithmetic_is_exact(a: str, b: str) -> None:
    qa, qb = Quantity.parse(a), Quantity.parse(b)
    assert (qa + qb).as_fraction() == qa.as_fraction() + qb.as_fraction()
    assert (qa - qb).as_fraction() == qa.as_fraction() - qb.as_fraction()
    assert (-qa).as_fraction() == -qa.as_fraction()


@given(st.fractions(min_value=-(10**15), max_value=10**15, max_denominator=10**9))
def test_from_fraction_round_trips_through_canonical_text(value: Fraction) -> None:
    quantity = Quantity.from_fraction(value)
    assert abs(quantity.as_fraction() - value) < Fraction(1, 10**9)
    assert Quantity.parse(quantity.canonical()) == quantity
