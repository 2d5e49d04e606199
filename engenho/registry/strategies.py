"""Per-resource behaviour of the write path, as upstream's registry strategies define it.

A strategy says what the server owns in an object of that resource: whether ``generation``
is tracked, what ``status`` a new object starts with, whether deletion is graceful, which
objects may not be deleted, and what a DELETE answers with. Everything here is a pure
function of its inputs; time comes in as an argument.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from attrs import frozen

from engenho.schema.errors import QuantityError
from engenho.schema.quantity import Quantity

__all__ = ["Strategy", "pod_qos_class", "strategy_for"]

_Json = dict[str, Any]


def _drop_status(_obj: _Json) -> _Json | None:
    return None


def _keep_status(obj: _Json) -> _Json | None:
    status = obj.get("status")
    return status if isinstance(status, dict) else None


def _quantities(section: Any) -> dict[str, Quantity]:
    found: dict[str, Quantity] = {}
    if isinstance(section, Mapping):
        for name, value in section.items():
            try:
                found[str(name)] = Quantity.from_json(value)
            except QuantityError:
                continue  # validation reports it; QoS only needs the valid ones
    return found


def pod_qos_class(pod: Mapping[str, Any]) -> str:
    """Guaranteed, Burstable or BestEffort, by upstream's rules over regular and init containers."""
    spec = pod.get("spec")
    containers: list[Any] = []
    if isinstance(spec, Mapping):
        for field in ("initContainers", "containers"):
            value = spec.get(field)
            if isinstance(value, list):
                containers.extend(c for c in value if isinstance(c, Mapping))
    requests: dict[str, Quantity] = {}
    limits: dict[str, Quantity] = {}
    guaranteed = True
    for container in containers:
        resources = container.get("resources")
        resources = resources if isinstance(resources, Mapping) else {}
        own_limits = {k: v for k, v in _quantities(resources.get("limits")).items() if v}
        own_requests = {k: v for k, v in _quantities(resources.get("requests")).items() if v}
        # Requests default to limits (upstream defaulting), so a limit-only container counts.
        own_requests = {**own_limits, **own_requests}
        requests.update({k: v for k, v in own_requests.items() if k in ("cpu", "memory")})
        limits.update({k: v for k, v in own_limits.items() if k in ("cpu", "memory")})
        if {"cpu", "memory"} - own_limits.keys():
            guaranteed = False
        for name in ("cpu", "memory"):
            both = name in own_requests and name in own_limits
            if both and own_requests[name] != own_limits[name]:
                guaranteed = False
    if not requests and not limits:
        return "BestEffort"
    return "Guaranteed" if guaranteed and containers else "Burstable"


def _pod_status(pod: _Json) -> _Json | None:
    return {"phase": "Pending", "qosClass": pod_qos_class(pod)}


def _namespace_status(_obj: _Json) -> _Json | None:
    return {"phase": "Active"}


def _pvc_status(_obj: _Json) -> _Json | None:
    return {"phase": "Pending"}


def _nothing(_obj: _Json) -> None:
    return None


def _namespace_create(obj: _Json) -> None:
    spec = obj.setdefault("spec", {})
    if isinstance(spec, dict) and not spec.get("finalizers"):
        spec["finalizers"] = ["kubernetes"]


def _job_create(obj: _Json) -> None:
    """Generate the selector and pod labels of a Job, as upstream's job strategy does."""
    spec = obj.get("spec")
    meta = obj.get("metadata")
    if not isinstance(spec, dict) or not isinstance(meta, dict) or spec.get("manualSelector"):
        return
    uid, name = meta.get("uid", ""), meta.get("name", "")
    generated = {
        "batch.kubernetes.io/controller-uid": uid,
        "batch.kubernetes.io/job-name": name,
        "controller-uid": uid,
        "job-name": name,
    }
    if not spec.get("selector"):
        spec["selector"] = {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
    template = spec.setdefault("template", {})
    if isinstance(template, dict):
        template_meta = template.setdefault("metadata", {})
        if isinstance(template_meta, dict):
            labels = template_meta.setdefault("labels", {})
            if isinstance(labels, dict):
                for key, value in generated.items():
                    labels.setdefault(key, value)


@frozen
class Strategy:
    """What the server does with objects of one resource."""

    prepare_create: Callable[[_Json], None] = _nothing
    """Create-only server actions, after metadata (uid, name) is decided."""
    tracks_generation: bool = False
    initial_status: Callable[[_Json], _Json | None] = _keep_status
    """The status a created object starts with; None drops it."""
    return_deleted_object: bool = False
    """DELETE answers with the object (pods) rather than a Success Status."""
    allow_create_on_update: bool = False
    protected_names: frozenset[str] = frozenset()
    """Objects of this resource that may not be deleted."""
    graceful_delete: bool = False


_WORKLOAD = Strategy(tracks_generation=True, initial_status=_drop_status)

_STRATEGIES: dict[tuple[str, str], Strategy] = {
    ("", "pods"): Strategy(
        initial_status=_pod_status, return_deleted_object=True, graceful_delete=True
    ),
    ("", "namespaces"): Strategy(
        prepare_create=_namespace_create,
        initial_status=_namespace_status,
        protected_names=frozenset({"default", "kube-system", "kube-public"}),
    ),
    ("", "services"): Strategy(initial_status=_drop_status),
    ("", "persistentvolumeclaims"): Strategy(initial_status=_pvc_status),
    ("", "replicationcontrollers"): _WORKLOAD,
    ("", "endpoints"): Strategy(allow_create_on_update=True),
    ("", "events"): Strategy(allow_create_on_update=True),
    ("", "resourcequotas"): Strategy(initial_status=_drop_status),
    ("apps", "deployments"): _WORKLOAD,
    ("apps", "replicasets"): _WORKLOAD,
    ("apps", "statefulsets"): _WORKLOAD,
    ("apps", "daemonsets"): _WORKLOAD,
    ("batch", "jobs"): Strategy(
        prepare_create=_job_create, tracks_generation=True, initial_status=_drop_status
    ),
    ("batch", "cronjobs"): _WORKLOAD,
    ("policy", "poddisruptionbudgets"): _WORKLOAD,
    ("coordination.k8s.io", "leases"): Strategy(allow_create_on_update=True),
}

_DEFAULT = Strategy()


def strategy_for(group: str, resource: str) -> Strategy:
    return _STRATEGIES.get((group, resource), _DEFAULT)
