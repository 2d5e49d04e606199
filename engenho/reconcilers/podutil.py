"""What the service controllers read from pods and Services, and which Services select a pod.

The rules are upstream's (``pkg/api/v1/pod``, ``k8s.io/endpointslice/util`` and the endpoints
controller's trigger-time tracker), shared by the Endpoints and EndpointSlice controllers so
that both publish the same pods in the same way:

- a pod is *ready* when its ``Ready`` condition is ``True`` (nothing else: a terminating pod can
  still be ready, which is what EndpointSlices call *serving*);
- a pod belongs in endpoints when it has an IP, is not finished (Succeeded/Failed) and, unless
  terminating pods are asked for, is not terminating;
- a Service's named ``targetPort`` is looked up in each pod's container ports (and in sidecar
  init containers), with the Service port's protocol.

A pod change must reach the Services that select the pod without scanning every Service. The
Services informer is indexed by one pair of each selector (``namespace/key=value``, the
smallest in sort order); a pod's candidate Services are those indexed under one of its own
label pairs, which are then matched in full. Pods are indexed by every label pair, so the pods
of a Service are found from its selector's rarest pair.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from engenho.projections import StoredObject
from engenho.reconcilers.informer import Informer, object_key

__all__ = [
    "POD_LABELS_INDEX",
    "POD_NODE_INDEX",
    "SERVICE_SELECTOR_INDEX",
    "TriggerTimes",
    "find_port",
    "format_trigger_time",
    "index_pods",
    "index_services",
    "ip_family",
    "is_pod_ready",
    "is_pod_terminal",
    "is_service_ip_set",
    "parse_time",
    "pod_ips",
    "pods_on_node",
    "selected_pods",
    "selector_of",
    "service_ip_families",
    "services_selecting",
    "services_to_sync",
    "should_be_in_endpoints",
    "should_set_hostname",
]

_Json = Mapping[str, Any]

POD_LABELS_INDEX = "podutil:labels"
"""Pods by ``namespace/key=value`` for each of their labels."""
POD_NODE_INDEX = "podutil:node"
"""Pods by ``spec.nodeName``."""
SERVICE_SELECTOR_INDEX = "podutil:selector"
"""Services by ``namespace/key=value`` of the smallest pair of their selector."""


# Objects come from JSON, so their maps are dicts: checking for dict (not the Mapping ABC, many
# times slower) keeps a sync over thousands of pods cheap.


def _section(obj: _Json, name: str) -> _Json:
    value = obj.get(name)
    return value if isinstance(value, dict) else {}


def _labels(obj: _Json) -> Mapping[str, str]:
    labels = _section(obj, "metadata").get("labels")
    return labels if isinstance(labels, dict) else {}


# ---------------------------------------------------------------------------- pods


def is_pod_ready(pod: _Json) -> bool:
    """Upstream's ``IsPodReady``: the ``Ready`` condition is ``True``."""
    return _ready_condition(pod).get("status") == "True"


def _ready_condition(pod: _Json) -> _Json:
    conditions = _section(pod, "status").get("conditions")
    for item in conditions if isinstance(conditions, list) else ():
        if isinstance(item, dict) and item.get("type") == "Ready":
            return item
    return {}


def is_pod_terminal(pod: _Json) -> bool:
    return _section(pod, "status").get("phase") in ("Succeeded", "Failed")


def pod_ips(pod: _Json) -> list[str]:
    """``status.podIPs`` in order, or ``status.podIP`` alone (the v1 conversion keeps the two in
    step: ``podIP`` is ``podIPs[0]``)."""
    status = _section(pod, "status")
    listed = status.get("podIPs")
    ips = [
        str(item["ip"])
        for item in (listed if isinstance(listed, list) else ())
        if isinstance(item, dict) and item.get("ip")
    ]
    if not ips and status.get("podIP"):
        ips = [str(status["podIP"])]
    return ips


def ip_family(address: str) -> str:
    """``IPv4`` or ``IPv6``: an IPv6 address, and only one, has a colon (the addresses come
    from validated pod statuses; parsing each of thousands costs more than the rest of a
    sync)."""
    return "IPv6" if ":" in address else "IPv4"


def should_be_in_endpoints(pod: _Json, include_terminating: bool) -> bool:
    """Upstream's ``ShouldPodBeInEndpoints``."""
    if is_pod_terminal(pod) or not pod_ips(pod):
        return False
    return include_terminating or not _section(pod, "metadata").get("deletionTimestamp")


