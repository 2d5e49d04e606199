"""The endpoints controller: a core/v1 Endpoints object for every Service with a selector.

Upstream's ``pkg/controller/endpoint``. For a Service with a selector (and not of type
ExternalName) it publishes an Endpoints object of the same name: each selected pod with an IP
is an address, under ``addresses`` when ready (or when the Service publishes not-ready
addresses) and ``notReadyAddresses`` otherwise; terminating pods are left out unless the Service
publishes not-ready addresses. Addresses are grouped into subsets by the ports they serve (a
named ``targetPort`` resolves per pod, so a pod without that port is not listed under it), in
upstream's canonical (repacked, sorted) layout. Over 1,000 addresses the object is truncated and
annotated ``endpoints.kubernetes.io/over-capacity: truncated``.

Services without a selector are left alone: their Endpoints are written by users (or, for
``default/kubernetes``, by the apiserver at boot). When a Service goes, its Endpoints go too;
Endpoints left behind by a Service deleted while the controller was down are removed at start,
as upstream's ``checkLeftoverEndpoints`` does. The object is written only when its subsets,
labels or capacity annotation differ from what is stored, so a resync writes nothing.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import orjson

from engenho.projections import StoredObject
from engenho.reconcilers.controller import Controller, Requeue, kube_system_identity
from engenho.reconcilers.events import Reference
from engenho.reconcilers.freshness import OwnWrites
from engenho.reconcilers.informer import Informer, object_key
from engenho.reconcilers.podutil import (
    TriggerTimes,
    find_port,
    format_trigger_time,
    index_pods,
    index_services,
    ip_family,
    is_pod_ready,
    is_service_ip_set,
    pod_ips,
    selected_pods,
    selector_of,
    service_ip_families,
    services_to_sync,
    should_be_in_endpoints,
    should_set_hostname,
)
from engenho.registry import (
    AlreadyExistsError,
    ConflictError,
    DeleteOptions,
    ForbiddenError,
    NotFoundError,
    StatusError,
)
from engenho.schema import CATALOGUE

__all__ = [
    "HEADLESS_LABEL",
    "LAST_CHANGE_TRIGGER_TIME",
    "MAX_CAPACITY",
    "OVER_CAPACITY",
    "EndpointsController",
    "desired_subsets",
    "truncate_subsets",
]

_Json = dict[str, Any]

LAST_CHANGE_TRIGGER_TIME = "endpoints.kubernetes.io/last-change-trigger-time"
OVER_CAPACITY = "endpoints.kubernetes.io/over-capacity"
HEADLESS_LABEL = "service.kubernetes.io/headless"
MAX_CAPACITY = 1000
"""Upstream's ``maxCapacity``: addresses an Endpoints object holds before it is truncated."""
_LEADER_ANNOTATION = "control-plane.alpha.kubernetes.io/leader"


def _address(service: Mapping[str, Any], pod: Mapping[str, Any], family: str) -> _Json | None:
    """The pod's EndpointAddress for the Service (its first IP of the Service's family)."""
    ip = next((ip for ip in pod_ips(pod) if ip_family(ip) == family), None)
    if ip is None:
        return None
    meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
    address: _Json = {
        "ip": ip,
        "nodeName": str(spec.get("nodeName") or ""),
        "targetRef": {
            "kind": "Pod",
            "namespace": meta.get("namespace", ""),
            "name": meta.get("name", ""),
            "uid": meta.get("uid", ""),
        },
    }
    if should_set_hostname(pod, service):
        address["hostname"] = spec["hostname"]
    return address


def _endpoint_port(service_port: Mapping[str, Any], number: int) -> _Json:
    port: _Json = {"port": number, "protocol": service_port.get("protocol") or "TCP"}
    if service_port.get("name"):
        port["name"] = service_port["name"]
    if service_port.get("appProtocol"):
        port["appProtocol"] = service_port["appProtocol"]
    return port


