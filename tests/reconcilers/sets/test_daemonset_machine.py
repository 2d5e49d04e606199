"""Properties of the DaemonSet decisions (:mod:`engenho.reconcilers.machines.daemonsets`): which
nodes fit (taints, tolerations, the daemon tolerations, selectors), and rolling updates that,
in any interleaving with a kubelet that starts pods and finishes deletions, never leave more
than ``maxUnavailable`` nodes unserved (or, surging, never leave a node unserved nor surge on
more than ``maxSurge`` nodes) and always finish."""

from __future__ import annotations

from typing import Any

from attrs import evolve
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from engenho.reconcilers.machines.daemonsets import (
    DaemonPod,
    NodeFit,
    daemon_tolerations,
    manage,
    node_fit,
    rolling_update,
    tally,
)


def _node(name: str, labels: dict[str, str] | None = None, taints: Any = None) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": labels or {}}, "spec": {"taints": taints or []}}


def test_node_fit_follows_taints_affinity_and_node_name() -> None:
    plain: dict[str, Any] = {"containers": [{"name": "c", "image": "i"}]}
    assert node_fit(_node("a"), plain) == NodeFit(True, True)
    no_schedule = [{"key": "k", "value": "v", "effect": "NoSchedule"}]
    no_execute = [{"key": "k", "value": "v", "effect": "NoExecute"}]
    assert node_fit(_node("a", taints=no_schedule), plain) == NodeFit(False, True)
    assert node_fit(_node("a", taints=no_execute), plain) == NodeFit(False, False)
    tolerant = {**plain, "tolerations": [{"key": "k", "operator": "Exists"}]}
    assert node_fit(_node("a", taints=no_execute), tolerant) == NodeFit(True, True)
    for key, effect in (
        ("node.kubernetes.io/not-ready", "NoExecute"),
        ("node.kubernetes.io/unreachable", "NoExecute"),
        ("node.kubernetes.io/unschedulable", "NoSchedule"),
        ("node.kubernetes.io/memory-pressure", "NoSchedule"),
    ):
        taint = [{"key": key, "effect": effect}]
        assert node_fit(_node("a", taints=taint), plain) == NodeFit(True, True)
    selector = {**plain, "nodeSelector": {"disk": "ssd"}}
    assert node_fit(_node("a"), selector) == NodeFit(False, False)
    assert node_fit(_node("a", {"disk": "ssd"}), selector) == NodeFit(True, True)
    assert node_fit(_node("a"), {**plain, "nodeName": "b"}) == NodeFit(False, False)
    affinity = {
        **plain,
        "affinity": {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["z1"]}]}
                    ]
                }
            }
        },
    }
    assert node_fit(_node("a", {"zone": "z1"}), affinity).should_run
    assert not node_fit(_node("a", {"zone": "z2"}), affinity).should_continue


def test_daemon_tolerations_replace_equal_ones_and_keep_others() -> None:
    spec = {
        "tolerations": [
            {
                "key": "node.kubernetes.io/not-ready",
                "operator": "Exists",
                "effect": "NoExecute",
                "tolerationSeconds": 30,
            },
            {"key": "mine", "operator": "Exists"},
        ]
    }
    result = daemon_tolerations(spec)
    assert result[0] == {
        "key": "node.kubernetes.io/not-ready",
        "operator": "Exists",
        "effect": "NoExecute",
    }
    assert result[1] == {"key": "mine", "operator": "Exists"}
    assert len(result) == 7
    assert len(daemon_tolerations({"hostNetwork": True})) == 7


taints = st.lists(
    st.fixed_dictionaries(
        {
            "key": st.sampled_from(["a", "b", "node.kubernetes.io/unschedulable"]),
            "value": st.sampled_from(["", "x"]),
            "effect": st.sampled_from(["NoSchedule", "NoExecute", "PreferNoSchedule"]),
        }
    ),
    max_size=3,
)
tolerations = st.lists(
    st.fixed_dictionaries(
        {
            "key": st.sampled_from(["", "a", "b"]),
            "operator": st.sampled_from(["Exists", "Equal"]),
            "value": st.sampled_from(["", "x"]),
            "effect": st.sampled_from(["", "NoSchedule", "NoExecute"]),
        }
    ),
    max_size=3,
)


