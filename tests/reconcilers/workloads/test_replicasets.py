"""The ReplicaSet controller in process, with a fake kubelet: pods created from the template
(generated names, controller references, events), scale up and down in upstream's deletion
order, no double creates while its own creates are not yet in the cache, adoption of matching
orphans and release of pods that stop matching, and status counters including
minReadySeconds."""

from __future__ import annotations

import asyncio
from typing import Any

from engenho.registry import WatchQuery

from .conftest import PODS, REPLICASETS, Workloads, eventually, replica_set


def _owned(pods: list[dict[str, Any]], uid: str) -> list[dict[str, Any]]:
    return [
        p
        for p in pods
        if any(r.get("uid") == uid for r in p["metadata"].get("ownerReferences") or [])
        and not p["metadata"].get("deletionTimestamp")
    ]


async def _status(w: Workloads, name: str, **expected: int) -> dict[str, Any] | None:
    obj = await w.get(REPLICASETS, name)
    status = obj.get("status") or {}
    got = {k: status.get(k, 0) for k in expected}
    return obj if got == expected else None


async def test_creates_pods_from_the_template(workloads: Workloads) -> None:
    w = workloads
    rs = await w.create(REPLICASETS, replica_set("web", 3))
    obj = await eventually(
        lambda: _status(
            w,
            "web",
            replicas=3,
            fullyLabeledReplicas=3,
            readyReplicas=3,
            availableReplicas=3,
            observedGeneration=1,
        )
    )
    assert obj["status"]["replicas"] == 3
    pods = _owned(await w.pods(), rs.uid)
    assert len(pods) == 3
    for pod in pods:
        meta = pod["metadata"]
        assert meta["name"].startswith("web-") and len(meta["name"]) == len("web-") + 5
        assert meta["generateName"] == "web-"
        assert meta["labels"] == {"app": "web"}
        assert meta["ownerReferences"] == [
            {
                "apiVersion": "apps/v1",
                "kind": "ReplicaSet",
                "name": "web",
                "uid": rs.uid,
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ]
        assert pod["spec"]["containers"][0]["image"] == "nginx"
    names = sorted(p["metadata"]["name"] for p in pods)

    async def created_events() -> list[str]:
        events = await w.events("web")
        found = sorted(m for t, r, m in events if (t, r) == ("Normal", "SuccessfulCreate"))
        return found if len(found) == 3 else []

    assert await eventually(created_events) == [f"Created pod: {n}" for n in names]


async def test_scales_up_and_down(workloads: Workloads) -> None:
    w = workloads
    rs = await w.create(REPLICASETS, replica_set("web", 2))
    await eventually(lambda: _status(w, "web", replicas=2, availableReplicas=2))
    await w.patch(REPLICASETS, "web", {"spec": {"replicas": 5}})
    await eventually(
        lambda: _status(w, "web", replicas=5, availableReplicas=5, observedGeneration=2)
    )
    await w.patch(REPLICASETS, "web", {"spec": {"replicas": 1}})
    await eventually(
        lambda: _status(w, "web", replicas=1, availableReplicas=1, observedGeneration=3)
    )

    async def one_pod_left() -> bool:
        return len(await w.pods("app=web")) == 1  # the kubelet finished the deletions

    await eventually(one_pod_left)
    assert len(_owned(await w.pods(), rs.uid)) == 1

    async def deleted() -> list[str]:
        found = [m for t, r, m in await w.events("web") if (t, r) == ("Normal", "SuccessfulDelete")]
        return found if len(found) == 4 else []

    assert all(m.startswith("Deleted pod: web-") for m in await eventually(deleted))


async def test_deletes_the_least_ready_pods_first(workloads: Workloads) -> None:
    w = workloads
    await w.create(REPLICASETS, replica_set("web", 2))
    await eventually(lambda: _status(w, "web", replicas=2, readyReplicas=2))
    ready = {p["metadata"]["name"] for p in await w.pods("app=web")}
    await w.kubelet.set(bind=False)  # new pods stay unscheduled
    await w.patch(REPLICASETS, "web", {"spec": {"replicas": 4}})
    await eventually(lambda: _status(w, "web", replicas=4, readyReplicas=2))
    await w.patch(REPLICASETS, "web", {"spec": {"replicas": 2}})
    await eventually(lambda: _status(w, "web", replicas=2, readyReplicas=2, observedGeneration=3))
    left = {p["metadata"]["name"] for p in await w.pods("app=web")}
    assert left == ready  # the two unscheduled pods went, the ready ones stayed


async def test_never_creates_twice(workloads: Workloads) -> None:
    """However the pod events interleave with syncs, exactly ``replicas`` pods are created."""
    w = workloads
    added: list[str] = []

    async def count_adds() -> None:
        query = WatchQuery(resource_version="0")
        async for event in w.registry.watch(PODS, "default", query):
            if event.type == "ADDED" and event.object is not None:
                added.append(event.object.name)  # noqa: PERF401 - read while the watch runs

    watching = asyncio.create_task(count_adds())
    try:
        await w.create(REPLICASETS, replica_set("web", 40))
        await eventually(lambda: _status(w, "web", replicas=40, availableReplicas=40))
        await asyncio.sleep(0.3)  # any late duplicate would show up here
        assert len(added) == 40
    finally:
        watching.cancel()
        await asyncio.gather(watching, return_exceptions=True)


async def test_adopts_orphans_and_releases_pods_that_stop_matching(workloads: Workloads) -> None:
    w = workloads
    orphan = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "stray", "labels": {"app": "web"}},
        "spec": {"containers": [{"name": "web", "image": "nginx"}]},
    }
    await w.create(PODS, orphan)
    rs = await w.create(REPLICASETS, replica_set("web", 3))
    await eventually(lambda: _status(w, "web", replicas=3, availableReplicas=3))
    stray = await w.get(PODS, "stray")
    assert stray["metadata"]["ownerReferences"][0]["uid"] == rs.uid
    assert len(await w.pods("app=web")) == 3  # two created, one adopted

    await w.patch(PODS, "stray", {"metadata": {"labels": {"app": "elsewhere"}}})

    async def released() -> bool:
        refs = (await w.get(PODS, "stray"))["metadata"].get("ownerReferences")
        return not refs

    await eventually(released)
    await eventually(lambda: _status(w, "web", replicas=3, availableReplicas=3))
    assert len(_owned(await w.pods("app=web"), rs.uid)) == 3


async def test_available_waits_for_min_ready_seconds(workloads: Workloads) -> None:
    w = workloads
    await w.create(REPLICASETS, replica_set("web", 2, minReadySeconds=2))
    await eventually(lambda: _status(w, "web", replicas=2, readyReplicas=2, availableReplicas=0))
    start = asyncio.get_running_loop().time()
    await eventually(lambda: _status(w, "web", replicas=2, readyReplicas=2, availableReplicas=2))
    # Ready times have whole seconds, and availability needs strictly more than minReadySeconds.
    assert asyncio.get_running_loop().time() - start >= 0.9


async def test_deleting_the_replica_set_deletes_its_pods(workloads: Workloads) -> None:
    w = workloads
    await w.create(REPLICASETS, replica_set("web", 2))
    await eventually(lambda: _status(w, "web", replicas=2, availableReplicas=2))
    await w.registry.delete(w.ctx(), REPLICASETS, "default", "web")

    async def no_pods() -> bool:
        return not await w.pods("app=web")

    await eventually(no_pods)
