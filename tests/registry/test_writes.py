"""The registry's write path in process: server-owned fields, optimistic concurrency, refusals
that leave the log untouched, no-op writes, status ownership, patches and deletion."""

from __future__ import annotations

import asyncio
import copy

import pytest

from engenho.registry import (
    AlreadyExistsError,
    BadRequestError,
    ConflictError,
    DeleteOptions,
    ForbiddenError,
    InvalidError,
    NotFoundError,
)

from .conftest import Cluster, configmap

POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "web"},
    "spec": {
        "containers": [
            {
                "name": "app",
                "image": "nginx:1.25",
                "resources": {"limits": {"cpu": "1", "memory": "1Gi"}},
            }
        ]
    },
    "status": {"phase": "Running"},
}
DEPLOYMENT = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "web"},
    "spec": {
        "selector": {"matchLabels": {"app": "web"}},
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "app", "image": "nginx"}]},
        },
    },
}


async def test_create_sets_what_the_server_owns(cluster: Cluster) -> None:
    stored = await cluster.registry.create(
        cluster.ctx(), cluster.rt("pods"), "default", copy.deepcopy(POD)
    )
    obj = stored.object
    meta = obj["metadata"]
    assert len(meta["uid"]) == 36 and meta["creationTimestamp"].endswith("Z")
    assert meta["resourceVersion"] == str(stored.resource_version) == str(cluster.head)
    assert meta["namespace"] == "default"
    # Status starts over on create; defaults are applied.
    assert obj["status"] == {"phase": "Pending", "qosClass": "Guaranteed"}
    assert obj["spec"]["restartPolicy"] == "Always"
    assert obj["spec"]["containers"][0]["imagePullPolicy"] == "IfNotPresent"
    assert stored.uid == meta["uid"]


async def test_generation_moves_only_with_the_spec(cluster: Cluster) -> None:
    rt = cluster.rt("deployments", "apps")
    created = await cluster.registry.create(cluster.ctx(), rt, "default", copy.deepcopy(DEPLOYMENT))
    assert created.object["metadata"]["generation"] == 1
    relabelled = copy.deepcopy(created.object)
    relabelled["metadata"]["labels"] = {"team": "a"}
    stored, _ = await cluster.registry.update(cluster.ctx(), rt, "default", "web", relabelled)
    assert stored.object["metadata"]["generation"] == 1
    scaled = copy.deepcopy(stored.object)
    scaled["spec"]["replicas"] = 5
    stored, _ = await cluster.registry.update(cluster.ctx(), rt, "default", "web", scaled)
    assert stored.object["metadata"]["generation"] == 2


async def test_generate_name(cluster: Cluster) -> None:
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"generateName": "job-"}}
    stored = await cluster.registry.create(cluster.ctx(), cluster.rt("configmaps"), "default", body)
    assert stored.name.startswith("job-") and len(stored.name) == 9


@pytest.mark.parametrize(
    ("namespace", "error"),
    [("absent", NotFoundError), ("default", None)],
)
async def test_namespace_must_exist(
    cluster: Cluster, namespace: str, error: type[Exception] | None
) -> None:
    head = cluster.head
    call = cluster.registry.create(
        cluster.ctx(), cluster.rt("configmaps"), namespace, configmap("c")
    )
    if error is None:
        await call
        assert cluster.head == head + 1
    else:
        with pytest.raises(error, match='namespaces "absent" not found'):
            await call
        assert cluster.head == head


async def test_refusals_append_nothing(cluster: Cluster) -> None:
    rt = cluster.rt("configmaps")
    await cluster.registry.create(cluster.ctx(), rt, "default", configmap("taken"))
    head = cluster.head
    with pytest.raises(AlreadyExistsError, match='configmaps "taken" already exists'):
        await cluster.registry.create(cluster.ctx(), rt, "default", configmap("taken"))
    with pytest.raises(InvalidError) as invalid:
        await cluster.registry.create(cluster.ctx(), rt, "default", configmap("Upper_Case"))
    assert invalid.value.status()["details"]["causes"][0]["field"] == "metadata.name"
    with pytest.raises(BadRequestError, match="strict decoding error"):
        await cluster.registry.create(
            cluster.ctx(field_validation="Strict"), rt, "default", configmap("x", spec={})
        )
    with pytest.raises(BadRequestError, match="cannot be handled as a ConfigMap"):
        await cluster.registry.create(cluster.ctx(), rt, "default", configmap("x", data={"a": 1}))
    dry = await cluster.registry.create(cluster.ctx(dry_run=True), rt, "default", configmap("dry"))
    assert dry.name == "dry" and "resourceVersion" not in dry.object["metadata"]
    assert cluster.head == head
    assert await cluster.projections.get("", "configmaps", "default", "dry") is None


