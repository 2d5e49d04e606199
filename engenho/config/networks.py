"""Addresses, networks, port ranges and listen addresses, and the rules both configurations
apply to them (the Kubernetes apiserver's and k3s's own limits)."""

from __future__ import annotations

import ipaddress
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

from attrs import frozen

__all__ = [
    "MAX_SERVICE_HOST_BITS",
    "VALUE_TYPES",
    "IPAddress",
    "IPNetwork",
    "ListenAddress",
    "PortRange",
    "cluster_dns_problem",
    "parse_address",
    "parse_network",
    "port_range_problem",
    "service_cidr_problem",
]

IPAddress = IPv4Address | IPv6Address
IPNetwork = IPv4Network | IPv6Network

MAX_SERVICE_HOST_BITS = 20
"""kube-apiserver refuses a service range with more than 2**20 addresses (/12 for IPv4, /108
for IPv6): it keeps a bitmap of the whole range."""


def parse_address(text: str) -> IPAddress:
    try:
        return ipaddress.ip_address(text)
    except ValueError as exc:
        raise ValueError(f"{text!r} is not an IP address") from exc


def parse_network(text: str) -> IPNetwork:
    """A CIDR such as ``10.42.0.0/16``; host bits must be zero (``10.42.0.1/16`` is refused:
    it usually means the author meant another network)."""
    if "/" not in text:
        raise ValueError(f"{text!r} is not a CIDR (expected ADDRESS/PREFIX)")
    try:
        return ipaddress.ip_network(text, strict=True)
    except ValueError as exc:
        raise ValueError(f"{text!r} is not a CIDR: {exc}") from exc


@frozen
class PortRange:
    """An inclusive port range, written ``START-END``."""

    start: int
    end: int

    @classmethod
    def parse(cls, text: str) -> PortRange:
        start, sep, end = text.partition("-")
        if not sep or not start.isdigit() or not end.isdigit():
            raise ValueError(f"{text!r} is not a port range (expected START-END)")
        return cls(int(start), int(end))

    def __contains__(self, port: object) -> bool:
        return isinstance(port, int) and self.start <= port <= self.end

    def __str__(self) -> str:
        return f"{self.start}-{self.end}"


@frozen
class ListenAddress:
    """``HOST:PORT``; an IPv6 host is written in brackets (``[::1]:6443``). Port 0 asks the
    system for a free port."""

    host: str
    port: int

    @classmethod
    def parse(cls, text: str) -> ListenAddress:
        host, sep, port = text.rpartition(":")
        if not sep or not port.isdigit() or int(port) > 65535:
            raise ValueError(f"{text!r} is not HOST:PORT")
        if host.startswith("["):
            if not host.endswith("]"):
                raise ValueError(f"{text!r} is not HOST:PORT (unclosed '[')")
            host = host[1:-1]
            if not isinstance(parse_address(host), IPv6Address):
                raise ValueError(f"{text!r}: only an IPv6 address goes in brackets")
        elif ":" in host:
            raise ValueError(f"{text!r}: write an IPv6 host in brackets, as [{host}]:{port}")
        if not host:
            raise ValueError(f"{text!r} names no host")
        return cls(host, int(port))

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def service_cidr_problem(network: IPNetwork) -> str | None:
    host_bits = network.max_prefixlen - network.prefixlen
    if host_bits > MAX_SERVICE_HOST_BITS:
        limit = network.max_prefixlen - MAX_SERVICE_HOST_BITS
        return (
            f"{network} is too large for a service range: the apiserver allows at most "
            f"/{limit} for IPv{network.version}"
        )
    return None


def cluster_dns_problem(dns: IPAddress, service_cidr: IPNetwork) -> str | None:
    """The DNS Service's ClusterIP must be allocatable from the service range: inside it, and
    neither its network address nor its first address (the ``kubernetes`` Service's)."""
    if dns.version != service_cidr.version or dns not in service_cidr:
        return f"{dns} is not inside the service CIDR {service_cidr}"
    if dns == service_cidr.network_address:
        return f"{dns} is the network address of {service_cidr}"
    if dns == service_cidr.network_address + 1:
        return f"{dns} is the first address of {service_cidr}, which the kubernetes Service takes"
    if isinstance(service_cidr, IPv4Network) and dns == service_cidr.broadcast_address:
        return f"{dns} is the broadcast address of {service_cidr}"
    return None


def port_range_problem(ports: PortRange, reserved: dict[int, str]) -> str | None:
    """NodePorts below 1024 would need privileges and collide with system services; a range
    holding a port the control plane listens on would hand it to a Service."""
    if ports.start >= ports.end:
        return f"start {ports.start} must be below end {ports.end}"
    if ports.start < 1024:
        return f"start {ports.start} must be at least 1024"
    if ports.end > 65535:
        return f"end {ports.end} must be at most 65535"
    taken = sorted(port for port in reserved if port in ports)
    if taken:
        port = taken[0]
        return f"{ports} contains port {port}, which {reserved[port]} listens on"
    return None


VALUE_TYPES: tuple[type, ...] = (ListenAddress, PortRange)
"""Records written as one string in a document: values, not sections."""
