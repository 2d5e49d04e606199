"""A pod as the scheduler sees it: everything the plugins ask of it, parsed once.

Parsing is defensive (the API has validated the pod, but the scheduler must never crash on
an object it did not expect): a malformed part counts as absent, except resource quantities,
which count as unreadable (see :mod:`.resources`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from attrs import frozen

from engenho.reconcilers.scheduling.nodeaffinity import (
    PreferredTerm,
    RequiredNodeAffinity,
    parse_preferred_terms,
    required_node_affinity,
)
from engenho.reconcilers.scheduling.resources import Requests, pod_requests
from engenho.reconcilers.scheduling.taints import Toleration, parse_tolerations
from engenho.reconcilers.scheduling.terms import (
    AffinityTerm,
    SpreadConstraint,
    parse_affinity_terms,
    parse_spread_constraints,
)

__all__ = ["DEFAULT_SCHEDULER", "HostPort", "PodInfo", "host_ports", "pod_info"]

DEFAULT_SCHEDULER = "default-scheduler"
_ANY_IP = "0.0.0.0"  # noqa: S104 - a host port's "every address", not a bind

HostPort = tuple[str, str, int]
"""(host IP, protocol, port), with upstream's defaults: ``0.0.0.0`` and ``TCP``."""


@frozen
class PodInfo:
    namespace: str
    name: str
    uid: str
    labels: Mapping[str, str]
    node_name: str
    scheduler_name: str
    deleting: bool
    terminal: bool
    """``status.phase`` is Succeeded or Failed: it holds no resources any more."""
    gated: bool
    """``spec.schedulingGates`` is not empty: not to be scheduled yet."""
    requests: Requests
    tolerations: tuple[Toleration, ...]
    required_affinity: RequiredNodeAffinity | None
    preferred_affinity: tuple[PreferredTerm, ...]
    host_ports: tuple[HostPort, ...]
    affinity_terms: tuple[AffinityTerm, ...]
    anti_affinity_terms: tuple[AffinityTerm, ...]
    spread_constraints: tuple[SpreadConstraint, ...]

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


def _ports_of(container: Any) -> list[HostPort]:
    ports = container.get("ports") if isinstance(container, dict) else None
    found = []
    for port in ports if isinstance(ports, list) else []:
        number = port.get("hostPort") if isinstance(port, dict) else None
        if isinstance(number, int) and number > 0:
            found.append((port.get("hostIP") or _ANY_IP, port.get("protocol") or "TCP", number))
    return found


def host_ports(spec: Mapping[str, Any]) -> tuple[HostPort, ...]:
    """The host ports a pod holds: its containers' and its sidecars' (restartable init
    containers); ordinary init containers have exited before the pod runs."""
    found: list[HostPort] = []
    for container in spec.get("initContainers") or []:
        if isinstance(container, dict) and container.get("restartPolicy") == "Always":
            found.extend(_ports_of(container))
    for container in spec.get("containers") or []:
        found.extend(_ports_of(container))
    return tuple(found)


def _labels(meta: Mapping[str, Any]) -> dict[str, str]:
    labels = meta.get("labels")
    if not isinstance(labels, dict):
        return {}
    return {str(k): str(v) for k, v in labels.items()}


def pod_info(obj: Mapping[str, Any]) -> PodInfo:
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    namespace = str(meta.get("namespace") or "")
    labels = _labels(meta)
    affinity = spec.get("affinity")
    affinity = affinity if isinstance(affinity, dict) else {}
    node_affinity = affinity.get("nodeAffinity") or {}
    pod_affinity = affinity.get("podAffinity") or {}
    pod_anti_affinity = affinity.get("podAntiAffinity") or {}
    required = "requiredDuringSchedulingIgnoredDuringExecution"
    preferred = "preferredDuringSchedulingIgnoredDuringExecution"
    return PodInfo(
        namespace=namespace,
        name=str(meta.get("name") or ""),
        uid=str(meta.get("uid") or ""),
        labels=labels,
        node_name=str(spec.get("nodeName") or ""),
        scheduler_name=str(spec.get("schedulerName") or DEFAULT_SCHEDULER),
        deleting=bool(meta.get("deletionTimestamp")),
        terminal=status.get("phase") in ("Succeeded", "Failed"),
        gated=bool(spec.get("schedulingGates")),
        requests=pod_requests(spec),
        tolerations=parse_tolerations(spec.get("tolerations")),
        required_affinity=required_node_affinity(spec),
        preferred_affinity=parse_preferred_terms(
            node_affinity.get(preferred) if isinstance(node_affinity, dict) else None
        ),
        host_ports=host_ports(spec),
        affinity_terms=parse_affinity_terms(
            pod_affinity.get(required) if isinstance(pod_affinity, dict) else None, namespace
        ),
        anti_affinity_terms=parse_affinity_terms(
            pod_anti_affinity.get(required) if isinstance(pod_anti_affinity, dict) else None,
            namespace,
        ),
        spread_constraints=parse_spread_constraints(spec.get("topologySpreadConstraints"), labels),
    )
