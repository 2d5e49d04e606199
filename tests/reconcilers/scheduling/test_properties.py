"""Properties of the decision core over generated clusters and batches of pods, each pod
assumed onto its node before the next is decided (as the controller does):

- a pod is never placed on a node that any filter refuses, and is refused only when every
  node is refused by some filter;
- requests never exceed what a node offers (cpu, memory, pod slots), and host ports are never
  shared;
- the same inputs and seed give the same placements;
- a snapshot kept up to date pod by pod (sums, ports, per-zone pod counts) equals one built
  afresh from the same pods.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from engenho.reconcilers.scheduling import (
    Cycle,
    NodeInfo,
    PodInfo,
    Scheduled,
    SchedulingStrategy,
    Snapshot,
    bin_packing,
    default_filters,
    pod_info,
)
from engenho.selectors import LabelSelector, Operator, new_requirement

from .objects import NOW, node, pod, taint

ZONES = ("z1", "z2", "z3")
TAINTS = (
    taint("gpu", "true"),
    taint("dedicated", "infra", "NoExecute"),
    taint("soft", "", "PreferNoSchedule"),
)
TOLERATIONS = (
    {"key": "gpu", "operator": "Exists"},
    {"key": "dedicated", "value": "infra"},
    {"key": "node.kubernetes.io/not-ready", "operator": "Exists"},
    {"key": "node.kubernetes.io/unschedulable", "operator": "Exists"},
)


@st.composite
def nodes(draw: st.DrawFn) -> list[dict[str, Any]]:
    count = draw(st.integers(1, 7))
    found = []
    for i in range(count):
        ready = draw(st.sampled_from(["True"] * 6 + ["False", "Unknown"]))
        found.append(
            node(
                f"n{i}",
                cpu=f"{draw(st.integers(0, 16)) * 500}m",
                memory=f"{draw(st.integers(0, 8)) * 512}Mi",
                pods=str(draw(st.integers(0, 8))),
                labels={"zone": draw(st.sampled_from(ZONES))},
                taints=draw(
                    st.lists(st.sampled_from(TAINTS), unique_by=lambda t: t["key"], max_size=2)
                    | st.just([])
                ),
                unschedulable=draw(st.integers(0, 4)) == 0,
                ready=ready,
            )
        )
    return found


@st.composite
def pods(draw: st.DrawFn) -> list[dict[str, Any]]:
    count = draw(st.integers(1, 14))
    found = []
    for i in range(count):
        app = draw(st.sampled_from(["web", "db"]))
        spec: dict[str, Any] = {}
        if draw(st.integers(0, 2)) > 0:
            spec["tolerations"] = draw(st.lists(st.sampled_from(TOLERATIONS), max_size=3))
        if draw(st.integers(0, 3)) == 0:
            spec["nodeSelector"] = {"zone": draw(st.sampled_from(ZONES))}
        if draw(st.integers(0, 3)) == 0:
            spec["ports"] = [{"containerPort": 80, "hostPort": draw(st.sampled_from([80, 81]))}]
        if draw(st.integers(0, 4)) == 0:
            spec["affinity"] = {
                "podAntiAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": [
                        {"labelSelector": {"matchLabels": {"app": app}}, "topologyKey": "zone"}
                    ]
                }
            }
        if draw(st.integers(0, 4)) == 0:
            spec["topologySpreadConstraints"] = [
                {
                    "maxSkew": 1,
                    "topologyKey": "zone",
                    "whenUnsatisfiable": draw(st.sampled_from(["DoNotSchedule", "ScheduleAnyway"])),
                    "labelSelector": {"matchLabels": {"app": app}},
                }
            ]
        cpu = draw(st.integers(0, 8)) * 250
        memory = draw(st.integers(0, 4)) * 256
        found.append(
            pod(
                f"p{i}",
                cpu=f"{cpu}m" if cpu else None,
                memory=f"{memory}Mi" if memory else None,
                labels={"app": app},
                **spec,
            )
        )
    return found


def refusals(pod_: PodInfo, snapshot: Snapshot, info: NodeInfo) -> list[tuple[str, ...]]:
    """What each default filter, asked on its own, says about ``info``."""
    cycle = Cycle(pod_, snapshot, NOW)
    found = []
    for plugin in default_filters():
        check = plugin.prepare(cycle)
        if check is not None and (reasons := check(info)):
            found.append(reasons)
    return found


def place_all(
    node_objs: list[dict[str, Any]], pod_objs: list[dict[str, Any]], strategy: SchedulingStrategy
) -> tuple[Snapshot, list[str | None]]:
    snapshot = Snapshot.build(node_objs)
    placements: list[str | None] = []
    start = 0
    for obj in pod_objs:
        incoming = pod_info(obj)
        decision = strategy.decide(incoming, snapshot, now=NOW, start=start)
        start = decision.next_start
        if isinstance(decision, Scheduled):
            chosen = snapshot.node(decision.node)
            assert chosen is not None
            assert refusals(incoming, snapshot, chosen) == [], decision
            snapshot.add_pod(incoming, decision.node)
            placements.append(decision.node)
        else:
            assert decision.reasons.keys() == {info.name for info in snapshot.nodes}
            for info in snapshot.nodes:
                assert refusals(incoming, snapshot, info), (info.name, decision.message)
            placements.append(None)
    return snapshot, placements


@settings(max_examples=150)
@given(nodes(), pods(), st.booleans())
def test_placements_pass_every_filter_and_never_overcommit(
    node_objs: list[dict[str, Any]], pod_objs: list[dict[str, Any]], packing: bool
) -> None:
    strategy = bin_packing() if packing else SchedulingStrategy()
    snapshot, _ = place_all(node_objs, pod_objs, strategy)
    for info in snapshot.nodes:
        placed = list(info.pods.values())
        assert sum(p.requests.cpu for p in placed) <= info.alloc_cpu
        assert sum(p.requests.memory for p in placed) <= info.alloc_memory
        assert len(placed) <= info.alloc_pods
        ports = [port for p in placed for _, _, port in p.host_ports]
        assert len(ports) == len(set(ports))


@settings(max_examples=60)
@given(nodes(), pods(), st.integers(0, 2**32))
def test_the_same_inputs_and_seed_give_the_same_placements(
    node_objs: list[dict[str, Any]], pod_objs: list[dict[str, Any]], seed: int
) -> None:
    strategy = SchedulingStrategy(seed=seed)
    assert (
        place_all(node_objs, pod_objs, strategy)[1] == place_all(node_objs, pod_objs, strategy)[1]
    )


def accounting(snapshot: Snapshot) -> dict[str, tuple[Any, ...]]:
    return {
        name: (
            info.req_cpu,
            info.req_memory,
            info.req_ephemeral,
            info.req_scalars,
            info.nonzero_cpu,
            info.nonzero_memory,
            (info.free_cpu, info.free_memory, info.free_ephemeral, info.free_pods),
            sorted(info.pods),
            info.ports,
            info.anti_affinity_pods,
        )
        for name, info in snapshot.infos.items()
    }


@settings(max_examples=100)
@given(nodes(), pods(), st.data())
def test_incremental_accounting_equals_a_fresh_build(
    node_objs: list[dict[str, Any]], pod_objs: list[dict[str, Any]], data: st.DataObject
) -> None:
    names = [n["metadata"]["name"] for n in node_objs]
    for obj in pod_objs:
        obj["spec"]["nodeName"] = data.draw(st.sampled_from([*names, "ghost"]))
    snapshot = Snapshot.build(node_objs)
    web = LabelSelector.of([new_requirement("app", Operator.EQUALS, ["web"])])
    # Ask for the domain table first, so that it is kept up to date from here on.
    snapshot.domain_counts(web, "default", "zone", ("zone",))
    for obj in pod_objs:
        snapshot.add_pod(pod_info(obj), obj["spec"]["nodeName"])
    removed = data.draw(st.lists(st.sampled_from(pod_objs), unique_by=id))
    for obj in removed:
        snapshot.remove_pod(obj["metadata"]["uid"], obj["spec"]["nodeName"])
    kept = [obj for obj in pod_objs if all(obj is not r for r in removed)]
    fresh = Snapshot.build(node_objs, kept)
    assert accounting(snapshot) == accounting(fresh)
    assert snapshot.domain_counts(web, "default", "zone", ("zone",)) == fresh.domain_counts(
        web, "default", "zone", ("zone",)
    )
    assert snapshot.tainted == sum(1 for n in snapshot.nodes if n.blocking_taints)
    assert snapshot.cordoned == sum(1 for n in snapshot.nodes if n.unschedulable)
