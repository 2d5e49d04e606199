"""Strategic merge patch (``engenho.registry.strategic``) against upstream's semantics.

A table of hand-worked cases modelled on apimachinery ``strategicpatch/patch_test.go``, adapted
to real Kubernetes types since the merge is driven by the generated schema: Pod containers by
``name``, ports by ``containerPort``, env by ``name``, volumes (``merge,retainKeys``),
tolerations (atomic), finalizers (merge, scalars), conditions by ``type``, Deployment strategy
(``retainKeys``), Service ports by ``port``, PodDisruptionBudget selector (``replace``). Then
the malformed patches refused, and hypothesis properties that hold upstream.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engenho.registry.errors import BadRequestError, InvalidError
from engenho.registry.patches import apply_merge_patch
from engenho.registry.strategic import strategic_merge
from engenho.schema import Definition, definition_for

Json = dict[str, Any]

POD = definition_for("v1", "Pod")
DEPLOYMENT = definition_for("apps/v1", "Deployment")
SERVICE = definition_for("v1", "Service")
PDB = definition_for("policy/v1", "PodDisruptionBudget")
CONFIGMAP = definition_for("v1", "ConfigMap")


def named(*names: str, **fields: Any) -> list[Json]:
    """Elements keyed by ``name`` (containers, env, volumes), each with ``fields``."""
    return [{"name": name, **fields} for name in names]


def containers(items: list[Json]) -> Json:
    return {"spec": {"containers": items}}


def finalizers(items: Any) -> Json:
    return {"metadata": {"finalizers": items}}


def labels(items: Any) -> Json:
    return {"metadata": {"labels": items}}


def case(
    case_id: str, original: Json, patch: Json, expected: Json, schema: Definition = POD
) -> Any:
    return pytest.param(schema, original, patch, expected, id=case_id)


CASES = [
    # Maps: merge recursively, null deletes.
    case("map-add-key", labels({"a": "1"}), labels({"b": "2"}), labels({"a": "1", "b": "2"})),
    case("map-change-key", labels({"a": "1"}), labels({"a": "2"}), labels({"a": "2"})),
    case(
        "map-null-deletes-key",
        labels({"a": "1", "b": "2"}),
        labels({"a": None}),
        labels({"b": "2"}),
    ),
    case(
        "map-null-for-missing-key-is-no-op",
        labels({"a": "1"}),
        labels({"zz": None}),
        labels({"a": "1"}),
    ),
    case(
        "new-map-of-only-nulls-is-empty",
        {"metadata": {"name": "p"}},
        labels({"x": None}),
        {"metadata": {"name": "p", "labels": {}}},
    ),
    case(
        "new-map-discards-nested-nulls",
        {"spec": {}},
        {"spec": {"securityContext": {"runAsUser": 1, "runAsGroup": None, "seLinuxOptions": {}}}},
        {"spec": {"securityContext": {"runAsUser": 1, "seLinuxOptions": {}}}},
    ),
    case(
        "nulls-in-the-original-are-kept",
        {"spec": {"nodeName": None, "hostname": "a"}},
        {"spec": {"hostname": "b"}},
        {"spec": {"nodeName": None, "hostname": "b"}},
    ),
    case(
        "value-of-another-type-replaces",
        {"metadata": {"annotations": {"a": "1"}}},
        {"metadata": {"annotations": "not-a-map"}},
        {"metadata": {"annotations": "not-a-map"}},
    ),
    case(
        "new-list-drops-directive-elements",
        {"spec": {}},
        {"spec": {"volumes": [{"name": "a", "$patch": "delete"}, {"name": "b", "emptyDir": {}}]}},
        {"spec": {"volumes": [{"name": "b", "emptyDir": {}}]}},
    ),
    case(
        "unknown-dollar-key-is-an-ordinary-field",
        {"spec": {"hostname": "a"}},
        {"spec": {"$unknown": 1}},
        {"spec": {"hostname": "a", "$unknown": 1}},
    ),
    # $patch on maps.
    case(
        "map-patch-delete-leaves-empty-map",
        {"spec": {"securityContext": {"runAsUser": 1, "runAsGroup": 2}}},
        {"spec": {"securityContext": {"$patch": "delete"}}},
        {"spec": {"securityContext": {}}},
    ),
    case(
        "map-patch-delete-of-absent-map-adds-nothing",
        {"spec": {"hostname": "a"}},
        {"spec": {"securityContext": {"$patch": "delete"}}},
        {"spec": {"hostname": "a"}},
    ),
    case(
        "map-patch-replace",
        labels({"a": "1", "b": "2"}),
        labels({"$patch": "replace", "c": "3"}),
        labels({"c": "3"}),
    ),
    case(
        "map-patch-replace-alone-empties",
        labels({"a": "1"}),
        labels({"$patch": "replace"}),
        labels({}),
    ),
    case(
        "whole-object-patch-replace",
        {"kind": "Pod", "metadata": {"name": "p", "labels": {"a": "1"}}, "spec": {}},
        {"$patch": "replace", "kind": "Pod", "metadata": {"name": "q"}},
        {"kind": "Pod", "metadata": {"name": "q"}},
    ),
    case("whole-object-patch-delete", {"kind": "Pod", "spec": {}}, {"$patch": "delete"}, {}),
    case(
        "replace-strategy-map-is-replaced",
        {"spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "a"}}}},
        {"spec": {"selector": {"matchExpressions": [{"key": "k", "operator": "Exists"}]}}},
        {
            "spec": {
                "minAvailable": 1,
                "selector": {"matchExpressions": [{"key": "k", "operator": "Exists"}]},
            }
        },
        PDB,
    ),
    case(
        "map-field-of-map-type-merges",
        {"data": {"a": "1", "b": "2"}},
        {"data": {"b": None, "c": "3"}},
        {"data": {"a": "1", "c": "3"}},
        CONFIGMAP,
    ),
    # $retainKeys.
    case(
        "retain-keys-clears-unlisted",
        {"spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}}},
        {"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}},
        {"spec": {"strategy": {"type": "Recreate"}}},
        DEPLOYMENT,
    ),
    case(
        "retain-keys-adds-listed",
        {"spec": {"strategy": {"type": "Recreate"}}},
        {
            "spec": {
                "strategy": {
                    "$retainKeys": ["type", "rollingUpdate"],
                    "type": "RollingUpdate",
                    "rollingUpdate": {"maxSurge": 2},
                }
            }
        },
        {"spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 2}}}},
        DEPLOYMENT,
    ),
    case(
        "retain-keys-allows-nulls-of-unlisted",
        {"spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}}},
        {
            "spec": {
                "strategy": {"$retainKeys": ["type"], "type": "Recreate", "rollingUpdate": None}
            }
        },
        {"spec": {"strategy": {"type": "Recreate"}}},
        DEPLOYMENT,
    ),
    case(
        "retain-keys-field-without-directive-merges",
        {"spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}}},
        {"spec": {"strategy": {"rollingUpdate": {"maxUnavailable": 0}}}},
        {
            "spec": {
                "strategy": {
                    "type": "RollingUpdate",
                    "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
                }
            }
        },
        DEPLOYMENT,
    ),
    case(
        "retain-keys-in-a-merged-list-element",
        {"spec": {"volumes": [{"name": "v", "emptyDir": {}}, {"name": "w", "emptyDir": {}}]}},
        {
            "spec": {
                "volumes": [
                    {"name": "v", "$retainKeys": ["name", "configMap"], "configMap": {"name": "c"}}
                ]
            }
        },
        {
            "spec": {
                "volumes": [
                    {"name": "v", "configMap": {"name": "c"}},
                    {"name": "w", "emptyDir": {}},
                ]
            }
        },
    ),
    # Lists merged by key.
    case(
        "keyed-merge-keeps-other-fields",
        containers([{"name": "app", "image": "a:1", "resources": {"limits": {"cpu": "1"}}}]),
        containers([{"name": "app", "image": "a:2"}]),
        containers([{"name": "app", "image": "a:2", "resources": {"limits": {"cpu": "1"}}}]),
    ),
    case(
        "keyed-new-element-comes-first",
        containers(named("a", "b")),
        containers(named("c")),
        containers(named("c", "a", "b")),
    ),
    case(
        "keyed-new-element-follows-the-last-shared-one",
        containers(named("a", "b", "c")),
        containers([{"name": "b", "image": "x"}, {"name": "d"}]),
        containers([{"name": "a"}, {"name": "b", "image": "x"}, {"name": "d"}, {"name": "c"}]),
    ),
    case(
        "keyed-patch-order-wins",
        containers(named("1", "2", "3")),
        containers([{"name": "3", "image": "c"}, {"name": "1", "image": "a"}, {"name": "2"}]),
        containers([{"name": "3", "image": "c"}, {"name": "1", "image": "a"}, {"name": "2"}]),
    ),
    case(
        "keyed-unnamed-elements-keep-their-place",
        containers(named("1", "2", "3")),
        containers([{"name": "3", "image": "c"}, {"name": "1", "image": "a"}]),
        containers([{"name": "2"}, {"name": "3", "image": "c"}, {"name": "1", "image": "a"}]),
    ),
    case(
        "keyed-delete",
        containers(named("a", "b")),
        containers([{"name": "a", "$patch": "delete"}]),
        containers(named("b")),
    ),
    case(
        "keyed-delete-removes-every-duplicate",
        containers(
            [
                {
                    "name": "app",
                    "env": [
                        {"name": "x", "value": "1"},
                        {"name": "x", "value": "2"},
                        {"name": "y", "value": "3"},
                        {"name": "z"},
                        {"name": "z"},
                    ],
                }
            ]
        ),
        containers(
            [
                {
                    "name": "app",
                    "env": [{"name": "x", "$patch": "delete"}, {"name": "z", "$patch": "delete"}],
                }
            ]
        ),
        containers([{"name": "app", "env": [{"name": "y", "value": "3"}]}]),
    ),
    case(
        "keyed-delete-of-missing-element",
        containers(named("a")),
        containers([{"name": "b", "$patch": "delete"}]),
        containers(named("a")),
    ),
    case(
        "keyed-add-and-delete",
        containers(named("a", "b")),
        containers([{"name": "b", "$patch": "delete"}, {"name": "c"}]),
        containers(named("c", "a")),
    ),
    case(
        "keyed-patch-replace",
        containers(named("a", "b")),
        containers([{"$patch": "replace"}, {"name": "c", "image": "x"}]),
        containers([{"name": "c", "image": "x"}]),
    ),
    case(
        "keyed-patch-replace-alone-empties",
        containers(named("a", "b")),
        containers([{"$patch": "replace"}]),
        containers([]),
    ),
    case(
        "keyed-null-field-deletes-inside-element",
        containers([{"name": "a", "image": "x", "workingDir": "/w"}]),
        containers([{"name": "a", "workingDir": None}]),
        containers([{"name": "a", "image": "x"}]),
    ),
    case(
        "keyed-new-element-loses-its-nulls",
        containers(named("a")),
        containers([{"name": "b", "image": "x", "command": None}]),
        containers([{"name": "b", "image": "x"}, {"name": "a"}]),
    ),
    case(
        "keyed-empty-patch-list-changes-nothing",
        containers(named("a", "b")),
        containers([]),
        containers(named("a", "b")),
    ),
    case(
        "ports-by-integer-container-port",
        containers([{"name": "a", "ports": [{"containerPort": 80}, {"containerPort": 443}]}]),
        containers([{"name": "a", "ports": [{"containerPort": 443, "name": "https"}]}]),
        containers(
            [
                {
                    "name": "a",
                    "ports": [{"containerPort": 80}, {"containerPort": 443, "name": "https"}],
                }
            ]
        ),
    ),
    case(
        "merge-key-80.0-is-not-80",
        containers([{"name": "a", "ports": [{"containerPort": 80}]}]),
        containers([{"name": "a", "ports": [{"containerPort": 80.0, "name": "http"}]}]),
        containers(
            [
                {
                    "name": "a",
                    "ports": [{"containerPort": 80.0, "name": "http"}, {"containerPort": 80}],
                }
            ]
        ),
    ),
    case(
        "nested-keyed-lists-merge",
        containers(
            [{"name": "a", "env": [{"name": "X", "value": "1"}, {"name": "Y", "value": "2"}]}]
        ),
        containers([{"name": "a", "env": [{"name": "Y", "value": "3"}]}]),
        containers(
            [{"name": "a", "env": [{"name": "X", "value": "1"}, {"name": "Y", "value": "3"}]}]
        ),
    ),
    case(
        "atomic-list-inside-element-is-replaced",
        containers([{"name": "a", "args": ["x", "y"]}]),
        containers([{"name": "a", "args": ["z"]}]),
        containers([{"name": "a", "args": ["z"]}]),
    ),
    case(
        "conditions-by-type",
        {
            "status": {
                "conditions": [
                    {"type": "Initialized", "status": "True"},
                    {"type": "Ready", "status": "False", "reason": "Starting"},
                ]
            }
        },
        {"status": {"conditions": [{"type": "Ready", "status": "True", "reason": None}]}},
        {
            "status": {
                "conditions": [
                    {"type": "Initialized", "status": "True"},
                    {"type": "Ready", "status": "True"},
                ]
            }
        },
    ),
    case(
        "service-ports-by-port",
        {"spec": {"ports": [{"port": 80, "targetPort": 8080}, {"port": 443}]}},
        {"spec": {"ports": [{"port": 80, "targetPort": 9090}]}},
        {"spec": {"ports": [{"port": 80, "targetPort": 9090}, {"port": 443}]}},
        SERVICE,
    ),
    # Lists without a strategy are atomic.
    case(
        "atomic-list-replaced",
        {"spec": {"tolerations": [{"key": "a"}, {"key": "b"}]}},
        {"spec": {"tolerations": [{"key": "c"}]}},
        {"spec": {"tolerations": [{"key": "c"}]}},
    ),
    case(
        "atomic-list-keeps-directive-elements-raw",
        {"spec": {"tolerations": [{"key": "a"}]}},
        {"spec": {"tolerations": [{"key": "b", "$patch": "delete"}]}},
        {"spec": {"tolerations": [{"key": "b", "$patch": "delete"}]}},
    ),
    case(
        "atomic-list-emptied",
        containers([{"name": "a", "args": ["x"]}]),
        containers([{"name": "a", "args": []}]),
        containers([{"name": "a", "args": []}]),
    ),
    # Lists of scalars with the merge strategy.
    case(
        "scalars-union", finalizers(["a", "b"]), finalizers(["b", "c"]), finalizers(["a", "b", "c"])
    ),
    case(
        "scalars-patch-order-wins",
        finalizers(["a", "b", "c"]),
        finalizers(["c", "a"]),
        finalizers(["b", "c", "a"]),
    ),
    case(
        "scalars-full-reorder",
        finalizers(["a", "b", "c"]),
        finalizers(["c", "a", "b"]),
        finalizers(["c", "a", "b"]),
    ),
    case(
        "scalars-duplicates-collapse",
        finalizers(["a", "a", "b"]),
        finalizers(["c"]),
        finalizers(["c", "a", "b"]),
    ),
    case("scalars-empty-patch-list", finalizers(["a"]), finalizers([]), finalizers(["a"])),
    case(
        "scalars-null-deletes-list",
        {"metadata": {"name": "p", "finalizers": ["a"]}},
        finalizers(None),
        {"metadata": {"name": "p"}},
    ),
    case(
        "delete-from-primitive-list",
        finalizers(["a", "b", "c"]),
        {"metadata": {"$deleteFromPrimitiveList/finalizers": ["b"]}},
        finalizers(["a", "c"]),
    ),
    case(
        "delete-from-primitive-list-missing-value",
        finalizers(["a", "b"]),
        {"metadata": {"$deleteFromPrimitiveList/finalizers": ["z"]}},
        finalizers(["a", "b"]),
    ),
    case(
        "delete-from-primitive-list-absent-list",
        {"metadata": {"name": "p"}},
        {"metadata": {"$deleteFromPrimitiveList/finalizers": ["z"]}},
        {"metadata": {"name": "p"}},
    ),
    case(
        "delete-from-primitive-list-atomic-list",
        containers([{"name": "a", "args": ["x", "y", "z"]}]),
        containers([{"name": "a", "$deleteFromPrimitiveList/args": ["y"]}]),
        containers([{"name": "a", "args": ["x", "z"]}]),
    ),
    case(
        "add-and-delete-from-primitive-list",
        finalizers(["a", "b"]),
        {"metadata": {"finalizers": ["d"], "$deleteFromPrimitiveList/finalizers": ["a"]}},
        finalizers(["d", "b"]),
    ),
    # $setElementOrder.
    case(
        "order-only",
        containers(named("1", "3", "4", "2")),
        {"spec": {"$setElementOrder/containers": named("4", "2", "3", "1")}},
        containers(named("4", "2", "3", "1")),
    ),
    case(
        "order-with-server-only-elements",
        containers(named("1", "2", "9", "3", "4")),
        {"spec": {"$setElementOrder/containers": named("2", "1", "4", "3")}},
        containers(named("2", "1", "9", "4", "3")),
    ),
    case(
        "order-with-several-server-only-elements",
        containers(named("1", "2", "7", "9", "8", "3", "4")),
        {"spec": {"$setElementOrder/containers": named("2", "1", "4", "3")}},
        containers(named("2", "1", "7", "9", "8", "4", "3")),
    ),
    case(
        "order-places-additions",
        containers([{"name": "1"}, {"name": "2", "image": "two"}]),
        {
            "spec": {
                "$setElementOrder/containers": named("1", "4", "2", "3"),
                "containers": [{"name": "4", "image": "four"}, {"name": "3", "image": "three"}],
            }
        },
        containers(
            [
                {"name": "1"},
                {"name": "4", "image": "four"},
                {"name": "2", "image": "two"},
                {"name": "3", "image": "three"},
            ]
        ),
    ),
    case(
        "order-naming-an-absent-element",
        containers(named("1", "3")),
        {
            "spec": {
                "$setElementOrder/containers": named("3", "2", "1"),
                "containers": [{"name": "3", "image": "x"}, {"name": "1", "image": "y"}],
            }
        },
        containers([{"name": "3", "image": "x"}, {"name": "1", "image": "y"}]),
    ),
    case(
        "order-with-deletion",
        containers(named("a", "b", "c")),
        {
            "spec": {
                "$setElementOrder/containers": named("c", "a"),
                "containers": [{"name": "b", "$patch": "delete"}],
            }
        },
        containers(named("c", "a")),
    ),
    case(
        "order-two-lists",
        {"spec": {"containers": named("a", "b"), "volumes": named("c", "d")}},
        {
            "spec": {
                "$setElementOrder/containers": named("b"),
                "$setElementOrder/volumes": named("d", "c"),
                "containers": [{"name": "a", "$patch": "delete"}],
            }
        },
        {"spec": {"containers": named("b"), "volumes": named("d", "c")}},
    ),
    case(
        "order-duplicates-keep-together",
        containers(
            [
                {"name": "1"},
                {"name": "2", "image": "d1"},
                {"name": "3"},
                {"name": "2", "image": "d2"},
                {"name": "4"},
            ]
        ),
        {"spec": {"$setElementOrder/containers": named("2", "1", "4", "3", "2")}},
        containers(
            [
                {"name": "2", "image": "d1"},
                {"name": "2", "image": "d2"},
                {"name": "1"},
                {"name": "4"},
                {"name": "3"},
            ]
        ),
    ),
    case(
        "order-of-scalars",
        finalizers(["1", "3"]),
        {"metadata": {"$setElementOrder/finalizers": ["3", "2", "1"]}},
        finalizers(["3", "1"]),
    ),
    case(
        "order-of-scalars-with-duplicates",
        finalizers(["1", "2", "3", "2", "4"]),
        {"metadata": {"$setElementOrder/finalizers": ["2", "1", "4", "3", "2"]}},
        finalizers(["2", "2", "1", "4", "3"]),
    ),
    case(
        "order-of-scalars-with-addition-and-deletion",
        finalizers(["a", "b", "c"]),
        {
            "metadata": {
                "$setElementOrder/finalizers": ["c", "d", "a"],
                "finalizers": ["d"],
                "$deleteFromPrimitiveList/finalizers": ["b"],
            }
        },
        finalizers(["c", "d", "a"]),
    ),
    case(
        "order-of-a-list-the-original-lacks",
        {"spec": {"hostname": "h"}},
        {"spec": {"$setElementOrder/containers": named("b", "a"), "containers": named("a")}},
        {"spec": {"hostname": "h", "containers": named("a")}},
    ),
    case(
        "order-of-a-list-nobody-has",
        {"spec": {"hostname": "h"}},
        {"spec": {"$setElementOrder/containers": named("a")}},
        {"spec": {"hostname": "h"}},
    ),
]


@pytest.mark.parametrize(("schema", "original", "patch", "expected"), CASES)
def test_strategic_merge(schema: Definition, original: Json, patch: Json, expected: Json) -> None:
    before = copy.deepcopy((original, patch))
    assert strategic_merge(original, patch, schema) == expected
    assert (original, patch) == before, "the arguments are not modified"


def refusal(case_id: str, original: Json, patch: Any, match: str) -> Any:
    return pytest.param(original, patch, match, id=case_id)


REFUSALS = [
    refusal("patch-not-an-object", {}, ["x"], "must be a JSON object"),
    refusal(
        "map-patch-merge",
        labels({"a": "1"}),
        labels({"$patch": "merge"}),
        "unknown patch type: merge",
    ),
    refusal(
        "map-patch-unknown",
        labels({"a": "1"}),
        labels({"$patch": "keep"}),
        "unknown patch type: keep",
    ),
    refusal(
        "list-patch-merge",
        containers(named("a")),
        containers([{"name": "a", "$patch": "merge"}]),
        "merging lists cannot yet be specified",
    ),
    refusal(
        "list-patch-unknown",
        containers(named("a")),
        containers([{"name": "a", "$patch": "remove"}]),
        "unknown patch type: remove",
    ),
    refusal(
        "delete-without-merge-key",
        containers(named("a")),
        containers([{"$patch": "delete", "image": "x"}]),
        "does not contain declared merge key: name",
    ),
    refusal(
        "element-without-merge-key",
        containers(named("a")),
        containers([{"image": "x"}]),
        "does not contain declared merge key: name",
    ),
    refusal(
        "new-list-element-without-merge-key",
        {"spec": {"containers": []}},
        containers([{"image": "x"}]),
        "does not contain declared merge key: name",
    ),
    refusal(
        "scalar-in-a-keyed-list",
        containers(named("a")),
        containers(["a"]),
        "list element types are not identical",
    ),
    refusal(
        "scalar-in-a-new-keyed-list",
        {"spec": {"containers": []}},
        containers(["a"]),
        "must be objects",
    ),
    refusal(
        "mixed-scalar-types",
        finalizers(["a"]),
        finalizers([1]),
        "list element types are not identical",
    ),
    refusal("null-list-element", finalizers(["a"]), finalizers(["b", None]), "not identical"),
    refusal("list-after-a-scalar", finalizers(["a"]), finalizers([["b"]]), "not identical"),
    refusal(
        "retain-keys-not-a-list",
        {"spec": {"strategy": {"type": "Recreate"}}},
        {"spec": {"strategy": {"$retainKeys": "type", "type": "Recreate"}}},
        "invalid patch format of retainKeys",
    ),
    refusal(
        "retain-keys-missing-patched-key",
        {"spec": {"strategy": {"type": "Recreate"}}},
        {"spec": {"strategy": {"$retainKeys": ["type"], "rollingUpdate": {"maxSurge": 1}}}},
        "rollingUpdate is not in \\$retainKeys",
    ),
    refusal(
        "order-not-a-list",
        containers(named("a")),
        {"spec": {"$setElementOrder/containers": "a"}},
        "must be a list",
    ),
    refusal(
        "order-contradicts-patch-list",
        containers(named("1", "3", "2")),
        {
            "spec": {
                "$setElementOrder/containers": named("1", "2", "3"),
                "containers": named("3", "1"),
            }
        },
        "doesn't match",
    ),
    refusal(
        "order-contradicts-scalar-patch-list",
        finalizers(["1", "3", "2"]),
        {"metadata": {"$setElementOrder/finalizers": ["1", "2", "3"], "finalizers": ["3", "1"]}},
        "doesn't match",
    ),
    refusal(
        "order-lacks-patched-element",
        containers(named("a")),
        {"spec": {"$setElementOrder/containers": named("a"), "containers": named("b")}},
        "doesn't match",
    ),
    refusal(
        "order-entry-without-merge-key",
        containers(named("a")),
        {"spec": {"$setElementOrder/containers": [{"image": "a"}], "containers": named("a")}},
        "does not contain declared merge key",
    ),
    refusal(
        "order-of-a-map",
        labels({"a": "1"}),
        {"metadata": {"$setElementOrder/labels": ["a"]}},
        "labels is not a list",
    ),
    refusal(
        "order-key-without-slash",
        containers(named("a")),
        {"spec": {"$setElementOrdercontainers": named("a")}},
        "invalid patch format of setElementOrder list",
    ),
    refusal(
        "delete-from-key-without-slash",
        finalizers(["a"]),
        {"metadata": {"$deleteFromPrimitiveListfinalizers": ["a"]}},
        "invalid patch format of primitive list",
    ),
]


@pytest.mark.parametrize(("original", "patch", "match"), REFUSALS)
def test_refused(original: Json, patch: Any, match: str) -> None:
    with pytest.raises(BadRequestError, match=match):
        strategic_merge(original, patch, POD)


def test_list_of_lists_is_invalid() -> None:
    """Upstream answers a merged list whose first element is a list 422 (``ErrNoListOfLists``)."""
    with pytest.raises(InvalidError, match="lists of lists are not supported"):
        strategic_merge(finalizers([]), finalizers([["b"]]), POD)


def test_refusal_is_a_400_status() -> None:
    with pytest.raises(BadRequestError) as caught:
        strategic_merge(labels({}), labels({"$patch": "merge"}), POD)
    assert caught.value.status()["code"] == 400


# Properties

names = st.sampled_from(["a", "b", "c", "d", "e", "f"])
scalars = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.sampled_from(["x", "y"]))
keys = st.sampled_from(["hostname", "nodeName", "priority", "x", "y", "spec", "metadata"])
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=3),
    max_leaves=10,
)
objects = st.dictionaries(keys, json_values, max_size=4)
scalar_patches = st.recursive(
    st.dictionaries(keys, scalars, max_size=3),
    lambda inner: st.dictionaries(keys, st.one_of(scalars, inner), max_size=3),
    max_leaves=10,
)


@st.composite
def pods(draw: st.DrawFn) -> Json:
    pod: Json = {"metadata": {"name": "p"}, "spec": {}}
    if draw(st.booleans()):
        pod["metadata"]["labels"] = draw(st.dictionaries(names, names, max_size=3))
    if draw(st.booleans()):
        pod["metadata"]["finalizers"] = draw(st.lists(names, max_size=4, unique=True))
    container_names = draw(st.lists(names, max_size=4, unique=True))
    if container_names or draw(st.booleans()):
        pod["spec"]["containers"] = [
            {
                "name": name,
                "image": draw(names),
                **(
                    {"env": [{"name": e, "value": draw(names)} for e in env]}
                    if (env := draw(st.lists(names, max_size=3, unique=True)))
                    else {}
                ),
            }
            for name in container_names
        ]
    return pod


@st.composite
def pod_patches(draw: st.DrawFn) -> Json:
    """Patches whose every part is idempotent: no list both adds and deletes a value."""
    metadata: Json = {}
    spec: Json = {}
    if draw(st.booleans()):
        metadata["labels"] = draw(st.dictionaries(names, st.one_of(st.none(), names), max_size=3))
    added = draw(st.lists(names, max_size=3, unique=True))
    if added:
        metadata["finalizers"] = added
    deleted = [name for name in draw(st.lists(names, max_size=2, unique=True)) if name not in added]
    if deleted:
        metadata["$deleteFromPrimitiveList/finalizers"] = deleted
    elements = []
    for name in draw(st.lists(names, max_size=4, unique=True)):
        action = draw(st.sampled_from(["merge", "delete", "env"]))
        if action == "delete":
            elements.append({"name": name, "$patch": "delete"})
        elif action == "env":
            env = draw(st.lists(names, min_size=1, max_size=2, unique=True))
            elements.append({"name": name, "env": [{"name": e, "value": "v"} for e in env]})
        else:
            elements.append({"name": name, "image": draw(names)})
    if elements:
        spec["containers"] = elements
    if elements and draw(st.booleans()):
        listed = [e["name"] for e in elements if e.get("$patch") != "delete"]
        extra = draw(st.lists(names, max_size=2, unique=True))
        order = list(dict.fromkeys(listed + [n for n in extra if n not in listed]))
        spec["$setElementOrder/containers"] = [{"name": n} for n in order]
    return {"metadata": metadata, "spec": spec}


def key_names(pod: Json) -> list[str]:
    return [c["name"] for c in pod.get("spec", {}).get("containers", [])]


@given(pods())
def test_empty_patch_is_identity(pod: Json) -> None:
    assert strategic_merge(pod, {}, POD) == pod


@given(objects, scalar_patches)
def test_patch_without_lists_is_a_json_merge_patch(original: Json, patch: Json) -> None:
    assert strategic_merge(original, patch, POD) == apply_merge_patch(original, patch)


@given(pods(), pod_patches())
def test_applying_twice_is_applying_once(pod: Json, patch: Json) -> None:
    once = strategic_merge(pod, patch, POD)
    assert strategic_merge(once, patch, POD) == once


@given(pods(), pod_patches())
def test_keyed_merge_keeps_keys_unique_and_complete(pod: Json, patch: Json) -> None:
    result = strategic_merge(pod, patch, POD)
    merged = key_names(result)
    assert len(merged) == len(set(merged))
    elements = patch["spec"].get("containers", [])
    deleted = {e["name"] for e in elements if e.get("$patch") == "delete"}
    added = {e["name"] for e in elements} - deleted
    assert set(merged) == (set(key_names(pod)) - deleted) | added


@given(pods(), pod_patches())
def test_relative_orders_are_kept(pod: Json, patch: Json) -> None:
    """The patch's elements keep the patch's order, the others the original's order."""
    patch["spec"].pop("$setElementOrder/containers", None)
    result = key_names(strategic_merge(pod, patch, POD))
    elements = patch["spec"].get("containers", [])
    named_in_patch = [e["name"] for e in elements if e.get("$patch") != "delete"]
    assert [n for n in result if n in named_in_patch] == named_in_patch
    others = [n for n in key_names(pod) if n not in {e["name"] for e in elements}]
    assert [n for n in result if n not in named_in_patch] == others


@given(pods(), st.lists(names, max_size=4, unique=True))
def test_scalar_merge_is_a_union_in_patch_order(pod: Json, added: list[str]) -> None:
    original = pod["metadata"].get("finalizers", [])
    result = strategic_merge(pod, finalizers(added), POD)["metadata"]["finalizers"]
    assert len(result) == len(set(result)) and set(result) == set(original) | set(added)
    assert [f for f in result if f in added] == added


@given(pods(), pod_patches())
def test_arguments_are_never_modified(pod: Json, patch: Json) -> None:
    before = copy.deepcopy((pod, patch))
    strategic_merge(pod, patch, POD)
    assert (pod, patch) == before
