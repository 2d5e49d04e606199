"""A pod's status as the agent reports it: upstream's ``generateAPIPodStatus``.

The pod machine (:mod:`engenho.node_agent.lifecycle`) decides the phase, the Initialized,
ContainersReady and Ready conditions and the container statuses; this module adds what the
agent knows besides (the addresses, the start time, the QoS class, PodScheduled and
PodReadyToStartContainers, readiness gates), keeps a condition's ``lastTransitionTime`` while
its status stays the same, and tells whether anything differs from what the API holds, so
the agent patches ``pods/<name>/status`` only when something changed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from engenho.node_agent.lifecycle import PodRecord, conditions, container_statuses, phase
from engenho.schema.errors import QuantityError
from engenho.schema.quantity import Quantity

__all__ = [
    "OWNED_CONDITIONS",
    "format_time",
    "pod_status",
    "qos_class",
    "status_differs",
    "status_patch",
]

Obj = Mapping[str, Any]
OWNED_CONDITIONS = (
    "PodReadyToStartContainers",
    "Initialized",
    "Ready",
    "ContainersReady",
    "PodScheduled",
)
"""The conditions the agent writes, in upstream's order; others are left as they are."""
_OWNED_FIELDS = (
    "phase",
    "hostIP",
    "hostIPs",
    "podIP",
    "podIPs",
    "startTime",
    "qosClass",
    "containerStatuses",
    "initContainerStatuses",
)
_QOS_RESOURCES = ("cpu", "memory")


def format_time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _positive(section: Any) -> dict[str, Quantity]:
    found: dict[str, Quantity] = {}
    if isinstance(section, Mapping):
        for name, value in section.items():
            if name not in _QOS_RESOURCES:
                continue
            try:
                quantity = Quantity.from_json(value)
            except QuantityError:
                continue
            if quantity > Quantity.parse("0"):
                found[str(name)] = quantity
    return found


def qos_class(pod: Obj) -> str:
    """Guaranteed, Burstable or BestEffort (upstream's ``ComputePodQOS``): sums of the
    positive cpu and memory requests and limits over the init and regular containers;
    Guaranteed when every container limits both and every request equals its limit."""
    if (pod.get("status") or {}).get("qosClass"):
        return str(pod["status"]["qosClass"])
    spec = pod.get("spec") or {}
    requests: dict[str, Quantity] = {}
    limits: dict[str, Quantity] = {}
    guaranteed = True
    for container in [*(spec.get("containers") or []), *(spec.get("initContainers") or [])]:
        resources = container.get("resources") or {}
        own_limits = _positive(resources.get("limits"))
        # The apiserver defaults requests to limits; a limit-only container counts so.
        own_requests = {**own_limits, **_positive(resources.get("requests"))}
        for name, quantity in own_requests.items():
            requests[name] = requests[name] + quantity if name in requests else quantity
        for name, quantity in own_limits.items():
            limits[name] = limits[name] + quantity if name in limits else quantity
        if not {"cpu", "memory"} <= own_limits.keys():
            guaranteed = False
    if not requests and not limits:
        return "BestEffort"
    if guaranteed:
        for name, request in requests.items():
            if name not in limits or limits[name] != request:
                guaranteed = False
                break
    if guaranteed and len(requests) == len(limits):
        return "Guaranteed"
    return "Burstable"


def _condition(
    kind: str, status: str, reason: str, message: str, old: Obj | None, now: datetime
) -> dict[str, Any]:
    changed = old is None or old.get("status") != status or not old.get("lastTransitionTime")
    condition: dict[str, Any] = {
        "type": kind,
        "status": status,
        "lastProbeTime": None,
        "lastTransitionTime": format_time(now) if changed else old["lastTransitionTime"],  # type: ignore[index]
    }
    if reason:
        condition["reason"] = reason
    if message:
        condition["message"] = message
    return condition


