"""Label selector text, case by case: the valid and invalid strings of apimachinery's
``labels`` tests, the canonical string each valid one prints as, upstream's error messages,
and matching examples (``!=`` and ``notin`` also match objects without the key)."""

from __future__ import annotations

import pytest

from engenho.selectors import (
    InvalidLabelSelectorError,
    LabelSelector,
    Operator,
    Requirement,
    SelectorError,
    parse_label_selector,
)

_NAME_RULE = (
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
    "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for "
    "validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)
_DNS_RULE = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'example.com', regex "
    "used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
_REQ = "unable to parse requirement: "
_GT_LT = "for 'Gt', 'Lt' operators, the value must be an integer"
_OPERATORS = "in, notin, =, ==, !=, gt, lt"
_TOO_LONG = "must be no more than 63 characters"
_VALUE_RULE = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or "
    "'my_value',  or '12345', regex used for validation is "
    "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("", ""),
        ("x=a,y=b,z=c", "x=a,y=b,z=c"),
        ("x!=a,y=b", "x!=a,y=b"),
        ("x=", "x="),
        ("x= ", "x="),
        ("x=,z= ", "x=,z="),
        ("x= ,z= ", "x=,z="),
        ("!x", "!x"),
        ("x>1", "x>1"),
        ("x>1,z<5", "x>1,z<5"),
        ("\rx", "x"),
        ("a ", "a"),
        ("x==a", "x==a"),
        ("this-is-a-dns.domain.com/key-with-dash", "this-is-a-dns.domain.com/key-with-dash"),
        (
            "0.1.2.domain/99 notin (10.10.100.1, tick.tack.clock)",
            "0.1.2.domain/99 notin (10.10.100.1,tick.tack.clock)",
        ),
        ("foo  in\t (abc)", "foo in (abc)"),
        ("x notin\n (abc)", "x notin (abc)"),
        ("x  notin\t\t\t(abc,def)", "x notin (abc,def)"),
        ("x in (abc,)", "x in (,abc)"),
        ("x in (abc,abc)", "x in (abc)"),
        ("x in ()", "x in ()"),
        ("x in (a,,)", "x in (,a)"),
        ("x in (a,,,)", "x in (,a)"),
        ("x in (a,,,,,,)", "x in (,a)"),
        ("x in (a,,a,,a,,a,,)", "x in (,a)"),
        ("x in (,,)", "x in ()"),
        ("x notin (abc,,def),bar,z in (),w", "bar,w,x notin (,abc,def),z in ()"),
        ("x notin ( )", "x notin ()"),
        ("x notin (, a)", "x notin (,a)"),
        ("a in (x,y,notin, z,in)", "a in (in,notin,x,y,z)"),
        ("notin=in", "notin=in"),
        ("in in (notin)", "in in (notin)"),
        ("z=1,a=2,m", "a=2,m,z=1"),
        ("x=a,a=x", "a=x,x=a"),
    ],
)
def test_valid(text: str, canonical: str) -> None:
    selector = parse_label_selector(text)
    assert str(selector) == canonical
    assert parse_label_selector(canonical) == selector


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("x=a||y=b", f'{_REQ}values[0][x]: Invalid value: "a||y": {_VALUE_RULE}'),
        ("x==a==b", "found '==', expected: ',' or 'end of string'"),
        ("!x=a", "found '=', expected: ',' or 'end of string'"),
        ("x<a", f'{_REQ}values[0]: Invalid value: "a": {_GT_LT}'),
        ("x>", f'{_REQ}values[0]: Invalid value: "": {_GT_LT}'),
        ("x,,y", "found ',', expected: identifier after ','"),
        (",x,y", "found ',', expected: !, identifier, or 'end of string'"),
        ("x nott in (y)", f"{_REQ}found 'nott', expected: {_OPERATORS}"),
        ("a in (xyz),", "found '', expected: identifier after ','"),
        ("a in (xyz)b notin ()", "found 'b', expected: ',' or 'end of string'"),
        ("a in (xyz abc)", f"{_REQ}found 'abc', expected: ',' or ')'"),
        ("a notin(", f"{_REQ}found '', expected: ',', ')' or identifier"),
        ("a (", f"{_REQ}found '(', expected: {_OPERATORS}"),
        ("(", "found '(', expected: !, identifier, or 'end of string'"),
        ("x in", f"{_REQ}found '' expected: '('"),
        ("x in (a", f"{_REQ}found '', expected: ',' or ')'"),
        ("x in (a=)", f"{_REQ}found '=', expected: ',' or ')'"),
        ("x in (=)", f"{_REQ}found '=', expected: ',', ')' or identifier"),
        ("x in (a,=)", f"{_REQ}found '=', expected: ',', or identifier"),
        ("x=(", f"{_REQ}found '(', expected: identifier"),
        ("!", f"{_REQ}found '', expected: identifier"),
        ("!!x", f"{_REQ}found '!', expected: identifier"),
        ("x=a b", "found 'b', expected: ',' or 'end of string'"),
        ("-x", f'{_REQ}<nil>: Invalid value: "-x": name part {_NAME_RULE}'),
        ("x=-a", f'{_REQ}values[0][x]: Invalid value: "-a": {_VALUE_RULE}'),
        ("x<-1", f'{_REQ}values[0][x]: Invalid value: "-1": {_VALUE_RULE}'),
        ("/x", f'{_REQ}<nil>: Invalid value: "/x": prefix part must be non-empty'),
        ("Example.com/x", f'{_REQ}<nil>: Invalid value: "Example.com/x": prefix part {_DNS_RULE}'),
        (
            "x/",
            f'{_REQ}<nil>: Invalid value: "x/": name part must be non-empty; '
            f"name part {_NAME_RULE}",
        ),
        ("a" * 64, f'{_REQ}<nil>: Invalid value: "{"a" * 64}": name part {_TOO_LONG}'),
        ("x=" + "a" * 64, f'{_REQ}values[0][x]: Invalid value: "{"a" * 64}": {_TOO_LONG}'),
        ('x="a"', f'{_REQ}values[0][x]: Invalid value: "\\"a\\"": {_VALUE_RULE}'),
    ],
)
def test_invalid(text: str, message: str) -> None:
    with pytest.raises(InvalidLabelSelectorError) as caught:
        parse_label_selector(text)
    assert str(caught.value) == message
    assert isinstance(caught.value, SelectorError)
    assert isinstance(caught.value, ValueError)


