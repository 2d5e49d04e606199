"""The Table envelope: includeObject modes, list metadata, empty lists, several rows, row
conditions of finished pods, one-row tables for watch events, rejection of an unknown
includeObject, cell types against column types (with upstream's own mismatches listed), and
the package's public surface."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engenho.api import printing
from engenho.api.printing import (
    INCLUDE_OBJECT_MODES,
    InvalidIncludeObjectError,
    PrintingError,
    column_definitions,
    table,
)
from engenho.api.printing.table import PRINTERS
from tests.api.printing.helpers import FAMILIES, NOW, load, printed

POD = load("pods.yaml")[0]["object"]
BARE_POD = {  # a list item as stored: no apiVersion or kind
    "metadata": {"name": "bare", "namespace": "default", "uid": "u-1", "resourceVersion": "9"},
    "spec": {"containers": [{"name": "app", "image": "app:1"}]},
    "status": {"phase": "Pending"},
}


def test_envelope_and_default_include_object() -> None:
    list_meta = {"resourceVersion": "1234", "continue": "eyJ2IjoxfQ", "remainingItemCount": 7}
    result = table("pods", "", [POD], list_meta=list_meta, now=NOW)
    assert list(result) == ["kind", "apiVersion", "metadata", "columnDefinitions", "rows"]
    assert result["kind"] == "Table"
    assert result["apiVersion"] == "meta.k8s.io/v1"
    assert result["metadata"] == list_meta
    assert result["columnDefinitions"] == column_definitions("pods", "")
    (row,) = result["rows"]
    assert row["object"] == {
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": POD["metadata"],
    }
    assert "conditions" not in row


@pytest.mark.parametrize("mode", ["Metadata", ""])
def test_metadata_mode(mode: str) -> None:
    (row,) = printed("pods", "", BARE_POD, include_object=mode)["rows"]
    assert row["object"]["kind"] == "PartialObjectMetadata"
    assert row["object"]["metadata"] == BARE_POD["metadata"]


def test_metadata_mode_without_metadata() -> None:
    (row,) = printed("configmaps", "", {"data": {"a": "b"}})["rows"]
    assert row["object"]["metadata"] == {}
    assert row["cells"] == ["", 1, "<unknown>"]


def test_none_mode_omits_the_object() -> None:
    (row,) = printed("pods", "", POD, include_object="None")["rows"]
    assert list(row) == ["cells"]


def test_object_mode_carries_the_whole_object() -> None:
    (row,) = printed("pods", "", POD, include_object="Object")["rows"]
    assert row["object"] == POD


def test_object_mode_completes_list_items_with_kind_and_version() -> None:
    (row,) = printed("pods", "", BARE_POD, include_object="Object")["rows"]
    assert row["object"] == {"apiVersion": "v1", "kind": "Pod", **BARE_POD}
    grouped = {"metadata": {"name": "web"}, "spec": {}}
    (row,) = printed("deployments", "apps", grouped, include_object="Object")["rows"]
    assert (row["object"]["apiVersion"], row["object"]["kind"]) == ("apps/v1", "Deployment")
    # Without a printer the kind is unknown here; the object goes out as it came.
    (row,) = printed("widgets", "example.com", grouped, include_object="Object")["rows"]
    assert row["object"] == grouped


def test_objects_are_not_modified() -> None:
    before = copy.deepcopy(BARE_POD)
    for mode in INCLUDE_OBJECT_MODES:
        printed("pods", "", BARE_POD, include_object=mode)
    assert before == BARE_POD


@pytest.mark.parametrize("mode", ["metadata", "Partial", "none", "All"])
def test_unknown_include_object(mode: str) -> None:
    with pytest.raises(InvalidIncludeObjectError) as raised:
        table("pods", "", [POD], list_meta={}, include_object=mode, now=NOW)
    assert raised.value.value == mode
    assert str(raised.value) == (
        f"includeObject: Invalid value: \"{mode}\": must be 'Metadata', 'Object', 'None', or empty"
    )
    assert isinstance(raised.value, PrintingError)
    assert isinstance(raised.value, ValueError)


def test_empty_list_still_has_columns() -> None:
    result = table("pods", "", [], list_meta={"resourceVersion": "5"}, now=NOW)
    assert result["rows"] == []
    assert result["columnDefinitions"] == column_definitions("pods", "")


def test_rows_keep_the_order_of_the_objects() -> None:
    pods = [case["object"] for case in load("pods.yaml")]
    result = table("pods", "", pods, list_meta={}, now=NOW)
    assert [row["cells"][0] for row in result["rows"]] == [p["metadata"]["name"] for p in pods]


def test_one_row_table_for_a_watch_event() -> None:
    result = table("pods", "", [POD], list_meta={"resourceVersion": "77"}, now=NOW)
    assert len(result["rows"]) == 1
    assert result["metadata"] == {"resourceVersion": "77"}


@pytest.mark.parametrize(
    ("phase", "reason", "message"),
    [
        ("Succeeded", "Succeeded", "The pod has completed successfully."),
        ("Failed", "Failed", "The pod failed."),
    ],
)
def test_finished_pods_carry_a_completed_condition(phase: str, reason: str, message: str) -> None:
    pod = {**BARE_POD, "status": {"phase": phase}}
    (row,) = printed("pods", "", pod)["rows"]
    assert row["conditions"] == [
        {"type": "Completed", "status": "True", "reason": reason, "message": message}
    ]
    assert list(row) == ["cells", "conditions", "object"]


# Columns whose cells upstream sends with a JSON type other than the column's declared type.
# They are reproduced as upstream sends them; kubectl prints both the same way.
UPSTREAM_MISMATCHES = {
    ("deployments", "Up-to-date"): int,
    ("deployments", "Available"): int,
    ("controllerrevisions", "Revision"): int,
    ("configmaps", "Data"): int,
    ("secrets", "Data"): int,
    ("serviceaccounts", "Secrets"): int,
    ("events", "Count"): int,
    ("cronjobs", "Suspend"): str,
}
PYTHON_TYPES: dict[str, type] = {"string": str, "integer": int, "boolean": bool, "date": str}


def _all_cases() -> list[dict[str, Any]]:
    return [case for family in FAMILIES for case in load(family)]


def test_every_printer_has_fixture_cases() -> None:
    covered = {(case["group"], case["resource"]) for case in _all_cases()}
    assert set(PRINTERS) <= covered


def test_cells_have_their_columns_types() -> None:
    seen_mismatches: set[tuple[str, str]] = set()
    for case in _all_cases():
        result = printed(case["resource"], case["group"], case["object"])
        for definition, cell in zip(
            result["columnDefinitions"], result["rows"][0]["cells"], strict=True
        ):
            key = (case["resource"], definition["name"])
            expected = UPSTREAM_MISMATCHES.get(key, PYTHON_TYPES[definition["type"]])
            if key in UPSTREAM_MISMATCHES:
                seen_mismatches.add(key)
            assert type(cell) is expected, (case["case"], definition["name"], cell)
    assert seen_mismatches == set(UPSTREAM_MISMATCHES)


def test_public_surface() -> None:
    assert set(printing.__all__) == {
        "INCLUDE_OBJECT_MODES",
        "ColumnDefinition",
        "InvalidIncludeObjectError",
        "PrintingError",
        "column_definitions",
        "human_duration",
        "table",
    }
    assert frozenset({"None", "Metadata", "Object"}) == INCLUDE_OBJECT_MODES


# Field names the printers read, so generated objects reach deep into every row function.
_FIELDS = [
    "metadata",
    "spec",
    "status",
    "name",
    "namespace",
    "creationTimestamp",
    "deletionTimestamp",
    "labels",
    "annotations",
    "ownerReferences",
    "controller",
    "kind",
    "apiVersion",
    "containers",
    "initContainers",
    "containerStatuses",
    "initContainerStatuses",
    "state",
    "lastState",
    "waiting",
    "running",
    "terminated",
    "reason",
    "exitCode",
    "signal",
    "finishedAt",
    "restartCount",
    "ready",
    "started",
    "restartPolicy",
    "conditions",
    "type",
    "phase",
    "podIP",
    "podIPs",
    "ip",
    "nodeName",
    "readinessGates",
    "conditionType",
    "replicas",
    "readyReplicas",
    "selector",
    "matchLabels",
    "matchExpressions",
    "key",
    "operator",
    "values",
    "template",
    "jobTemplate",
    "completions",
    "parallelism",
    "startTime",
    "completionTime",
    "ports",
    "port",
    "nodePort",
    "protocol",
    "clusterIP",
    "clusterIPs",
    "externalIPs",
    "loadBalancer",
    "ingress",
    "hostname",
    "subsets",
    "addresses",
    "endpoints",
    "nodeInfo",
    "data",
    "binaryData",
    "secrets",
    "subjects",
    "roleRef",
    "hard",
    "used",
    "capacity",
    "accessModes",
    "volumeName",
    "series",
    "count",
    "firstTimestamp",
    "lastTimestamp",
    "eventTime",
    "involvedObject",
    "source",
    "minAvailable",
    "maxUnavailable",
    "holderIdentity",
    "revision",
    "unschedulable",
    "timeZone",
    "suspend",
    "active",
    "lastScheduleTime",
]
_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**40), 2**40)
    | st.text(max_size=8)
    | st.sampled_from(["True", "Always", "2025-06-01T11:00:00Z", "0001-01-01T00:00:00+01:00"])
)
_JSON = st.recursive(
    _SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(_FIELDS), inner, max_size=4)
    ),
    max_leaves=24,
)
_RESOURCES = [*PRINTERS, ("rbac.authorization.k8s.io", "roles")]


@given(st.sampled_from(_RESOURCES), st.dictionaries(st.sampled_from(_FIELDS), _JSON))
def test_any_json_object_prints_a_full_row(resource: tuple[str, str], obj: dict[str, Any]) -> None:
    """Whatever the store holds, a row is made with one well-typed cell per column."""
    group, name = resource
    for mode in INCLUDE_OBJECT_MODES:
        result = table(name, group, [obj], list_meta={}, include_object=mode, now=NOW)
        (row,) = result["rows"]
        assert len(row["cells"]) == len(result["columnDefinitions"])
        assert all(type(cell) in {str, int, bool} for cell in row["cells"])