async def test_unknown_fields_warn_and_are_dropped(cluster: Cluster) -> None:
    ctx = cluster.ctx()
    stored = await cluster.registry.create(
        ctx, cluster.rt("configmaps"), "default", configmap("w", spec={"x": 1}, data={"a": "b"})
    )
    assert ctx.warnings == ['unknown field "spec"']
    assert "spec" not in stored.object and stored.object["data"] == {"a": "b"}


async def test_stale_update_conflicts_and_unconditional_update_retries(cluster: Cluster) -> None:
    rt = cluster.rt("configmaps")
    first = await cluster.registry.create(
        cluster.ctx(), rt, "default", configmap("c", data={"n": "0"})
    )
    stale = copy.deepcopy(first.object)
    newer = copy.deepcopy(first.object)
    newer["data"]["n"] = "1"
    await cluster.registry.update(cluster.ctx(), rt, "default", "c", newer)
    head = cluster.head
    stale["data"]["n"] = "2"
    with pytest.raises(ConflictError, match="the object has been modified"):
        await cluster.registry.update(cluster.ctx(), rt, "default", "c", stale)
    assert cluster.head == head
    del stale["metadata"]["resourceVersion"]  # unconditional: applied over whatever is there
    stored, created = await cluster.registry.update(cluster.ctx(), rt, "default", "c", stale)
    assert not created and stored.object["data"]["n"] == "2"


async def test_concurrent_read_modify_write_loses_nothing(cluster: Cluster) -> None:
    """Twenty writers incrementing one counter with GET-modify-PUT and retry on 409."""
    rt = cluster.rt("configmaps")
    await cluster.registry.create(
        cluster.ctx(), rt, "default", configmap("counter", data={"n": "0"})
    )
    conflicts = 0

    async def increment() -> None:
        nonlocal conflicts
        while True:
            current = await cluster.registry.get(rt, "default", "counter")
            body = copy.deepcopy(current.object)
            body["data"]["n"] = str(int(body["data"]["n"]) + 1)
            try:
                await cluster.registry.update(cluster.ctx(), rt, "default", "counter", body)
            except ConflictError:
                conflicts += 1
            else:
                return

    await asyncio.gather(*(increment() for _ in range(20)))
    final = await cluster.registry.get(rt, "default", "counter")
    assert final.object["data"]["n"] == "20"
    assert conflicts > 0, "the writers should have raced"


async def test_no_op_writes_append_nothing(cluster: Cluster) -> None:
    rt = cluster.rt("configmaps")
    stored = await cluster.registry.create(
        cluster.ctx(), rt, "default", configmap("same", data={"a": "b"})
    )
    head = cluster.head
    again, _ = await cluster.registry.update(
        cluster.ctx(), rt, "default", "same", copy.deepcopy(stored.object)
    )
    assert again.resource_version == stored.resource_version and cluster.head == head
    patched = await cluster.registry.patch(
        cluster.ctx(), rt, "default", "same", "merge", {"data": {"a": "b"}}
    )
    assert patched.resource_version == stored.resource_version and cluster.head == head


async def test_uid_is_immutable(cluster: Cluster) -> None:
    rt = cluster.rt("configmaps")
    stored = await cluster.registry.create(cluster.ctx(), rt, "default", configmap("u"))
    body = copy.deepcopy(stored.object)
    body["metadata"]["uid"] = "another"
    with pytest.raises(InvalidError, match="field is immutable"):
        await cluster.registry.update(cluster.ctx(), rt, "default", "u", body)


