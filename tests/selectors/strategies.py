"""Hypothesis strategies for valid label keys, values, requirements and selectors."""

from __future__ import annotations

from hypothesis import strategies as st

from engenho.selectors import LabelSelector, Operator, Requirement, new_requirement

__all__ = ["keys", "label_maps", "requirements", "selectors", "values"]

_NAME = r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
_DNS_LABEL = r"[a-z0-9]([-a-z0-9]{0,8}[a-z0-9])?"

# "in" and "notin" are keywords where an operator stands and plain words elsewhere.
_KEYWORDS = st.sampled_from(["in", "notin"])

names = st.one_of(st.from_regex(_NAME, fullmatch=True), _KEYWORDS, st.sampled_from("abcxyz"))
prefixes = st.lists(st.from_regex(_DNS_LABEL, fullmatch=True), min_size=1, max_size=3).map(".".join)
keys = st.one_of(names, st.builds(lambda p, n: f"{p}/{n}", prefixes, names))
values = st.one_of(st.just(""), names, st.integers(0, 10**6).map(str))
integers = st.integers(0, 2**63 - 1).map(str)


@st.composite
def requirements(draw: st.DrawFn, key: st.SearchStrategy[str] = keys) -> Requirement:
    operator = draw(st.sampled_from(list(Operator)))
    if operator in (Operator.IN, Operator.NOT_IN):
        chosen: tuple[str, ...] = tuple(sorted(draw(st.frozensets(values, min_size=1, max_size=4))))
    elif operator in (Operator.EXISTS, Operator.DOES_NOT_EXIST):
        chosen = ()
    elif operator in (Operator.GREATER_THAN, Operator.LESS_THAN):
        chosen = (draw(integers),)
    else:
        chosen = (draw(values),)
    return new_requirement(draw(key), operator, chosen)


def selectors(key: st.SearchStrategy[str] = keys) -> st.SearchStrategy[LabelSelector]:
    return st.lists(requirements(key), max_size=6).map(LabelSelector.of)


def label_maps(key: st.SearchStrategy[str] = keys) -> st.SearchStrategy[dict[str, str]]:
    return st.dictionaries(key, values, max_size=6)
