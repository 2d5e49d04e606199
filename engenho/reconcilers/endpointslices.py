"""The EndpointSlice controller: ``discovery.k8s.io/v1`` EndpointSlices for Services.

Upstream's ``pkg/controller/endpointslice`` with its reconciler (``k8s.io/endpointslice``). For a
Service with a selector (and not of type ExternalName) every selected pod with an IP of the
Service's family is an endpoint, terminating ones included, with upstream's conditions:
``serving`` is the pod's readiness, ``terminating`` its deletionTimestamp, and ``ready`` is
serving and not terminating (always true when the Service publishes not-ready addresses).
Pods whose node is not known are skipped (unless the Service publishes not-ready addresses),
and come back when the node appears.

Endpoints are grouped by the ports they resolve to (a named ``targetPort`` can differ per pod)
into slices of at most ``max_endpoints_per_slice`` (upstream's default 100), named
``<service>-<random>``, labelled with the Service's labels plus
``kubernetes.io/service-name`` and ``endpointslice.kubernetes.io/managed-by``, and owned by the
Service (so the garbage collector removes them with it). The assignment is upstream's and
stable: an endpoint stays in the slice it is in while it is wanted; removals and changes update
the slices holding them; new endpoints fill the slices being updated anyway, fullest first,
then the unchanged slice they fit best, then new slices; a slice left empty is deleted (or,
where a slice is also to be created, reused). A Service with no endpoints keeps one empty
placeholder slice. Slices this controller does not manage are left alone. The planning is a
pure function (:func:`plan_slices`); the controller only reads caches and writes its plan.
"""

from __future__ import annotations

import asyncio
import copy
import json
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

import orjson
from attrs import frozen

from engenho.projections import StoredObject
from engenho.reconcilers.controller import Controller, Requeue, kube_system_identity
from engenho.reconcilers.endpoints import HEADLESS_LABEL, LAST_CHANGE_TRIGGER_TIME
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
    pods_on_node,
    selected_pods,
    selector_of,
    service_ip_families,
    services_selecting,
    services_to_sync,
    should_be_in_endpoints,
    should_set_hostname,
)
from engenho.registry import (
    ConflictError,
    DeleteOptions,
    ForbiddenError,
    NotFoundError,
    StatusError,
)
from engenho.schema import CATALOGUE

__all__ = [
    "CONTROLLER_NAME",
    "MANAGED_BY_LABEL",
    "MAX_ENDPOINTS_PER_SLICE",
    "SERVICE_NAME_LABEL",
    "ZONE_LABEL",
    "Desired",
    "EndpointId",
    "EndpointSliceController",
    "Memo",
    "SlicePlan",
    "desired_endpoints",
    "plan_slices",
    "port_key",
    "slice_labels",
]

_Json = dict[str, Any]
EndpointId = tuple[str, str, str, tuple[str, ...]]
"""(namespace, name, hostname, addresses): what makes two endpoints the same one (upstream's
endpoint hash); everything else about an endpoint can change in place."""
Desired = dict[str, tuple[list[_Json], dict[EndpointId, _Json]]]
"""Per port mapping (canonical ports), its ports and the endpoints wanted with them."""

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
MANAGED_BY_LABEL = "endpointslice.kubernetes.io/managed-by"
CONTROLLER_NAME = "endpointslice-controller.k8s.io"
ZONE_LABEL = "topology.kubernetes.io/zone"
MAX_ENDPOINTS_PER_SLICE = 100
_RESERVED = (SERVICE_NAME_LABEL, MANAGED_BY_LABEL, HEADLESS_LABEL)
_BY_SERVICE = "endpointslice:service"


# ---------------------------------------------------------------------------- desired state


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = obj.get("metadata")
    return meta if isinstance(meta, dict) else {}  # JSON maps are dicts (and the check is fast)


def _labels(obj: Mapping[str, Any]) -> Mapping[str, str]:
    labels = _meta(obj).get("labels")
    return labels if isinstance(labels, dict) else {}


def port_key(ports: Sequence[Mapping[str, Any]]) -> str:
    """A port mapping's identity: its ports in a canonical order (upstream's ``PortMapKey``)."""
    # Every part as a string: a slice written by someone else may leave any of them out.
    fields = ("name", "port", "protocol", "appProtocol")
    return json.dumps(sorted([str(p.get(f, "")) for f in fields] for p in ports))


