"""Each score plugin on its own, checked against the figures of upstream's own plugin tests
(least/most allocated, balanced allocation, topology spread) and against hand-worked cases
(node affinity preferences, PreferNoSchedule taints). Pure: snapshots, no registry."""

from __future__ import annotations

from typing import Any

import pytest

from engenho.reconcilers.scheduling import (
    BalancedAllocation,
    Cycle,
    LeastAllocated,
    MostAllocated,
    NodeAffinityScore,
    PodTopologySpreadScore,
    ScorePlugin,
    Snapshot,
    TaintTolerationScore,
    pod_info,
)
from engenho.reconcilers.scheduling.scores import default_normalize

from .objects import NOW, node, pod, taint


def scores(
    plugin: ScorePlugin,
    incoming: dict[str, Any],
    snapshot: Snapshot,
    candidates: list[str] | None = None,
) -> list[int] | None:
    nodes = [n for n in snapshot.nodes if candidates is None or n.name in candidates]
    return plugin.score(Cycle(pod_info(incoming), snapshot, NOW), nodes)


def two_containers() -> dict[str, Any]:
    """Upstream's ``cpuAndMemory`` pod: 1000m + 2000m cpu, 2000 + 3000 bytes."""
    incoming = pod("p")
    incoming["spec"]["containers"] = [
        {"name": "a", "image": "x", "resources": {"requests": {"cpu": "1", "memory": "2000"}}},
        {"name": "b", "image": "x", "resources": {"requests": {"cpu": "2", "memory": "3000"}}},
    ]
    return incoming


def differently_sized() -> Snapshot:
    return Snapshot.build(
        [node("n1", cpu="4", memory="10000"), node("n2", cpu="6", memory="10000")]
    )


def test_least_allocated_upstream_figures() -> None:
    # CPU (4000-3000)*100/4000 = 25, memory 50 -> 37; CPU 50, memory 50 -> 50.
    assert scores(LeastAllocated(), two_containers(), differently_sized()) == [37, 50]


def test_most_allocated_upstream_figures() -> None:
    # CPU 3000*100/4000 = 75, memory 50 -> 62; CPU 50, memory 50 -> 50.
    assert scores(MostAllocated(), two_containers(), differently_sized()) == [62, 50]


def test_balanced_allocation_upstream_figures() -> None:
    # Fractions 0.75 and 0.5: std 0.125 -> 87; 0.5 and 0.5 -> 100.
    assert scores(BalancedAllocation(), two_containers(), differently_sized()) == [87, 100]


def test_pods_without_requests_count_as_100m_and_200mi() -> None:
    snapshot = Snapshot.build(
        [node("a", cpu="1", memory="1000Mi"), node("b", cpu="1", memory="1000Mi")]
    )
    snapshot.add_pod(pod_info(pod("empty")), "a")
    # a: cpu (1000-200)/1000 -> 80, memory (1000-400)/1000 -> 60, mean 70; b: 90, 80 -> 85.
    assert scores(LeastAllocated(), pod("p"), snapshot) == [70, 85]


def test_resource_weights_and_extended_resources() -> None:
    snapshot = Snapshot.build(
        [
            node("a", cpu="4", extra={"example.com/gpu": "4"}),
            node("b", cpu="4", extra={"example.com/gpu": "8"}),
            node("c", cpu="4"),
        ]
    )
    plugin = LeastAllocated((("cpu", 1), ("example.com/gpu", 3)))
    incoming = pod("p", requests={"cpu": "2", "example.com/gpu": "2"})
    # cpu 50 everywhere; gpu 50 on a, 75 on b; c has none, so only cpu counts there.
    assert scores(plugin, incoming, snapshot) == [(50 + 150) // 4, (50 + 225) // 4, 50]
    # A gpu the pod does not ask for is not scored.
    assert scores(plugin, pod("q", cpu="2"), snapshot) == [50, 50, 50]


def test_scores_are_recomputed_when_the_node_changes() -> None:
    snapshot = differently_sized()
    assert scores(LeastAllocated(), two_containers(), snapshot) == [37, 50]
    snapshot.add_pod(pod_info(pod("more", cpu="1", memory="1")), "n2")
    # n2: cpu (6000-1000-3000)*100/6000 = 33, memory (10000-5001)*100/10000 = 49 -> 41.
    assert scores(LeastAllocated(), two_containers(), snapshot) == [37, 41]


def preference(weight: int, key: str, *values: str) -> dict[str, Any]:
    return {
        "weight": weight,
        "preference": {
            "matchExpressions": [{"key": key, "operator": "In", "values": list(values)}]
        },
    }


def test_preferred_node_affinity_sums_matching_weights_then_normalises() -> None:
    snapshot = Snapshot.build(
        [
            node("a", labels={"zone": "z1", "disk": "ssd"}),
            node("b", labels={"zone": "z1"}),
            node("c", labels={"zone": "z2"}),
        ]
    )
    affinity = {
        "nodeAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [
                preference(2, "zone", "z1"),
                preference(6, "disk", "ssd"),
                {"weight": 0, "preference": {"matchExpressions": []}},
            ]
        }
    }
    # Raw 8, 2, 0 -> 100, 25, 0.
    assert scores(NodeAffinityScore(), pod("p", affinity=affinity), snapshot) == [100, 25, 0]
    assert scores(NodeAffinityScore(), pod("q"), snapshot) is None