def test_qualified_name_with_two_slashes() -> None:
    with pytest.raises(
        InvalidLabelSelectorError,
        match=r"^unable to parse requirement: <nil>: Invalid value: \"a/b/c\": a qualified name "
        r"must consist .* with an optional DNS subdomain prefix and '/' "
        r"\(e\.g\. 'example\.com/MyName'\)$",
    ):
        parse_label_selector("a/b/c")


def test_requirements_are_sorted_by_key_and_values_sorted_and_unique() -> None:
    selector = parse_label_selector("z notin (b,a,b), a=1, m")
    assert selector.requirements == (
        Requirement("a", Operator.EQUALS, ("1",)),
        Requirement("m", Operator.EXISTS),
        Requirement("z", Operator.NOT_IN, ("a", "b")),
    )


@pytest.mark.parametrize(
    ("text", "labels", "expected"),
    [
        ("", {"x": "y"}, True),
        ("x=y", {"x": "y"}, True),
        ("x=y,z=w", {"x": "y", "z": "w"}, True),
        ("x!=y,z!=w", {"x": "z", "z": "a"}, True),
        ("notin=in", {"notin": "in"}, True),
        ("x", {"x": "z"}, True),
        ("!x", {"y": "z"}, True),
        ("x>1", {"x": "2"}, True),
        ("x<1", {"x": "0"}, True),
        ("x=z", {}, False),
        ("x=y", {"x": "z"}, False),
        ("x=y,z=w", {"x": "w", "z": "w"}, False),
        ("x!=y,z!=w", {"x": "z", "z": "w"}, False),
        ("x", {"y": "z"}, False),
        ("!x", {"x": "z"}, False),
        ("x>1", {"x": "0"}, False),
        ("x<1", {"x": "2"}, False),
        ("x>1", {"x": "v2"}, False),
        ("x>1", {}, False),
        ("x<1", {}, False),
        ("x!=y", {}, True),
        ("x notin (a,b)", {}, True),
        ("x notin (a,b)", {"x": "a"}, False),
        ("x notin ()", {"x": ""}, False),
        ("x in ()", {"x": ""}, True),
        ("x in ()", {"y": "baz"}, False),
        ("x=", {"x": ""}, True),
        ("x=", {}, False),
        ("x notin (),y", {"y": ""}, True),
        ("!x,y", {"y": ""}, True),
        ("x notin (),!y", {"y": ""}, False),
    ],
)
def test_matching(text: str, labels: dict[str, str], expected: bool) -> None:
    assert parse_label_selector(text).matches(labels) is expected


def test_everything_and_nothing() -> None:
    everything, nothing = LabelSelector.everything(), LabelSelector.nothing()
    assert everything.empty and everything.matches({}) and everything.matches({"a": "b"})
    assert not nothing.empty and not nothing.matches({}) and not nothing.matches({"a": "b"})
    assert str(everything) == str(nothing) == ""
    assert parse_label_selector("") == everything
    assert parse_label_selector(" \t ").empty
    assert not parse_label_selector("a").empty


@pytest.mark.parametrize(
    ("text", "key", "value"),
    [
        ("key in (value)", "key", "value"),
        ("key in (value,value2)", "key", None),
        ("key in (value,value1),key2 in (value2)", "key2", "value2"),
        ("key=value", "key", "value"),
        ("key==value", "key", "value"),
        ("key!=value", "key", None),
        ("key=value,key2=value2", "key", "value"),
        ("key2=x", "key", None),
    ],
)
def test_requires_exact_match(text: str, key: str, value: str | None) -> None:
    assert parse_label_selector(text).requires_exact_match(key) == value
