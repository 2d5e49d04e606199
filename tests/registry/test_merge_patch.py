"""JSON merge patch (``engenho.registry.patches.apply_merge_patch``): RFC 7386 section 3 and
every example of its Appendix A, where the apiserver's merge patch (evanphx/json-patch v4)
departs from the RFC, and hypothesis properties (idempotence, null removes, non-object
patches replace, agreement with the RFC's own algorithm)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engenho.registry.patches import apply_merge_patch

APPENDIX_A = [
    ({"a": "b"}, {"a": "c"}, {"a": "c"}),
    ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ({"a": "b"}, {"a": None}, {}),
    ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
    ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
    ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
    ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
    ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
    (["a", "b"], ["c", "d"], ["c", "d"]),
    ({"a": "b"}, ["c"], ["c"]),
    ({"a": "foo"}, None, None),
    ({"a": "foo"}, "bar", "bar"),
    ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
    ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
    ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
]


@pytest.mark.parametrize(("target", "patch", "expected"), APPENDIX_A)
def test_rfc_7386_appendix_a(target: Any, patch: Any, expected: Any) -> None:
    before = copy.deepcopy((target, patch))
    assert apply_merge_patch(target, patch) == expected
    assert (target, patch) == before, "the arguments are not modified"


def test_rfc_7386_section_3_example() -> None:
    target = {
        "title": "Goodbye!",
        "author": {"givenName": "John", "familyName": "Doe"},
        "tags": ["example", "sample"],
        "content": "This will be unchanged",
    }
    patch = {
        "title": "Hello!",
        "phoneNumber": "+01-123-456-7890",
        "author": {"familyName": None},
        "tags": ["example"],
    }
    assert apply_merge_patch(target, patch) == {
        "title": "Hello!",
        "author": {"givenName": "John"},
        "tags": ["example"],
        "content": "This will be unchanged",
        "phoneNumber": "+01-123-456-7890",
    }


@pytest.mark.parametrize(
    ("target", "patch", "expected"),
    [
        pytest.param(
            {},
            {"a": [{"b": None, "c": 1}]},
            {"a": [{"c": 1}]},
            id="new-member-loses-nulls-inside-arrays",
        ),
        pytest.param(
            {"a": None},
            {"a": [{"b": None}]},
            {"a": [{}]},
            id="null-member-counts-as-absent",
        ),
        pytest.param(
            {"a": [1]},
            {"a": [{"b": {"c": None, "d": 2}}]},
            {"a": [{"b": {"d": 2}}]},
            id="array-replacing-array-loses-nested-nulls",
        ),
        pytest.param(
            {"a": {"x": 1}},
            {"a": [{"b": None}]},
            {"a": [{"b": None}]},
            id="array-replacing-object-keeps-nulls",
        ),
        pytest.param({}, {"a": [None, 1]}, {"a": [None, 1]}, id="null-array-elements-stay"),
        pytest.param(
            {"spec": {"containers": [{"name": "a"}]}},
            {"spec": {"containers": [{"name": "a", "image": "x", "command": None}]}},
            {"spec": {"containers": [{"name": "a", "image": "x"}]}},
            id="kubernetes-list-replaced-without-nulls",
        ),
    ],
)
def test_where_upstream_departs_from_the_rfc(target: Any, patch: Any, expected: Any) -> None:
    assert apply_merge_patch(target, patch) == expected


def test_upstream_is_not_idempotent_for_nulls_in_an_array_replacing_an_object() -> None:
    """The one corner where applying a patch twice differs from once, upstream as here."""
    patch = {"a": [{"b": None}]}
    once = apply_merge_patch({"a": {"x": 1}}, patch)
    assert once == {"a": [{"b": None}]}
    assert apply_merge_patch(once, patch) == {"a": [{}]}


def test_kubectl_label_removal() -> None:
    target = {"metadata": {"name": "p", "labels": {"app": "web", "tier": "db"}}}
    patch = {"metadata": {"labels": {"tier": None}}}
    assert apply_merge_patch(target, patch) == {"metadata": {"name": "p", "labels": {"app": "web"}}}


# Properties

keys = st.sampled_from(["a", "b", "c", "d"])
scalars = st.one_of(st.booleans(), st.integers(-3, 3), st.sampled_from(["x", "y"]))
null_free = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=3),
    max_leaves=8,
)
documents = st.recursive(
    st.one_of(st.none(), scalars),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=3),
    max_leaves=12,
)
# Patches: objects whose members may be null; arrays inside hold no nulls (see the corner above).
patches = st.recursive(
    st.one_of(st.none(), scalars, st.lists(null_free, max_size=3)),
    lambda inner: st.dictionaries(keys, inner, max_size=3),
    max_leaves=12,
).filter(lambda patch: isinstance(patch, dict))


def rfc_merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 section 2, word for word."""
    if isinstance(patch, dict):
        if not isinstance(target, dict):
            target = {}
        target = dict(target)
        for name, value in patch.items():
            if value is None:
                target.pop(name, None)
            else:
                target[name] = rfc_merge_patch(target.get(name), value)
        return target
    return patch


@given(documents, patches)
def test_applying_twice_is_applying_once(target: Any, patch: dict[str, Any]) -> None:
    once = apply_merge_patch(target, patch)
    assert apply_merge_patch(once, patch) == once


@given(documents, patches)
def test_agrees_with_the_rfc_when_no_null_is_inside_an_array(target: Any, patch: Any) -> None:
    assert apply_merge_patch(target, patch) == rfc_merge_patch(target, patch)


@given(st.dictionaries(keys, documents, max_size=4), keys)
def test_null_removes_the_member(target: dict[str, Any], key: str) -> None:
    result = apply_merge_patch(target, {key: None})
    expected = dict(target)
    expected.pop(key, None)
    assert result == expected


@given(documents, st.one_of(st.none(), scalars, st.lists(documents, max_size=3)))
def test_non_object_patch_replaces(target: Any, patch: Any) -> None:
    assert apply_merge_patch(target, patch) == patch


@given(st.dictionaries(keys, documents, max_size=4))
def test_empty_patch_is_identity(target: dict[str, Any]) -> None:
    assert apply_merge_patch(target, {}) == target


@given(documents, patches)
def test_arguments_are_never_modified(target: Any, patch: Any) -> None:
    before = copy.deepcopy((target, patch))
    result = apply_merge_patch(target, patch)
    assert (target, patch) == before
    scramble(result)
    assert (target, patch) == before, "the result shares nothing with the arguments"


def scramble(value: Any) -> None:
    """Empty every object and array inside ``value``."""
    children = value.values() if isinstance(value, dict) else value
    if isinstance(value, dict | list):
        for child in list(children):
            scramble(child)
        value.clear()