def should_set_hostname(pod: _Json, service: _Json) -> bool:
    """A pod names itself in a Service's endpoints when its subdomain is that Service."""
    spec = _section(pod, "spec")
    meta, service_meta = _section(pod, "metadata"), _section(service, "metadata")
    return (
        bool(spec.get("hostname"))
        and spec.get("subdomain") == service_meta.get("name")
        and meta.get("namespace") == service_meta.get("namespace")
    )


def find_port(pod: _Json, service_port: _Json) -> int | None:
    """The pod's port for a Service port (upstream's ``FindPort``): a numeric ``targetPort`` as
    is; a named one from the containers' ports of that name and protocol, then from sidecar
    (``restartPolicy: Always``) init containers; None when the pod has no such port."""
    target = service_port.get("targetPort", service_port.get("port"))
    if isinstance(target, int) and not isinstance(target, bool):
        return target
    if not isinstance(target, str):
        return None
    protocol = service_port.get("protocol") or "TCP"
    spec = _section(pod, "spec")
    containers = [c for c in spec.get("containers") or () if isinstance(c, dict)]
    containers += [
        c
        for c in spec.get("initContainers") or ()
        if isinstance(c, dict) and c.get("restartPolicy") == "Always"
    ]
    for container in containers:
        for port in container.get("ports") or ():
            if (
                isinstance(port, dict)
                and port.get("name") == target
                and (port.get("protocol") or "TCP") == protocol
            ):
                number = port.get("containerPort")
                return number if isinstance(number, int) else None
    return None


