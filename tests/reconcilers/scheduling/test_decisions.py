"""The decision core: upstream's failure message, how many nodes are examined and where the
next walk starts, weighted scores, and deterministic tie-breaking. Pure: no registry."""

from __future__ import annotations

from engenho.reconcilers.scheduling import (
    NO_NODES_MESSAGE,
    LeastAllocated,
    NodeResourcesFit,
    Scheduled,
    SchedulingStrategy,
    Snapshot,
    Unschedulable,
    bin_packing,
    decide,
    default_filters,
    failure_message,
    nodes_to_find,
    pod_info,
)

from .objects import NOW, node, pod, taint


def test_the_issue_example_message() -> None:
    snapshot = Snapshot.build(
        [node("a", ready="False"), node("b", cpu="1"), node("c", cpu="1")],
    )
    decision = SchedulingStrategy().decide(pod_info(pod("p", cpu="2")), snapshot, now=NOW)
    assert isinstance(decision, Unschedulable)
    assert decision.message == (
        "0/3 nodes are available: 1 node(s) had untolerated taint "
        "{node.kubernetes.io/not-ready: }, 2 Insufficient cpu."
    )
    assert decision.reasons == {
        "a": ("node(s) had untolerated taint {node.kubernetes.io/not-ready: }",),
        "b": ("Insufficient cpu",),
        "c": ("Insufficient cpu",),
    }


def test_a_node_refused_for_several_resources_counts_under_each() -> None:
    snapshot = Snapshot.build(
        [node("a", cpu="1", memory="1Gi"), node("b", cpu="1"), node("c", unschedulable=True)]
    )
    decision = SchedulingStrategy().decide(
        pod_info(pod("p", cpu="2", memory="2Gi")), snapshot, now=NOW
    )
    assert isinstance(decision, Unschedulable)
    assert decision.message == (
        "0/3 nodes are available: 1 Insufficient memory, 1 node(s) were unschedulable, "
        "2 Insufficient cpu."
    )


def test_reasons_sort_as_strings_like_upstream() -> None:
    reasons = {f"n{i}": ("Insufficient cpu",) for i in range(10)}
    reasons["m"] = ("Too many pods",)
    reasons["k"] = ("Too many pods",)
    assert failure_message(12, reasons) == (
        "0/12 nodes are available: 10 Insufficient cpu, 2 Too many pods."
    )


def test_no_nodes() -> None:
    decision = SchedulingStrategy().decide(pod_info(pod("p")), Snapshot(), now=NOW)
    assert decision == Unschedulable({}, NO_NODES_MESSAGE, 0)
    assert NO_NODES_MESSAGE == "no nodes available to schedule pods"


def test_the_first_refusing_filter_names_the_reason() -> None:
    snapshot = Snapshot.build([node("a", unschedulable=True, taints=[taint("x")], cpu="1")])
    decision = SchedulingStrategy().decide(pod_info(pod("p", cpu="2")), snapshot, now=NOW)
    assert isinstance(decision, Unschedulable)
    assert decision.reasons == {"a": ("node(s) were unschedulable",)}


def test_nodes_to_find_follows_upstream() -> None:
    assert nodes_to_find(50) == 50
    assert nodes_to_find(99) == 99
    assert nodes_to_find(100) == 100  # 49% of 100 is below the minimum of 100
    assert nodes_to_find(1000) == 420  # 50 - 1000/125 = 42%
    assert nodes_to_find(5000) == 500  # 10%
    assert nodes_to_find(10000) == 500  # never below 5%
    assert nodes_to_find(1000, 100) == 1000
    assert nodes_to_find(1000, 1) == 100


def test_the_walk_stops_after_enough_nodes_and_resumes_there() -> None:
    snapshot = Snapshot.build([node(f"n{i:03d}") for i in range(200)])
    strategy = SchedulingStrategy(percentage_of_nodes_to_score=50)
    decision = strategy.decide(pod_info(pod("p")), snapshot, now=NOW, start=150)
    assert isinstance(decision, Scheduled)
    assert decision.feasible == 100
    assert decision.next_start == 50  # 150 + 100, wrapped
    # Every examined node is among those visited: n150..n199, n000..n049.
    visited = {f"n{i:03d}" for i in [*range(150, 200), *range(50)]}
    assert decision.node in visited


def test_refused_nodes_count_as_examined() -> None:
    nodes = [node(f"n{i:03d}", cpu="1" if i % 2 else "8") for i in range(200)]
    snapshot = Snapshot.build(nodes)
    strategy = SchedulingStrategy(percentage_of_nodes_to_score=50)
    decision = strategy.decide(pod_info(pod("p", cpu="2")), snapshot, now=NOW)
    assert isinstance(decision, Scheduled)
    # Even nodes fit: the 100th is n198, so 199 nodes were examined (100 fit, 99 refused).
    assert decision.next_start == 199


def test_one_feasible_node_needs_no_scores() -> None:
    snapshot = Snapshot.build([node("a", cpu="1"), node("b", cpu="8")])
    decision = SchedulingStrategy().decide(pod_info(pod("p", cpu="2")), snapshot, now=NOW)
    assert decision == Scheduled("b", 0, 1, 0)


def test_least_and_most_allocated_choose_opposite_ends() -> None:
    snapshot = Snapshot.build(
        [node("empty", cpu="8", memory="8Gi"), node("busy", cpu="8", memory="8Gi")],
        [pod("old", node_name="busy", cpu="4", memory="4Gi")],
    )
    incoming = pod_info(pod("p", cpu="1", memory="1Gi"))
    spreading = SchedulingStrategy().decide(incoming, snapshot, now=NOW)
    packing = bin_packing().decide(incoming, snapshot, now=NOW)
    assert isinstance(spreading, Scheduled) and spreading.node == "empty"
    assert isinstance(packing, Scheduled) and packing.node == "busy"


def test_weights_multiply_scores() -> None:
    snapshot = Snapshot.build([node("a", cpu="4", memory="4Gi"), node("b", cpu="8", memory="4Gi")])
    incoming = pod_info(pod("p", cpu="2", memory="1Gi"))
    # Least allocated: a (50 + 75) / 2 = 62, b (75 + 75) / 2 = 75.
    decision = decide(incoming, snapshot, [NodeResourcesFit()], [(LeastAllocated(), 3)], now=NOW)
    assert decision == Scheduled("b", 225, 2, 0)


def tied(seed: int, uid: str) -> str:
    snapshot = Snapshot.build([node(f"n{i}") for i in range(8)])
    decision = SchedulingStrategy(seed=seed).decide(pod_info(pod("p", uid=uid)), snapshot, now=NOW)
    assert isinstance(decision, Scheduled)
    return decision.node


def test_ties_break_the_same_way_for_the_same_inputs_and_seed() -> None:
    assert tied(7, "u1") == tied(7, "u1")
    # Different pods (or seeds) land on different nodes among equals.
    assert len({tied(7, f"u{i}") for i in range(40)}) > 4
    assert len({tied(seed, "u1") for seed in range(40)}) > 4


def test_default_filters_are_in_upstream_order() -> None:
    assert [f.name for f in default_filters()] == [
        "NodeUnschedulable",
        "NodeName",
        "NodeReady",
        "TaintToleration",
        "NodeAffinity",
        "NodePorts",
        "NodeResourcesFit",
        "PodTopologySpread",
        "InterPodAffinity",
    ]