async def test_main_resource_ignores_status_and_status_endpoint_changes_only_status(
    cluster: Cluster,
) -> None:
    rt = cluster.rt("pods")
    created = await cluster.registry.create(cluster.ctx(), rt, "default", copy.deepcopy(POD))
    body = copy.deepcopy(created.object)
    body["status"]["phase"] = "Running"
    body["metadata"]["labels"] = {"a": "b"}
    stored, _ = await cluster.registry.update(cluster.ctx(), rt, "default", "web", body)
    assert stored.object["status"]["phase"] == "Pending" and stored.object["metadata"][
        "labels"
    ] == {"a": "b"}
    status_body = copy.deepcopy(stored.object)
    status_body["status"]["phase"] = "Running"
    status_body["metadata"]["labels"] = {"ignored": "yes"}
    status_body["spec"]["containers"][0]["image"] = "ignored"
    stored, _ = await cluster.registry.update(
        cluster.ctx(), rt, "default", "web", status_body, subresource="status"
    )
    assert stored.object["status"]["phase"] == "Running"
    assert stored.object["metadata"]["labels"] == {"a": "b"}
    assert stored.object["spec"]["containers"][0]["image"] == "nginx:1.25"


async def test_patch_types(cluster: Cluster) -> None:
    rt = cluster.rt("pods")
    await cluster.registry.create(cluster.ctx(), rt, "default", copy.deepcopy(POD))
    merged = await cluster.registry.patch(
        cluster.ctx(), rt, "default", "web", "merge", {"metadata": {"labels": {"x": "1"}}}
    )
    assert merged.object["metadata"]["labels"] == {"x": "1"}
    strategic = await cluster.registry.patch(
        cluster.ctx(),
        rt,
        "default",
        "web",
        "strategic",
        {"spec": {"containers": [{"name": "app", "image": "nginx:1.26"}]}},
    )
    containers = strategic.object["spec"]["containers"]
    assert len(containers) == 1 and containers[0]["image"] == "nginx:1.26"
    assert containers[0]["resources"]["limits"] == {"cpu": "1", "memory": "1Gi"}, "merged by name"
    head = cluster.head
    with pytest.raises(InvalidError):
        await cluster.registry.patch(
            cluster.ctx(),
            rt,
            "default",
            "web",
            "json",
            [{"op": "test", "path": "/metadata/name", "value": "other"}],
        )
    with pytest.raises(BadRequestError):
        await cluster.registry.patch(cluster.ctx(), rt, "default", "web", "json", {"op": "add"})
    assert cluster.head == head
    jsonpatched = await cluster.registry.patch(
        cluster.ctx(),
        rt,
        "default",
        "web",
        "json",
        [{"op": "add", "path": "/metadata/labels/y", "value": "2"}],
    )
    assert jsonpatched.object["metadata"]["labels"] == {"x": "1", "y": "2"}


async def test_finalizers_hold_an_object_until_removed(cluster: Cluster) -> None:
    rt = cluster.rt("configmaps")
    await cluster.registry.create(
        cluster.ctx(),
        rt,
        "default",
        configmap("held", metadata={"name": "held", "finalizers": ["example.com/hold"]}),
    )
    result = await cluster.registry.delete(cluster.ctx(), rt, "default", "held")
    assert not result.removed and result.object is not None
    lingering = result.object.object
    assert (
        lingering["metadata"]["deletionTimestamp"]
        and lingering["metadata"]["deletionGracePeriodSeconds"] == 0
    )
    head = cluster.head
    again = await cluster.registry.delete(cluster.ctx(), rt, "default", "held")
    assert not again.removed and cluster.head == head, "a second delete changes nothing"
    body = copy.deepcopy(lingering)
    body["metadata"]["finalizers"].append("another.example.com/x")
    with pytest.raises(ForbiddenError, match="no new finalizers"):
        await cluster.registry.update(cluster.ctx(), rt, "default", "held", body)
    body["metadata"]["finalizers"] = []
    await cluster.registry.update(cluster.ctx(), rt, "default", "held", body)
    assert await cluster.projections.get("", "configmaps", "default", "held") is None


