"""Each filter plugin on its own: what it refuses, with upstream's wording, and when it steps
aside for a pod (or a cluster) it has nothing to say about. Pure: snapshots, no registry."""

from __future__ import annotations

from typing import Any

import pytest

from engenho.reconcilers.scheduling import (
    Cycle,
    FilterPlugin,
    InterPodAffinity,
    NodeAffinity,
    NodeName,
    NodePorts,
    NodeReady,
    NodeResourcesFit,
    NodeUnschedulable,
    PodTopologySpread,
    Snapshot,
    TaintToleration,
    pod_info,
)
from engenho.reconcilers.scheduling.readiness import NodeReadiness

from .objects import NOW, lease, node, pod, taint


def verdicts(
    plugin: FilterPlugin, incoming: dict[str, Any], snapshot: Snapshot, now: float = NOW
) -> dict[str, tuple[str, ...]] | None:
    """Each node's reasons (empty when it fits), or None when the filter steps aside."""
    check = plugin.prepare(Cycle(pod_info(incoming), snapshot, now))
    if check is None:
        return None
    return {info.name: check(info) for info in snapshot.nodes}


# ---------------------------------------------------------------------- NodeUnschedulable


def test_cordoned_nodes_are_refused() -> None:
    snapshot = Snapshot.build([node("a"), node("b", unschedulable=True)])
    assert verdicts(NodeUnschedulable(), pod("p"), snapshot) == {
        "a": (),
        "b": ("node(s) were unschedulable",),
    }


def test_the_unschedulable_toleration_lets_a_pod_onto_cordoned_nodes() -> None:
    snapshot = Snapshot.build([node("b", unschedulable=True)])
    tolerant = pod(
        "p",
        tolerations=[{"key": "node.kubernetes.io/unschedulable", "operator": "Exists"}],
    )
    assert verdicts(NodeUnschedulable(), tolerant, snapshot) is None


def test_no_cordoned_node_means_nothing_to_check() -> None:
    assert verdicts(NodeUnschedulable(), pod("p"), Snapshot.build([node("a")])) is None


# ---------------------------------------------------------------------- NodeName


def test_a_pod_naming_its_node_fits_only_there() -> None:
    snapshot = Snapshot.build([node("a"), node("b")])
    assert verdicts(NodeName(), pod("p", node_name="b"), snapshot) == {
        "a": ("node(s) didn't match the requested node name",),
        "b": (),
    }
    assert verdicts(NodeName(), pod("p"), snapshot) is None


# ---------------------------------------------------------------------- NodeReady


def test_readiness_follows_the_ready_condition_without_a_lease() -> None:
    snapshot = Snapshot.build(
        [node("a"), node("b", ready="False"), node("c", ready="Unknown"), node("d", ready=None)]
    )
    assert verdicts(NodeReady(), pod("p"), snapshot) == {
        "a": (),
        "b": ("node(s) had untolerated taint {node.kubernetes.io/not-ready: }",),
        "c": ("node(s) had untolerated taint {node.kubernetes.io/unreachable: }",),
        "d": ("node(s) had untolerated taint {node.kubernetes.io/not-ready: }",),
    }


def test_a_stale_lease_makes_a_ready_node_unreachable() -> None:
    readiness = NodeReadiness(grace_seconds=5)
    snapshot = Snapshot.build([node("fresh"), node("stale"), node("never"), node("bare")])
    for name, renewed in (("fresh", NOW - 30), ("stale", NOW - 50), ("never", None)):
        snapshot.set_lease(name, readiness.lease_expiry(lease(name, renewed)))
    assert verdicts(NodeReady(), pod("p"), snapshot) == {
        "bare": (),
        "fresh": (),
        "never": ("node(s) had untolerated taint {node.kubernetes.io/unreachable: }",),
        "stale": ("node(s) had untolerated taint {node.kubernetes.io/unreachable: }",),
    }
    # The grace counts: renewed 44 s ago with a 40 s lease is still fresh with 5 s of grace.
    snapshot.set_lease("stale", readiness.lease_expiry(lease("stale", NOW - 44)))
    assert verdicts(NodeReady(), pod("p"), snapshot)["stale"] == ()  # type: ignore[index]