def _address_order(address: Mapping[str, Any]) -> tuple[bytes, str]:
    # Upstream's LessEndpointAddress: by IP (as bytes), then by the target's uid.
    return str(address["ip"]).encode(), str((address.get("targetRef") or {}).get("uid", ""))


def _port_order(port: Mapping[str, Any]) -> tuple[str, int, str, str]:
    return (
        str(port.get("name", "")),
        int(port["port"]),
        str(port["protocol"]),
        str(port.get("appProtocol", "")),
    )


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def desired_subsets(
    service: Mapping[str, Any], pods: Sequence[Mapping[str, Any]], default_family: str = "IPv4"
) -> list[_Json]:
    """The subsets upstream's endpoints controller computes for ``service`` over ``pods`` (the
    pods its selector matches), repacked: addresses that serve the same ports share a subset.
    ``default_family`` stands in for ``spec.ipFamilies`` when the Service has neither that nor
    a ClusterIP."""
    spec = service.get("spec") or {}
    publish_not_ready = bool(spec.get("publishNotReadyAddresses"))
    family = service_ip_families(service, default_family)[0]
    ports = [p for p in spec.get("ports") or () if isinstance(p, Mapping)]
    headless_without_ports = not ports and spec.get("clusterIP") == "None"
    # port (its items) -> {address key -> ready}; address key -> address
    by_port: dict[tuple[Any, ...], dict[tuple[str, str], bool]] = {}
    port_of: dict[tuple[Any, ...], _Json | None] = {}
    addresses: dict[tuple[str, str], _Json] = {}

    def publish(port: _Json | None, address: _Json, ready: bool) -> None:
        port_key = tuple(sorted(port.items())) if port is not None else ()
        port_of[port_key] = port
        address_key = (address["ip"], address["targetRef"]["uid"])
        addresses.setdefault(address_key, address)
        known = by_port.setdefault(port_key, {})
        # An address listed both ways for one port counts as ready (upstream's mapAddressByPort).
        known[address_key] = known.get(address_key, False) or ready

    for pod in pods:
        if not should_be_in_endpoints(pod, publish_not_ready):
            continue
        address = _address(service, pod, family)
        if address is None:
            continue
        ready = publish_not_ready or is_pod_ready(pod)
        if not ports:
            if headless_without_ports:
                publish(None, address, ready)
            continue
        for service_port in ports:
            number = find_port(pod, service_port)
            if number is not None:
                publish(_endpoint_port(service_port, number), address, ready)

    # Ports that serve exactly the same addresses (with the same readiness) share a subset.
    groups: dict[frozenset[Any], tuple[dict[tuple[str, str], bool], list[_Json]]] = {}
    for port_key, members in by_port.items():
        _, group_ports = groups.setdefault(frozenset(members.items()), (members, []))
        port = port_of[port_key]
        if port is not None:
            group_ports.append(port)
    subsets: list[_Json] = []
    for members, group_ports in groups.values():
        subset: _Json = {}
        serving = [addresses[k] for k, is_ready in members.items() if is_ready]
        not_serving = [addresses[k] for k, is_ready in members.items() if not is_ready]
        if serving:
            subset["addresses"] = sorted(serving, key=_address_order)
        if not_serving:
            subset["notReadyAddresses"] = sorted(not_serving, key=_address_order)
        if group_ports:
            subset["ports"] = sorted(group_ports, key=_port_order)
        subsets.append(subset)
    subsets.sort(key=_canonical)
    return subsets


def truncate_subsets(subsets: list[_Json], capacity: int = MAX_CAPACITY) -> bool:
    """Upstream's ``truncateEndpoints``, in place: keep ``capacity`` addresses, spread over the
    subsets in proportion, ready addresses first. True when something was cut."""
    total_ready = sum(len(s.get("addresses", ())) for s in subsets)
    total_not_ready = sum(len(s.get("notReadyAddresses", ())) for s in subsets)
    if total_ready + total_not_ready <= capacity:
        return False
    truncate_ready = total_ready > capacity
    limit = capacity if truncate_ready else capacity - total_ready
    total = total_ready if truncate_ready else total_not_ready
    room = limit
    for subset in subsets:
        field = "addresses" if truncate_ready else "notReadyAddresses"
        present = subset.get(field, [])
        share = min(math.ceil(len(present) / total * limit), room) if total else 0
        kept = present[:share]
        if kept:
            subset[field] = kept
        else:
            subset.pop(field, None)
        if truncate_ready:
            subset.pop("notReadyAddresses", None)
        room -= len(kept)
    return True


