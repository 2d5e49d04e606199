"""The pod status the agent writes: upstream's QoS classes, the conditions it owns (with
transition times kept while their status holds), readiness gates, addresses, and the check
that decides whether anything needs writing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from engenho.node_agent import lifecycle
from engenho.node_agent.status import (
    OWNED_CONDITIONS,
    pod_status,
    qos_class,
    status_differs,
    status_patch,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _pod(*containers: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "p", "namespace": "ns", "uid": "u"},
        "spec": {"containers": list(containers), **spec},
        "status": {},
    }


def _c(name: str = "app", **resources: Any) -> dict[str, Any]:
    return {"name": name, "image": "busybox", "resources": resources}


@pytest.mark.parametrize(
    ("containers", "expected"),
    [
        ([_c()], "BestEffort"),
        ([_c(requests={"cpu": "0"})], "BestEffort"),
        ([_c(limits={"cpu": "1", "memory": "1Gi"})], "Guaranteed"),
        (
            [_c(limits={"cpu": "1", "memory": "1Gi"}, requests={"cpu": "1", "memory": "1Gi"})],
            "Guaranteed",
        ),
        ([_c(limits={"cpu": "1", "memory": "1Gi"}, requests={"cpu": "500m"})], "Burstable"),
        ([_c(limits={"cpu": "1"})], "Burstable"),
        ([_c(requests={"memory": "1Gi"})], "Burstable"),
        ([_c(limits={"cpu": "1", "memory": "1Gi"}), _c("b")], "Burstable"),
        (
            [
                _c(
                    limits={"cpu": "1000m", "memory": "1024Mi"},
                    requests={"cpu": "1", "memory": "1Gi"},
                )
            ],
            "Guaranteed",
        ),
        ([_c(limits={"cpu": "1", "memory": "1Gi", "nvidia.com/gpu": "1"})], "Guaranteed"),
    ],
)
def test_qos_class(containers: list[dict[str, Any]], expected: str) -> None:
    assert qos_class(_pod(*containers)) == expected


def test_init_containers_count_for_qos() -> None:
    pod = _pod(_c(limits={"cpu": "1", "memory": "1Gi"}), initContainers=[_c("init")])
    assert qos_class(pod) == "Burstable"


def test_the_status_qos_class_is_kept() -> None:
    pod = _pod(_c())
    pod["status"]["qosClass"] = "Guaranteed"
    assert qos_class(pod) == "Guaranteed"


def _running_record(pod: dict[str, Any]) -> lifecycle.PodRecord:
    record = lifecycle.new_pod("p_ns(u)", pod["spec"])
    record, _ = lifecycle.step(record, lifecycle.Tick(T0))
    record, _ = lifecycle.step(record, lifecycle.Started("app", T0, "c1", "sha256:x"))
    return record


def _status(pod: dict[str, Any], record: lifecycle.PodRecord, now: datetime) -> dict[str, Any]:
    return pod_status(
        pod,
        record,
        runtime="fake",
        host_ips=("192.0.2.1",),
        pod_ips=("10.42.0.2",),
        start_time=T0,
        sandbox_ready=True,
        now=now,
    )


def test_a_running_pod_status() -> None:
    pod = _pod(_c())
    status = _status(pod, _running_record(pod), T0)
    assert status["phase"] == "Running"
    assert [c["type"] for c in status["conditions"]] == list(OWNED_CONDITIONS)
    assert all(c["status"] == "True" for c in status["conditions"])
    assert status["hostIPs"] == [{"ip": "192.0.2.1"}] and status["podIP"] == "10.42.0.2"
    assert status["startTime"] == "2026-01-01T00:00:00Z"
    assert status["containerStatuses"][0]["containerID"] == "fake://c1"
    assert "initContainerStatuses" not in status, "left out when there are none"


def test_transition_times_hold_while_the_status_holds() -> None:
    pod = _pod(_c())
    record = _running_record(pod)
    pod["status"] = _status(pod, record, T0)
    later = _status(pod, record, T0 + timedelta(minutes=5))
    assert not status_differs(pod["status"], later), "nothing changed: nothing to write"
    record, _ = lifecycle.step(record, lifecycle.Exited("app", T0 + timedelta(minutes=5), 1))
    changed = _status(pod, record, T0 + timedelta(minutes=6))
    assert status_differs(pod["status"], changed)
    times = {c["type"]: c["lastTransitionTime"] for c in changed["conditions"]}
    assert times["Ready"] == "2026-01-01T00:06:00Z"
    assert times["Initialized"] == "2026-01-01T00:00:00Z"
    assert times["PodScheduled"] == "2026-01-01T00:00:00Z"


def test_readiness_gates_hold_ready_back() -> None:
    pod = _pod(_c(), readinessGates=[{"conditionType": "example.com/lb"}])
    record = _running_record(pod)
    ready = {c["type"]: c for c in _status(pod, record, T0)["conditions"]}["Ready"]
    assert ready["status"] == "False" and ready["reason"] == "ReadinessGatesNotReady"
    assert ready["message"] == (
        'corresponding condition of pod readiness gate "example.com/lb" does not exist.'
    )
    pod["status"]["conditions"] = [{"type": "example.com/lb", "status": "False"}]
    ready = {c["type"]: c for c in _status(pod, record, T0)["conditions"]}["Ready"]
    assert ready["message"] == (
        'the status of pod readiness gate "example.com/lb" is not "True", but False'
    )
    pod["status"]["conditions"] = [{"type": "example.com/lb", "status": "True"}]
    ready = {c["type"]: c for c in _status(pod, record, T0)["conditions"]}["Ready"]
    assert ready["status"] == "True"


def test_the_patch_keeps_others_conditions_and_guards_the_uid() -> None:
    pod = _pod(_c())
    patch = status_patch(_status(pod, _running_record(pod), T0), "u")
    assert patch["metadata"] == {"uid": "u"}
    assert all("lastProbeTime" not in c for c in patch["status"]["conditions"])
    pod["status"]["conditions"] = [{"type": "DisruptionTarget", "status": "True"}]
    status = _status(pod, _running_record(pod), T0)
    assert "DisruptionTarget" not in [c["type"] for c in status["conditions"]], (
        "merged by type on the server: others' conditions stay untouched"
    )