def _endpoint_ports(service: Mapping[str, Any], pod: Mapping[str, Any]) -> list[_Json]:
    spec = service.get("spec") or {}
    ports: list[_Json] = []
    for service_port in spec.get("ports") or ():
        number = find_port(pod, service_port)
        if number is None:
            continue  # this pod does not serve that port: it is left out of its slices
        port: _Json = {
            "name": str(service_port.get("name") or ""),
            "port": number,
            "protocol": service_port.get("protocol") or "TCP",
        }
        if service_port.get("appProtocol"):
            port["appProtocol"] = service_port["appProtocol"]
        ports.append(port)
    return ports


def _endpoint_id(endpoint: Mapping[str, Any]) -> EndpointId:
    ref = endpoint.get("targetRef") or {}
    return (
        str(ref.get("namespace", "")),
        str(ref.get("name", "")),
        str(endpoint.get("hostname") or ""),
        tuple(sorted(str(a) for a in endpoint.get("addresses") or ())),
    )


_Found = tuple[str, list[_Json], EndpointId | None, _Json | None, str | None]
"""What one pod contributes: its port mapping's key and ports, its endpoint (identity and
body; None when it is left out) and the unknown node that left it out, if that is why."""
Memo = dict[str, tuple[tuple[Any, ...], _Found | None]]
"""Per pod uid, what the pod contributed at the versions (of the pod and its node) it was
computed at; None for a pod that belongs in no endpoints."""


def _contribution(
    service: Mapping[str, Any],
    pod: Mapping[str, Any],
    found: Mapping[str, Any] | None,
    address_type: str,
    keys: dict[tuple[tuple[Any, ...], ...], str],
) -> _Found | None:
    if not should_be_in_endpoints(pod, include_terminating=True):
        return None
    ports = _endpoint_ports(service, pod)
    # Nearly every pod resolves to the same ports: canonicalise each mapping once.
    raw = tuple(tuple(p.values()) for p in ports)
    key = keys.get(raw)
    if key is None:
        key = keys[raw] = port_key(ports)
    publish_not_ready = bool((service.get("spec") or {}).get("publishNotReadyAddresses"))
    pod_spec, meta = pod.get("spec") or {}, pod.get("metadata") or {}
    node_name = str(pod_spec.get("nodeName") or "")
    if found is None and not publish_not_ready:
        return key, ports, None, None, node_name
    addresses = [ip for ip in pod_ips(pod) if ip_family(ip) == address_type]
    if not addresses:
        return key, ports, None, None, None
    serving = is_pod_ready(pod)
    terminating = bool(meta.get("deletionTimestamp"))
    endpoint: _Json = {
        "addresses": addresses,
        "conditions": {
            "ready": publish_not_ready or (serving and not terminating),
            "serving": serving,
            "terminating": terminating,
        },
        "targetRef": {
            "kind": "Pod",
            "namespace": meta.get("namespace", ""),
            "name": meta.get("name", ""),
            "uid": meta.get("uid", ""),
        },
    }
    if node_name:
        endpoint["nodeName"] = node_name
    zone = _labels(found).get(ZONE_LABEL) if found is not None else None
    if zone:
        endpoint["zone"] = zone
    hostname = str(pod_spec["hostname"]) if should_set_hostname(pod, service) else ""
    if hostname:
        endpoint["hostname"] = hostname
    ref = endpoint["targetRef"]
    identity = (str(ref["namespace"]), str(ref["name"]), hostname, tuple(sorted(addresses)))
    return key, ports, identity, endpoint, None


