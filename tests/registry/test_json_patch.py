"""JSON Patch (``engenho.registry.patches.apply_json_patch``): the examples of RFC 6902
Appendix A, the apiserver's departures from the RFC (evanphx/json-patch v4), the error
mapping (400 for a body that is not an array of objects, 422 for an operation that cannot
apply, 413 past 10,000 operations) and hypothesis properties of the operations."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engenho.registry.errors import BadRequestError, InvalidError, RequestEntityTooLargeError
from engenho.registry.patches import (
    JSON_PATCH_MAX_COPY_BYTES,
    MAX_JSON_PATCH_OPERATIONS,
    apply_json_patch,
)

Json = dict[str, Any]


def applied(target: Any, *operations: Json) -> Any:
    before = copy.deepcopy((target, operations))
    result = apply_json_patch(target, list(operations))
    assert (target, operations) == before, "the arguments are not modified"
    return result


def refused(target: Any, *operations: Json) -> InvalidError:
    with pytest.raises(InvalidError) as caught:
        apply_json_patch(target, list(operations))
    assert caught.value.code == 422
    return caught.value


# RFC 6902 Appendix A


def test_a1_adding_an_object_member() -> None:
    assert applied({"foo": "bar"}, {"op": "add", "path": "/baz", "value": "qux"}) == {
        "baz": "qux",
        "foo": "bar",
    }


def test_a2_adding_an_array_element() -> None:
    assert applied({"foo": ["bar", "baz"]}, {"op": "add", "path": "/foo/1", "value": "qux"}) == {
        "foo": ["bar", "qux", "baz"]
    }


def test_a3_removing_an_object_member() -> None:
    assert applied({"baz": "qux", "foo": "bar"}, {"op": "remove", "path": "/baz"}) == {"foo": "bar"}


def test_a4_removing_an_array_element() -> None:
    assert applied({"foo": ["bar", "qux", "baz"]}, {"op": "remove", "path": "/foo/1"}) == {
        "foo": ["bar", "baz"]
    }


def test_a5_replacing_a_value() -> None:
    assert applied(
        {"baz": "qux", "foo": "bar"}, {"op": "replace", "path": "/baz", "value": "boo"}
    ) == {"baz": "boo", "foo": "bar"}


def test_a6_moving_a_value() -> None:
    target = {"foo": {"bar": "baz", "waldo": "fred"}, "qux": {"corge": "grault"}}
    assert applied(target, {"op": "move", "from": "/foo/waldo", "path": "/qux/thud"}) == {
        "foo": {"bar": "baz"},
        "qux": {"corge": "grault", "thud": "fred"},
    }


def test_a7_moving_an_array_element() -> None:
    target = {"foo": ["all", "grass", "cows", "eat"]}
    assert applied(target, {"op": "move", "from": "/foo/1", "path": "/foo/3"}) == {
        "foo": ["all", "cows", "eat", "grass"]
    }


def test_a8_testing_a_value_success() -> None:
    target = {"baz": "qux", "foo": ["a", 2, "c"]}
    assert (
        applied(
            target,
            {"op": "test", "path": "/baz", "value": "qux"},
            {"op": "test", "path": "/foo/1", "value": 2},
        )
        == target
    )


def test_a9_testing_a_value_error() -> None:
    refused({"baz": "qux"}, {"op": "test", "path": "/baz", "value": "bar"})


def test_a10_adding_a_nested_member_object() -> None:
    assert applied(
        {"foo": "bar"}, {"op": "add", "path": "/child", "value": {"grandchild": {}}}
    ) == {"foo": "bar", "child": {"grandchild": {}}}


def test_a11_ignoring_unrecognized_elements() -> None:
    assert applied({"foo": "bar"}, {"op": "add", "path": "/baz", "value": "qux", "xyz": 123}) == {
        "foo": "bar",
        "baz": "qux",
    }


def test_a12_adding_to_a_nonexistent_target() -> None:
    refused({"foo": "bar"}, {"op": "add", "path": "/baz/bat", "value": "qux"})


def test_a14_escape_ordering() -> None:
    target = {"/": 9, "~1": 10}
    assert applied(target, {"op": "test", "path": "/~01", "value": 10}) == target


def test_a15_comparing_strings_and_numbers() -> None:
    refused({"/": 9, "~1": 10}, {"op": "test", "path": "/~01", "value": "10"})


def test_a16_adding_an_array_value() -> None:
    assert applied({"foo": ["bar"]}, {"op": "add", "path": "/foo/-", "value": ["abc", "def"]}) == {
        "foo": ["bar", ["abc", "def"]]
    }


def test_escaped_slash_in_a_member_name() -> None:
    target = {"metadata": {"labels": {"app.kubernetes.io/name": "web"}}}
    path = "/metadata/labels/app.kubernetes.io~1name"
    assert applied(target, {"op": "replace", "path": path, "value": "db"}) == {
        "metadata": {"labels": {"app.kubernetes.io/name": "db"}}
    }


# Where the apiserver departs from RFC 6902


def test_replace_of_a_missing_member_adds_it() -> None:
    assert applied({"a": 1}, {"op": "replace", "path": "/b", "value": 2}) == {"a": 1, "b": 2}


@pytest.mark.parametrize(
    ("operation", "expected"),
    [
        pytest.param({"op": "remove", "path": "/l/-1"}, [1, 2], id="remove-last"),
        pytest.param({"op": "remove", "path": "/l/-3"}, [2, 3], id="remove-first"),
        pytest.param({"op": "add", "path": "/l/-1", "value": 9}, [1, 2, 3, 9], id="add-at-end"),
        pytest.param({"op": "add", "path": "/l/-4", "value": 9}, [9, 1, 2, 3], id="add-first"),
        pytest.param({"op": "replace", "path": "/l/-2", "value": 9}, [1, 9, 3], id="replace"),
        pytest.param({"op": "add", "path": "/l/01", "value": 9}, [1, 9, 2, 3], id="zero-padded"),
        pytest.param({"op": "add", "path": "/l/+1", "value": 9}, [1, 9, 2, 3], id="signed"),
        pytest.param({"op": "add", "path": "/l/3", "value": 9}, [1, 2, 3, 9], id="add-at-length"),
    ],
)
def test_array_indexes(operation: Json, expected: list[int]) -> None:
    assert applied({"l": [1, 2, 3]}, operation) == {"l": expected}


@pytest.mark.parametrize(
    "operation",
    [
        pytest.param({"op": "remove", "path": "/l/3"}, id="remove-past-end"),
        pytest.param({"op": "remove", "path": "/l/-4"}, id="remove-before-start"),
        pytest.param({"op": "add", "path": "/l/4", "value": 9}, id="add-past-length"),
        pytest.param({"op": "add", "path": "/l/-5", "value": 9}, id="add-before-start"),
        pytest.param({"op": "replace", "path": "/l/3", "value": 9}, id="replace-past-end"),
        pytest.param({"op": "add", "path": "/l/x", "value": 9}, id="not-a-number"),
        pytest.param({"op": "add", "path": "/l/1.0", "value": 9}, id="not-an-integer"),
        pytest.param({"op": "remove", "path": "/l/-"}, id="dash-only-for-add"),
        pytest.param({"op": "test", "path": "/l/9", "value": 1}, id="test-past-end"),
    ],
)
def test_bad_array_indexes(operation: Json) -> None:
    refused({"l": [1, 2, 3]}, operation)


def test_add_at_the_root_is_refused() -> None:
    refused({"a": 1}, {"op": "add", "path": "", "value": {"b": 2}})


def test_replace_at_the_root() -> None:
    assert applied({"a": 1}, {"op": "replace", "path": "", "value": {"b": 2}}) == {"b": 2}
    refused({"a": 1}, {"op": "replace", "path": "", "value": 3})


def test_a_missing_value_is_null() -> None:
    assert applied({"a": 1}, {"op": "add", "path": "/b"}) == {"a": 1, "b": None}
    assert applied({"a": 1}, {"op": "replace", "path": "/a"}) == {"a": None}


def test_copy_from_a_missing_member_copies_null() -> None:
    assert applied({"a": 1}, {"op": "copy", "from": "/zz", "path": "/b"}) == {"a": 1, "b": None}


@pytest.mark.parametrize(
    "operation",
    [
        pytest.param({"op": "test", "path": "/zz", "value": None}, id="null-value"),
        pytest.param({"op": "test", "path": "/zz"}, id="no-value"),
        pytest.param({"op": "test", "path": "/n", "value": None}, id="present-null"),
    ],
)
def test_a_missing_member_tests_as_null(operation: Json) -> None:
    assert applied({"a": 1, "n": None}, operation) == {"a": 1, "n": None}


@pytest.mark.parametrize(
    ("actual", "expected"),
    [
        pytest.param(1, 1.0, id="int-float"),
        pytest.param(1, True, id="int-bool"),
        pytest.param(0, False, id="zero-false"),
        pytest.param("1", 1, id="string-number"),
        pytest.param({"a": 1}, {"a": 1, "b": None}, id="extra-null-member"),
        pytest.param([1, 2], [2, 1], id="array-order"),
        pytest.param({"a": [1]}, {"a": [1.0]}, id="nested-float"),
        pytest.param(1, None, id="value-null"),
    ],
)
def test_test_compares_json_values(actual: Any, expected: Any) -> None:
    refused({"x": actual}, {"op": "test", "path": "/x", "value": expected})


def test_test_of_equal_structures_passes() -> None:
    target = {"x": {"a": [1, {"b": None}], "c": "d"}}
    value = {"c": "d", "a": [1, {"b": None}]}
    assert applied(target, {"op": "test", "path": "/x", "value": value}) == target
    assert applied(target, {"op": "test", "path": "", "value": copy.deepcopy(target)}) == target


def test_a_path_without_leading_slash_starts_at_the_root() -> None:
    """The library ignores whatever comes before the first ``/``."""
    assert applied({"a": {}}, {"op": "add", "path": "x/b", "value": 1}) == {"a": {}, "b": 1}


def test_move_into_its_own_child_is_refused() -> None:
    refused({"a": {"b": 1}}, {"op": "move", "from": "/a", "path": "/a/c"})


def test_move_to_the_same_place_is_a_no_op() -> None:
    assert applied({"a": 1}, {"op": "move", "from": "/a", "path": "/a"}) == {"a": 1}


def test_copy_size_is_limited() -> None:
    big = "x" * (JSON_PATCH_MAX_COPY_BYTES // 4)
    copies = [{"op": "copy", "from": "/big", "path": f"/c{i}"} for i in range(3)]
    assert len(applied({"big": big}, *copies)) == 4
    error = refused({"big": big}, *copies, {"op": "copy", "from": "/big", "path": "/c9"})
    assert "exceeding the limit" in error.message


def test_values_are_copied_from_the_operations() -> None:
    operations = [
        {"op": "add", "path": "/a", "value": {"b": []}},
        {"op": "add", "path": "/a/b/-", "value": 1},
    ]
    assert apply_json_patch({}, operations) == {"a": {"b": [1]}}
    assert operations[0]["value"] == {"b": []}


# The error mapping


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"op": "add", "path": "/a", "value": 1}, id="object"),
        pytest.param("add", id="string"),
        pytest.param(7, id="number"),
        pytest.param([1], id="number-element"),
        pytest.param([[]], id="array-element"),
        pytest.param([{"op": "test", "path": "/a", "value": 1}, "x"], id="string-element"),
    ],
)
def test_a_body_that_is_not_an_array_of_objects_is_a_400(body: Any) -> None:
    with pytest.raises(BadRequestError) as caught:
        apply_json_patch({"a": 1}, body)
    assert caught.value.code == 400


def test_a_null_body_is_an_empty_patch() -> None:
    assert apply_json_patch({"a": 1}, None) == {"a": 1}


@pytest.mark.parametrize(
    "operation",
    [
        pytest.param({"op": "bogus", "path": "/a"}, id="unknown-op"),
        pytest.param({"path": "/a", "value": 1}, id="no-op"),
        pytest.param({"op": 1, "path": "/a"}, id="op-not-a-string"),
        pytest.param({"op": "add", "value": 1}, id="no-path"),
        pytest.param({"op": "add", "path": 1, "value": 1}, id="path-not-a-string"),
        pytest.param({"op": "move", "path": "/b"}, id="no-from"),
        pytest.param({"op": "remove", "path": "/zz"}, id="remove-missing"),
        pytest.param({"op": "remove", "path": ""}, id="remove-root"),
        pytest.param({"op": "add", "path": "/zz/a", "value": 1}, id="add-under-missing"),
        pytest.param({"op": "add", "path": "/a/b", "value": 1}, id="add-under-scalar"),
        pytest.param({"op": "move", "from": "/zz", "path": "/b"}, id="move-missing"),
        pytest.param({"op": "copy", "from": "/zz/y", "path": "/b"}, id="copy-under-missing"),
        pytest.param({"op": "test", "path": "/a", "value": 2}, id="test-fails"),
        pytest.param({"op": "test", "path": "/zz/y", "value": None}, id="test-under-missing"),
    ],
)
def test_an_operation_that_cannot_apply_is_a_422(operation: Json) -> None:
    error = refused({"a": 1}, operation)
    assert error.message.startswith(
        "the server rejected our request due to an error in our request"
    )


def test_a_null_operation_is_an_unknown_one() -> None:
    with pytest.raises(InvalidError, match="Unexpected kind: unknown"):
        apply_json_patch({}, [None])


def test_a_failure_applies_nothing() -> None:
    target = {"a": 1}
    with pytest.raises(InvalidError):
        apply_json_patch(
            target,
            [{"op": "add", "path": "/b", "value": 2}, {"op": "test", "path": "/a", "value": 9}],
        )
    assert target == {"a": 1}


def test_operation_limit() -> None:
    at_limit = [{"op": "test", "path": "/a", "value": 1}] * MAX_JSON_PATCH_OPERATIONS
    assert apply_json_patch({"a": 1}, at_limit) == {"a": 1}
    with pytest.raises(RequestEntityTooLargeError) as caught:
        apply_json_patch({"a": 1}, [*at_limit, at_limit[0]])
    assert caught.value.code == 413
    assert caught.value.message == (
        "The allowed maximum operations in a JSON patch is 10000, got 10001"
    )


def test_a_malformed_body_is_a_400_before_it_is_a_413() -> None:
    with pytest.raises(BadRequestError):
        apply_json_patch({}, [1] * (MAX_JSON_PATCH_OPERATIONS + 1))


# Properties

names = st.sampled_from(["a", "b", "c", "x/y", "m~n"])
scalars = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.sampled_from(["s", "t"]))
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(names, inner, max_size=3),
    max_leaves=8,
)
documents = st.dictionaries(names, values, max_size=4)


def pointer(*tokens: str) -> str:
    return "".join("/" + token.replace("~", "~0").replace("/", "~1") for token in tokens)


@given(documents, names, values)
def test_add_then_remove_is_identity(document: Json, name: str, value: Any) -> None:
    if name in document:
        return
    path = pointer(name)
    added = applied(document, {"op": "add", "path": path, "value": value})
    assert added[name] == value
    assert applied(added, {"op": "remove", "path": path}) == document


@given(documents)
def test_testing_every_member_passes(document: Json) -> None:
    tests = [{"op": "test", "path": pointer(k), "value": v} for k, v in document.items()]
    assert applied(document, *tests) == document


@given(documents, names, values)
def test_replace_then_test_passes(document: Json, name: str, value: Any) -> None:
    operations = [
        {"op": "replace", "path": pointer(name), "value": value},
        {"op": "test", "path": pointer(name), "value": value},
    ]
    assert applied(document, *operations)[name] == value


@given(documents, names, names)
def test_copy_then_test_passes(document: Json, source: str, target: str) -> None:
    if source not in document:
        return
    operations = [
        {"op": "copy", "from": pointer(source), "path": pointer(target)},
        {"op": "test", "path": pointer(target), "value": document[source]},
    ]
    assert applied(document, *operations)[target] == document[source]


@given(documents, names, names)
def test_move_there_and_back_is_identity(document: Json, source: str, target: str) -> None:
    if source not in document or target in document:
        return
    there = {"op": "move", "from": pointer(source), "path": pointer(target)}
    back = {"op": "move", "from": pointer(target), "path": pointer(source)}
    assert applied(document, there, back) == document


@given(st.lists(values, max_size=5), st.integers(-6, 6), values)
def test_array_add_inserts_before_the_index(items: list[Any], index: int, value: Any) -> None:
    size = len(items) + 1
    operation = {"op": "add", "path": f"/l/{index}", "value": value}
    if -size <= index < size:
        position = index + size if index < 0 else index
        expected = [*items[:position], value, *items[position:]]
        assert applied({"l": items}, operation) == {"l": expected}
    else:
        refused({"l": items}, operation)
