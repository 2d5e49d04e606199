"""The node lifecycle controller in process, on a clock the tests move: a node whose Lease
stops being renewed goes Unknown and is tainted unreachable, its pods are marked not ready and
evicted as their tolerations allow, and all of it is undone when its kubelet comes back; a
kubelet reporting NotReady or pressure; no NoExecute taint when no node is ready (the
controller assumes it is the one cut off); the pods of a deleted node collected; and one run
on the real clock to show the timers need no help."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from engenho.reconcilers import ControllerManager, NodeLifecycleController

from .conftest import NODES, Cluster, ManualClock, eventually

GRACE = 1.0
UNREACHABLE = "node.kubernetes.io/unreachable"
NOT_READY = "node.kubernetes.io/not-ready"


def lifecycle(clock: Any = None, **options: Any) -> Callable[[ControllerManager], Any]:
    def build(manager: ControllerManager) -> NodeLifecycleController:
        defaults: dict[str, Any] = {
            "node_monitor_grace_period": GRACE,
            "node_startup_grace_period": GRACE,
            "node_monitor_period": 0.02,
            "node_eviction_rate": None,
            "pod_gc_quarantine": 0.0,
            "clock": clock,
        }
        return NodeLifecycleController(
            manager.registry, manager.informers, **{**defaults, **options}
        )

    return build


def controller(cluster: Cluster) -> NodeLifecycleController:
    assert cluster.manager is not None
    found = cluster.manager.controllers[0]
    assert isinstance(found, NodeLifecycleController)
    return found


def taints(stored: Any) -> set[tuple[str, str]]:
    return {(t["key"], t["effect"]) for t in stored.object["spec"].get("taints") or []}


def conditions(stored: Any) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in stored.object.get("status", {}).get("conditions") or []}


async def advance(cluster: Cluster, clock: ManualClock, seconds: float, alive: str) -> None:
    """Move the clock in steps shorter than the grace period, waiting after each until the
    controller has seen ``alive``'s kubelet at the new time (so only the others go silent)."""
    while seconds > 0:
        step = min(seconds, GRACE / 4)
        clock.advance(step)
        seconds -= step
        await eventually(lambda: _heard(cluster, alive, clock))


async def _heard(cluster: Cluster, node: str, clock: ManualClock) -> bool:
    return controller(cluster).heard_at(node) == clock()


async def _has_taint(cluster: Cluster, node: str, *wanted: tuple[str, str]) -> bool:
    stored = await cluster.node(node)
    return stored is not None and set(wanted) <= taints(stored)


async def _terminating(cluster: Cluster, pod: str) -> bool:
    stored = await cluster.pod(pod)
    return stored is None or bool(stored.object["metadata"].get("deletionTimestamp"))


