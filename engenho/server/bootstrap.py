"""Objects every cluster has from its first start (contract §5): the four system namespaces
and the ``default/kubernetes`` Service with its Endpoints (how pods reach the apiserver).

They are written through the registry like any other object, as ``system:apiserver``, and only
when missing or different, so a restart appends nothing.
"""

from __future__ import annotations

import contextlib
import uuid
from datetime import UTC, datetime

from engenho.log import Actor
from engenho.registry import AlreadyExistsError, Registry, RequestContext
from engenho.schema import CATALOGUE

__all__ = ["SYSTEM_ACTOR", "SYSTEM_NAMESPACES", "bootstrap", "ensure_kubernetes_service"]

SYSTEM_ACTOR = Actor("system:apiserver", ("system:masters",))
SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


async def bootstrap(registry: Registry) -> int:
    """Create what is missing; return how many objects were created."""
    namespaces = CATALOGUE.get("", "v1", "namespaces")
    created = 0
    for name in SYSTEM_NAMESPACES:
        if await registry.projections.get("", "namespaces", "", name) is not None:
            continue
        ctx = RequestContext(
            actor=SYSTEM_ACTOR, request_id=f"bootstrap-{uuid.uuid4()}", now=datetime.now(UTC)
        )
        try:
            await registry.create(
                ctx,
                namespaces,
                "",
                {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}},
            )
            created += 1
        except AlreadyExistsError:
            continue
    return created


def _context() -> RequestContext:
    return RequestContext(
        actor=SYSTEM_ACTOR,
        request_id=f"bootstrap-{uuid.uuid4()}",
        now=datetime.now(UTC),
        field_manager="kube-apiserver",
    )


async def ensure_kubernetes_service(registry: Registry, host: str, port: int) -> None:
    """``default/kubernetes``: the first address of the service range, port 443 (``https``)
    forwarding to where the apiserver listens, and Endpoints naming that address."""
    services = CATALOGUE.get("", "v1", "services")
    if await registry.projections.get("", "services", "default", "kubernetes") is None:
        with contextlib.suppress(AlreadyExistsError):
            await registry.create(
                _context(),
                services,
                "default",
                {
                    "apiVersion": "v1",
                    "kind": "Service",
                    "metadata": {
                        "name": "kubernetes",
                        "labels": {"component": "apiserver", "provider": "kubernetes"},
                    },
                    "spec": {
                        "clusterIP": registry.network.kubernetes_service_ip(),
                        "ports": [
                            {"name": "https", "port": 443, "protocol": "TCP", "targetPort": port}
                        ],
                        "sessionAffinity": "None",
                        "type": "ClusterIP",
                    },
                },
            )
    endpoints = CATALOGUE.get("", "v1", "endpoints")
    subsets = [
        {
            "addresses": [{"ip": host}],
            "ports": [{"name": "https", "port": port, "protocol": "TCP"}],
        }
    ]
    current = await registry.projections.get("", "endpoints", "default", "kubernetes")
    body = {
        "apiVersion": "v1",
        "kind": "Endpoints",
        "metadata": {
            "name": "kubernetes",
            "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"},
        },
        "subsets": subsets,
    }
    if current is None:
        await registry.create(_context(), endpoints, "default", body)
    elif current.object.get("subsets") != subsets:
        await registry.update(_context(), endpoints, "default", "kubernetes", body)
    await _ensure_kubernetes_slice(registry, host, port)


async def _ensure_kubernetes_slice(registry: Registry, host: str, port: int) -> None:
    """The EndpointSlice the apiserver keeps beside its Endpoints (the Service has no
    selector, so the EndpointSlice controller leaves it to us, as upstream's does)."""
    slices = CATALOGUE.get("discovery.k8s.io", "v1", "endpointslices")
    family = "IPv6" if ":" in host else "IPv4"
    endpoints = [{"addresses": [host], "conditions": {"ready": True}}]
    ports = [{"name": "https", "port": port, "protocol": "TCP"}]
    body = {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {"name": "kubernetes", "labels": {"kubernetes.io/service-name": "kubernetes"}},
        "addressType": family,
        "endpoints": endpoints,
        "ports": ports,
    }
    current = await registry.projections.get(
        "discovery.k8s.io", "endpointslices", "default", "kubernetes"
    )
    if current is None:
        with contextlib.suppress(AlreadyExistsError):
            await registry.create(_context(), slices, "default", body)
    elif (current.object.get("endpoints"), current.object.get("ports")) != (endpoints, ports):
        await registry.update(_context(), slices, "default", "kubernetes", body)
