"""core/v1 Service rules, and the clusterIP immutability on update."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any

from engenho.schema import causes as c
from engenho.schema.rules.meta import add_invalid, validate_labels
from engenho.schema.rules.names import (
    dns1123_label_errors,
    dns1123_subdomain_errors,
    iana_svc_name_errors,
)

__all__ = ["validate_service"]

_PORT_RANGE = "must be between 1 and 65535, inclusive"


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def validate_service(
    obj: Mapping[str, Any], old: Mapping[str, Any] | None, causes: list[c.Cause]
) -> None:
    spec = obj.get("spec")
    if type(spec) is not dict:
        causes.append(c.required("spec.ports"))
        return
    kind = spec.get("type") or "ClusterIP"
    cluster_ip = spec.get("clusterIP") or ""
    headless = cluster_ip == "None"
    if kind == "ExternalName":
        external = spec.get("externalName")
        if not external:
            causes.append(c.required("spec.externalName"))
        elif type(external) is str:
            add_invalid(
                causes,
                "spec.externalName",
                external,
                dns1123_subdomain_errors(external.removesuffix(".")),
            )
    ports = spec.get("ports")
    if not ports and not headless and kind != "ExternalName":
        causes.append(c.required("spec.ports"))
    if type(ports) is list:
        _validate_ports(ports, kind, causes)
    if type(cluster_ip) is str and cluster_ip and not headless and not _is_ip(cluster_ip):
        causes.append(
            c.invalid("spec.clusterIP", cluster_ip, "must be empty, 'None', or a valid IP address")
        )
    for index, address in enumerate(spec.get("externalIPs") or ()):
        if type(address) is str and not _is_ip(address):
            causes.append(
                c.invalid(f"spec.externalIPs[{index}]", address, "must be a valid IP address")
            )
    if "selector" in spec:
        validate_labels(spec["selector"], "spec.selector", causes)
    if spec.get("sessionAffinity") == "ClientIP":
        timeout = ((spec.get("sessionAffinityConfig") or {}).get("clientIP") or {}).get(
            "timeoutSeconds"
        )
        if type(timeout) is int and not 0 < timeout <= 86400:
            causes.append(
                c.invalid(
                    "spec.sessionAffinityConfig.clientIP.timeoutSeconds",
                    timeout,
                    "must be greater than 0 and less than 86400",
                )
            )
    if old is not None:
        _validate_update(spec, old.get("spec"), causes)


def _validate_ports(ports: list[Any], kind: str, causes: list[c.Cause]) -> None:
    names: set[str] = set()
    keys: set[tuple[Any, Any]] = set()
    for index, port in enumerate(ports):
        if type(port) is not dict:
            continue
        path = f"spec.ports[{index}]"
        name = port.get("name")
        if len(ports) > 1 and not name:
            causes.append(c.required(f"{path}.name"))
        if type(name) is str and name:
            errors = dns1123_label_errors(name)
            if errors:
                add_invalid(causes, f"{path}.name", name, errors)
            if name in names:
                causes.append(c.duplicate(f"{path}.name", name))
            names.add(name)
        number = port.get("port")
        if type(number) is int and not 1 <= number <= 65535:
            causes.append(c.invalid(f"{path}.port", number, _PORT_RANGE))
        target = port.get("targetPort")
        if type(target) is int and not 1 <= target <= 65535:
            causes.append(c.invalid(f"{path}.targetPort", target, _PORT_RANGE))
        elif type(target) is str and target:
            errors = iana_svc_name_errors(target)
            if errors:
                add_invalid(causes, f"{path}.targetPort", target, errors)
        node_port = port.get("nodePort")
        if type(node_port) is int and node_port != 0:
            if kind == "ClusterIP":
                causes.append(
                    c.forbidden(f"{path}.nodePort", "may not be used when `type` is 'ClusterIP'")
                )
            elif not 1 <= node_port <= 65535:
                causes.append(c.invalid(f"{path}.nodePort", node_port, _PORT_RANGE))
        key = (number, port.get("protocol") or "TCP")
        if key in keys:
            causes.append(c.duplicate(path, {"port": number, "protocol": key[1]}))
        keys.add(key)


def _validate_update(spec: Mapping[str, Any], old_spec: Any, causes: list[c.Cause]) -> None:
    if type(old_spec) is not dict:
        return
    old_ip = old_spec.get("clusterIP") or ""
    new_ip = spec.get("clusterIP") or ""
    external = "ExternalName" in (spec.get("type"), old_spec.get("type"))
    if old_ip and new_ip != old_ip and not external:
        causes.append(c.invalid("spec.clusterIP", new_ip, "field is immutable"))