class EndpointsController(Controller):
    name = "endpoints"
    identity = kube_system_identity("endpoint-controller")

    def setup(self) -> None:
        self.endpoints_type = CATALOGUE.get("", "v1", "endpoints")
        self.services = self.watch_primary(CATALOGUE.get("", "v1", "services"))
        self.pods = self.informers.get(CATALOGUE.get("", "v1", "pods"))
        self.endpoints: Informer = self.informers.get(self.endpoints_type)
        index_services(self.services)
        index_pods(self.pods)
        self.pods.add_handler(self._pod_changed)
        self.endpoints.add_handler(self._endpoints_changed)
        self.own_writes = OwnWrites()
        self.own_writes.follow(self.endpoints)
        self.triggers = TriggerTimes()
        self.default_family = (
            "IPv6" if self.registry.network.service_network.version == 6 else "IPv4"
        )
        self._own: dict[str, int] = {}
        """Per Endpoints key, the version this controller last wrote (to know its own echo)."""

    # ------------------------------------------------------------------ what to look at

    def _pod_changed(self, _event: str, old: StoredObject | None, new: StoredObject | None) -> None:
        for key in services_to_sync(self.services, old, new):
            self.queue.add(key)

    def _endpoints_changed(
        self, event: str, old: StoredObject | None, new: StoredObject | None
    ) -> None:
        if event == "DELETED" and old is not None:
            self._own.pop(object_key(old), None)
            self.queue.add(object_key(old))  # recreate it if its Service still wants it
        elif event == "MODIFIED" and new is not None:
            # Someone else edited it (our own writes are recognised and skipped).
            if self._own.get(object_key(new)) != new.resource_version:
                self.queue.add(object_key(new))
        elif new is not None and not self.endpoints.synced.is_set():
            # The first list: Endpoints whose Service went while we were away are removed.
            annotations = (new.object.get("metadata") or {}).get("annotations") or {}
            if _LEADER_ANNOTATION not in annotations:
                self.queue.add(object_key(new))

    # ------------------------------------------------------------------ reconciling

    async def reconcile(self, key: str) -> None:
        namespace, name = key.split("/", 1)
        # Comparing with a cache older than our own last write could undo it.
        if not await self.own_writes.caught_up():
            raise Requeue(0.1, "the Endpoints cache has not caught up with our writes")
        service = self.services.get(namespace, name)
        if service is None:
            self.triggers.forget(key)
            await self._delete(namespace, name)
            return
        obj = service.object
        spec = obj.get("spec") or {}
        if spec.get("type") == "ExternalName":
            return
        selector = selector_of(obj)
        if selector is None:
            return
        pods = selected_pods(self.pods, namespace, selector)
        # Computed on every sync, so that the tracker knows what the next write publishes.
        trigger = self.triggers.compute(key, obj, pods)
        subsets = desired_subsets(obj, pods, self.default_family)
        truncated = truncate_subsets(subsets)
        labels = dict(_mapping((obj.get("metadata") or {}).get("labels")))
        if not is_service_ip_set(obj):
            labels[HEADLESS_LABEL] = ""
        current = self.endpoints.get(namespace, name)
        if current is not None and self._unchanged(current.object, subsets, labels, truncated):
            return
        body = self._body(namespace, name, current, subsets, labels, truncated, trigger)
        await self._write(namespace, name, key, current, body)

    @staticmethod
    def _unchanged(
        current: Mapping[str, Any], subsets: list[_Json], labels: Mapping[str, str], cut: bool
    ) -> bool:
        meta = current.get("metadata") or {}
        annotations = _mapping(meta.get("annotations"))
        return (
            (current.get("subsets") or []) == subsets
            and dict(_mapping(meta.get("labels"))) == labels
            and (OVER_CAPACITY in annotations) == cut
        )

    @staticmethod
    def _body(
        namespace: str,
        name: str,
        current: StoredObject | None,
        subsets: list[_Json],
        labels: dict[str, str],
        truncated: bool,
        trigger: datetime | None,
    ) -> _Json:
        body: _Json
        if current is not None:
            body = orjson.loads(current.data)  # a copy of our own: the cache is shared
        else:
            body = {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": name}}
        meta = body.setdefault("metadata", {})
        meta["namespace"] = namespace
        annotations = dict(_mapping(meta.get("annotations")))
        if trigger is not None:
            annotations[LAST_CHANGE_TRIGGER_TIME] = format_trigger_time(trigger)
        else:
            annotations.pop(LAST_CHANGE_TRIGGER_TIME, None)
        if truncated:
            annotations[OVER_CAPACITY] = "truncated"
        else:
            annotations.pop(OVER_CAPACITY, None)
        for field, value in (("labels", labels), ("annotations", annotations)):
            if value:
                meta[field] = value
            else:
                meta.pop(field, None)
        if subsets:
            body["subsets"] = subsets
        else:
            body.pop("subsets", None)
        return body

    async def _write(
        self, namespace: str, name: str, key: str, current: StoredObject | None, body: _Json
    ) -> None:
        try:
            if current is None:
                stored = await self.registry.create(
                    self.context(), self.endpoints_type, namespace, body
                )
            else:
                stored, _ = await self.registry.update(
                    self.context(), self.endpoints_type, namespace, name, body
                )
        except ForbiddenError as exc:
            if current is None and _namespace_terminating(exc):
                return  # creates keep failing there: drop the key, as upstream does
            self._failed(namespace, name, current, exc)
            raise
        except ConflictError:
            raise  # lost a race: read again and redo
        except (AlreadyExistsError, NotFoundError) as exc:
            # The cache was behind: read again and redo, as after a conflict.
            raise ConflictError(f"Endpoints {namespace}/{name} changed meanwhile") from exc
        except StatusError as exc:
            self._failed(namespace, name, current, exc)
            raise
        self.own_writes.wrote(self.endpoints, stored)
        self._own[key] = stored.resource_version

    def _failed(
        self, namespace: str, name: str, current: StoredObject | None, exc: StatusError
    ) -> None:
        reference = (
            Reference.to(current)
            if current is not None
            else Reference("v1", "Endpoints", namespace, name, "")
        )
        if current is None:
            self.events.emit(
                reference,
                "Warning",
                "FailedToCreateEndpoint",
                f"Failed to create endpoint for service {namespace}/{name}: {exc}",
            )
        else:
            self.events.emit(
                reference,
                "Warning",
                "FailedToUpdateEndpoint",
                f"Failed to update endpoint {namespace}/{name}: {exc}",
            )

    async def _delete(self, namespace: str, name: str) -> None:
        current = self.endpoints.get(namespace, name)
        if current is None:
            return
        annotations = _mapping((current.object.get("metadata") or {}).get("annotations"))
        if _LEADER_ANNOTATION in annotations:
            return  # a leader-election record, not a Service's endpoints
        try:
            result = await self.registry.delete(
                self.context(),
                self.endpoints_type,
                namespace,
                name,
                DeleteOptions(precondition_uid=current.uid),
            )
        except (NotFoundError, ConflictError):
            return  # gone already, or replaced: the new one's events bring us back
        self.own_writes.wrote(self.endpoints, result.object)


def _mapping(value: Any) -> Mapping[str, str]:
    return value if isinstance(value, Mapping) else {}


def _namespace_terminating(exc: StatusError) -> bool:
    return any(cause.reason == "NamespaceTerminating" for cause in exc.causes or ())
