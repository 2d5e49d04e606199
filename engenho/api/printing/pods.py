"""Pods: Name, Ready, Status, Restarts, Age (wide: IP, Node, Nominated Node, Readiness Gates).

The Status cell is the one people read most, so it follows upstream's printer step by step:

1. ``status.phase``, replaced by ``status.reason`` when set, replaced by ``SchedulingGated``
   when the PodScheduled condition says so.
2. Init containers in order: a successful one is skipped, a started sidecar (restartable init
   container) is skipped and counted in Ready; the first other one decides the status
   (``Init:<reason>``, ``Init:Signal:N``, ``Init:ExitCode:N``, ``Init:<waiting reason>``,
   otherwise ``Init:i/n``) and the pod counts as initializing.
3. Unless initializing (or the Initialized condition is True), containers are read from the
   last to the first, so the first container with a waiting or terminated state has the final
   word: its reason, ``Signal:N`` or ``ExitCode:N``. Running and ready containers count in
   Ready; ``Completed`` with such a container left becomes ``Running`` (``NotReady`` without
   the Ready condition).
4. A deletion timestamp makes a non-terminal pod ``Terminating``; reason ``NodeLost`` makes it
   ``Unknown``.

Restarts counts init containers' restarts only while initializing, otherwise sidecars' and
regular containers'; it gains `` (5m ago)`` from the latest ``lastState.terminated.finishedAt``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from engenho.api.printing.age import age, parse_time
from engenho.api.printing.columns import AGE, NAME, column, wide
from engenho.api.printing.fields import boolean, dig, integer, mapping, sequence, string
from engenho.api.printing.labels import NONE
from engenho.api.printing.printer import Printer, Row, RowCondition

__all__ = [
    "POD",
    "pod_row",
]

_SUCCEEDED = RowCondition(
    type="Completed",
    status="True",
    reason="Succeeded",
    message="The pod has completed successfully.",
)
_FAILED = RowCondition(type="Completed", status="True", reason="Failed", message="The pod failed.")
_FINISHED: dict[str, tuple[RowCondition, ...]] = {
    "Succeeded": (_SUCCEEDED,),
    "Failed": (_FAILED,),
}


def pod_row(pod: Mapping[str, Any], now: datetime) -> Row:
    spec = mapping(pod.get("spec"))
    status = mapping(pod.get("status"))
    metadata = mapping(pod.get("metadata"))
    phase = string(status.get("phase"))
    reason = string(status.get("reason")) or phase
    conditions = [mapping(c) for c in sequence(status.get("conditions"))]
    if any(
        c.get("type") == "PodScheduled" and c.get("reason") == "SchedulingGated" for c in conditions
    ):
        reason = "SchedulingGated"

    init_specs = [mapping(c) for c in sequence(spec.get("initContainers"))]
    sidecars = {string(c.get("name")) for c in init_specs if _restartable(c)}
    total = len(sequence(spec.get("containers"))) + sum(1 for c in init_specs if _restartable(c))
    ready = 0
    restarts = sidecar_restarts = 0
    last_restart: datetime | None = None
    last_sidecar_restart: datetime | None = None

    initializing = False
    for index, raw in enumerate(sequence(status.get("initContainerStatuses"))):
        container = mapping(raw)
        count = integer(container.get("restartCount"))
        finished = _last_termination(container)
        restarts += count
        last_restart = _later(last_restart, finished)
        sidecar = string(container.get("name")) in sidecars
        if sidecar:
            sidecar_restarts += count
            last_sidecar_restart = _later(last_sidecar_restart, finished)
        state = mapping(container.get("state"))
        terminated = state.get("terminated")
        waiting = state.get("waiting")
        if isinstance(terminated, Mapping) and integer(terminated.get("exitCode")) == 0:
            continue
        if sidecar and boolean(container.get("started")):
            ready += 1 if boolean(container.get("ready")) else 0
            continue
        if isinstance(terminated, Mapping):
            reason = "Init:" + _termination(terminated)
        elif isinstance(waiting, Mapping) and string(waiting.get("reason")) not in {
            "",
            "PodInitializing",
        }:
            reason = "Init:" + string(waiting.get("reason"))
        else:
            reason = f"Init:{index}/{len(init_specs)}"
        initializing = True
        break

    if not initializing or _condition_true(conditions, "Initialized"):
        restarts, last_restart = sidecar_restarts, last_sidecar_restart
        has_running = False
        for raw in reversed(sequence(status.get("containerStatuses"))):
            container = mapping(raw)
            restarts += integer(container.get("restartCount"))
            last_restart = _later(last_restart, _last_termination(container))
            state = mapping(container.get("state"))
            terminated = state.get("terminated")
            waiting = mapping(state.get("waiting"))
            if string(waiting.get("reason")):
                reason = string(waiting.get("reason"))
            elif isinstance(terminated, Mapping):
                reason = _termination(terminated)
            elif boolean(container.get("ready")) and isinstance(state.get("running"), Mapping):
                has_running = True
                ready += 1
        if reason == "Completed" and has_running:
            reason = "Running" if _condition_true(conditions, "Ready") else "NotReady"

    if metadata.get("deletionTimestamp") is not None:
        if status.get("reason") == "NodeLost":
            reason = "Unknown"
        elif phase not in {"Succeeded", "Failed"}:
            reason = "Terminating"

    restarts_cell = str(restarts)
    if restarts and last_restart is not None:
        restarts_cell = f"{restarts} ({age(last_restart, now)} ago)"

    cells = (
        string(metadata.get("name")),
        f"{ready}/{total}",
        reason,
        restarts_cell,
        age(metadata.get("creationTimestamp"), now),
        _pod_ip(status) or NONE,
        string(spec.get("nodeName")) or NONE,
        string(status.get("nominatedNodeName")) or NONE,
        _readiness_gates(spec, conditions),
    )
    return Row(cells=cells, conditions=_FINISHED.get(phase, ()))


def _restartable(container: Mapping[str, Any]) -> bool:
    return container.get("restartPolicy") == "Always"


def _last_termination(container: Mapping[str, Any]) -> datetime | None:
    return parse_time(dig(container, "lastState", "terminated", "finishedAt"))


def _later(current: datetime | None, candidate: datetime | None) -> datetime | None:
    if candidate is None:
        return current
    return candidate if current is None or candidate > current else current


def _termination(terminated: Mapping[str, Any]) -> str:
    reason = string(terminated.get("reason"))
    if reason:
        return reason
    signal = integer(terminated.get("signal"))
    if signal:
        return f"Signal:{signal}"
    return f"ExitCode:{integer(terminated.get('exitCode'))}"


def _condition_true(conditions: list[Mapping[str, Any]], kind: str) -> bool:
    return any(c.get("type") == kind and c.get("status") == "True" for c in conditions)


def _pod_ip(status: Mapping[str, Any]) -> str:
    # The v1 -> internal conversion upstream prints from makes podIP authoritative and falls
    # back to podIPs[0] when only the list is set.
    listed = sequence(status.get("podIPs"))
    return string(status.get("podIP")) or (string(dig(listed[0], "ip")) if listed else "")


def _readiness_gates(spec: Mapping[str, Any], conditions: list[Mapping[str, Any]]) -> str:
    gates = [mapping(g) for g in sequence(spec.get("readinessGates"))]
    if not gates:
        return NONE
    passed = 0
    for gate in gates:
        match = next((c for c in conditions if c.get("type") == gate.get("conditionType")), None)
        if match is not None and match.get("status") == "True":
            passed += 1
    return f"{passed}/{len(gates)}"


POD = Printer(
    kind="Pod",
    version="v1",
    columns=(
        NAME,
        column("Ready", "The aggregate readiness state of this pod for accepting traffic."),
        column("Status", "The aggregate status of the containers in this pod."),
        column(
            "Restarts",
            "The number of times the containers in this pod have been restarted and when the "
            "last container in this pod has restarted.",
        ),
        AGE,
        wide(
            "IP",
            "podIP address allocated to the pod. Routable at least within the cluster. Empty if "
            "not yet allocated.",
        ),
        wide(
            "Node",
            "NodeName indicates in which node this pod is scheduled. If empty, this pod is a "
            "candidate for scheduling by the scheduler defined in schedulerName. Once this field "
            "is set, the kubelet for this node becomes responsible for the lifecycle of this "
            "pod. This field should not be used to express a desire for the pod to be scheduled "
            "on a specific node. "
            "https://kubernetes.io/docs/concepts/scheduling-eviction/assign-pod-node/#nodename",
        ),
        wide(
            "Nominated Node",
            "nominatedNodeName is set only when this pod preempts other pods on the node, but it "
            "cannot be scheduled right away as preemption victims receive their graceful "
            "termination periods. This field does not guarantee that the pod will be scheduled "
            "on this node. Scheduler may decide to place the pod elsewhere if other nodes become "
            "available sooner. Scheduler may also decide to give the resources on this node to a "
            "higher priority pod that is created after preemption. As a result, this field may "
            "be different than PodSpec.nodeName when the pod is scheduled.",
        ),
        wide(
            "Readiness Gates",
            "If specified, all readiness gates will be evaluated for pod readiness. A pod is "
            "ready when all its containers are ready AND all conditions specified in the "
            'readiness gates have status equal to "True" More info: '
            "https://git.k8s.io/enhancements/keps/sig-network/580-pod-readiness-gates",
        ),
    ),
    row=pod_row,
)
