"""The pure parts of the workload controllers: maxSurge/maxUnavailable resolution and rounding,
how far a new ReplicaSet may grow, proportional shares, template hashes and equality, revision
annotations and their history, expectations, and the order in which pods are deleted."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from engenho.projections import StoredObject
from engenho.reconcilers.expectations import Expectations
from engenho.reconcilers.machines.pods import observe
from engenho.reconcilers.ranking import pods_to_delete
from engenho.reconcilers.revisions import (
    MAX_HISTORY_CHARS,
    REVISION,
    REVISION_HISTORY,
    equal_ignoring_hash,
    replica_set_annotations,
    template_hash,
)
from engenho.reconcilers.rolling import (
    fenceposts,
    max_unavailable,
    new_replicas,
    proportion,
    scaled_value,
)

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _stored(obj: dict[str, Any], name: str = "x", uid: str = "u") -> StoredObject:
    return StoredObject("apps", "replicasets", "default", name, uid, 1, orjson.dumps(obj))


def _deployment(replicas: int, surge: Any = "25%", unavailable: Any = "25%") -> dict[str, Any]:
    return {
        "metadata": {"name": "web", "generation": 1},
        "spec": {
            "replicas": replicas,
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable},
            },
        },
    }


def _rs(spec: int, status: int = 0, annotations: dict[str, str] | None = None) -> StoredObject:
    meta = {"annotations": annotations} if annotations else {}
    return _stored({"metadata": meta, "spec": {"replicas": spec}, "status": {"replicas": status}})


@pytest.mark.parametrize(
    ("replicas", "surge", "unavailable", "expected"),
    [
        (4, "25%", "25%", (1, 1)),
        (3, "25%", "25%", (1, 0)),  # surge rounds up, unavailability down
        (10, "25%", "25%", (3, 2)),
        (1, "0%", "0%", (0, 1)),  # both zero: one may be unavailable
        (5, 0, 2, (0, 2)),
        (2, 3, 5, (3, 5)),
    ],
)
def test_fenceposts(replicas: int, surge: Any, unavailable: Any, expected: tuple[int, int]) -> None:
    assert fenceposts(_deployment(replicas, surge, unavailable)) == expected


def test_max_unavailable_is_capped_and_zero_for_recreate() -> None:
    assert max_unavailable(_deployment(2, 0, 5)) == 2
    assert max_unavailable(_deployment(0, 1, 1)) == 0
    recreate = {"spec": {"replicas": 3, "strategy": {"type": "Recreate"}}}
    assert max_unavailable(recreate) == 0


@given(st.integers(min_value=0, max_value=100), st.integers(min_value=0, max_value=1000))
def test_percentages_round_as_upstream(percent: int, total: int) -> None:
    up = scaled_value(f"{percent}%", total, round_up=True)
    down = scaled_value(f"{percent}%", total, round_up=False)
    assert down <= percent * total / 100 <= up
    assert up - down in (0, 1)
    with pytest.raises(ValueError, match="percentage"):
        scaled_value(f"{percent}", total, round_up=True)


def test_new_replicas_counts_pods_still_running() -> None:
    d = _deployment(4, 1, 1)  # at most 5 pods
    new = _rs(1, 1)
    assert new_replicas(d, [_rs(3, 3), new], new) == 2
    # The old ReplicaSet was told to drop to 2 but still reports 3 pods: no room yet.
    assert new_replicas(d, [_rs(2, 3), _rs(2, 2)], _rs(2, 2)) == 2
    assert new_replicas(d, [_rs(2, 2), _rs(2, 2)], _rs(2, 2)) == 3


def test_proportional_shares() -> None:
    d = _deployment(20, 3, 2)
    old = _rs(8, annotations={"deployment.kubernetes.io/max-replicas": "13"})
    new = _rs(5, annotations={"deployment.kubernetes.io/max-replicas": "13"})
    assert proportion(old, d, 10, 0) == 6
    assert proportion(new, d, 10, 6) == 4
    shrink = _deployment(0, 3, 2)
    assert proportion(old, shrink, -13, 0) == -8


def test_template_hash_is_stable_and_sees_every_field() -> None:
    template = {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c"}]}}
    reordered = {"spec": {"containers": [{"name": "c"}]}, "metadata": {"labels": {"app": "web"}}}
    assert template_hash(template) == template_hash(reordered)
    assert template_hash(template) != template_hash(template, 1)
    assert template_hash(template, 1) != template_hash(template, 2)
    other = {**template, "spec": {"containers": [{"name": "d"}]}}
    assert template_hash(template) != template_hash(other)
    assert set(template_hash(template)) <= set("bcdfghjklmnpqrstvwxz2456789")


def test_templates_compare_without_the_hash_label() -> None:
    plain = {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c"}]}}
    hashed = {
        "metadata": {"labels": {"app": "web", "pod-template-hash": "abc"}},
        "spec": {"containers": [{"name": "c"}], "volumes": []},
    }
    assert equal_ignoring_hash(plain, hashed)
    changed = {**plain, "spec": {"containers": [{"name": "c", "image": "x"}]}}
    assert not equal_ignoring_hash(plain, changed)


def test_revision_annotations() -> None:
    deployment = {"metadata": {"annotations": {"team": "a", REVISION: "9"}}}
    created: dict[str, str] = {}
    assert replica_set_annotations(deployment, created, 1, exists=False, desired=3, maximum=4)
    assert created == {
        "team": "a",
        REVISION: "1",
        "deployment.kubernetes.io/desired-replicas": "3",
        "deployment.kubernetes.io/max-replicas": "4",
    }
    assert not replica_set_annotations(deployment, created, 1, exists=True, desired=5, maximum=6)
    # Becoming the new ReplicaSet again (a rollback) keeps the earlier revisions.
    assert replica_set_annotations(deployment, created, 4, exists=True, desired=3, maximum=4)
    assert (created[REVISION], created[REVISION_HISTORY]) == ("4", "1")
    replica_set_annotations(deployment, created, 7, exists=True, desired=3, maximum=4)
    assert created[REVISION_HISTORY] == "1,4"


def test_revision_history_is_bounded() -> None:
    annotations = {REVISION: "1000", REVISION_HISTORY: ",".join(str(n) for n in range(1, 999))}
    replica_set_annotations({}, annotations, 1001, exists=True, desired=1, maximum=1)
    history = annotations[REVISION_HISTORY]
    assert len(history) <= MAX_HISTORY_CHARS and history.endswith(",1000")


def test_expectations() -> None:
    clock = [0.0]
    expectations = Expectations(timeout=10, clock=lambda: clock[0])
    assert expectations.satisfied("rs")
    expectations.expect_creations("rs", 2)
    expectations.creation_observed("rs")
    assert not expectations.satisfied("rs")
    expectations.creation_observed("rs")
    assert expectations.satisfied("rs")
    expectations.expect_deletions("rs", ["ns/a", "ns/b"])
    expectations.deletion_observed("rs", "ns/a")
    expectations.deletion_observed("rs", "ns/a")  # seen twice (deleting, then deleted)
    assert expectations.pending("rs") == (0, 1)
    clock[0] = 11
    assert expectations.satisfied("rs")  # a lost event does not wedge the controller
    expectations.forget("rs")
    assert expectations.pending("rs") == (0, 0)


def _pod(
    name: str,
    *,
    node: str = "",
    phase: str = "Pending",
    ready_for: int | None = None,
    age: int = 100,
    restarts: int = 0,
    cost: int | None = None,
) -> StoredObject:
    status: dict[str, Any] = {"phase": phase}
    if ready_for is not None:
        since = (NOW - timedelta(seconds=ready_for)).strftime("%Y-%m-%dT%H:%M:%SZ")
        status["conditions"] = [{"type": "Ready", "status": "True", "lastTransitionTime": since}]
    status["containerStatuses"] = [{"name": "c", "restartCount": restarts}]
    meta: dict[str, Any] = {
        "name": name,
        "creationTimestamp": (NOW - timedelta(seconds=age)).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    if cost is not None:
        meta["annotations"] = {"controller.kubernetes.io/pod-deletion-cost": str(cost)}
    obj = {"metadata": meta, "spec": {"nodeName": node} if node else {}, "status": status}
    return StoredObject("", "pods", "default", name, f"uid-{name}", 1, orjson.dumps(obj))


def _order(*pods: StoredObject, related: tuple[StoredObject, ...] = ()) -> list[str]:
    views = [(pod, observe(pod.object, NOW)[0]) for pod in pods]
    others = [(pod, observe(pod.object, NOW)[0]) for pod in related]
    return [pod.name for pod in pods_to_delete(views, others, len(pods) - 1, NOW)]


def test_deletion_order() -> None:
    unscheduled = _pod("unscheduled")
    pending = _pod("pending", node="n1")
    running = _pod("running", node="n1", phase="Running")
    ready = _pod("ready", node="n1", phase="Running", ready_for=1000)
    spare = _pod("spare", node="n1", phase="Running", ready_for=1000, age=500)
    assert _order(ready, spare, running, pending, unscheduled) == [
        "unscheduled",
        "pending",
        "running",
        "ready",  # newer than spare (same ready bucket)
    ]


def test_deletion_order_among_ready_pods() -> None:
    old = _pod("old", node="n1", phase="Running", ready_for=100_000)
    recent = _pod("recent", node="n2", phase="Running", ready_for=10)
    assert _order(old, recent)[0] == "recent"
    cheap = _pod("cheap", node="n1", phase="Running", ready_for=10, cost=-5)
    assert _order(recent, cheap)[0] == "cheap"
    flaky = _pod("flaky", node="n1", phase="Running", ready_for=100_000, restarts=3)
    steady = _pod("steady", node="n2", phase="Running", ready_for=100_000)
    assert _order(steady, flaky)[0] == "flaky"
    # A pod sharing its node with more pods of the same owner goes first.
    crowd = (_pod("c1", node="n1", phase="Running"), _pod("c2", node="n1", phase="Running"))
    assert _order(steady, flaky, related=(*crowd, flaky, steady))[0] == "flaky"
    assert _order(old, recent, related=(*crowd, old, recent))[0] == "old"
