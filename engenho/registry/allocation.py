"""Unique resources an object holds: Service ClusterIPs and NodePorts, Node pod CIDRs.

Allocation is decided before proposing (DESIGN.md rule 2): a random free address or port is
written into the object and named in the command's ``claims``. The apply step refuses a command
whose claim another object holds, so two writers that picked the same address concurrently
cannot both win; the loser draws again. An address the client asked for is checked the same
way and refused with upstream's message when taken.
"""

from __future__ import annotations

import ipaddress
import secrets
from collections.abc import Callable
from typing import Any

from attrs import frozen

from engenho.registry.errors import InvalidError, StatusCause

__all__ = [
    "CLUSTER_IP",
    "NODE_PORT",
    "POD_CIDR",
    "NetworkSettings",
    "allocate_service",
    "claims_of",
    "prepare_node",
    "service_claims",
]

CLUSTER_IP = "services/clusterIP/"
NODE_PORT = "services/nodePort/"
POD_CIDR = "nodes/podCIDR/"

_Json = dict[str, Any]
Taken = Callable[[str], set[str]]
"""The claims held under a prefix (``services/clusterIP/``), as full claim names."""


@frozen
class NetworkSettings:
    service_cidr: str = "10.96.0.0/12"
    node_port_range: tuple[int, int] = (30000, 32767)
    cluster_cidr: str = "10.42.0.0/16"
    node_cidr_prefix: int = 24

    @property
    def service_network(self) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
        return ipaddress.ip_network(self.service_cidr)

    def kubernetes_service_ip(self) -> str:
        """The first address of the service range, upstream's ``default/kubernetes`` Service."""
        return str(self.service_network.network_address + 1)


def _invalid(name: str, field: str, detail: str) -> InvalidError:
    return InvalidError(
        f'Service "{name}" is invalid: {field}: Invalid value: {detail}',
        name=name,
        kind="Service",
        causes=[StatusCause("FieldValueInvalid", f"Invalid value: {detail}", field)],
    )


def service_claims(obj: _Json) -> tuple[str, ...]:
    spec = obj.get("spec") or {}
    ips = spec.get("clusterIPs") or ([spec["clusterIP"]] if spec.get("clusterIP") else [])
    claims = [CLUSTER_IP + ip for ip in ips if isinstance(ip, str) and ip not in ("", "None")]
    claims.extend(
        f"{NODE_PORT}{port['nodePort']}"
        for port in spec.get("ports") or []
        if isinstance(port, dict) and isinstance(port.get("nodePort"), int) and port["nodePort"]
    )
    return tuple(dict.fromkeys(claims))


def _node_claims(obj: _Json) -> tuple[str, ...]:
    spec = obj.get("spec") or {}
    cidrs = spec.get("podCIDRs") or ([spec["podCIDR"]] if spec.get("podCIDR") else [])
    return tuple(dict.fromkeys(POD_CIDR + c for c in cidrs if isinstance(c, str) and c))


def _node_invalid(name: str, causes: list[StatusCause]) -> InvalidError:
    body = causes[0] if len(causes) == 1 else None
    shown = (
        f"{body.field}: {body.message}"
        if body is not None
        else "[" + ", ".join(f"{c.field}: {c.message}" for c in causes) + "]"
    )
    return InvalidError(f'Node "{name}" is invalid: {shown}', name=name, kind="Node", causes=causes)