@given(taints, tolerations)
def test_a_node_that_should_run_a_pod_may_keep_it(
    node_taints: list[dict[str, str]], pod_tolerations: list[dict[str, str]]
) -> None:
    fit = node_fit(_node("n", taints=node_taints), {"tolerations": pod_tolerations})
    assert not fit.should_run or fit.should_continue
    if not any(t["effect"] in ("NoSchedule", "NoExecute") for t in node_taints):
        assert fit.should_run


NODES = ("n1", "n2", "n3", "n4")


class Rollout(RuleBasedStateMachine):
    """A DaemonSet on four nodes rolled to a new revision: a controller that syncs at any
    moment (manage, then, with nothing in flight, the rolling update), a kubelet that starts
    pods and finishes deletions in any order."""

    @initialize(
        max_surge=st.integers(0, 2),
        max_unavailable=st.integers(0, 2),
    )
    def start(self, max_surge: int, max_unavailable: int) -> None:
        if max_surge == 0 and max_unavailable == 0:
            max_unavailable = 1  # upstream's fencepost
        self.max_surge = max_surge
        self.max_unavailable = max_unavailable
        self.fits = {n: NodeFit(True, True) for n in NODES}
        self.pods: dict[str, list[DaemonPod]] = {
            n: [DaemonPod(f"old-{n}", "0", updated=False, ready=True, available=True)]
            for n in NODES
        }
        self.made = 0
        self.unavailable_limit = max_unavailable if max_surge == 0 else 0

    def _apply(self, deletes: tuple[str, ...], creates: tuple[str, ...]) -> None:
        for node, pods in self.pods.items():
            self.pods[node] = [
                evolve(p, terminating=True) if p.name in deletes else p for p in pods
            ]
        for node in creates:
            self.made += 1
            self.pods[node].append(DaemonPod(f"new-{self.made}", f"{self.made:04}", bound=True))

    @rule()
    def sync(self) -> None:
        decided = manage(self.fits, self.pods, surge=self.max_surge > 0)
        assert not decided.failed and not decided.succeeded
        self._apply(decided.delete, decided.create_on)
        if decided.delete or decided.create_on:
            return  # expectations: wait to see these before rolling further
        deletes, surges = rolling_update(
            self.fits,
            self.pods,
            max_surge=self.max_surge,
            max_unavailable=self.max_unavailable,
        )
        self._apply(deletes, surges)

    @rule(data=st.data())
    def kubelet_starts_a_pod(self, data: Any) -> None:
        pending = [
            (n, i)
            for n, pods in self.pods.items()
            for i, p in enumerate(pods)
            if not p.available and not p.terminating
        ]
        if pending:
            node, index = data.draw(st.sampled_from(pending))
            self.pods[node][index] = evolve(self.pods[node][index], ready=True, available=True)

    @rule(data=st.data())
    def kubelet_finishes_a_deletion(self, data: Any) -> None:
        going = [(n, p.name) for n, pods in self.pods.items() for p in pods if p.terminating]
        if going:
            node, name = data.draw(st.sampled_from(going))
            self.pods[node] = [p for p in self.pods[node] if p.name != name]

    @invariant()
    def within_bounds(self) -> None:
        unserved = [
            n
            for n, pods in self.pods.items()
            if not any(p.available and not p.terminating for p in pods)
        ]
        assert len(unserved) <= self.unavailable_limit, f"unserved nodes: {unserved}"
        # Pods being deleted count for neither bound (upstream: so that updates progress).
        doubled = [n for n, pods in self.pods.items() if sum(not p.terminating for p in pods) > 1]
        assert len(doubled) <= max(self.max_surge, self.unavailable_limit), doubled

    def teardown(self) -> None:
        # Whatever happened, a cooperative kubelet and a few syncs finish the rollout.
        for _ in range(40):
            self.sync()
            for node, pods in self.pods.items():
                self.pods[node] = [
                    evolve(p, ready=True, available=True) for p in pods if not p.terminating
                ]
        counted = tally(self.fits, self.pods)
        assert counted.updated == counted.desired == counted.available == len(NODES)
        assert all(len(pods) == 1 for pods in self.pods.values())


TestRollout = Rollout.TestCase
TestRollout.settings = settings(max_examples=100, stateful_step_count=40, deadline=None)
