"""Services, Endpoints and EndpointSlices.

Service External-IP depends on the type: ``spec.externalIPs`` or ``<none>`` for ClusterIP and
NodePort; load-balancer ingress IPs (or hostnames), sorted and de-duplicated, followed by
``spec.externalIPs``, or ``<pending>`` with neither, for LoadBalancer; ``spec.externalName``
for ExternalName; ``<unknown>`` for anything else. Upstream clips the load-balancer list to 16
characters only when printing without ``-o wide``; a server always prints wide, so it never
clips.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from engenho.api.printing.age import UNKNOWN, age
from engenho.api.printing.columns import AGE, NAME, column, wide
from engenho.api.printing.fields import dig, integer, mapping, sequence, string
from engenho.api.printing.formatting import LIST_MAX, join_host_port, list_with_more
from engenho.api.printing.labels import NONE, format_labels
from engenho.api.printing.printer import Printer, Row

__all__ = [
    "ENDPOINTS",
    "ENDPOINT_SLICE",
    "SERVICE",
    "endpoint_slice_row",
    "endpoints_row",
    "service_row",
]


def service_row(obj: Mapping[str, Any], now: datetime) -> Row:
    metadata, spec = mapping(obj.get("metadata")), mapping(obj.get("spec"))
    cluster_ips = [string(ip) for ip in sequence(spec.get("clusterIPs"))]
    # clusterIP is authoritative in the v1 -> internal conversion upstream prints from.
    cluster_ip = string(spec.get("clusterIP")) or next(iter(cluster_ips), "")
    ports = ",".join(_service_port(mapping(p)) for p in sequence(spec.get("ports")))
    return Row(
        cells=(
            string(metadata.get("name")),
            _service_type(spec),
            cluster_ip or NONE,
            _external_ip(spec, mapping(obj.get("status"))),
            ports or NONE,
            age(metadata.get("creationTimestamp"), now),
            format_labels(spec.get("selector")),
        )
    )


def _service_type(spec: Mapping[str, Any]) -> str:
    # An absent type reads as its API default.
    kind = spec.get("type")
    return kind if isinstance(kind, str) else "ClusterIP"


def _service_port(port: Mapping[str, Any]) -> str:
    # An absent protocol reads as its API default, TCP.
    protocol = string(port.get("protocol")) or "TCP"
    node_port = integer(port.get("nodePort"))
    number = integer(port.get("port"))
    if node_port > 0:
        return f"{number}:{node_port}/{protocol}"
    return f"{number}/{protocol}"


def _external_ip(spec: Mapping[str, Any], status: Mapping[str, Any]) -> str:
    kind = _service_type(spec)
    external = [string(ip) for ip in sequence(spec.get("externalIPs"))]
    if kind in {"ClusterIP", "NodePort"}:
        return ",".join(external) or NONE
    if kind == "LoadBalancer":
        ingress = set()
        for entry in sequence(dig(status, "loadBalancer", "ingress")):
            address = string(dig(entry, "ip")) or string(dig(entry, "hostname"))
            if address:
                ingress.add(address)
        return ",".join([*sorted(ingress), *external]) or "<pending>"
    if kind == "ExternalName":
        return string(spec.get("externalName"))
    return UNKNOWN


def endpoints_row(obj: Mapping[str, Any], now: datetime) -> Row:
    metadata = mapping(obj.get("metadata"))
    return Row(
        cells=(
            string(metadata.get("name")),
            _endpoints(sequence(obj.get("subsets"))),
            age(metadata.get("creationTimestamp"), now),
        )
    )


def _endpoints(subsets: Any) -> str:
    """Ready ``ip:port`` pairs (bare IPs for subsets without ports), three at most."""
    if not subsets:
        return NONE
    shown: list[str] = []
    total = 0
    for raw in subsets:
        subset = mapping(raw)
        addresses = [string(dig(a, "ip")) for a in sequence(subset.get("addresses"))]
        ports = [integer(dig(p, "port")) for p in sequence(subset.get("ports"))]
        pairs = (
            [join_host_port(ip, port) for port in ports for ip in addresses] if ports else addresses
        )
        total += len(pairs)
        shown.extend(pairs[: LIST_MAX - len(shown)])
    text = ",".join(shown)
    return f"{text} + {total - LIST_MAX} more..." if total > LIST_MAX else text


def endpoint_slice_row(obj: Mapping[str, Any], now: datetime) -> Row:
    metadata = mapping(obj.get("metadata"))
    ports = [mapping(p) for p in sequence(obj.get("ports"))]
    addresses = [
        string(address)
        for endpoint in sequence(obj.get("endpoints"))
        for address in sequence(dig(endpoint, "addresses"))
    ]
    return Row(
        cells=(
            string(metadata.get("name")),
            string(obj.get("addressType")),
            list_with_more([_slice_port(p) for p in ports[:LIST_MAX]], len(ports)),
            list_with_more(addresses[:LIST_MAX], len(addresses)),
            age(metadata.get("creationTimestamp"), now),
        )
    )


def _slice_port(port: Mapping[str, Any]) -> str:
    number = port.get("port")
    if isinstance(number, int) and not isinstance(number, bool):
        return str(number)
    name = port.get("name")
    return name if isinstance(name, str) else "*"


_SERVICE_DOCS = "https://kubernetes.io/docs/concepts/services-networking/service/"

SERVICE = Printer(
    kind="Service",
    version="v1",
    columns=(
        NAME,
        column(
            "Type",
            "type determines how the Service is exposed. Defaults to ClusterIP. Valid options "
            'are ExternalName, ClusterIP, NodePort, and LoadBalancer. "ClusterIP" allocates a '
            "cluster-internal IP address for load-balancing to endpoints. Endpoints are "
            "determined by the selector or if that is not specified, by manual construction of "
            'an Endpoints object or EndpointSlice objects. If clusterIP is "None", no virtual '
            "IP is allocated and the endpoints are published as a set of endpoints rather than "
            'a virtual IP. "NodePort" builds on ClusterIP and allocates a port on every node '
            'which routes to the same endpoints as the clusterIP. "LoadBalancer" builds on '
            "NodePort and creates an external load-balancer (if supported in the current cloud) "
            'which routes to the same endpoints as the clusterIP. "ExternalName" aliases this '
            "service to the specified externalName. Several other fields do not apply to "
            "ExternalName services. More info: "
            + _SERVICE_DOCS
            + "#publishing-services-service-types",
        ),
        column(
            "Cluster-IP",
            "clusterIP is the IP address of the service and is usually assigned randomly. If an "
            "address is specified manually, is in-range (as per system configuration), and is "
            "not in use, it will be allocated to the service; otherwise creation of the service "
            "will fail. This field may not be changed through updates unless the type field is "
            "also being changed to ExternalName (which requires this field to be blank) or the "
            "type field is being changed from ExternalName (in which case this field may "
            'optionally be specified, as describe above).  Valid values are "None", empty '
            'string (""), or a valid IP address. Setting this to "None" makes a "headless '
            'service" (no virtual IP), which is useful when direct endpoint connections are '
            "preferred and proxying is not required.  Only applies to types ClusterIP, "
            "NodePort, and LoadBalancer. If this field is specified when creating a Service of "
            "type ExternalName, creation will fail. This field will be wiped when updating a "
            "Service to type ExternalName. More info: "
            + _SERVICE_DOCS
            + "#virtual-ips-and-service-proxies",
        ),
        column(
            "External-IP",
            "externalIPs is a list of IP addresses for which nodes in the cluster will also "
            "accept traffic for this service.  These IPs are not managed by Kubernetes.  The "
            "user is responsible for ensuring that traffic arrives at a node with this IP.  A "
            "common example is external load-balancers that are not part of the Kubernetes "
            "system.",
        ),
        column(
            "Port(s)",
            "The list of ports that are exposed by this service. More info: "
            + _SERVICE_DOCS
            + "#virtual-ips-and-service-proxies",
        ),
        AGE,
        wide(
            "Selector",
            "Route service traffic to pods with label keys and values matching this selector. "
            "If empty or not present, the service is assumed to have an external process "
            "managing its endpoints, which Kubernetes will not modify. Only applies to types "
            "ClusterIP, NodePort, and LoadBalancer. Ignored if type is ExternalName. More info: "
            + _SERVICE_DOCS,
        ),
    ),
    row=service_row,
)

ENDPOINTS = Printer(
    kind="Endpoints",
    version="v1",
    columns=(
        NAME,
        column(
            "Endpoints",
            "The set of all endpoints is the union of all subsets. Addresses are placed into "
            "subsets according to the IPs they share. A single address with multiple ports, some "
            "of which are ready and some of which are not (because they come from different "
            "containers) will result in the address being displayed in different subsets for "
            "the different ports. No address will appear in both Addresses and "
            "NotReadyAddresses in the same subset. Sets of addresses and ports that comprise a "
            "service.",
        ),
        AGE,
    ),
    row=endpoints_row,
)

ENDPOINT_SLICE = Printer(
    kind="EndpointSlice",
    version="v1",
    columns=(
        NAME,
        column(
            "AddressType",
            "addressType specifies the type of address carried by this EndpointSlice. All "
            "addresses in this slice must be the same type. This field is immutable after "
            "creation. The following address types are currently supported: * IPv4: Represents "
            "an IPv4 Address. * IPv6: Represents an IPv6 Address. * FQDN: Represents a Fully "
            "Qualified Domain Name. (Deprecated) The EndpointSlice controller only generates, "
            'and kube-proxy only processes, slices of addressType "IPv4" and "IPv6". No '
            'semantics are defined for the "FQDN" type.',
        ),
        column(
            "Ports",
            "ports specifies the list of network ports exposed by each endpoint in this slice. "
            "Each port must have a unique name. Each slice may include a maximum of 100 ports. "
            "Services always have at least 1 port, so EndpointSlices generated by the "
            "EndpointSlice controller will likewise always have at least 1 port. EndpointSlices "
            "used for other purposes may have an empty ports list.",
        ),
        column(
            "Endpoints",
            "endpoints is a list of unique endpoints in this slice. Each slice may include a "
            "maximum of 1000 endpoints.",
        ),
        AGE,
    ),
    row=endpoint_slice_row,
)
