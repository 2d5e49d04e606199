"""Label selectors built from metav1.LabelSelector objects (nil selects nothing, {} selects
everything, matchLabels AND matchExpressions, upstream's errors) and from plain label maps."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given

from engenho.selectors import (
    InvalidLabelSelectorError,
    LabelSelector,
    Operator,
    Requirement,
    label_selector_from_object,
    label_selector_from_set,
    new_requirement,
    parse_label_selector,
)
from tests.selectors.strategies import label_maps, selectors


def test_none_selects_nothing_and_empty_selects_everything() -> None:
    assert label_selector_from_object(None) == LabelSelector.nothing()
    assert not label_selector_from_object(None).matches({})
    for empty in ({}, {"matchLabels": {}}, {"matchLabels": None, "matchExpressions": []}):
        selector = label_selector_from_object(empty)
        assert selector.empty
        assert selector.matches({"any": "thing"})


def test_match_labels_and_expressions() -> None:
    selector = label_selector_from_object(
        {
            "matchLabels": {"app": "web", "tier": "front"},
            "matchExpressions": [
                {"key": "env", "operator": "In", "values": ["prod", "staging"]},
                {"key": "legacy", "operator": "DoesNotExist"},
                {"key": "zone", "operator": "NotIn", "values": ["a"]},
                {"key": "canary", "operator": "Exists", "values": []},
            ],
        }
    )
    assert str(selector) == "app=web,canary,env in (prod,staging),!legacy,tier=front,zone notin (a)"
    assert selector == parse_label_selector(str(selector))
    labels = {"app": "web", "tier": "front", "env": "prod", "canary": ""}
    assert selector.matches(labels)
    assert not selector.matches({**labels, "legacy": "y"})
    assert not selector.matches({**labels, "zone": "a"})
    assert selector.matches({**labels, "zone": "b"})


def test_values_keep_their_order_but_print_sorted() -> None:
    selector = label_selector_from_object(
        {"matchExpressions": [{"key": "k", "operator": "In", "values": ["b", "a"]}]}
    )
    assert selector.requirements == (Requirement("k", Operator.IN, ("b", "a")),)
    assert str(selector) == "k in (a,b)"


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        (
            {"matchExpressions": [{"key": "k", "operator": "Gt", "values": ["1"]}]},
            '"Gt" is not a valid label selector operator',
        ),
        ({"matchExpressions": [{"key": "k"}]}, '"" is not a valid label selector operator'),
        (
            {"matchExpressions": [{"key": "k", "operator": "In"}]},
            "values: Invalid value: null: for 'in', 'notin' operators, values set can't be empty",
        ),
        (
            {"matchExpressions": [{"key": "k", "operator": "Exists", "values": ["a", "b"]}]},
            'values: Invalid value: ["a","b"]: values set must be empty for exists and does not '
            "exist",
        ),
        (
            {"matchLabels": {"-k": "v"}},
            "key: Invalid value: \"-k\": name part must consist of alphanumeric characters, '-', "
            "'_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  "
            "or 'my.name',  or '123-abc', regex used for validation is "
            "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')",
        ),
        ({"matchLabels": ["a"]}, "matchLabels must be an object, not list"),
        ({"matchLabels": {"k": 1}}, "matchLabels[k] must be a string"),
        ({"matchExpressions": {"key": "k"}}, "matchExpressions must be a list, not dict"),
        ({"matchExpressions": ["k"]}, "matchExpressions[0] must be an object, not str"),
        (
            {"matchExpressions": [{"key": 1, "operator": "Exists"}]},
            "matchExpressions[0].key must be a string",
        ),
        (
            {"matchExpressions": [{"key": "k", "operator": "In", "values": "a"}]},
            "matchExpressions[0].values must be a list of strings",
        ),
        ("app=web", "a label selector must be an object, not str"),
    ],
)
def test_invalid_objects(obj: Any, message: str) -> None:
    with pytest.raises(InvalidLabelSelectorError) as caught:
        label_selector_from_object(obj)
    assert str(caught.value) == message


def test_several_problems_are_aggregated() -> None:
    with pytest.raises(InvalidLabelSelectorError) as caught:
        new_requirement("-k", Operator.EQUALS, ["a b", "c"])
    message = str(caught.value)
    assert message.startswith('[key: Invalid value: "-k": name part must consist')
    assert (
        'values: Invalid value: ["a b","c"]: exact-match compatibility requires one single'
        in message
    )
    assert 'values[0][-k]: Invalid value: "a b": a valid label must be' in message
    assert message.endswith("]")


@given(selectors())
def test_objects_round_trip_through_text(selector: LabelSelector) -> None:
    """A selector using only the object operators, built from its object form, is the same."""
    object_operators = {
        Operator.IN: "In",
        Operator.NOT_IN: "NotIn",
        Operator.EXISTS: "Exists",
        Operator.DOES_NOT_EXIST: "DoesNotExist",
    }
    kept = [r for r in selector.requirements if r.operator in object_operators]
    obj = {
        "matchExpressions": [
            {"key": r.key, "operator": object_operators[r.operator], "values": list(r.values)}
            for r in kept
        ]
    }
    assert label_selector_from_object(obj) == LabelSelector.of(kept)


@given(label_maps())
def test_label_maps(labels: dict[str, str]) -> None:
    selector = label_selector_from_set(labels)
    assert selector.matches(labels)
    assert selector.matches({**labels, "extra.example.com/x": "y"})
    for key in labels:
        assert not selector.matches({k: v for k, v in labels.items() if k != key})
    assert selector == label_selector_from_object({"matchLabels": labels})
    assert str(selector) == ",".join(f"{k}={labels[k]}" for k in sorted(labels))
