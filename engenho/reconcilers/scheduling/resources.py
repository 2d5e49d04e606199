"""What a pod asks for and what a node offers, as integers the filters compare.

A pod's request follows upstream's ``resourcehelper.PodRequests``: the sum over containers
(and sidecars, restartable init containers), at least the largest init container's need at the
moment it runs (with the sidecars started before it), plus ``spec.overhead``. Quantities are
summed exactly (in nano-units) and then rounded up: CPU to millicores, everything else to
whole units, as ``MilliValue()`` and ``Value()`` do.

The *non-zero* request is the same sum with a container's missing cpu or memory request taken
as 100m and 200Mi; scores use it so that pods without requests still spread (upstream's
``schedutil.DefaultMilliCPURequest`` and ``DefaultMemoryRequest``).

Scalar resources are the ones besides cpu, memory, ephemeral-storage and pods that the fit
filter counts: extended resources (a name with a ``/``), ``hugepages-*`` and
``attachable-volumes-*``; other names are ignored, as upstream ignores them. A quantity that
does not parse is *unreadable*, never zero: such a pod fits nowhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from attrs import frozen

from engenho.schema import Quantity, QuantityError

__all__ = [
    "DEFAULT_MEMORY_REQUEST",
    "DEFAULT_MILLI_CPU_REQUEST",
    "Allocatable",
    "Requests",
    "is_scalar",
    "node_allocatable",
    "pod_requests",
]

DEFAULT_MILLI_CPU_REQUEST = 100
DEFAULT_MEMORY_REQUEST = 200 * 1024 * 1024
_NANO = 10**9
_MILLI_IN_NANOS = 10**6
_DEFAULTS = {
    "cpu": DEFAULT_MILLI_CPU_REQUEST * _MILLI_IN_NANOS,
    "memory": DEFAULT_MEMORY_REQUEST * _NANO,
}
_FIXED = frozenset({"cpu", "memory", "ephemeral-storage", "pods"})


def is_scalar(name: str) -> bool:
    return name not in _FIXED and (
        "/" in name or name.startswith(("hugepages-", "attachable-volumes-"))
    )


@frozen
class Requests:
    cpu: int
    """Millicores."""
    memory: int
    ephemeral: int
    scalars: tuple[tuple[str, int], ...]
    """Non-zero scalar requests, sorted by name."""
    nonzero_cpu: int
    nonzero_memory: int
    unreadable: tuple[str, ...] = ()
    """Resource names whose quantities did not parse."""

    @property
    def empty(self) -> bool:
        return not (self.cpu or self.memory or self.ephemeral or self.scalars)


@frozen
class Allocatable:
    cpu: int
    memory: int
    ephemeral: int
    pods: int
    scalars: Mapping[str, int]


def _round_up(nanos: int, unit: int) -> int:
    return -((-nanos) // unit)


def _nanos(values: Any, unreadable: set[str]) -> dict[str, int]:
    result: dict[str, int] = {}
    if not isinstance(values, dict):
        return result
    for name, value in values.items():
        try:
            result[name] = Quantity.from_json(value).nanos
        except QuantityError:
            unreadable.add(name)
    return result


def _add(into: dict[str, int], other: Mapping[str, int]) -> None:
    for name, nanos in other.items():
        into[name] = into.get(name, 0) + nanos


def _max(into: dict[str, int], other: Mapping[str, int]) -> None:
    for name, nanos in other.items():
        if nanos > into.get(name, 0):
            into[name] = nanos


def _container_requests(
    container: Any, defaults: Mapping[str, int] | None, unreadable: set[str]
) -> dict[str, int]:
    resources = container.get("resources") if isinstance(container, dict) else None
    requests = _nanos(
        resources.get("requests") if isinstance(resources, dict) else None, unreadable
    )
    if defaults:
        for name, nanos in defaults.items():
            requests.setdefault(name, nanos)
    return requests


def _sum(
    spec: Mapping[str, Any], defaults: Mapping[str, int] | None, unreadable: set[str]
) -> dict[str, int]:
    total: dict[str, int] = {}
    for container in spec.get("containers") or []:
        _add(total, _container_requests(container, defaults, unreadable))
    sidecars: dict[str, int] = {}
    init: dict[str, int] = {}
    for container in spec.get("initContainers") or []:
        requests = _container_requests(container, defaults, unreadable)
        if isinstance(container, dict) and container.get("restartPolicy") == "Always":
            # A sidecar keeps running: it adds to the pod's total, and to what every later
            # init container runs beside.
            _add(total, requests)
            _add(sidecars, requests)
            running = dict(sidecars)
        else:
            running = dict(requests)
            _add(running, sidecars)
        _max(init, running)
    _max(total, init)
    _add(total, _nanos(spec.get("overhead"), unreadable))
    return total


def pod_requests(spec: Mapping[str, Any]) -> Requests:
    unreadable: set[str] = set()
    total = _sum(spec, None, unreadable)
    nonzero = _sum(spec, _DEFAULTS, unreadable)
    scalars = tuple(
        sorted(
            (name, _round_up(nanos, _NANO))
            for name, nanos in total.items()
            if nanos > 0 and is_scalar(name)
        )
    )
    return Requests(
        cpu=_round_up(total.get("cpu", 0), _MILLI_IN_NANOS),
        memory=_round_up(total.get("memory", 0), _NANO),
        ephemeral=_round_up(total.get("ephemeral-storage", 0), _NANO),
        scalars=scalars,
        nonzero_cpu=_round_up(nonzero.get("cpu", 0), _MILLI_IN_NANOS),
        nonzero_memory=_round_up(nonzero.get("memory", 0), _NANO),
        unreadable=tuple(sorted(unreadable)),
    )


def node_allocatable(status: Any) -> Allocatable:
    """``status.allocatable`` (``status.capacity`` when a node reports no allocatable at
    all, as hand-written Nodes often do); a quantity that does not parse offers nothing."""
    status = status if isinstance(status, dict) else {}
    offered = status.get("allocatable")
    if not isinstance(offered, dict):
        offered = status.get("capacity")
    unreadable: set[str] = set()
    nanos = _nanos(offered, unreadable)
    return Allocatable(
        cpu=_round_up(nanos.get("cpu", 0), _MILLI_IN_NANOS),
        memory=_round_up(nanos.get("memory", 0), _NANO),
        ephemeral=_round_up(nanos.get("ephemeral-storage", 0), _NANO),
        pods=_round_up(nanos.get("pods", 0), _NANO),
        scalars={name: _round_up(value, _NANO) for name, value in nanos.items() if is_scalar(name)},
    )