def desired_endpoints(
    service: Mapping[str, Any],
    pods: Sequence[Mapping[str, Any]],
    node: Callable[[str], Mapping[str, Any] | None],
    address_type: str,
    missing_nodes: set[str] | None = None,
    memo: Memo | None = None,
) -> Desired:
    """The endpoints of ``address_type`` the Service's ``pods`` make, by port mapping.
    ``node(name)`` is the Node a pod runs on (for its zone), None when unknown; the names of
    unknown nodes that kept a pod out are added to ``missing_nodes``.

    With a ``memo`` (kept by the caller for this Service and family, and dropped when the
    Service changes), a pod whose version and whose node's version are those it was computed
    at is not computed again: a sync after one pod of thousands changed costs a lookup per
    pod. It is left holding exactly the pods seen this time."""
    desired: Desired = {}
    keys: dict[tuple[tuple[Any, ...], ...], str] = {}
    seen: Memo = {}
    for pod in pods:
        meta = pod.get("metadata") or {}
        node_name = str((pod.get("spec") or {}).get("nodeName") or "")
        found = node(node_name) if node_name else None
        stamp = (
            meta.get("resourceVersion"),
            _meta(found).get("resourceVersion") if found else None,
        )
        uid = str(meta.get("uid", ""))
        cached = memo.get(uid) if memo is not None and stamp[0] is not None else None
        if cached is not None and cached[0] == stamp:
            contribution = cached[1]
        else:
            contribution = _contribution(service, pod, found, address_type, keys)
        seen[uid] = (stamp, contribution)
        if contribution is None:
            continue
        key, ports, identity, endpoint, missing = contribution
        # Upstream records the port mapping even when the pod itself is then skipped.
        _, endpoints = desired.setdefault(key, (ports, {}))
        if missing is not None and missing_nodes is not None:
            missing_nodes.add(missing)
        if identity is not None and endpoint is not None:
            endpoints[identity] = endpoint
    if memo is not None:
        memo.clear()
        memo.update(seen)
    return desired


# ---------------------------------------------------------------------------- planning


@frozen
class SlicePlan:
    """What to write: slices to create (no name yet), to update and to delete (as stored)."""

    create: tuple[_Json, ...]
    update: tuple[_Json, ...]
    delete: tuple[Mapping[str, Any], ...]

    @property
    def empty(self) -> bool:
        return not (self.create or self.update or self.delete)


def slice_labels(service: Mapping[str, Any]) -> dict[str, str]:
    """The Service's labels but the reserved ones, the headless label for a Service without a
    ClusterIP, the Service's name and this controller's (upstream's ``setEndpointSliceLabels``)."""
    meta = _meta(service)
    labels = {str(k): str(v) for k, v in _labels(service).items() if k not in _RESERVED}
    if not is_service_ip_set(service):
        labels[HEADLESS_LABEL] = ""
    labels[SERVICE_NAME_LABEL] = str(meta.get("name", ""))
    labels[MANAGED_BY_LABEL] = CONTROLLER_NAME
    return labels


def _owner_reference(service: Mapping[str, Any]) -> _Json:
    meta = _meta(service)
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "name": meta.get("name", ""),
        "uid": meta.get("uid", ""),
        "controller": True,
        "blockOwnerDeletion": True,
    }


def _owned_by(slice_: Mapping[str, Any], service: Mapping[str, Any]) -> bool:
    uid = _meta(service).get("uid")
    return any(
        isinstance(ref, Mapping)
        and ref.get("uid") == uid
        and ref.get("kind") == "Service"
        and ref.get("apiVersion") == "v1"
        for ref in _meta(slice_).get("ownerReferences") or ()
    )


def _new_slice(service: Mapping[str, Any], ports: list[_Json], address_type: str) -> _Json:
    meta = _meta(service)
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "generateName": f"{meta.get('name', '')}-",
            "namespace": meta.get("namespace", ""),
            "labels": slice_labels(service),
            "ownerReferences": [_owner_reference(service)],
        },
        "addressType": address_type,
        "endpoints": [],
        "ports": copy.deepcopy(ports),
    }


def _with(slice_: Mapping[str, Any], **fields: Any) -> _Json:
    """A copy of a stored slice with some fields (``labels`` goes into its metadata). Only what
    changes is copied: the stored parts it shares are never modified (bodies are copied whole
    before they are written)."""
    body = dict(slice_)
    body["metadata"] = dict(_meta(slice_))
    body["endpoints"] = list(_endpoints(slice_))
    labels = fields.pop("labels", None)
    if labels is not None:
        body["metadata"]["labels"] = dict(labels)
    body.update(fields)
    return body


