"""Which fields each resource can be selected by, and their values for one object
(upstream's per-registry ``ToSelectableFields`` and field-label conversion functions;
contract §18.2).

Values are rendered as upstream renders them from Go structs: an absent string is ``""``,
an absent boolean ``"false"``, an absent integer ``"0"``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

from engenho.selectors.errors import UnsupportedFieldError
from engenho.selectors.fields import FieldSelector

__all__ = ["FieldGetter", "check_supported", "field_getter", "supported_fields"]

FieldGetter = Callable[[Mapping[str, Any]], dict[str, str]]
"""Maps an object (as JSON-like dicts) to its selectable fields."""

_Extract = Callable[[Mapping[str, Any]], str]


def _lookup(obj: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = obj
    for step in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(step)
    return value


def _string(*path: str) -> _Extract:
    def extract(obj: Mapping[str, Any]) -> str:
        value = _lookup(obj, path)
        return value if isinstance(value, str) else ""

    return extract


def _boolean(*path: str) -> _Extract:
    def extract(obj: Mapping[str, Any]) -> str:
        return "true" if _lookup(obj, path) is True else "false"

    return extract


def _integer(*path: str) -> _Extract:
    def extract(obj: Mapping[str, Any]) -> str:
        value = _lookup(obj, path)
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else "0"

    return extract


def _pod_ip(obj: Mapping[str, Any]) -> str:
    # Upstream reads the first of status.podIPs; a v1 object also carries it as status.podIP.
    primary = _lookup(obj, ("status", "podIP"))
    if isinstance(primary, str) and primary:
        return primary
    addresses = _lookup(obj, ("status", "podIPs"))
    if isinstance(addresses, list) and addresses and isinstance(addresses[0], Mapping):
        first = addresses[0].get("ip")
        return first if isinstance(first, str) else ""
    return ""


def _never_set(obj: Mapping[str, Any]) -> str:
    # Upstream accepts status.podIPs in a selector but never puts it in a pod's field set,
    # so it always reads as "". Selecting by it behaves the same here.
    return ""


def _event_source(obj: Mapping[str, Any]) -> str:
    component = _string("source", "component")(obj)
    return component or _string("reportingComponent")(obj)


_KIND_FIELDS: dict[tuple[str, str], dict[str, _Extract]] = {
    ("", "pods"): {
        "spec.nodeName": _string("spec", "nodeName"),
        "spec.restartPolicy": _string("spec", "restartPolicy"),
        "spec.schedulerName": _string("spec", "schedulerName"),
        "spec.serviceAccountName": _string("spec", "serviceAccountName"),
        "spec.hostNetwork": _boolean("spec", "hostNetwork"),
        "status.phase": _string("status", "phase"),
        "status.podIP": _pod_ip,
        "status.podIPs": _never_set,
        "status.nominatedNodeName": _string("status", "nominatedNodeName"),
    },
    ("", "events"): {
        "involvedObject.kind": _string("involvedObject", "kind"),
        "involvedObject.namespace": _string("involvedObject", "namespace"),
        "involvedObject.name": _string("involvedObject", "name"),
        "involvedObject.uid": _string("involvedObject", "uid"),
        "involvedObject.apiVersion": _string("involvedObject", "apiVersion"),
        "involvedObject.resourceVersion": _string("involvedObject", "resourceVersion"),
        "involvedObject.fieldPath": _string("involvedObject", "fieldPath"),
        "reason": _string("reason"),
        "reportingComponent": _string("reportingComponent"),
        "source": _event_source,
        "type": _string("type"),
    },
    ("", "secrets"): {"type": _string("type")},
    ("", "namespaces"): {"status.phase": _string("status", "phase")},
    ("", "nodes"): {"spec.unschedulable": _boolean("spec", "unschedulable")},
    ("", "replicationcontrollers"): {"status.replicas": _integer("status", "replicas")},
    ("apps", "replicasets"): {"status.replicas": _integer("status", "replicas")},
    ("batch", "jobs"): {"status.successful": _integer("status", "succeeded")},
    ("certificates.k8s.io", "certificatesigningrequests"): {
        "spec.signerName": _string("spec", "signerName")
    },
}


@functools.cache
def _extractors(group: str, resource: str, namespaced: bool) -> tuple[tuple[str, _Extract], ...]:
    common: dict[str, _Extract] = {"metadata.name": _string("metadata", "name")}
    if namespaced:
        common["metadata.namespace"] = _string("metadata", "namespace")
    return tuple({**common, **_KIND_FIELDS.get((group, resource), {})}.items())


def supported_fields(group: str, resource: str, namespaced: bool) -> frozenset[str]:
    """The field labels ``resource`` in API ``group`` ("" for core) can be selected by.

    Every resource offers ``metadata.name``, namespaced ones ``metadata.namespace``, and a
    few built-in kinds more; custom resources offer only the metadata fields.
    """
    return frozenset(name for name, _ in _extractors(group, resource, namespaced))


def field_getter(group: str, resource: str, namespaced: bool) -> FieldGetter:
    """A function from an object of ``resource`` to its selectable fields and values."""
    extractors = _extractors(group, resource, namespaced)

    def fields(obj: Mapping[str, Any]) -> dict[str, str]:
        return {name: extract(obj) for name, extract in extractors}

    return fields


def check_supported(selector: FieldSelector, group: str, resource: str, namespaced: bool) -> None:
    """Raise :class:`UnsupportedFieldError` for the first field ``resource`` does not offer.

    An unsupported field must fail the request: matching it against ``""`` would silently
    select everything or nothing (contract §18.2).
    """
    supported = supported_fields(group, resource, namespaced)
    # Upstream words the refusal two ways: kinds with their own field conversion say "field
    # label not supported"; the rest fall back to the metadata-only default conversion.
    own = (group, resource) in _KIND_FIELDS
    for requirement in selector.requirements:
        if requirement.field not in supported:
            raise UnsupportedFieldError(requirement.field, metadata_only=not own)