def test_a_lease_without_duration_uses_the_default() -> None:
    readiness = NodeReadiness(default_duration_seconds=10)
    assert readiness.lease_expiry(lease("n", NOW, seconds=None)) == pytest.approx(NOW + 10)
    assert readiness.lease_expiry({"spec": {"renewTime": "yesterday"}}) == float("-inf")


def test_tolerating_the_readiness_taints_steps_past_readiness() -> None:
    snapshot = Snapshot.build([node("b", ready="False")])
    tolerant = pod("p", tolerations=[{"operator": "Exists"}])
    assert verdicts(NodeReady(), tolerant, snapshot) is None
    only_not_ready = pod(
        "q", tolerations=[{"key": "node.kubernetes.io/not-ready", "operator": "Exists"}]
    )
    assert verdicts(NodeReady(), only_not_ready, snapshot) == {"b": ()}


def test_all_ready_and_no_leases_means_nothing_to_check() -> None:
    assert verdicts(NodeReady(), pod("p"), Snapshot.build([node("a")])) is None


# ---------------------------------------------------------------------- TaintToleration


def test_untolerated_noschedule_and_noexecute_taints_refuse() -> None:
    snapshot = Snapshot.build(
        [
            node("clean"),
            node("gpu", taints=[taint("gpu", "true")]),
            node("evict", taints=[taint("dedicated", "infra", "NoExecute")]),
            node("prefer", taints=[taint("soft", "", "PreferNoSchedule")]),
        ]
    )
    assert verdicts(TaintToleration(), pod("p"), snapshot) == {
        "clean": (),
        "evict": ("node(s) had untolerated taint {dedicated: infra}",),
        "gpu": ("node(s) had untolerated taint {gpu: true}",),
        "prefer": (),
    }


@pytest.mark.parametrize(
    ("toleration", "tolerated"),
    [
        ({"key": "gpu", "operator": "Equal", "value": "true", "effect": "NoSchedule"}, True),
        ({"key": "gpu", "value": "true"}, True),  # empty operator is Equal, empty effect any
        ({"key": "gpu", "operator": "Exists"}, True),
        ({"operator": "Exists"}, True),
        ({"key": "gpu", "value": "false"}, False),
        ({"key": "gpu", "operator": "Exists", "effect": "NoExecute"}, False),
        ({"key": "other", "operator": "Exists"}, False),
        ({"key": "gpu", "operator": "Bogus", "value": "true"}, False),
    ],
)
def test_toleration_matching(toleration: dict[str, str], tolerated: bool) -> None:
    snapshot = Snapshot.build([node("gpu", taints=[taint("gpu", "true")])])
    result = verdicts(TaintToleration(), pod("p", tolerations=[toleration]), snapshot)
    assert result == {"gpu": () if tolerated else ("node(s) had untolerated taint {gpu: true}",)}


def test_the_first_untolerated_taint_is_named() -> None:
    snapshot = Snapshot.build([node("n", taints=[taint("a"), taint("b"), taint("c")])])
    tolerant = pod("p", tolerations=[{"key": "a", "operator": "Exists"}])
    assert verdicts(TaintToleration(), tolerant, snapshot) == {
        "n": ("node(s) had untolerated taint {b: }",)
    }


# ---------------------------------------------------------------------- NodeAffinity


def test_node_selector_must_match_every_label() -> None:
    snapshot = Snapshot.build(
        [node("a", labels={"disk": "ssd", "zone": "z1"}), node("b", labels={"disk": "hdd"})]
    )
    incoming = pod("p", nodeSelector={"disk": "ssd", "zone": "z1"})
    assert verdicts(NodeAffinity(), incoming, snapshot) == {
        "a": (),
        "b": ("node(s) didn't match Pod's node affinity/selector",),
    }


def required(*terms: dict[str, Any]) -> dict[str, Any]:
    return {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": list(terms)}
        }
    }


def expression(key: str, operator: str, *values: str) -> dict[str, Any]:
    found: dict[str, Any] = {"key": key, "operator": operator}
    if values:
        found["values"] = list(values)
    return found