def parse_time(value: Any) -> datetime | None:
    """An RFC 3339 time as the API writes it, or None."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def format_trigger_time(moment: datetime) -> str:
    """Go's ``time.RFC3339Nano`` in UTC: fractional seconds only when there are some, without
    trailing zeros."""
    moment = moment.astimezone(UTC)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if moment.microsecond:
        text += f".{moment.microsecond:06d}".rstrip("0")
    return text + "Z"


# ---------------------------------------------------------------------------- services


def selector_of(service: _Json) -> dict[str, str] | None:
    """The Service's selector, or None when it has none (an empty selector is none: the API
    stores an empty map as no map, and upstream only manages Services with a selector)."""
    selector = _section(service, "spec").get("selector")
    if not isinstance(selector, Mapping) or not selector:
        return None
    return {str(k): str(v) for k, v in selector.items()}


def is_service_ip_set(service: _Json) -> bool:
    cluster_ip = _section(service, "spec").get("clusterIP")
    return bool(cluster_ip) and cluster_ip != "None"


def service_ip_families(service: _Json, default: str) -> list[str]:
    """The address families a Service serves: ``spec.ipFamilies``, else its ClusterIP's family,
    else ``default`` (the family the apiserver would have defaulted ``ipFamilies`` to)."""
    spec = _section(service, "spec")
    families = [f for f in spec.get("ipFamilies") or () if f in ("IPv4", "IPv6")]
    if families:
        return list(dict.fromkeys(families))
    if is_service_ip_set(service):
        return [ip_family(str(spec["clusterIP"]))]
    return [default]


def _matches(selector: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())


def _pair(namespace: str, key: str, value: str) -> str:
    return f"{namespace}/{key}={value}"


def _service_index(stored: StoredObject) -> list[str]:
    selector = selector_of(stored.object)
    if selector is None:
        return []
    key = min(selector)
    return [_pair(stored.namespace, key, selector[key])]


def _pod_label_index(stored: StoredObject) -> list[str]:
    return [_pair(stored.namespace, k, str(v)) for k, v in _labels(stored.object).items()]


def _pod_node_index(stored: StoredObject) -> list[str]:
    node = _section(stored.object, "spec").get("nodeName")
    return [str(node)] if node else []


def index_services(services: Informer) -> None:
    """Add the selector index (idempotent: the same function under the same name)."""
    services.add_index(SERVICE_SELECTOR_INDEX, _service_index)


def index_pods(pods: Informer) -> None:
    pods.add_index(POD_LABELS_INDEX, _pod_label_index)
    pods.add_index(POD_NODE_INDEX, _pod_node_index)


def services_selecting(services: Informer, namespace: str, labels: Mapping[str, str]) -> set[str]:
    """Keys of the Services in ``namespace`` whose selector matches ``labels``."""
    found: set[str] = set()
    for key, value in labels.items():
        for service in services.by_index(SERVICE_SELECTOR_INDEX, _pair(namespace, key, value)):
            selector = selector_of(service.object)
            if selector is not None and _matches(selector, labels):
                found.add(object_key(service))
    return found


def selected_pods(pods: Informer, namespace: str, selector: Mapping[str, str]) -> list[_Json]:
    """The pods of ``namespace`` that ``selector`` matches, found from its rarest pair."""
    if not selector:
        return []
    buckets = [pods.by_index(POD_LABELS_INDEX, _pair(namespace, k, v)) for k, v in selector.items()]
    smallest = min(buckets, key=len)
    return [p.object for p in smallest if _matches(selector, _labels(p.object))]


def pods_on_node(pods: Informer, node: str) -> list[StoredObject]:
    return pods.by_index(POD_NODE_INDEX, node)


def _endpoint_view(pod: _Json) -> tuple[Any, ...]:
    """What of a pod any endpoint depends on, besides its labels."""
    spec, meta = _section(pod, "spec"), _section(pod, "metadata")
    return (
        bool(meta.get("deletionTimestamp")),
        is_pod_ready(pod),
        is_pod_terminal(pod),
        tuple(pod_ips(pod)),
        spec.get("nodeName"),
        spec.get("hostname"),
        spec.get("subdomain"),
    )


def services_to_sync(
    services: Informer, old: StoredObject | None, new: StoredObject | None
) -> set[str]:
    """The Services a pod event concerns (upstream's ``GetServicesToUpdateOnPodChange``): none
    when nothing an endpoint shows changed; those selecting the pod before or after when its
    labels changed; those selecting it otherwise."""
    if old is not None and new is not None:
        if old.resource_version == new.resource_version:
            return set()
        old_labels, new_labels = _labels(old.object), _labels(new.object)
        labels_changed = old_labels != new_labels
        changed = _endpoint_view(old.object) != _endpoint_view(new.object)
        if not changed and not labels_changed:
            return set()
        keys = services_selecting(services, new.namespace, new_labels)
        if labels_changed:
            before = services_selecting(services, old.namespace, old_labels)
            # Only the Services that gained or lost the pod care, unless it changed as well.
            keys = keys | before if changed else keys ^ before
        return keys
    stored = new if new is not None else old
    if stored is None:
        return set()
    return services_selecting(services, stored.namespace, _labels(stored.object))


# ---------------------------------------------------------------------------- trigger times


class TriggerTimes:
    """Upstream's ``TriggerTimeTracker``: the time of the change that the next write of a
    Service's endpoints publishes (``endpoints.kubernetes.io/last-change-trigger-time``).

    For a Service seen for the first time it is the Service's creation; after that, the
    earliest of the pod Ready transitions (and Service creation) that moved since the last
    sync; None when nothing moved."""

    def __init__(self) -> None:
        self._state: dict[str, tuple[dict[str, tuple[str, datetime]], datetime | None]] = {}
        """Per Service key: each pod's last transition (as written, and parsed) and the
        Service's creation, as of the last sync."""

    def compute(self, key: str, service: _Json, pods: Iterable[_Json]) -> datetime | None:
        known = key in self._state
        last_pods, last_service = self._state.get(key, ({}, None))
        earliest: datetime | None = None
        times: dict[str, tuple[str, datetime]] = {}
        for pod in pods:
            written = _ready_condition(pod).get("lastTransitionTime")
            if not isinstance(written, str):
                continue
            name = str(_section(pod, "metadata").get("name", ""))
            previous = last_pods.get(name)
            if previous is not None and previous[0] == written:
                times[name] = previous  # unchanged: no need to parse it again
                continue
            moment = parse_time(written)
            if moment is None:
                continue
            times[name] = (written, moment)
            if previous is None or moment > previous[1]:
                earliest = moment if earliest is None else min(earliest, moment)
        created = parse_time(_section(service, "metadata").get("creationTimestamp"))
        if created is not None and (last_service is None or created > last_service):
            earliest = created if earliest is None else min(earliest, created)
        self._state[key] = (times, created)
        return created if not known else earliest

    def forget(self, key: str) -> None:
        self._state.pop(key, None)