async def test_silent_node_is_tainted_its_pods_evicted_then_it_recovers(cluster: Cluster) -> None:
    clock = ManualClock()
    await cluster.register("healthy")
    await cluster.register("silent")
    await cluster.run_pod("at-once", "silent", [_tolerate(UNREACHABLE, 0)])
    await cluster.run_pod("two-seconds", "silent", [_tolerate(UNREACHABLE, 2)])
    await cluster.run_pod("for-ever", "silent", [{"operator": "Exists", "effect": "NoExecute"}])
    defaulted = await cluster.run_pod("defaulted", "silent")
    assert {
        (t["key"], t.get("tolerationSeconds")) for t in defaulted.object["spec"]["tolerations"]
    } == {
        (NOT_READY, 300),
        (UNREACHABLE, 300),
    }, "DefaultTolerationSeconds"
    cluster.keep_alive("healthy")
    cluster.run(lifecycle(clock))
    await eventually(lambda: _heard(cluster, "silent", clock))
    await eventually(lambda: _heard(cluster, "healthy", clock))

    # Within the grace period nothing happens; past it the node is Unknown and tainted.
    await advance(cluster, clock, GRACE + 0.25, alive="healthy")
    await eventually(lambda: _has_taint(cluster, "silent", (UNREACHABLE, "NoExecute")))
    node = await cluster.node("silent")
    assert node is not None
    assert taints(node) == {(UNREACHABLE, "NoSchedule"), (UNREACHABLE, "NoExecute")}
    assert all(t["timeAdded"] for t in node.object["spec"]["taints"])
    found = conditions(node)
    assert {t: c["status"] for t, c in found.items()} == {
        "Ready": "Unknown",
        "MemoryPressure": "Unknown",
        "DiskPressure": "Unknown",
        "PIDPressure": "Unknown",
    }
    assert found["Ready"]["reason"] == "NodeStatusUnknown"
    assert found["Ready"]["message"] == "Kubelet stopped posting node status."
    assert found["MemoryPressure"]["reason"] == "NodeStatusNeverUpdated"
    assert found["MemoryPressure"]["message"] == "Kubelet never posted node status."
    healthy = await cluster.node("healthy")
    assert healthy is not None and not taints(healthy)

    # A pod that tolerates the taint for 0 s goes at once, marked as the taint manager does;
    # the clock stands still, so the others cannot be due yet.
    await eventually(lambda: _terminating(cluster, "at-once"))
    evicted = await cluster.pod("at-once")
    assert evicted is not None
    target = conditions(evicted)["DisruptionTarget"]
    assert (target["status"], target["reason"]) == ("True", "DeletionByTaintManager")
    for name in ("two-seconds", "for-ever", "defaulted"):
        assert not await _terminating(cluster, name), name
        pod = await cluster.pod(name)
        assert pod is not None and conditions(pod)["Ready"]["status"] == "False", name
    messages = {e["message"] for e in await cluster.events("TaintManagerEviction")}
    assert "Marking for deletion Pod default/at-once" in messages
    not_ready = await cluster.events("NodeNotReady")
    assert any(e["message"] == "Node silent status is now: NodeNotReady" for e in not_ready)
    assert any(e["involvedObject"]["kind"] == "Pod" for e in not_ready)

    # Two seconds after the taint was added, the pod tolerating it that long goes too.
    await advance(cluster, clock, 2.0, alive="healthy")
    await eventually(lambda: _terminating(cluster, "two-seconds"))
    assert not await _terminating(cluster, "for-ever")
    assert not await _terminating(cluster, "defaulted")

    # The kubelet comes back: it renews its Lease and posts Ready; the taints go, and the
    # eviction still pending (the defaulted pod's 300 s) is cancelled.
    await cluster.renew("silent")
    await cluster.post("silent", "True")

    async def recovered() -> bool:
        stored = await cluster.node("silent")
        return stored is not None and not taints(stored)

    await eventually(recovered)
    await advance(cluster, clock, GRACE / 2, alive="healthy")
    assert not await _terminating(cluster, "defaulted")

    async def cancelled() -> bool:
        events = await cluster.events("TaintManagerEviction")
        return any(e["message"] == "Cancelling deletion of Pod default/defaulted" for e in events)

    await eventually(cancelled)


def _tolerate(key: str, seconds: int | None) -> dict[str, Any]:
    toleration: dict[str, Any] = {"key": key, "operator": "Exists", "effect": "NoExecute"}
    if seconds is not None:
        toleration["tolerationSeconds"] = seconds
    return toleration


async def test_a_renewed_lease_keeps_a_node_ready(cluster: Cluster) -> None:
    clock = ManualClock()
    await cluster.register("alive")
    cluster.keep_alive("alive")
    cluster.run(lifecycle(clock))
    await eventually(lambda: _heard(cluster, "alive", clock))
    await advance(cluster, clock, GRACE * 5, alive="alive")
    node = await cluster.node("alive")
    assert node is not None and conditions(node)["Ready"]["status"] == "True"
    assert not taints(node)