@pytest.mark.parametrize(
    ("terms", "fitting"),
    [
        ([{"matchExpressions": [expression("zone", "In", "z1", "z2")]}], {"a", "b"}),
        ([{"matchExpressions": [expression("zone", "NotIn", "z1")]}], {"b", "c"}),
        ([{"matchExpressions": [expression("gpu", "Exists")]}], {"c"}),
        ([{"matchExpressions": [expression("gpu", "DoesNotExist")]}], {"a", "b"}),
        ([{"matchExpressions": [expression("cores", "Gt", "8")]}], {"b"}),
        ([{"matchExpressions": [expression("cores", "Lt", "8")]}], {"a"}),
        ([{"matchFields": [expression("metadata.name", "In", "c")]}], {"c"}),
        ([{"matchFields": [expression("metadata.name", "NotIn", "c")]}], {"a", "b"}),
        # Terms are ORed; within a term everything is ANDed.
        (
            [
                {"matchExpressions": [expression("zone", "In", "z1")]},
                {"matchExpressions": [expression("gpu", "Exists")]},
            ],
            {"a", "c"},
        ),
        (
            [
                {
                    "matchExpressions": [expression("zone", "In", "z1", "z2")],
                    "matchFields": [expression("metadata.name", "In", "b")],
                }
            ],
            {"b"},
        ),
        # An empty term matches nothing; a malformed one is dropped, the others still count.
        ([{}], set()),
        (
            [
                {"matchExpressions": [expression("cores", "Gt", "many")]},
                {"matchExpressions": [expression("gpu", "Exists")]},
            ],
            {"c"},
        ),
    ],
)
def test_required_node_affinity(terms: list[dict[str, Any]], fitting: set[str]) -> None:
    snapshot = Snapshot.build(
        [
            node("a", labels={"zone": "z1", "cores": "4"}),
            node("b", labels={"zone": "z2", "cores": "16"}),
            node("c", labels={"zone": "z3", "gpu": "yes"}),
        ]
    )
    result = verdicts(NodeAffinity(), pod("p", affinity=required(*terms)), snapshot)
    assert result is not None
    assert {name for name, reasons in result.items() if not reasons} == fitting


def test_selector_and_affinity_both_apply() -> None:
    snapshot = Snapshot.build([node("a", labels={"zone": "z1"}), node("b", labels={"zone": "z2"})])
    incoming = pod(
        "p",
        nodeSelector={"zone": "z2"},
        affinity=required({"matchExpressions": [expression("zone", "In", "z1", "z2")]}),
    )
    result = verdicts(NodeAffinity(), incoming, snapshot)
    assert result is not None and result["a"] and not result["b"]


def test_no_node_constraints_means_nothing_to_check() -> None:
    assert verdicts(NodeAffinity(), pod("p"), Snapshot.build([node("a")])) is None


# ---------------------------------------------------------------------- NodePorts


def web(port: int, ip: str | None = None, protocol: str | None = None) -> list[dict[str, Any]]:
    found: dict[str, Any] = {"containerPort": 80, "hostPort": port}
    if ip:
        found["hostIP"] = ip
    if protocol:
        found["protocol"] = protocol
    return [found]


@pytest.mark.parametrize(
    ("held", "wanted", "conflict"),
    [
        (web(80), web(80), True),
        (web(80), web(81), False),
        (web(80), web(80, protocol="UDP"), False),
        (web(80, ip="10.0.0.1"), web(80, ip="10.0.0.2"), False),
        (web(80, ip="10.0.0.1"), web(80, ip="10.0.0.1"), True),
        (web(80, ip="10.0.0.1"), web(80), True),  # 0.0.0.0 conflicts with every address
        (web(80), web(80, ip="10.0.0.1"), True),
    ],
)
def test_host_ports(held: list[Any], wanted: list[Any], conflict: bool) -> None:
    snapshot = Snapshot.build([node("a")], [pod("old", node_name="a", ports=held)])
    result = verdicts(NodePorts(), pod("p", ports=wanted), snapshot)
    reason = ("node(s) didn't have free ports for the requested pod ports",)
    assert result == {"a": reason if conflict else ()}


