"""Server-side apply and managedFields in process: FieldsV1 encoding, ownership by Update and
Apply, conflicts (one cause per field, upstream's wording), force, removal of fields a manager
stops applying, shared ownership, associative lists with defaulted keys, sets, and idempotence
(re-applying appends nothing)."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engenho.registry import ConflictError, InvalidError
from engenho.registry.fieldsets import (
    decode_fields,
    encode_fields,
    field_set,
    format_path,
    root_shape,
)

from .conftest import Cluster

DEPLOYMENT: dict[str, Any] = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "web", "labels": {"app": "web"}},
    "spec": {
        "replicas": 2,
        "selector": {"matchLabels": {"app": "web"}},
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {
                "containers": [
                    {"name": "nginx", "image": "nginx:1.25", "ports": [{"containerPort": 80}]}
                ]
            },
        },
    },
}


def _entries(obj: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(e["manager"], e["operation"]): e for e in obj["metadata"].get("managedFields", [])}


async def _apply(
    cluster: Cluster, body: dict[str, Any], manager: str, *, force: bool = False
) -> dict[str, Any]:
    stored, _ = await cluster.registry.apply(
        cluster.ctx(field_manager=manager),
        cluster.rt("deployments", "apps"),
        "default",
        body["metadata"]["name"],
        copy.deepcopy(body),
        force=force,
    )
    return stored.object


def test_fields_v1_shape_matches_upstream() -> None:
    shape = root_shape("io.k8s.api.apps.v1.Deployment")
    encoded = encode_fields(field_set(DEPLOYMENT, shape))
    assert encoded == {
        "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
        "f:spec": {
            "f:replicas": {},
            "f:selector": {},
            "f:template": {
                "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
                "f:spec": {
                    "f:containers": {
                        'k:{"name":"nginx"}': {
                            ".": {},
                            "f:image": {},
                            "f:name": {},
                            "f:ports": {
                                'k:{"containerPort":80,"protocol":"TCP"}': {
                                    ".": {},
                                    "f:containerPort": {},
                                }
                            },
                        }
                    }
                },
            },
        },
    }, "atomic selector, granular maps with '.', list-maps keyed with defaulted key fields"


keys = st.text(st.characters(min_codepoint=97, max_codepoint=122), min_size=1, max_size=5)


@given(st.dictionaries(keys, st.dictionaries(keys, st.text(max_size=3), max_size=3), max_size=4))
@settings(max_examples=200)
def test_fields_v1_round_trips(labels_by_key: dict[str, dict[str, str]]) -> None:
    shape = root_shape("io.k8s.api.core.v1.ConfigMap")
    obj = {
        "metadata": {"labels": dict.fromkeys(labels_by_key, "x")},
        "data": dict.fromkeys(labels_by_key, "v"),
    }
    fields = field_set(obj, shape)
    assert decode_fields(encode_fields(fields)) == fields


def test_paths_are_named_as_upstream() -> None:
    path = (("f", "spec"), ("f", "containers"), ("k", '{"name":"nginx"}'), ("f", "image"))
    assert format_path(path) == '.spec.containers[name="nginx"].image'


async def test_apply_creates_and_records_the_manager(cluster: Cluster) -> None:
    obj = await _apply(cluster, DEPLOYMENT, "kubectl")
    entries = _entries(obj)
    assert set(entries) == {("kubectl", "Apply")}
    assert entries[("kubectl", "Apply")]["apiVersion"] == "apps/v1"
    assert entries[("kubectl", "Apply")]["fieldsType"] == "FieldsV1"
    assert "f:revisionHistoryLimit" not in entries[("kubectl", "Apply")]["fieldsV1"]["f:spec"], (
        "defaults the applier did not send are not its fields"
    )


async def test_reapplying_the_same_manifest_appends_nothing(cluster: Cluster) -> None:
    first = await _apply(cluster, DEPLOYMENT, "kubectl")
    head = cluster.head
    again = await _apply(cluster, DEPLOYMENT, "kubectl")
    assert cluster.head == head
    assert again["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]


async def test_a_conflicting_apply_is_refused_with_one_cause_per_field(cluster: Cluster) -> None:
    await _apply(cluster, DEPLOYMENT, "kubectl")
    other = copy.deepcopy(DEPLOYMENT)
    other["spec"]["replicas"] = 5
    other["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:1.26"
    head = cluster.head
    with pytest.raises(ConflictError) as refused:
        await _apply(cluster, other, "ci")
    error = refused.value
    assert error.code == 409 and cluster.head == head
    assert error.message.startswith(
        'Apply failed with 2 conflicts: conflicts with "kubectl" using apps/v1:'
    )
    assert sorted((c.reason, c.field) for c in error.causes) == [
        ("FieldManagerConflict", ".spec.replicas"),
        ("FieldManagerConflict", '.spec.template.spec.containers[name="nginx"].image'),
    ]
    single = copy.deepcopy(DEPLOYMENT)
    single["spec"]["replicas"] = 7
    expected = 'Apply failed with 1 conflict: conflict with "kubectl" using apps/v1: .spec.replicas'
    with pytest.raises(ConflictError, match=f"^{re.escape(expected)}$"):
        await _apply(cluster, single, "ci")


async def test_force_takes_ownership(cluster: Cluster) -> None:
    await _apply(cluster, DEPLOYMENT, "kubectl")
    other = copy.deepcopy(DEPLOYMENT)
    other["spec"]["replicas"] = 5
    obj = await _apply(cluster, other, "ci", force=True)
    assert obj["spec"]["replicas"] == 5
    entries = _entries(obj)
    assert "f:replicas" in entries[("ci", "Apply")]["fieldsV1"]["f:spec"]
    assert "f:replicas" not in entries[("kubectl", "Apply")]["fieldsV1"]["f:spec"]


async def test_same_values_are_shared_and_survive_one_manager_leaving(cluster: Cluster) -> None:
    await _apply(cluster, DEPLOYMENT, "kubectl")
    await _apply(cluster, DEPLOYMENT, "ci")  # identical values: no conflict, shared ownership
    without_labels = copy.deepcopy(DEPLOYMENT)
    del without_labels["metadata"]["labels"]
    obj = await _apply(cluster, without_labels, "kubectl")
    assert obj["metadata"]["labels"] == {"app": "web"}, "ci still owns the label"
    obj = await _apply(cluster, without_labels, "ci")
    assert "labels" not in obj["metadata"] or obj["metadata"]["labels"] == {}


async def test_fields_no_longer_applied_are_removed(cluster: Cluster) -> None:
    with_env = copy.deepcopy(DEPLOYMENT)
    with_env["spec"]["template"]["spec"]["containers"][0]["env"] = [
        {"name": "A", "value": "1"},
        {"name": "B", "value": "2"},
    ]
    await _apply(cluster, with_env, "kubectl")
    without_b = copy.deepcopy(with_env)
    without_b["spec"]["template"]["spec"]["containers"][0]["env"] = [{"name": "A", "value": "1"}]
    obj = await _apply(cluster, without_b, "kubectl")
    assert obj["spec"]["template"]["spec"]["containers"][0]["env"] == [{"name": "A", "value": "1"}]
    second = copy.deepcopy(DEPLOYMENT)
    second["spec"]["template"]["spec"]["containers"].append({"name": "sidecar", "image": "busybox"})
    obj = await _apply(cluster, second, "kubectl")
    names = [c["name"] for c in obj["spec"]["template"]["spec"]["containers"]]
    assert names == ["nginx", "sidecar"], "merged by name, applied order"
    obj = await _apply(cluster, DEPLOYMENT, "kubectl")
    assert [c["name"] for c in obj["spec"]["template"]["spec"]["containers"]] == ["nginx"]


async def test_updates_take_ownership_without_conflict(cluster: Cluster) -> None:
    await _apply(cluster, DEPLOYMENT, "kubectl")
    rt = cluster.rt("deployments", "apps")
    scaled = await cluster.registry.patch(
        cluster.ctx(field_manager="kubectl-scale"),
        rt,
        "default",
        "web",
        "merge",
        {"spec": {"replicas": 4}},
    )
    entries = _entries(scaled.object)
    assert entries[("kubectl-scale", "Update")]["fieldsV1"] == {"f:spec": {"f:replicas": {}}}
    assert "f:replicas" not in entries[("kubectl", "Apply")]["fieldsV1"]["f:spec"]
    # The applier now conflicts with the updater on replicas, as upstream.
    with pytest.raises(ConflictError, match='conflict with "kubectl-scale"'):
        await _apply(cluster, DEPLOYMENT, "kubectl")


async def test_apply_needs_a_field_manager(cluster: Cluster) -> None:
    with pytest.raises(InvalidError) as refused:
        await cluster.registry.apply(
            cluster.ctx(),
            cluster.rt("deployments", "apps"),
            "default",
            "web",
            copy.deepcopy(DEPLOYMENT),
        )
    assert refused.value.code == 422
    assert refused.value.message == (
        'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required '
        "for apply patch"
    )


async def test_sets_and_atomic_lists(cluster: Cluster) -> None:
    rt = cluster.rt("configmaps")
    body = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "s", "finalizers": ["a.io/x"]},
    }
    stored, created = await cluster.registry.apply(
        cluster.ctx(field_manager="one"), rt, "default", "s", body
    )
    assert created
    body2 = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "s", "finalizers": ["b.io/y"]},
    }
    stored, _ = await cluster.registry.apply(
        cluster.ctx(field_manager="two"), rt, "default", "s", body2
    )
    assert stored.object["metadata"]["finalizers"] == ["a.io/x", "b.io/y"], "a set: union"
    fields = _entries(stored.object)[("two", "Apply")]["fieldsV1"]
    assert fields == {"f:metadata": {"f:finalizers": {'v:"b.io/y"': {}}}}