def _parse_cidr(value: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    try:
        # Upstream parses sloppily: host bits may be set (10.42.1.5/24 is 10.42.1.0/24).
        return ipaddress.ip_network(value, strict=False)
    except ValueError:
        return None


def prepare_node(obj: _Json, old: _Json | None, taken: Taken, name: str) -> None:
    """Keep a Node's ``spec.podCIDR`` and ``spec.podCIDRs`` in step and refuse pod CIDRs that
    are malformed, change once set, or overlap a CIDR another node holds.

    The list wins over the single field, as upstream's v1 conversion has it. An exact duplicate
    written concurrently by two writers loses at apply (the claim); an overlapping one is
    refused here, against the claims held when the write is planned.
    """
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        spec = {}
    cidrs = spec.get("podCIDRs")
    if not cidrs and isinstance(spec.get("podCIDR"), str) and spec["podCIDR"]:
        cidrs = spec["podCIDRs"] = [spec["podCIDR"]]
    if isinstance(cidrs, list) and cidrs and isinstance(cidrs[0], str):
        spec["podCIDR"] = cidrs[0]
    cidrs = cidrs if isinstance(cidrs, list) else []
    old_spec = (old or {}).get("spec") or {}
    old_cidrs = old_spec.get("podCIDRs") or (
        [old_spec["podCIDR"]] if old_spec.get("podCIDR") else []
    )
    if cidrs == old_cidrs:
        return
    if old_cidrs:
        raise _node_invalid(
            name,
            [
                StatusCause(
                    "FieldValueForbidden",
                    'Forbidden: node updates may not change podCIDR except from "" to valid',
                    "spec.podCIDRs",
                )
            ],
        )
    causes: list[StatusCause] = []
    parsed: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
    for index, value in enumerate(cidrs):
        network = _parse_cidr(value) if isinstance(value, str) else None
        if network is None:
            causes.append(
                StatusCause(
                    "FieldValueInvalid",
                    f'Invalid value: "{value}": must be a valid CIDR value, (e.g. 10.9.8.0/24 '
                    "or 2001:db8::/64)",
                    f"spec.podCIDRs[{index}]",
                )
            )
        else:
            parsed.append(network)
    if not causes and (len(parsed) > 2 or len({n.version for n in parsed}) < len(parsed)):
        shown = ", ".join(f'"{c}"' for c in cidrs)
        causes.append(
            StatusCause(
                "FieldValueInvalid",
                f"Invalid value: []string{{{shown}}}: may specify no more than one CIDR for "
                "each IP family",
                "spec.podCIDRs",
            )
        )
    if causes:
        raise _node_invalid(name, causes)
    held = [
        (claim[len(POD_CIDR) :], network)
        for claim in taken(POD_CIDR) - {POD_CIDR + c for c in old_cidrs}
        if (network := _parse_cidr(claim[len(POD_CIDR) :])) is not None
    ]
    for index, network in enumerate(parsed):
        for text, other in held:
            if network.version == other.version and network.overlaps(other):
                detail = (
                    "provided CIDR is already allocated"
                    if network == other
                    else f"provided CIDR overlaps {text}, which is already allocated"
                )
                raise _node_invalid(
                    name,
                    [
                        StatusCause(
                            "FieldValueInvalid",
                            f'Invalid value: "{cidrs[index]}": {detail}',
                            f"spec.podCIDRs[{index}]",
                        )
                    ],
                )


def claims_of(group: str, resource: str, obj: _Json | None) -> tuple[str, ...]:
    """The claims an object of this resource holds (none for most resources)."""
    if obj is None or group != "":
        return ()
    if resource == "services":
        return service_claims(obj)
    if resource == "nodes":
        return _node_claims(obj)
    return ()


def _free_ip(settings: NetworkSettings, taken: set[str]) -> str:
    network = settings.service_network
    size = network.num_addresses
    # The network address and the first address (the kubernetes Service's) are not handed out
    # at random; the broadcast address of an IPv4 range neither.
    low, high = 2, size - 2 if network.version == 4 else size - 1
    for _ in range(64):
        candidate = str(network.network_address + low + secrets.randbelow(high - low + 1))
        if CLUSTER_IP + candidate not in taken:
            return candidate
    for offset in range(low, high + 1):  # a nearly full range: take the first free one
        candidate = str(network.network_address + offset)
        if CLUSTER_IP + candidate not in taken:
            return candidate
    raise InvalidError(
        "Internal error occurred: failed to allocate a serviceIP: range is full",
        causes=[StatusCause("FieldValueInvalid", "range is full", "spec.clusterIPs")],
    )


def _free_port(settings: NetworkSettings, taken: set[str], also: set[int]) -> int:
    low, high = settings.node_port_range
    for _ in range(64):
        candidate = low + secrets.randbelow(high - low + 1)
        if f"{NODE_PORT}{candidate}" not in taken and candidate not in also:
            return candidate
    for candidate in range(low, high + 1):
        if f"{NODE_PORT}{candidate}" not in taken and candidate not in also:
            return candidate
    raise InvalidError("failed to allocate a nodePort: range is full")


def allocate_service(
    obj: _Json, old: _Json | None, settings: NetworkSettings, taken: Taken, name: str
) -> None:
    """Fill in the ClusterIP and NodePorts a Service needs (in place)."""
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    kind = spec.get("type", "ClusterIP")
    mine = set(service_claims(old)) if old is not None else set()
    if kind != "ExternalName":
        ip = spec.get("clusterIP")
        if not ip:
            ip = _free_ip(settings, taken(CLUSTER_IP) - mine)
            spec["clusterIP"] = ip
        elif ip != "None":
            try:
                address = ipaddress.ip_address(ip)
            except ValueError:
                address = None
            if address is None or address not in settings.service_network:
                raise _invalid(
                    name,
                    "spec.clusterIPs",
                    f'[]string{{"{ip}"}}: failed to allocate IP {ip}: the provided IP ({ip}) '
                    f"is not in the valid range. The range of valid IPs is "
                    f"{settings.service_cidr}",
                )
            if CLUSTER_IP + ip in taken(CLUSTER_IP) - mine:
                raise _invalid(
                    name,
                    "spec.clusterIPs",
                    f'[]string{{"{ip}"}}: failed to allocate IP {ip}: provided IP is already '
                    "allocated",
                )
        spec.setdefault("clusterIPs", [ip])
    if kind in ("NodePort", "LoadBalancer"):
        ports = [p for p in spec.get("ports") or [] if isinstance(p, dict)]
        previous = {
            (p.get("port"), p.get("protocol", "TCP")): p.get("nodePort")
            for p in ((old or {}).get("spec") or {}).get("ports") or []
            if isinstance(p, dict)
        }
        held = taken(NODE_PORT) - mine
        used: set[int] = {p["nodePort"] for p in ports if isinstance(p.get("nodePort"), int)}
        for index, port in enumerate(ports):
            wanted = port.get("nodePort")
            if not wanted:
                kept = previous.get((port.get("port"), port.get("protocol", "TCP")))
                port["nodePort"] = kept or _free_port(settings, held, used)
                used.add(port["nodePort"])
            elif f"{NODE_PORT}{wanted}" in held:
                raise _invalid(
                    name,
                    f"spec.ports[{index}].nodePort",
                    f"{wanted}: provided port is already allocated",
                )
