"""Rules for the remaining kinds: Namespace, PersistentVolumeClaim, Lease, PodDisruptionBudget,
Endpoints and EndpointSlice."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any

from engenho.schema import causes as c
from engenho.schema.rules.selectors import validate_label_selector
from engenho.schema.rules.workloads import check_non_negative, validate_int_or_percent

__all__ = [
    "validate_endpoint_slice",
    "validate_endpoints",
    "validate_lease",
    "validate_persistent_volume_claim",
    "validate_pod_disruption_budget",
]

_PORT_RANGE = "must be between 1 and 65535, inclusive"
_ADDRESS_TYPES = ("IPv4", "IPv6", "FQDN")


def validate_persistent_volume_claim(
    obj: Mapping[str, Any], old: Mapping[str, Any] | None, causes: list[c.Cause]
) -> None:
    spec = obj.get("spec")
    if type(spec) is not dict:
        causes.append(c.required("spec.accessModes", "at least 1 access mode is required"))
        return
    if not spec.get("accessModes"):
        causes.append(c.required("spec.accessModes", "at least 1 access mode is required"))
    if not spec.get("dataSource") and not spec.get("dataSourceRef"):
        requests = (spec.get("resources") or {}).get("requests") or {}
        if "storage" not in requests:
            causes.append(c.required("spec.resources[storage]"))


def validate_lease(
    obj: Mapping[str, Any], old: Mapping[str, Any] | None, causes: list[c.Cause]
) -> None:
    spec = obj.get("spec")
    if type(spec) is not dict:
        return
    duration = spec.get("leaseDurationSeconds")
    if type(duration) is int and duration <= 0:
        causes.append(c.invalid("spec.leaseDurationSeconds", duration, "must be greater than 0"))
    check_non_negative(spec, "spec", ("leaseTransitions",), causes)


def validate_pod_disruption_budget(
    obj: Mapping[str, Any], old: Mapping[str, Any] | None, causes: list[c.Cause]
) -> None:
    spec = obj.get("spec")
    if type(spec) is not dict:
        return
    if spec.get("minAvailable") is not None and spec.get("maxUnavailable") is not None:
        causes.append(c.invalid("spec", spec, "minAvailable and maxUnavailable cannot be both set"))
    for key in ("minAvailable", "maxUnavailable"):
        if spec.get(key) is not None:
            validate_int_or_percent(spec[key], f"spec.{key}", causes, at_most_100=True)
    validate_label_selector(spec.get("selector"), "spec.selector", causes)


def _ip_errors(value: str) -> list[str]:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return ["must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"]
    return []


def validate_endpoints(
    obj: Mapping[str, Any], old: Mapping[str, Any] | None, causes: list[c.Cause]
) -> None:
    subsets = obj.get("subsets")
    if type(subsets) is not list:
        return
    for index, subset in enumerate(subsets):
        if type(subset) is not dict:
            continue
        for group in ("addresses", "notReadyAddresses"):
            for position, address in enumerate(subset.get(group) or ()):
                ip = address.get("ip") if type(address) is dict else None
                if type(ip) is str and ip:
                    field = f"subsets[{index}].{group}[{position}].ip"
                    causes.extend(c.invalid(field, ip, message) for message in _ip_errors(ip))
        for position, port in enumerate(subset.get("ports") or ()):
            number = port.get("port") if type(port) is dict else None
            if type(number) is int and not 1 <= number <= 65535:
                causes.append(
                    c.invalid(f"subsets[{index}].ports[{position}].port", number, _PORT_RANGE)
                )


def validate_endpoint_slice(
    obj: Mapping[str, Any], old: Mapping[str, Any] | None, causes: list[c.Cause]
) -> None:
    address_type = obj.get("addressType")
    if address_type and address_type not in _ADDRESS_TYPES:
        causes.append(c.not_supported("addressType", address_type, _ADDRESS_TYPES))
    endpoints = obj.get("endpoints")
    if type(endpoints) is list:
        for index, endpoint in enumerate(endpoints):
            addresses = endpoint.get("addresses") if type(endpoint) is dict else None
            if type(addresses) is list and not 1 <= len(addresses) <= 100:
                if addresses:
                    causes.append(c.too_many(f"endpoints[{index}].addresses", len(addresses), 100))
                else:
                    causes.append(
                        c.required(
                            f"endpoints[{index}].addresses", "must contain at least 1 address"
                        )
                    )
            elif type(addresses) is list and address_type in ("IPv4", "IPv6"):
                for position, address in enumerate(addresses):
                    if type(address) is str:
                        field = f"endpoints[{index}].addresses[{position}]"
                        causes.extend(
                            c.invalid(field, address, message) for message in _ip_errors(address)
                        )
    for index, port in enumerate(obj.get("ports") or ()):
        number = port.get("port") if type(port) is dict else None
        if type(number) is int and not 1 <= number <= 65535:
            causes.append(c.invalid(f"ports[{index}].port", number, _PORT_RANGE))
    if old is not None and old.get("addressType") != address_type:
        causes.append(c.invalid("addressType", address_type, "field is immutable"))