def _endpoints(slice_: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [e for e in slice_.get("endpoints") or () if isinstance(e, Mapping)]


def _name(slice_: Mapping[str, Any]) -> str:
    return str(_meta(slice_).get("name", ""))


def _slice_to_fill(candidates: list[_Json], count: int, limit: int) -> _Json | None:
    """The unchanged slice that ``count`` more endpoints fill the closest to full."""
    best: _Json | None = None
    closest = limit
    for candidate in candidates:
        room = limit - (count + len(_endpoints(candidate)))
        if 0 <= room < closest:
            best, closest = candidate, room
            if room == 0:
                break
    return best


def _by_port_mapping(
    service: Mapping[str, Any],
    existing: list[Mapping[str, Any]],
    ports: list[_Json],
    desired: dict[EndpointId, _Json],
    address_type: str,
    limit: int,
) -> tuple[list[_Json], list[_Json], list[Mapping[str, Any]]]:
    """Upstream's ``reconcileByPortMapping`` for the slices of one port mapping."""
    wanted = dict(desired)
    labels = slice_labels(service)
    by_name: dict[str, _Json] = {}
    unchanged: list[str] = []
    to_update: list[str] = []
    to_delete: list[Mapping[str, Any]] = []
    # 1. Keep the wanted endpoints where they are (as wanted now); drop the rest.
    for slice_ in sorted(existing, key=_name):
        kept: list[_Json] = []
        changed = False
        for endpoint in _endpoints(slice_):
            got = wanted.pop(_endpoint_id(endpoint), None)
            if got is not None:
                kept.append(got)
                changed = changed or got != endpoint
        current_labels = dict(_labels(slice_))
        if changed or len(kept) != len(_endpoints(slice_)):
            if not kept:
                to_delete.append(slice_)
            else:
                by_name[_name(slice_)] = _with(slice_, endpoints=kept, labels=labels)
                to_update.append(_name(slice_))
        elif current_labels != labels:
            by_name[_name(slice_)] = _with(slice_, labels=labels)
            to_update.append(_name(slice_))
        else:
            by_name[_name(slice_)] = dict(slice_)
            unchanged.append(_name(slice_))
    remaining = deque(sorted(wanted))
    # 2. New endpoints go first into the slices written anyway, fullest first.
    if remaining and to_update:
        for name in sorted(to_update, key=lambda n: -len(by_name[n]["endpoints"])):
            slice_ = by_name[name]
            while remaining and len(slice_["endpoints"]) < limit:
                slice_["endpoints"].append(wanted[remaining.popleft()])
    # 3. Then into the unchanged slice they fit best, then into new slices.
    to_create: list[_Json] = []
    while remaining:
        target: _Json | None = None
        if len(remaining) < limit and unchanged:
            candidates = [by_name[n] for n in unchanged]
            found = _slice_to_fill(candidates, len(remaining), limit)
            if found is not None:
                target = _with(found)
                by_name[_name(found)] = target
        if target is None:
            target = _new_slice(service, ports, address_type)
        while remaining and len(target["endpoints"]) < limit:
            target["endpoints"].append(wanted[remaining.popleft()])
        if _name(target):
            to_update.append(_name(target))
            unchanged.remove(_name(target))
        else:
            to_create.append(target)
    return to_create, [by_name[n] for n in to_update], to_delete


def _is_placeholder_of(slice_: Mapping[str, Any], placeholder: Mapping[str, Any]) -> bool:
    """Upstream's ``placeholderSliceCompare``: same labels, type and (no) ports and endpoints;
    other metadata does not count."""
    return (
        dict(_labels(slice_)) == _labels(placeholder)
        and slice_.get("addressType") == placeholder.get("addressType")
        and not _endpoints(slice_)
        and not (slice_.get("ports") or [])
    )


def _by_address_type(
    service: Mapping[str, Any],
    existing: list[Mapping[str, Any]],
    desired: Desired,
    address_type: str,
    limit: int,
) -> tuple[list[_Json], list[_Json], list[Mapping[str, Any]]]:
    """Upstream's ``reconcileByAddressType``."""
    to_create: list[_Json] = []
    to_update: list[_Json] = []
    to_delete: list[Mapping[str, Any]] = []
    by_ports: dict[str, list[Mapping[str, Any]]] = {}
    for slice_ in existing:
        if _owned_by(slice_, service):
            by_ports.setdefault(port_key(slice_.get("ports") or []), []).append(slice_)
        else:
            to_delete.append(slice_)  # left by an earlier Service of the same name
    for key in sorted(desired):
        ports, endpoints = desired[key]
        created, updated, deleted = _by_port_mapping(
            service, by_ports.get(key, []), ports, endpoints, address_type, limit
        )
        to_create += created
        to_update += updated
        to_delete += deleted
    for key in sorted(by_ports):
        if key not in desired:
            to_delete += by_ports[key]
    if len(existing) == len(to_delete) and not to_create:
        # A Service with no endpoints keeps one empty slice, so that consumers can tell "no
        # endpoints" from "not processed yet".
        placeholder = _new_slice(service, [], address_type)
        if len(to_delete) == 1 and _is_placeholder_of(to_delete[0], placeholder):
            to_delete = []
        else:
            to_create.append(placeholder)
    return to_create, to_update, to_delete


def plan_slices(
    service: Mapping[str, Any],
    existing: Sequence[Mapping[str, Any]],
    desired: Mapping[str, Desired],
    limit: int = MAX_ENDPOINTS_PER_SLICE,
) -> SlicePlan:
    """The writes that turn the slices this controller manages for ``service`` (``existing``,
    as stored) into ``desired`` (per address type the Service serves, from
    :func:`desired_endpoints`)."""
    to_create: list[_Json] = []
    to_update: list[_Json] = []
    to_delete: list[Mapping[str, Any]] = []
    by_type: dict[str, list[Mapping[str, Any]]] = {t: [] for t in desired}
    for slice_ in existing:
        address_type = str(slice_.get("addressType", ""))
        if address_type in by_type:
            by_type[address_type].append(slice_)
        else:
            to_delete.append(slice_)  # a family the Service no longer serves
    for address_type in sorted(desired):
        created, updated, deleted = _by_address_type(
            service, by_type[address_type], desired[address_type], address_type, limit
        )
        to_create += created
        to_update += updated
        to_delete += deleted
    # A slice about to be deleted is reused for one about to be created (upstream's finalize):
    # fewer writes, and names stay put.
    index = 0
    while index < len(to_delete) and to_create:
        doomed, fresh = to_delete[index], to_create[-1]
        if doomed.get("addressType") == fresh["addressType"] and _owned_by(doomed, service):
            reused = _with(
                doomed,
                ports=fresh["ports"],
                endpoints=list(fresh["endpoints"]),
                labels=fresh["metadata"]["labels"],
            )
            reused["metadata"]["ownerReferences"] = fresh["metadata"]["ownerReferences"]
            to_create.pop()
            to_update.append(reused)
            del to_delete[index]
        else:
            index += 1
    return SlicePlan(tuple(to_create), tuple(to_update), tuple(to_delete))


# ---------------------------------------------------------------------------- the controller


def _slice_service_index(stored: StoredObject) -> list[str]:
    service = _labels(stored.object).get(SERVICE_NAME_LABEL)
    return [f"{stored.namespace}/{service}"] if service else []


def _managed(stored: StoredObject) -> bool:
    labels = _labels(stored.object)
    return labels.get(MANAGED_BY_LABEL) == CONTROLLER_NAME and bool(labels.get(SERVICE_NAME_LABEL))


_DELETED = -1
_CONCURRENT_WRITES = 16
"""Slice writes of one sync in flight at once."""


class EndpointSliceController(Controller):
    name = "endpointslice"
    identity = kube_system_identity("endpointslice-controller")

    def __init__(
        self, *args: Any, max_endpoints_per_slice: int = MAX_ENDPOINTS_PER_SLICE, **kwargs: Any
    ) -> None:
        self.max_endpoints_per_slice = max_endpoints_per_slice
        super().__init__(*args, **kwargs)

    def setup(self) -> None:
        self.slice_type = CATALOGUE.get("discovery.k8s.io", "v1", "endpointslices")
        self.services = self.watch_primary(CATALOGUE.get("", "v1", "services"))
        self.pods = self.informers.get(CATALOGUE.get("", "v1", "pods"))
        self.nodes = self.informers.get(CATALOGUE.get("", "v1", "nodes"))
        self.slices: Informer = self.informers.get(self.slice_type)
        index_services(self.services)
        index_pods(self.pods)
        self.slices.add_index(_BY_SERVICE, _slice_service_index)
        self.pods.add_handler(self._pod_changed)
        self.nodes.add_handler(self._node_changed)
        self.slices.add_handler(self._slice_changed)
        self.own_writes = OwnWrites()
        self.own_writes.follow(self.slices)
        self.triggers = TriggerTimes()
        self.default_family = (
            "IPv6" if self.registry.network.service_network.version == 6 else "IPv4"
        )
        self._own: dict[str, int] = {}
        """Per slice key, the version this controller wrote (or deleted) and has not seen yet."""
        self._waiting: dict[str, set[str]] = {}
        """Per unknown node, the Services that left a pod out because of it."""
        self._memos: dict[str, tuple[int, dict[str, Memo]]] = {}
        """Per Service key, the version it was at and each family's pod contributions."""

    # ------------------------------------------------------------------ what to look at

    def _pod_changed(self, _event: str, old: StoredObject | None, new: StoredObject | None) -> None:
        for key in services_to_sync(self.services, old, new):
            self.queue.add(key)

    def _node_changed(self, event: str, old: StoredObject | None, new: StoredObject | None) -> None:
        stored = new if new is not None else old
        assert stored is not None
        keys = self._waiting.pop(stored.name, set()) if new is not None else set()
        zone_before = _labels(old.object).get(ZONE_LABEL) if old is not None else None
        zone_after = _labels(new.object).get(ZONE_LABEL) if new is not None else None
        if event == "DELETED" or (old is not None and zone_before != zone_after):
            for pod in pods_on_node(self.pods, stored.name):
                keys |= services_selecting(self.services, pod.namespace, _labels(pod.object))
        for key in keys:
            self.queue.add(key)

    def _slice_changed(
        self, event: str, old: StoredObject | None, new: StoredObject | None
    ) -> None:
        stored = new if new is not None else old
        assert stored is not None
        if not _managed(stored):
            return
        slice_key = object_key(stored)
        own = self._own.pop(slice_key, None)
        if event == "DELETED" and own == _DELETED:
            return
        if new is not None and own == new.resource_version:
            return  # our own write coming back
        self.queue.add(f"{stored.namespace}/{_labels(stored.object)[SERVICE_NAME_LABEL]}")

    def _node(self, name: str) -> Mapping[str, Any] | None:
        node = self.nodes.get("", name)
        return node.object if node is not None else None

    # ------------------------------------------------------------------ reconciling

    async def reconcile(self, key: str) -> None:
        namespace, name = key.split("/", 1)
        # Planning on a cache older than our own last writes could create a second slice for
        # endpoints already placed, or undo a change.
        if not await self.own_writes.caught_up():
            raise Requeue(0.1, "the EndpointSlice cache has not caught up with our writes")
        service = self.services.get(namespace, name)
        if service is None:
            # Its slices go with it through the garbage collector (they are owned by it).
            self.triggers.forget(key)
            self._memos.pop(key, None)
            return
        obj = service.object
        if (obj.get("spec") or {}).get("type") == "ExternalName" or selector_of(obj) is None:
            return  # no slices from this controller (a user's, or the mirroring controller's)
        pods = selected_pods(self.pods, namespace, selector_of(obj) or {})
        existing = [s.object for s in self.slices.by_index(_BY_SERVICE, key) if _managed(s)]
        trigger = self.triggers.compute(key, obj, pods)
        version, memos = self._memos.get(key, (0, {}))
        if version != service.resource_version:
            memos = {}  # what pods contribute depends on the Service (its ports, above all)
        self._memos[key] = (service.resource_version, memos)
        missing: set[str] = set()
        desired = {
            family: desired_endpoints(
                obj, pods, self._node, family, missing, memos.setdefault(family, {})
            )
            for family in service_ip_families(obj, self.default_family)
        }
        for node in missing:
            self._waiting.setdefault(node, set()).add(key)
        plan = plan_slices(obj, existing, desired, self.max_endpoints_per_slice)
        if not plan.empty:
            await self._apply(service, plan, trigger)

    async def _apply(
        self, service: StoredObject, plan: SlicePlan, trigger: datetime | None
    ) -> None:
        """Write the plan: creates and updates together, then (if they all went through) the
        deletes together. The slices are distinct objects, so their writes do not depend on
        each other, and written together they share group commits instead of queueing behind
        one another (a sync that rewrites ten slices waits for one commit, not ten)."""
        namespace = service.namespace
        ctx = self.context()
        limit = asyncio.Semaphore(_CONCURRENT_WRITES)

        async def create(body: _Json) -> None:
            async with limit:
                stored = await self.registry.create(
                    ctx, self.slice_type, namespace, _annotated(body, trigger)
                )
            self._wrote(stored, stored.resource_version)

        async def update(body: _Json) -> None:
            async with limit:
                stored, _ = await self.registry.update(
                    ctx, self.slice_type, namespace, _name(body), _annotated(body, trigger)
                )
            self._wrote(stored, stored.resource_version)

        async def delete(doomed: Mapping[str, Any]) -> None:
            uid = str(_meta(doomed).get("uid", ""))
            try:
                async with limit:
                    result = await self.registry.delete(
                        ctx,
                        self.slice_type,
                        namespace,
                        _name(doomed),
                        DeleteOptions(precondition_uid=uid or None),
                    )
            except NotFoundError:
                return  # gone already (the collector, or a user)
            if result.object is not None:
                self._wrote(result.object, _DELETED if result.removed else None)

        # No new slices for a Service being deleted: the collector would race them.
        creates = () if _meta(service.object).get("deletionTimestamp") else plan.create
        writes = [create(body) for body in creates] + [update(body) for body in plan.update]
        if self._failed(service, await asyncio.gather(*writes, return_exceptions=True)):
            return
        deletes = [delete(doomed) for doomed in plan.delete]
        self._failed(service, await asyncio.gather(*deletes, return_exceptions=True))

    def _failed(self, service: StoredObject, outcomes: list[BaseException | None]) -> bool:
        """Raise the first failure among ``outcomes`` the way the work queue expects it (a lost
        race as a conflict, to be redone at once); True when the rest of the sync is to be
        skipped quietly (creates in a terminating namespace keep failing: drop the key, as
        upstream does)."""
        errors = [outcome for outcome in outcomes if isinstance(outcome, BaseException)]
        if not errors:
            return False
        for error in errors:
            if not isinstance(error, StatusError):
                raise error
        conflicts = [e for e in errors if isinstance(e, ConflictError | NotFoundError)]
        if conflicts:
            key = object_key(service)
            raise ConflictError(f"an EndpointSlice of {key} changed meanwhile") from conflicts[0]
        first = errors[0]
        assert isinstance(first, StatusError)
        if isinstance(first, ForbiddenError) and any(
            c.reason == "NamespaceTerminating" for c in first.causes
        ):
            return True
        self.events.emit(
            Reference.to(service),
            "Warning",
            "FailedToUpdateEndpointSlices",
            f"Error updating Endpoint Slices for Service {service.namespace}/{service.name}: "
            f"{first}",
        )
        raise first

    def _wrote(self, stored: StoredObject, own: int | None) -> None:
        self.own_writes.wrote(self.slices, stored)
        if own is not None:
            self._own[object_key(stored)] = own


def _annotated(body: _Json, trigger: datetime | None) -> _Json:
    """A copy of the slice to write (the registry may fill in what it is given; the plan shares
    parts with the cache), with the trigger time of the change it publishes (none: the
    annotation goes)."""
    body = orjson.loads(orjson.dumps(body))
    meta = body.setdefault("metadata", {})
    annotations = dict(meta.get("annotations") or {})
    if trigger is not None:
        annotations[LAST_CHANGE_TRIGGER_TIME] = format_trigger_time(trigger)
    else:
        annotations.pop(LAST_CHANGE_TRIGGER_TIME, None)
    if annotations:
        meta["annotations"] = annotations
    else:
        meta.pop("annotations", None)
    return body