def test_a_freed_port_can_be_taken_again() -> None:
    snapshot = Snapshot.build([node("a")], [pod("old", node_name="a", ports=web(80))])
    snapshot.remove_pod("uid-old", "a")
    assert verdicts(NodePorts(), pod("p", ports=web(80)), snapshot) == {"a": ()}


def test_sidecar_ports_count_and_init_container_ports_do_not() -> None:
    held = pod(
        "old",
        node_name="a",
        initContainers=[
            {"name": "once", "image": "x", "ports": web(81)},
            {"name": "side", "image": "x", "restartPolicy": "Always", "ports": web(82)},
        ],
    )
    snapshot = Snapshot.build([node("a")], [held])
    assert verdicts(NodePorts(), pod("p", ports=web(81)), snapshot) == {"a": ()}
    assert verdicts(NodePorts(), pod("q", ports=web(82)), snapshot) != {"a": ()}


# ---------------------------------------------------------------------- NodeResourcesFit


def test_requests_of_bound_pods_count() -> None:
    snapshot = Snapshot.build(
        [node("a", cpu="2", memory="4Gi"), node("b", cpu="2", memory="4Gi")],
        [pod("old", node_name="a", cpu="1500m", memory="1Gi")],
    )
    assert verdicts(NodeResourcesFit(), pod("p", cpu="600m", memory="1Gi"), snapshot) == {
        "a": ("Insufficient cpu",),
        "b": (),
    }


def test_every_shortage_is_reported_in_upstream_order() -> None:
    snapshot = Snapshot.build(
        [node("a", cpu="1", memory="1Gi", pods="1", extra={"example.com/gpu": "1"})],
        [pod("old", node_name="a", cpu="500m")],
    )
    incoming = pod(
        "p",
        requests={
            "cpu": "1",
            "memory": "2Gi",
            "ephemeral-storage": "1Gi",
            "example.com/gpu": "2",
            "example.com/fpga": "1",
        },
    )
    assert verdicts(NodeResourcesFit(), incoming, snapshot) == {
        "a": (
            "Too many pods",
            "Insufficient cpu",
            "Insufficient memory",
            "Insufficient ephemeral-storage",
            "Insufficient example.com/fpga",
            "Insufficient example.com/gpu",
        )
    }


def test_a_pod_without_requests_still_needs_a_pod_slot() -> None:
    snapshot = Snapshot.build([node("a", pods="1"), node("b", pods="2")])
    snapshot.add_pod(pod_info(pod("old")), "a")
    snapshot.add_pod(pod_info(pod("old2")), "b")
    assert verdicts(NodeResourcesFit(), pod("p"), snapshot) == {"a": ("Too many pods",), "b": ()}


def test_terminal_pods_hold_nothing() -> None:
    finished = pod("done", node_name="a", cpu="2")
    finished["status"] = {"phase": "Succeeded"}
    snapshot = Snapshot.build([node("a", cpu="2")], [finished])
    assert verdicts(NodeResourcesFit(), pod("p", cpu="2"), snapshot) == {"a": ()}


def test_an_overcommitted_node_still_takes_a_pod_without_that_request() -> None:
    # Pods bound without a scheduler can exceed a node; a pod that asks for no cpu fits.
    snapshot = Snapshot.build([node("a", cpu="1")], [pod("big", node_name="a", cpu="3")])
    assert verdicts(NodeResourcesFit(), pod("p", memory="1Mi"), snapshot) == {"a": ()}


def test_unreadable_requests_fit_nowhere() -> None:
    snapshot = Snapshot.build([node("a")])
    assert verdicts(NodeResourcesFit(), pod("p", cpu="lots"), snapshot) == {
        "a": ("Unreadable cpu request",)
    }


def test_exact_quantities_fill_a_node_to_the_last_byte() -> None:
    snapshot = Snapshot.build([node("a", cpu="1", memory="1Gi")])
    for name in ("x", "y"):
        snapshot.add_pod(pod_info(pod(name, cpu="0.5", memory="512Mi")), "a")
    assert verdicts(NodeResourcesFit(), pod("p", cpu="1m"), snapshot) == {
        "a": ("Insufficient cpu",)
    }
    assert verdicts(NodeResourcesFit(), pod("q", memory="1"), snapshot) == {
        "a": ("Insufficient memory",)
    }


