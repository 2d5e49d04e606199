"""Property tests of label selectors over random valid requirements: the canonical string
parses back to the same selector (with any whitespace between tokens), matching agrees with
a direct reading of the Kubernetes rules, and negative operators match absent keys."""

from __future__ import annotations

from collections.abc import Mapping

from hypothesis import given
from hypothesis import strategies as st

from engenho.selectors import LabelSelector, Operator, Requirement, parse_label_selector
from tests.selectors.strategies import label_maps, requirements, selectors

# A small key space, so that random labels often hit the selector's keys.
few_keys = st.sampled_from(["a", "b", "in", "example.com/c"])


def reference(requirement: Requirement, labels: Mapping[str, str]) -> bool:
    """The rules of contract §18.1 and apimachinery, read directly."""
    key, op, wanted = requirement.key, requirement.operator, set(requirement.values)
    present = key in labels
    if op is Operator.EXISTS:
        return present
    if op is Operator.DOES_NOT_EXIST:
        return not present
    if op in (Operator.EQUALS, Operator.DOUBLE_EQUALS, Operator.IN):
        return present and labels[key] in wanted
    if op in (Operator.NOT_EQUALS, Operator.NOT_IN):
        return not present or labels[key] not in wanted
    if not present or not labels[key].isdigit():
        return False
    have, limit = int(labels[key]), int(requirement.values[0])
    if have >= 2**63:
        return False
    return have > limit if op is Operator.GREATER_THAN else have < limit


@given(selectors())
def test_canonical_string_parses_back(selector: LabelSelector) -> None:
    assert parse_label_selector(str(selector)) == selector


@given(selectors(), st.data())
def test_whitespace_between_tokens_is_ignored(selector: LabelSelector, data: st.DataObject) -> None:
    spaces = st.text(alphabet=" \t\r\n", min_size=1, max_size=3)
    pieces = []
    for requirement in selector.requirements:
        tokens = tokens_of(requirement)
        pieces.append("".join(t + data.draw(spaces) for t in tokens))
    text = data.draw(spaces) + ("," + data.draw(spaces)).join(pieces)
    assert parse_label_selector(text) == selector


def tokens_of(requirement: Requirement) -> list[str]:
    key, op, values = requirement.key, requirement.operator, requirement.values
    if op is Operator.EXISTS:
        return [key]
    if op is Operator.DOES_NOT_EXIST:
        return ["!", key]
    if op in (Operator.IN, Operator.NOT_IN):
        # The empty value is written as nothing: "(,a)" holds "" and "a", "()" only "".
        listed = [piece for value in values for piece in (value, ",")][:-1]
        return [key, op.value, "(", *[piece for piece in listed if piece], ")"]
    symbol = {Operator.GREATER_THAN: ">", Operator.LESS_THAN: "<"}.get(op, op.value)
    return [key, symbol, *([values[0]] if values[0] else [])]


@given(selectors(few_keys), label_maps(few_keys))
def test_matching_agrees_with_the_reference(
    selector: LabelSelector, labels: dict[str, str]
) -> None:
    expected = all(reference(r, labels) for r in selector.requirements)
    assert selector.matches(labels) is expected
    assert parse_label_selector(str(selector)).matches(labels) is expected


@given(requirements(few_keys), label_maps(few_keys))
def test_negative_operators_match_objects_without_the_key(
    requirement: Requirement, labels: dict[str, str]
) -> None:
    labels.pop(requirement.key, None)
    negative = (Operator.NOT_EQUALS, Operator.NOT_IN, Operator.DOES_NOT_EXIST)
    assert requirement.matches(labels) is (requirement.operator in negative)


@given(selectors(), selectors())
def test_conjunction(first: LabelSelector, second: LabelSelector) -> None:
    both = LabelSelector.of(first.requirements + second.requirements)
    joined = ",".join(s for s in (str(first), str(second)) if s)
    assert parse_label_selector(joined) == both
