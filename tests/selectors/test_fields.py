"""Field selector text: operators, sorting, escapes, upstream's error messages, the empty
value, and round trips of random requirements through the string form."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engenho.selectors import (
    FieldRequirement,
    FieldSelector,
    InvalidFieldSelectorError,
    Operator,
    SelectorError,
    escape_field_value,
    parse_field_selector,
)
from engenho.selectors.fields import unescape_field_value

EQ, NE = Operator.EQUALS, Operator.NOT_EQUALS


@pytest.mark.parametrize(
    ("text", "requirements", "canonical"),
    [
        ("", (), ""),
        ("a=b", (("a", EQ, "b"),), "a=b"),
        ("a==b", (("a", EQ, "b"),), "a=b"),
        ("a!=b", (("a", NE, "b"),), "a!=b"),
        ("spec.nodeName=", (("spec.nodeName", EQ, ""),), "spec.nodeName="),
        ("b=1,a=2", (("a", EQ, "2"), ("b", EQ, "1")), "a=2,b=1"),
        ("a=b,,c=d,", (("a", EQ, "b"), ("c", EQ, "d")), "a=b,c=d"),
        ("a=b\\,c", (("a", EQ, "b,c"),), "a=b\\,c"),
        ("a=b\\=c", (("a", EQ, "b=c"),), "a=b\\=c"),
        ("a=b\\\\c", (("a", EQ, "b\\c"),), "a=b\\\\c"),
        ("a=x!y", (("a", EQ, "x!y"),), "a=x!y"),
        ("a!=!", (("a", NE, "!"),), "a!=!"),
        ("a b=c d", (("a b", EQ, "c d"),), "a b=c d"),  # no trimming, as upstream
        ("=", (), ""),  # neither field nor value: dropped, as upstream's Transform does
        ("!=,a=b", (("a", EQ, "b"),), "a=b"),
        ("=b", (("", EQ, "b"),), "=b"),
        (
            "status.phase!=Succeeded,status.phase!=Failed",
            (("status.phase", NE, "Failed"), ("status.phase", NE, "Succeeded")),
            "status.phase!=Failed,status.phase!=Succeeded",
        ),
    ],
)
def test_valid(
    text: str, requirements: tuple[tuple[str, Operator, str], ...], canonical: str
) -> None:
    selector = parse_field_selector(text)
    assert selector.requirements == tuple(FieldRequirement(*r) for r in requirements)
    assert str(selector) == canonical


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a", "invalid selector: 'a'; can't understand 'a'"),
        ("a,b=c", "invalid selector: 'a,b=c'; can't understand 'a'"),
        ("a=b=c", "invalid field selector: unescaped character in value: 61"),
        ("a\\=b=c", "invalid field selector: unescaped character in value: 61"),
        ("a=b\\x", "invalid field selector: invalid escape sequence: \\x"),
        ("a=b\\", "invalid field selector: invalid escape sequence: \\"),
    ],
)
def test_invalid(text: str, message: str) -> None:
    with pytest.raises(InvalidFieldSelectorError) as caught:
        parse_field_selector(text)
    assert str(caught.value) == message
    assert isinstance(caught.value, SelectorError)


def test_missing_fields_read_as_empty() -> None:
    unscheduled = parse_field_selector("spec.nodeName=")
    assert unscheduled.matches({})
    assert unscheduled.matches({"spec.nodeName": ""})
    assert not unscheduled.matches({"spec.nodeName": "node-1"})
    assigned = parse_field_selector("spec.nodeName!=")
    assert assigned.matches({"spec.nodeName": "node-1"})
    assert not assigned.matches({})


def test_requires_exact_match_and_empty() -> None:
    selector = parse_field_selector("metadata.name=web,spec.nodeName!=n")
    assert selector.requires_exact_match("metadata.name") == "web"
    assert selector.requires_exact_match("spec.nodeName") is None
    assert selector.requires_exact_match("other") is None
    assert not selector.empty
    assert parse_field_selector("").empty
    assert FieldSelector().matches({"a": "b"})


fields = st.from_regex(r"[a-zA-Z][a-zA-Z.]{0,20}", fullmatch=True)
field_requirements = st.builds(FieldRequirement, fields, st.sampled_from([EQ, NE]), st.text())


@given(st.text())
def test_escape_round_trip(value: str) -> None:
    assert unescape_field_value(escape_field_value(value)) == value
    selector = parse_field_selector("f=" + escape_field_value(value))
    assert selector.requirements == (FieldRequirement("f", EQ, value),)


@given(st.lists(field_requirements, max_size=5))
def test_string_form_round_trips(requirements: list[FieldRequirement]) -> None:
    selector = parse_field_selector(",".join(str(r) for r in requirements))
    assert sorted(selector.requirements, key=str) == sorted(
        (r for r in requirements if r.field or r.value), key=str
    )
    assert parse_field_selector(str(selector)) == selector


@given(st.lists(field_requirements, max_size=5), st.dictionaries(fields, st.text(), max_size=5))
def test_matching_is_a_conjunction_over_defaulted_fields(
    requirements: list[FieldRequirement], values: dict[str, str]
) -> None:
    selector = FieldSelector(tuple(requirements))
    expected = all((values.get(r.field, "") == r.value) is (r.operator is EQ) for r in requirements)
    assert selector.matches(values) is expected
