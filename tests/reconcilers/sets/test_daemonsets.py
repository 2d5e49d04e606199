"""The DaemonSet controller in process, with the real scheduler binding its pods and a
stand-in kubelet: one pod per eligible node (node selector, taints and tolerations, the daemon
tolerations), nodes added and removed, rolling updates within maxUnavailable and maxSurge
(checked at every step a pod watcher saw), OnDelete, failed pods replaced, and status."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any

from engenho.schema import CATALOGUE

from .harness import (
    NODES,
    PODS,
    Harness,
    Recorder,
    container_template,
    eventually,
    is_ready,
    saw,
    saw_count,
)
from .harness import node as node_body

DS = CATALOGUE.get("apps", "v1", "daemonsets")
REVISIONS = CATALOGUE.get("apps", "v1", "controllerrevisions")


def daemon_set(name: str = "agent", image: str = "agent:v1", **spec: Any) -> dict[str, Any]:
    labels = {"app": name}
    template = container_template(labels, image)
    template["spec"].update(spec.pop("pod", {}))
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": name},
        "spec": {"selector": {"matchLabels": labels}, "template": template, **spec},
    }


async def _status(harness: Harness) -> dict[str, Any]:
    return (await harness.get(DS, "agent")).get("status") or {}


async def _settled(harness: Harness, desired: int) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        obj = await harness.get(DS, "agent")
        status = obj.get("status") or {}
        done = (
            status.get("observedGeneration") == obj["metadata"]["generation"]
            and status.get("desiredNumberScheduled") == desired
            and status.get("currentNumberScheduled") == desired
            and status.get("numberReady") == desired
            and status.get("updatedNumberScheduled", 0) == desired
            and status.get("numberAvailable", 0) == desired
            and status.get("numberMisscheduled") == 0
        )
        return status if done else None

    result: dict[str, Any] = await eventually(check, message="the DaemonSet never settled")
    return result


async def _placement(harness: Harness) -> dict[str, list[str]]:
    """Node -> live daemon pods bound there."""
    placed: dict[str, list[str]] = defaultdict(list)
    for pod in await harness.pods("app=agent"):
        if not pod["metadata"].get("deletionTimestamp"):
            placed[pod["spec"].get("nodeName", "")].append(pod["metadata"]["name"])
    return dict(placed)


async def test_one_pod_per_node_bound_by_the_scheduler(daemons: Harness) -> None:
    ds = await daemons.create(DS, daemon_set())
    status = await _settled(daemons, 3)
    assert "numberUnavailable" not in status
    placed = await _placement(daemons)
    assert sorted(placed) == ["node-a", "node-b", "node-c"]
    assert all(len(pods) == 1 for pods in placed.values())
    [revision] = await daemons.items(REVISIONS)
    hash_ = revision["metadata"]["labels"]["controller-revision-hash"]
    assert revision["metadata"]["name"] == f"agent-{hash_}"
    for pod in await daemons.pods("app=agent"):
        spec = pod["spec"]
        terms = spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        assert terms["nodeSelectorTerms"] == [
            {
                "matchFields": [
                    {"key": "metadata.name", "operator": "In", "values": [spec["nodeName"]]}
                ]
            }
        ]
        tolerations = {(t["key"], t["effect"]) for t in spec["tolerations"]}
        assert tolerations == {
            ("node.kubernetes.io/not-ready", "NoExecute"),
            ("node.kubernetes.io/unreachable", "NoExecute"),
            ("node.kubernetes.io/disk-pressure", "NoSchedule"),
            ("node.kubernetes.io/memory-pressure", "NoSchedule"),
            ("node.kubernetes.io/pid-pressure", "NoSchedule"),
            ("node.kubernetes.io/unschedulable", "NoSchedule"),
        }
        assert pod["metadata"]["labels"]["controller-revision-hash"] == hash_
        assert pod["metadata"]["generateName"] == "agent-"
        assert pod["metadata"]["ownerReferences"][0]["uid"] == ds.uid
    await saw_count(daemons, "agent", "SuccessfulCreate", 3)


async def test_host_network_pods_tolerate_network_unavailable(daemons: Harness) -> None:
    await daemons.create(DS, daemon_set(pod={"hostNetwork": True}))
    await _settled(daemons, 3)
    pod = (await daemons.pods("app=agent"))[0]
    assert {
        "key": "node.kubernetes.io/network-unavailable",
        "operator": "Exists",
        "effect": "NoSchedule",
    } in pod["spec"]["tolerations"]


async def test_nodes_added_and_removed(daemons: Harness) -> None:
    await daemons.create(DS, daemon_set())
    await _settled(daemons, 3)
    await daemons.create(NODES, node_body("node-d"))
    await _settled(daemons, 4)
    assert "node-d" in await _placement(daemons)
    await daemons.delete(NODES, "node-a")
    status = await _settled(daemons, 3)
    # The pod bound to the node that went stays for the pod garbage collector (upstream's
    # PodGC); the set no longer counts it and makes no replacement.
    assert status["currentNumberScheduled"] == 3
    assert len(await daemons.pods("app=agent")) == 4


async def test_node_selector_and_labels(daemons: Harness) -> None:
    await daemons.patch(NODES, "node-b", {"metadata": {"labels": {"disk": "ssd"}}})
    await daemons.create(DS, daemon_set(pod={"nodeSelector": {"disk": "ssd"}}))
    await _settled(daemons, 1)
    assert list(await _placement(daemons)) == ["node-b"]
    await daemons.patch(NODES, "node-c", {"metadata": {"labels": {"disk": "ssd"}}})
    await _settled(daemons, 2)
    await daemons.patch(NODES, "node-b", {"metadata": {"labels": {"disk": None}}})
    await _settled(daemons, 1)

    async def only_node_c() -> bool:
        return list(await _placement(daemons)) == ["node-c"]

    await eventually(only_node_c)


async def test_taints_and_tolerations(daemons: Harness) -> None:
    dedicated = {"key": "dedicated", "value": "db", "effect": "NoSchedule"}
    await daemons.patch(NODES, "node-a", {"spec": {"taints": [dedicated]}})
    await daemons.patch(NODES, "node-b", {"spec": {"unschedulable": True}})
    await daemons.create(DS, daemon_set())
    # node-a's taint is not tolerated; a cordoned node-b still gets its daemon pod.
    await _settled(daemons, 2)
    assert sorted(await _placement(daemons)) == ["node-b", "node-c"]
    # A NoSchedule taint keeps running pods; an untolerated NoExecute taint removes them.
    await daemons.patch(NODES, "node-b", {"spec": {"taints": [dedicated]}})

    async def kept_but_misscheduled() -> bool:
        status = await _status(daemons)
        return (status["desiredNumberScheduled"], status["numberMisscheduled"]) == (1, 1)

    await eventually(kept_but_misscheduled)
    assert "node-b" in await _placement(daemons)
    evict = {"key": "dedicated", "value": "db", "effect": "NoExecute"}
    await daemons.patch(NODES, "node-b", {"spec": {"taints": [dedicated, evict]}})

    async def evicted() -> bool:
        return sorted(await _placement(daemons)) == ["node-c"]

    await eventually(evicted)
    # Tolerating the taint brings pods back to both tainted nodes.
    toleration = {"key": "dedicated", "operator": "Equal", "value": "db"}
    patch = {"spec": {"template": {"spec": {"tolerations": [toleration]}}}}
    await daemons.patch(DS, "agent", patch)
    await _settled(daemons, 3)
    assert sorted(await _placement(daemons)) == ["node-a", "node-b", "node-c"]


def _check_rollout(recorder: Recorder, *, max_unavailable: int, max_surge: int) -> None:
    for pods in recorder.states():
        per_node: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for pod in pods.values():
            per_node[pod["spec"].get("nodeName") or "?"].append(pod)
        nodes = ["node-a", "node-b", "node-c"]
        without = [n for n in nodes if not any(is_ready(p) for p in per_node.get(n, []))]
        assert len(without) <= max_unavailable, f"nodes without a ready pod: {without}"
        doubled = [
            n
            for n, ps in per_node.items()
            if sum(not p["metadata"].get("deletionTimestamp") for p in ps) > 1
        ]
        assert len(doubled) <= max_surge, f"nodes with two pods: {doubled}"


async def test_rolling_update_within_max_unavailable(daemons: Harness) -> None:
    await daemons.create(DS, daemon_set())
    await _settled(daemons, 3)
    async with Recorder(daemons.registry, "app=agent") as recorder:
        patch = {"spec": {"template": {"spec": {"containers": [{"name": "main", "image": "v2"}]}}}}
        await daemons.patch(DS, "agent", patch, kind="strategic")
        await _settled(daemons, 3)
    images = {p["spec"]["containers"][0]["image"] for p in await daemons.pods("app=agent")}
    assert images == {"v2"}
    _check_rollout(recorder, max_unavailable=1, max_surge=0)
    assert len(await daemons.items(REVISIONS)) == 2


async def test_rolling_update_with_surge_keeps_every_node_served(daemons: Harness) -> None:
    strategy = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}
    await daemons.create(DS, daemon_set(updateStrategy=strategy))
    await _settled(daemons, 3)
    async with Recorder(daemons.registry, "app=agent") as recorder:
        patch = {"spec": {"template": {"spec": {"containers": [{"name": "main", "image": "v2"}]}}}}
        await daemons.patch(DS, "agent", patch, kind="strategic")

        async def done() -> bool:
            pods = await daemons.pods("app=agent")
            images = [p["spec"]["containers"][0]["image"] for p in pods]
            return images == ["v2"] * 3 and all(is_ready(p) for p in pods)

        await eventually(done)
        await _settled(daemons, 3)
    _check_rollout(recorder, max_unavailable=0, max_surge=1)


async def test_on_delete_replaces_only_deleted_pods(daemons: Harness) -> None:
    await daemons.create(DS, daemon_set(updateStrategy={"type": "OnDelete"}))
    await _settled(daemons, 3)
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "main", "image": "v2"}]}}}}
    await daemons.patch(DS, "agent", patch, kind="strategic")

    async def observed() -> bool:
        status = await _status(daemons)
        return (
            status.get("observedGeneration") == 2 and status.get("updatedNumberScheduled", 0) == 0
        )

    await eventually(observed)
    await asyncio.sleep(0.2)  # an OnDelete set must not replace pods by itself
    on_a = (await _placement(daemons))["node-a"][0]
    await daemons.delete(PODS, on_a)

    async def one_updated() -> bool:
        status = await _status(daemons)
        return status.get("updatedNumberScheduled") == 1 and status.get("numberReady") == 3

    await eventually(one_updated)
    images = sorted(p["spec"]["containers"][0]["image"] for p in await daemons.pods("app=agent"))
    assert images == ["agent:v1", "agent:v1", "v2"]


async def test_a_failed_daemon_pod_is_replaced(daemons: Harness) -> None:
    await daemons.create(DS, daemon_set())
    await _settled(daemons, 3)
    victim = (await _placement(daemons))["node-b"][0]
    await daemons.kubelet.finish(victim, "Failed")

    async def replaced() -> bool:
        placed = await _placement(daemons)
        pods = {p["metadata"]["name"]: p for p in await daemons.pods("app=agent")}
        on_b = placed.get("node-b", [])
        return victim not in pods and len(on_b) == 1 and is_ready(pods[on_b[0]])

    await eventually(replaced)
    message = f"Found failed daemon pod default/{victim} on node node-b, will try to kill it"
    await saw(daemons, "agent", ("Warning", "FailedDaemonPod", message))