def test_prefer_no_schedule_taints_lower_a_node() -> None:
    snapshot = Snapshot.build(
        [
            node("clean"),
            node("one", taints=[taint("a", effect="PreferNoSchedule")]),
            node(
                "two",
                taints=[
                    taint("a", effect="PreferNoSchedule"),
                    taint("b", effect="PreferNoSchedule"),
                ],
            ),
        ]
    )
    assert scores(TaintTolerationScore(), pod("p"), snapshot) == [100, 50, 0]
    tolerant = pod("q", tolerations=[{"key": "b", "operator": "Exists"}])
    assert scores(TaintTolerationScore(), tolerant, snapshot) == [100, 0, 0]
    assert scores(TaintTolerationScore(), pod("p"), Snapshot.build([node("x")])) is None


def test_default_normalize() -> None:
    assert default_normalize([0, 5, 10]) == [0, 50, 100]
    assert default_normalize([0, 5, 10], reverse=True) == [100, 50, 0]
    assert default_normalize([0, 0]) == [0, 0]
    assert default_normalize([0, 0], reverse=True) == [100, 100]


# ---------------------------------------------------------------------- topology spread

FOO = {"matchExpressions": [{"key": "foo", "operator": "Exists"}]}
BAR = {"matchExpressions": [{"key": "bar", "operator": "Exists"}]}


def soft(key: str, max_skew: int = 1, selector: dict[str, Any] = FOO) -> dict[str, Any]:
    return {
        "maxSkew": max_skew,
        "topologyKey": key,
        "whenUnsatisfiable": "ScheduleAnyway",
        "labelSelector": selector,
    }


def spread_pod(
    *constraints: dict[str, Any], labels: dict[str, str] | None = None
) -> dict[str, Any]:
    return pod("p", labels=labels or {"foo": ""}, topologySpreadConstraints=list(constraints))


def hosts(counts: dict[str, int], zones: dict[str, str] | None = None) -> Snapshot:
    nodes = [node(name, labels={"zone": zones[name]} if zones else None) for name in counts]
    pods = [
        pod(f"{name}-{i}", node_name=name, labels={"foo": ""})
        for name, count in counts.items()
        for i in range(count)
    ]
    return Snapshot.build(nodes, pods)


@pytest.mark.parametrize(
    ("max_skew", "counts", "expected"),
    [
        (1, {"node-a": 1, "node-b": 1}, [100, 100]),
        (2, {"node-a": 2, "node-b": 1, "node-c": 0, "node-d": 3}, [33, 66, 100, 16]),
        (3, {"node-a": 4, "node-b": 3, "node-c": 2, "node-d": 1}, [44, 66, 77, 100]),
    ],
)
def test_spread_on_hostname_upstream_figures(
    max_skew: int, counts: dict[str, int], expected: list[int]
) -> None:
    incoming = spread_pod(soft("kubernetes.io/hostname", max_skew))
    assert scores(PodTopologySpreadScore(), incoming, hosts(counts)) == expected


def test_spread_with_a_node_that_is_not_a_candidate_upstream_figures() -> None:
    snapshot = hosts({"node-a": 4, "node-b": 2, "node-x": 1, "node-y": 3})
    incoming = spread_pod(soft("kubernetes.io/hostname"))
    candidates = ["node-a", "node-b", "node-x"]
    assert scores(PodTopologySpreadScore(), incoming, snapshot, candidates) == [33, 83, 100]


def test_spread_on_zones_counts_nodes_that_are_not_candidates_upstream_figures() -> None:
    zones = {"node-a": "zone1", "node-b": "zone1", "node-x": "zone2", "node-y": "zone2"}
    snapshot = hosts({"node-a": 4, "node-b": 2, "node-x": 1, "node-y": 3}, zones)
    incoming = spread_pod(soft("zone"))
    candidates = ["node-a", "node-b", "node-x"]
    assert scores(PodTopologySpreadScore(), incoming, snapshot, candidates) == [75, 75, 100]


def test_spread_two_constraints_with_different_selectors_upstream_figures() -> None:
    zones = {"node-a": "zone1", "node-b": "zone1", "node-x": "zone2", "node-y": "zone2"}
    snapshot = Snapshot.build(
        [node(name, labels={"zone": zone}) for name, zone in zones.items()],
        [
            pod("p-a1", node_name="node-a", labels={"foo": ""}),
            pod("p-b1", node_name="node-b", labels={"foo": "", "bar": ""}),
            pod("p-y1", node_name="node-y", labels={"foo": ""}),
            pod("p-y2", node_name="node-y", labels={"bar": ""}),
        ],
    )
    incoming = spread_pod(
        soft("zone"),
        soft("kubernetes.io/hostname", selector=BAR),
        labels={"foo": "", "bar": ""},
    )
    assert scores(PodTopologySpreadScore(), incoming, snapshot) == [60, 20, 100, 60]


def test_spread_nodes_without_the_key_score_zero() -> None:
    snapshot = Snapshot.build(
        [node("node-a"), node("node-b", labels={"zone": "z"})],
        [pod("p-a1", node_name="node-a", labels={"foo": ""})],
    )
    incoming = spread_pod(soft("zone"))
    assert scores(PodTopologySpreadScore(), incoming, snapshot) == [0, 100]