async def test_not_ready_pressure_and_cordon_taints(cluster: Cluster) -> None:
    clock = ManualClock()
    await cluster.register("healthy")
    await cluster.register("sick")
    await cluster.run_pod("quick", "sick", [_tolerate(NOT_READY, 0)])
    cluster.keep_alive("healthy")
    cluster.keep_alive("sick")
    cluster.run(lifecycle(clock))

    await cluster.post("sick", "False", MemoryPressure="True")
    await eventually(
        lambda: _has_taint(
            cluster,
            "sick",
            (NOT_READY, "NoSchedule"),
            (NOT_READY, "NoExecute"),
            ("node.kubernetes.io/memory-pressure", "NoSchedule"),
        )
    )
    await eventually(lambda: _terminating(cluster, "quick"))

    await cluster.post("sick", "True", MemoryPressure="False")
    await cluster.registry.patch(
        cluster.ctx(), NODES, "", "sick", "merge", {"spec": {"unschedulable": True}}
    )

    async def cordoned_only() -> bool:
        stored = await cluster.node("sick")
        return stored is not None and taints(stored) == {
            ("node.kubernetes.io/unschedulable", "NoSchedule")
        }

    await eventually(cordoned_only)


async def test_a_users_no_execute_taint_evicts_what_does_not_tolerate_it(cluster: Cluster) -> None:
    clock = ManualClock()
    await cluster.register("dedicated")
    await cluster.run_pod("intruder", "dedicated")
    await cluster.run_pod(
        "tenant", "dedicated", [{"key": "team", "value": "a", "effect": "NoExecute"}]
    )
    cluster.keep_alive("dedicated")
    cluster.run(lifecycle(clock))
    await cluster.registry.patch(
        cluster.ctx(),
        NODES,
        "",
        "dedicated",
        "merge",
        {"spec": {"taints": [{"key": "team", "value": "a", "effect": "NoExecute"}]}},
    )
    await eventually(lambda: _terminating(cluster, "intruder"))
    await advance(cluster, clock, GRACE, alive="dedicated")
    assert not await _terminating(cluster, "tenant")
    node = await cluster.node("dedicated")
    assert node is not None and taints(node) == {("team", "NoExecute")}, "left alone"


async def test_no_node_ready_means_no_eviction(cluster: Cluster) -> None:
    """With every node silent the controller is the likelier one to be cut off: the nodes are
    marked Unknown and NoSchedule, but nothing is evicted."""
    clock = ManualClock()
    await cluster.register("only")
    await cluster.run_pod("kept", "only", [_tolerate(UNREACHABLE, 0)])
    cluster.run(lifecycle(clock))
    await eventually(lambda: _heard(cluster, "only", clock))
    clock.advance(GRACE + 1)
    await eventually(lambda: _has_taint(cluster, "only", (UNREACHABLE, "NoSchedule")))
    node = await cluster.node("only")
    assert node is not None and (UNREACHABLE, "NoExecute") not in taints(node)
    assert conditions(node)["Ready"]["status"] == "Unknown"
    assert not await _terminating(cluster, "kept")


async def test_pods_of_a_deleted_node_are_collected(cluster: Cluster) -> None:
    clock = ManualClock()
    await cluster.register("doomed")
    await cluster.register("other")
    await cluster.run_pod("orphan", "doomed")
    await cluster.run_pod("bystander", "other")
    cluster.run(lifecycle(clock))
    await cluster.registry.delete(cluster.ctx(), NODES, "", "doomed")

    async def collected() -> bool:
        return await cluster.pod("orphan") is None

    await eventually(collected)
    assert await cluster.pod("bystander") is not None


async def test_the_real_clock_needs_no_help(cluster: Cluster) -> None:
    await cluster.register("gone-quiet")
    cluster.run(lifecycle(None, node_monitor_period=5.0))

    async def unknown() -> bool:
        stored = await cluster.node("gone-quiet")
        return stored is not None and conditions(stored)["Ready"]["status"] == "Unknown"

    await eventually(unknown, timeout=GRACE + 5)
