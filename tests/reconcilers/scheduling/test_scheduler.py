"""The scheduler end to end over a real registry: bindings through pods/binding, the
Unschedulable condition and FailedScheduling/Scheduled events with upstream's text, retries
triggered by nodes, pods and Leases, the assumed cache under concurrent binds, profiles by
schedulerName, and the pods it must leave alone."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from engenho.reconcilers.conditions import condition
from engenho.reconcilers.scheduling import (
    RetryPolicy,
    SchedulerProfile,
    SchedulingStrategy,
    bin_packing,
)
from engenho.registry import DeleteOptions

from .conftest import LEASES, NODES, PODS, Cluster, eventually
from .objects import lease, node, pod

UNSCHEDULABLE = (
    "0/3 nodes are available: 1 node(s) had untolerated taint "
    "{node.kubernetes.io/not-ready: }, 2 Insufficient cpu."
)


async def node_of(cluster: Cluster, name: str) -> str:
    return str((await cluster.pod(name))["spec"].get("nodeName") or "")


def scheduled(obj: dict[str, Any]) -> dict[str, Any] | None:
    return condition((obj.get("status") or {}).get("conditions"), "PodScheduled")


async def events_for(cluster: Cluster, name: str, reason: str) -> list[dict[str, Any]]:
    return [
        e
        for e in await cluster.events()
        if e["involvedObject"]["name"] == name and e["reason"] == reason
    ]


async def test_pods_are_bound_and_reported(cluster: Cluster) -> None:
    for name in ("node-a", "node-b"):
        await cluster.create(NODES, node(name))
    cluster.start()
    created = await cluster.create(PODS, pod("web", cpu="500m"))

    async def is_bound() -> bool:
        return bool(await node_of(cluster, "web"))

    await eventually(is_bound)
    obj = await cluster.pod("web")
    assert obj["spec"]["nodeName"] in ("node-a", "node-b")
    assert scheduled(obj) is not None and scheduled(obj)["status"] == "True"  # type: ignore[index]

    async def reported() -> bool:
        return bool(await events_for(cluster, "web", "Scheduled"))

    await eventually(reported)
    (event,) = await events_for(cluster, "web", "Scheduled")
    assert event["type"] == "Normal"
    assert event["message"] == f"Successfully assigned default/web to {obj['spec']['nodeName']}"
    assert event["involvedObject"]["uid"] == created.uid
    assert event["source"]["component"] == "default-scheduler"


async def test_an_unschedulable_pod_gets_upstreams_condition_and_event(cluster: Cluster) -> None:
    await cluster.create(NODES, node("down", ready="False"))
    await cluster.create(NODES, node("small-1", cpu="1"))
    await cluster.create(NODES, node("small-2", cpu="1"))
    cluster.start()
    await cluster.create(PODS, pod("big", cpu="2"))

    async def marked() -> bool:
        found = scheduled(await cluster.pod("big"))
        return found is not None and found.get("status") == "False"

    await eventually(marked)
    obj = await cluster.pod("big")
    found = scheduled(obj)
    assert found is not None
    assert (found["reason"], found["message"]) == ("Unschedulable", UNSCHEDULABLE)
    assert "lastProbeTime" in found and found["lastTransitionTime"]
    managers = {(m["manager"], m.get("subresource")) for m in obj["metadata"]["managedFields"]}
    assert ("kube-scheduler", "status") in managers

    async def warned() -> bool:
        return bool(await events_for(cluster, "big", "FailedScheduling"))

    await eventually(warned)
    (event,) = await events_for(cluster, "big", "FailedScheduling")
    assert (event["type"], event["message"]) == ("Warning", UNSCHEDULABLE)
    assert not await node_of(cluster, "big")


async def test_no_nodes_at_all(cluster: Cluster) -> None:
    cluster.start()
    await cluster.create(PODS, pod("lonely"))

    async def marked() -> bool:
        found = scheduled(await cluster.pod("lonely"))
        return found is not None and found.get("message") == "no nodes available to schedule pods"

    await eventually(marked)


async def test_a_new_node_retries_unschedulable_pods_at_once(cluster: Cluster) -> None:
    await cluster.create(NODES, node("small", cpu="1"))
    # The periodic retry is far away: only the new node can get the pod scheduled in time.
    scheduler = cluster.start(retry=RetryPolicy(initial=60, maximum=60))
    await cluster.create(PODS, pod("big", cpu="2"))

    async def refused() -> bool:
        return scheduler.stats.unschedulable >= 1

    await eventually(refused)
    await cluster.create(NODES, node("large", cpu="8"))

    async def moved() -> bool:
        return await node_of(cluster, "big") == "large"

    await eventually(moved, timeout=5)


async def test_a_deleted_pod_frees_room_for_a_waiting_one(cluster: Cluster) -> None:
    await cluster.create(NODES, node("only", cpu="1"))
    scheduler = cluster.start(retry=RetryPolicy(initial=60, maximum=60))
    await cluster.create(PODS, pod("first", cpu="1"))

    async def first_bound() -> bool:
        return await node_of(cluster, "first") == "only"

    await eventually(first_bound)
    await cluster.create(PODS, pod("second", cpu="1"))

    async def refused() -> bool:
        return scheduler.stats.unschedulable >= 1

    await eventually(refused)
    await cluster.registry.delete(
        cluster.ctx(), PODS, "default", "first", DeleteOptions(grace_period_seconds=0)
    )

    async def second_bound() -> bool:
        return await node_of(cluster, "second") == "only"

    await eventually(second_bound, timeout=5)


async def test_concurrent_binds_never_overcommit_the_last_slots(cluster: Cluster) -> None:
    await cluster.create(NODES, node("a", cpu="1"))
    await cluster.create(NODES, node("b", cpu="1"))
    for i in range(9):
        await cluster.create(PODS, pod(f"p{i}", cpu="500m"))
    scheduler = cluster.start(workers=16)

    async def settled() -> bool:
        return scheduler.stats.bound == 4 and scheduler.stats.unschedulable >= 5

    await eventually(settled)
    placed: dict[str, int] = {}
    for i in range(9):
        where = await node_of(cluster, f"p{i}")
        if where:
            placed[where] = placed.get(where, 0) + 1
    assert placed == {"a": 2, "b": 2}

    async def confirmed() -> bool:
        return scheduler.cache.assumed == 0  # the informer saw every binding

    await eventually(confirmed)


async def test_profiles_by_scheduler_name(cluster: Cluster) -> None:
    # Requests in proportion, so balanced allocation rates both nodes alike and the resource
    # score alone decides.
    await cluster.create(NODES, node("empty", cpu="8", memory="8Gi"))
    await cluster.create(NODES, node("busy", cpu="8", memory="8Gi"))
    await cluster.create(PODS, pod("resident", cpu="4", memory="4Gi", node_name="busy"))
    cluster.start(
        profiles=[
            SchedulerProfile(),
            SchedulerProfile("bin-packer", bin_packing(SchedulingStrategy())),
        ]
    )
    await cluster.create(PODS, pod("spread", cpu="1", memory="1Gi"))
    await cluster.create(PODS, pod("packed", cpu="1", memory="1Gi", schedulerName="bin-packer"))
    await cluster.create(PODS, pod("foreign", cpu="1", schedulerName="someone-else"))

    async def both_bound() -> bool:
        return bool(await node_of(cluster, "spread")) and bool(await node_of(cluster, "packed"))

    await eventually(both_bound)
    assert await node_of(cluster, "spread") == "empty"
    assert await node_of(cluster, "packed") == "busy"
    await asyncio.sleep(0.2)
    foreign = await cluster.pod("foreign")
    assert not foreign["spec"].get("nodeName") and scheduled(foreign) is None


async def test_pods_being_deleted_are_left_alone(cluster: Cluster) -> None:
    held = pod("going")
    held["metadata"]["finalizers"] = ["example.com/hold"]
    await cluster.create(PODS, held)
    await cluster.registry.delete(cluster.ctx(), PODS, "default", "going")
    cluster.start()
    await cluster.create(NODES, node("a"))
    await cluster.create(PODS, pod("staying"))

    async def staying_bound() -> bool:
        return bool(await node_of(cluster, "staying"))

    await eventually(staying_bound)
    going = await cluster.pod("going")
    assert going["metadata"].get("deletionTimestamp") and not going["spec"].get("nodeName")


async def test_a_stale_lease_holds_a_node_back_until_it_is_renewed(cluster: Cluster) -> None:
    await cluster.create(NODES, node("leased"))
    await cluster.create(LEASES, lease("leased", time.time() - 100))
    cluster.start(retry=RetryPolicy(initial=60, maximum=60))
    await cluster.create(PODS, pod("waiting"))
    message = (
        "0/1 nodes are available: 1 node(s) had untolerated taint "
        "{node.kubernetes.io/unreachable: }."
    )

    async def refused() -> bool:
        found = scheduled(await cluster.pod("waiting"))
        return found is not None and found.get("message") == message

    await eventually(refused)
    stored = await cluster.registry.get(LEASES, "kube-node-lease", "leased")
    renewed = lease("leased", time.time())
    renewed["metadata"]["resourceVersion"] = str(stored.resource_version)
    await cluster.registry.update(cluster.ctx(), LEASES, "kube-node-lease", "leased", renewed)

    async def bound() -> bool:
        return await node_of(cluster, "waiting") == "leased"

    await eventually(bound, timeout=5)


async def test_scheduling_gates_hold_a_pod(cluster: Cluster) -> None:
    # Removing the gates is not covered here: the registry's pod update validation refuses
    # any change to spec.schedulingGates (upstream allows removing them).
    await cluster.create(NODES, node("a"))
    scheduler = cluster.start()
    await cluster.create(PODS, pod("gated", schedulingGates=[{"name": "example.com/wait"}]))

    async def gated() -> bool:
        found = scheduled(await cluster.pod("gated"))
        return found is not None and found.get("reason") == "SchedulingGated"

    await eventually(gated)
    found = scheduled(await cluster.pod("gated"))
    assert found is not None and found["status"] == "False"
    assert found["message"] == "Scheduling is blocked due to non-empty scheduling gates"
    assert not await node_of(cluster, "gated") and scheduler.stats.attempts == 0


async def test_pods_bound_by_others_count_and_are_not_touched(cluster: Cluster) -> None:
    await cluster.create(NODES, node("a", cpu="2"))
    await cluster.create(NODES, node("b", cpu="2"))
    await cluster.create(PODS, pod("pinned", cpu="2", node_name="a"))
    scheduler = cluster.start()
    await cluster.create(PODS, pod("next", cpu="2"))

    async def bound() -> bool:
        return await node_of(cluster, "next") == "b"

    await eventually(bound)
    assert await node_of(cluster, "pinned") == "a"
    assert scheduler.stats.bound == 1


async def test_resync_looks_at_waiting_pods_again(cluster: Cluster) -> None:
    await cluster.create(NODES, node("small", cpu="1"))
    # The backoff alone would wait a minute; the resync looks again every 0.1 s.
    scheduler = cluster.start(retry=RetryPolicy(initial=60, maximum=60), resync=0.1)
    await cluster.create(PODS, pod("big", cpu="2"))

    async def retried() -> bool:
        return scheduler.stats.attempts >= 3

    await eventually(retried, timeout=5)
    assert scheduler.stats.bound == 0