async def test_delete_preconditions_and_answers(cluster: Cluster) -> None:
    rt = cluster.rt("configmaps")
    stored = await cluster.registry.create(cluster.ctx(), rt, "default", configmap("gone"))
    head = cluster.head
    with pytest.raises(ConflictError, match="UID in precondition: wrong"):
        await cluster.registry.delete(
            cluster.ctx(), rt, "default", "gone", DeleteOptions(precondition_uid="wrong")
        )
    with pytest.raises(ConflictError, match="ResourceVersion in precondition"):
        await cluster.registry.delete(
            cluster.ctx(), rt, "default", "gone", DeleteOptions(precondition_resource_version="1")
        )
    assert cluster.head == head
    result = await cluster.registry.delete(
        cluster.ctx(), rt, "default", "gone", DeleteOptions(precondition_uid=stored.uid)
    )
    assert result.removed and result.status is not None
    assert result.status["status"] == "Success" and result.status["details"]["uid"] == stored.uid
    with pytest.raises(NotFoundError):
        await cluster.registry.delete(cluster.ctx(), rt, "default", "gone")


async def test_protected_namespaces_cannot_be_deleted(cluster: Cluster) -> None:
    with pytest.raises(ForbiddenError, match="this namespace may not be deleted"):
        await cluster.registry.delete(cluster.ctx(), cluster.rt("namespaces"), "", "default")


async def test_terminating_namespace_refuses_new_content(cluster: Cluster) -> None:
    ns = cluster.rt("namespaces")
    await cluster.registry.create(
        cluster.ctx(),
        ns,
        "",
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "closing"}},
    )
    result = await cluster.registry.delete(cluster.ctx(), ns, "", "closing")
    assert result.object is not None and result.object.object["status"]["phase"] == "Terminating"
    with pytest.raises(ForbiddenError) as refused:
        await cluster.registry.create(
            cluster.ctx(), cluster.rt("configmaps"), "closing", configmap("late")
        )
    assert refused.value.causes[0].reason == "NamespaceTerminating"


async def test_scheduled_pods_are_deleted_gracefully(cluster: Cluster) -> None:
    rt = cluster.rt("pods")
    pod = copy.deepcopy(POD)
    pod["spec"]["nodeName"] = "node-1"
    pod["spec"]["terminationGracePeriodSeconds"] = 45
    await cluster.registry.create(cluster.ctx(), rt, "default", pod)
    result = await cluster.registry.delete(cluster.ctx(), rt, "default", "web")
    assert not result.removed and result.object is not None
    assert result.object.object["metadata"]["deletionGracePeriodSeconds"] == 45
    forced = await cluster.registry.delete(
        cluster.ctx(), rt, "default", "web", DeleteOptions(grace_period_seconds=0)
    )
    assert forced.removed and forced.object is not None, "pods answer a DELETE with the object"


async def test_binding_assigns_a_pod_once(cluster: Cluster) -> None:
    rt = cluster.rt("pods")
    await cluster.registry.create(cluster.ctx(), rt, "default", copy.deepcopy(POD))
    binding = {
        "apiVersion": "v1",
        "kind": "Binding",
        "metadata": {"name": "web"},
        "target": {"kind": "Node", "name": "n1"},
    }
    bound = await cluster.registry.bind(cluster.ctx(), "default", copy.deepcopy(binding))
    assert bound.object["spec"]["nodeName"] == "n1"
    scheduled = [c for c in bound.object["status"]["conditions"] if c["type"] == "PodScheduled"]
    assert scheduled and scheduled[0]["status"] == "True"
    managers = [e["manager"] for e in bound.object["metadata"].get("managedFields", [])]
    assert "scheduler" not in managers and len(managers) == 1, "a binding records no ownership"
    head = cluster.head
    binding["target"]["name"] = "n2"
    with pytest.raises(ConflictError, match='pod web is already assigned to node "n1"'):
        await cluster.registry.bind(cluster.ctx(), "default", binding)
    assert cluster.head == head
    binding["metadata"]["name"] = "ghost"
    with pytest.raises(NotFoundError):
        await cluster.registry.bind(cluster.ctx(), "default", binding)