def _readiness_gates(pod: Obj, current: Mapping[str, Obj]) -> tuple[str, str] | None:
    """Upstream's readiness-gate check: (reason, message) when a gate is not True."""
    unready: list[str] = []
    for gate in (pod.get("spec") or {}).get("readinessGates") or []:
        kind = str(gate.get("conditionType") or "")
        condition = current.get(kind)
        if condition is None:
            unready.append(
                f'corresponding condition of pod readiness gate "{kind}" does not exist.'
            )
        elif condition.get("status") != "True":
            unready.append(
                f'the status of pod readiness gate "{kind}" is not "True", '
                f"but {condition.get('status')}"
            )
    if not unready:
        return None
    return "ReadinessGatesNotReady", ", ".join(unready)


def pod_status(
    pod: Obj,
    record: PodRecord,
    *,
    runtime: str,
    host_ips: Sequence[str],
    pod_ips: Sequence[str],
    start_time: datetime,
    sandbox_ready: bool,
    now: datetime,
    sandbox_message: str = "",
) -> dict[str, Any]:
    """The status the agent would write for ``pod`` (the fields it owns and its conditions,
    each condition keeping its transition time when its status has not changed)."""
    current_status = pod.get("status") or {}
    current = {
        str(c.get("type")): c
        for c in current_status.get("conditions") or []
        if isinstance(c, Mapping)
    }
    machine = conditions(record)
    status: dict[str, Any] = {"phase": phase(record)}
    ready = machine["Ready"]
    if ready[0] == "True":
        gates = _readiness_gates(pod, current)
        if gates is not None:
            ready = ("False", gates[0], gates[1])
    started = ("True", "", "") if sandbox_ready else ("False", "", sandbox_message)
    wanted = {
        "PodReadyToStartContainers": started,
        "Initialized": machine["Initialized"],
        "Ready": ready,
        "ContainersReady": machine["ContainersReady"],
        "PodScheduled": ("True", "", ""),
    }
    status["conditions"] = [
        _condition(kind, *wanted[kind], current.get(kind), now) for kind in OWNED_CONDITIONS
    ]
    if host_ips:
        status["hostIP"] = host_ips[0]
        status["hostIPs"] = [{"ip": ip} for ip in host_ips]
    if pod_ips:
        status["podIP"] = pod_ips[0]
        status["podIPs"] = [{"ip": ip} for ip in pod_ips]
    status["startTime"] = current_status.get("startTime") or format_time(start_time)
    status["qosClass"] = qos_class(pod)
    statuses = container_statuses(record, runtime=runtime)
    status["containerStatuses"] = statuses["containerStatuses"]
    if statuses["initContainerStatuses"]:
        status["initContainerStatuses"] = statuses["initContainerStatuses"]
    return status


def _comparable(condition: Obj) -> tuple[Any, ...]:
    return tuple(
        condition.get(key) for key in ("status", "reason", "message", "lastTransitionTime")
    )


def status_differs(current: Obj, desired: Obj) -> bool:
    """Whether writing ``desired`` would change the API's ``current`` status."""
    for key in _OWNED_FIELDS:
        if key in desired and current.get(key) != desired[key]:
            return True
    have = {str(c.get("type")): c for c in current.get("conditions") or []}
    for condition in desired.get("conditions") or []:
        old = have.get(str(condition["type"]))
        if old is None or _comparable(old) != _comparable(condition):
            return True
    return False


def status_patch(desired: Obj, uid: str) -> dict[str, Any]:
    """A strategic merge patch of ``pods/<name>/status`` writing ``desired``: conditions
    merge by type (others' are kept), container statuses are replaced, and the uid guards
    against writing to a pod of the same name created since."""
    body = {key: value for key, value in desired.items() if key != "conditions"}
    body["conditions"] = [
        {k: v for k, v in condition.items() if v is not None}
        for condition in desired.get("conditions") or []
    ]
    return {"metadata": {"uid": uid}, "status": body}