# ---------------------------------------------------------------------- PodTopologySpread


def spread(
    key: str,
    max_skew: int = 1,
    when: str = "DoNotSchedule",
    selector: dict[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    return {
        "maxSkew": max_skew,
        "topologyKey": key,
        "whenUnsatisfiable": when,
        "labelSelector": selector if selector is not None else {"matchLabels": {"app": "web"}},
        **extra,
    }


def zoned(*placements: tuple[str, str, int]) -> Snapshot:
    """Nodes (name, zone) with that many ``app=web`` pods on each."""
    nodes = [node(name, labels={"zone": zone}) for name, zone, _ in placements]
    pods = [
        pod(f"{name}-{i}", node_name=name, labels={"app": "web"})
        for name, _, count in placements
        for i in range(count)
    ]
    return Snapshot.build(nodes, pods)


def test_spread_refuses_domains_that_would_exceed_the_skew() -> None:
    snapshot = zoned(("a", "z1", 2), ("b", "z1", 0), ("c", "z2", 1), ("d", "z3", 1))
    incoming = pod("p", labels={"app": "web"}, topologySpreadConstraints=[spread("zone")])
    reason = ("node(s) didn't match pod topology spread constraints",)
    assert verdicts(PodTopologySpread(), incoming, snapshot) == {
        "a": reason,
        "b": reason,
        "c": (),
        "d": (),
    }


def test_spread_refuses_nodes_without_the_key() -> None:
    snapshot = Snapshot.build([node("a", labels={"zone": "z1"}), node("b")])
    incoming = pod("p", labels={"app": "web"}, topologySpreadConstraints=[spread("zone")])
    assert verdicts(PodTopologySpread(), incoming, snapshot) == {
        "a": (),
        "b": ("node(s) didn't match pod topology spread constraints (missing required label)",),
    }


def test_min_domains_treats_the_global_minimum_as_zero() -> None:
    snapshot = zoned(("a", "z1", 1), ("b", "z2", 1))
    constraint = spread("zone", minDomains=3)
    incoming = pod("p", labels={"app": "web"}, topologySpreadConstraints=[constraint])
    result = verdicts(PodTopologySpread(), incoming, snapshot)
    assert result is not None and all(result.values())  # 1 + 1 - 0 > 1 everywhere


def test_spread_counts_only_matching_pods_of_the_namespace_not_being_deleted() -> None:
    going = pod("going", node_name="a", labels={"app": "web"})
    going["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    elsewhere = pod("elsewhere", node_name="a", labels={"app": "web"}, namespace="other")
    other_app = pod("db", node_name="a", labels={"app": "db"})
    snapshot = Snapshot.build(
        [node("a", labels={"zone": "z1"}), node("b", labels={"zone": "z2"})],
        [going, elsewhere, other_app],
    )
    incoming = pod("p", labels={"app": "web"}, topologySpreadConstraints=[spread("zone")])
    assert verdicts(PodTopologySpread(), incoming, snapshot) == {"a": (), "b": ()}


def test_match_label_keys_narrow_the_selector_to_the_pods_own_values() -> None:
    snapshot = Snapshot.build(
        [node("a", labels={"zone": "z1"}), node("b", labels={"zone": "z2"})],
        [pod("old", node_name="a", labels={"app": "web", "rev": "1"})],
    )
    constraint = spread("zone", matchLabelKeys=["rev"])
    incoming = pod("p", labels={"app": "web", "rev": "2"}, topologySpreadConstraints=[constraint])
    assert verdicts(PodTopologySpread(), incoming, snapshot) == {"a": (), "b": ()}


def test_soft_constraints_do_not_filter() -> None:
    snapshot = zoned(("a", "z1", 5))
    constraints = [spread("zone", when="ScheduleAnyway")]
    incoming = pod("p", labels={"app": "web"}, topologySpreadConstraints=constraints)
    assert verdicts(PodTopologySpread(), incoming, snapshot) is None


# ---------------------------------------------------------------------- InterPodAffinity


def term(labels: dict[str, str], key: str = "zone", **extra: Any) -> dict[str, Any]:
    return {"labelSelector": {"matchLabels": labels}, "topologyKey": key, **extra}


def anti(*terms: dict[str, Any]) -> dict[str, Any]:
    return {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": list(terms)}}


def together(*terms: dict[str, Any]) -> dict[str, Any]:
    return {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": list(terms)}}


def three_zones(*bound: dict[str, Any]) -> Snapshot:
    nodes = [
        node("a", labels={"zone": "z1"}),
        node("b", labels={"zone": "z1"}),
        node("c", labels={"zone": "z2"}),
    ]
    return Snapshot.build(nodes, bound)


def test_anti_affinity_keeps_a_pod_out_of_a_matching_pods_domain() -> None:
    snapshot = three_zones(pod("db-0", node_name="a", labels={"app": "db"}))
    incoming = pod("db-1", labels={"app": "db"}, affinity=anti(term({"app": "db"})))
    reason = ("node(s) didn't match pod anti-affinity rules",)
    assert verdicts(InterPodAffinity(), incoming, snapshot) == {"a": reason, "b": reason, "c": ()}


def test_existing_pods_anti_affinity_keeps_matching_pods_away() -> None:
    guard = pod(
        "guard", node_name="c", labels={"app": "guard"}, affinity=anti(term({"app": "web"}))
    )
    snapshot = three_zones(guard)
    reason = ("node(s) didn't satisfy existing pods anti-affinity rules",)
    assert verdicts(InterPodAffinity(), pod("w", labels={"app": "web"}), snapshot) == {
        "a": (),
        "b": (),
        "c": reason,
    }
    # A pod the guard's term does not match, with no terms of its own: nothing to check.
    assert verdicts(InterPodAffinity(), pod("x", labels={"app": "x"}), snapshot) is None


def test_affinity_requires_a_matching_pod_in_the_domain() -> None:
    snapshot = three_zones(pod("cache", node_name="b", labels={"app": "cache"}))
    incoming = pod("web", labels={"app": "web"}, affinity=together(term({"app": "cache"})))
    reason = ("node(s) didn't match pod affinity rules",)
    assert verdicts(InterPodAffinity(), incoming, snapshot) == {"a": (), "b": (), "c": reason}


def test_the_first_pod_of_a_self_affine_group_may_go_anywhere() -> None:
    snapshot = three_zones()
    incoming = pod("web-0", labels={"app": "web"}, affinity=together(term({"app": "web"})))
    assert verdicts(InterPodAffinity(), incoming, snapshot) == {"a": (), "b": (), "c": ()}
    lonely = pod("x", labels={"app": "x"}, affinity=together(term({"app": "web"})))
    result = verdicts(InterPodAffinity(), lonely, snapshot)
    assert result is not None and all(result.values())


def test_affinity_terms_look_in_their_namespaces() -> None:
    snapshot = three_zones(pod("cache", node_name="b", labels={"app": "cache"}, namespace="infra"))
    same_namespace = pod("web", affinity=together(term({"app": "cache"})))
    result = verdicts(InterPodAffinity(), same_namespace, snapshot)
    assert result is not None and all(result.values())
    named = pod("web", affinity=together(term({"app": "cache"}, namespaces=["infra"])))
    assert verdicts(InterPodAffinity(), named, snapshot) == {
        "a": (),
        "b": (),
        "c": ("node(s) didn't match pod affinity rules",),
    }
    snapshot.namespace_labels["infra"] = {"team": "platform"}
    by_labels = pod(
        "web",
        affinity=together(
            term({"app": "cache"}, namespaceSelector={"matchLabels": {"team": "platform"}})
        ),
    )
    assert verdicts(InterPodAffinity(), by_labels, snapshot) == verdicts(
        InterPodAffinity(), named, snapshot
    )


def test_no_terms_anywhere_means_nothing_to_check() -> None:
    snapshot = three_zones(pod("plain", node_name="a"))
    assert verdicts(InterPodAffinity(), pod("p"), snapshot) is None
