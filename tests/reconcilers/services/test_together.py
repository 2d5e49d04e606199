"""The service controllers together with the garbage collector and the namespace controller in
one ControllerManager, over shared informers: a namespace gets its account and root CA, a
Service its Endpoints and EndpointSlices as its pods come and go, a deleted Service loses both
(the Endpoints by the endpoints controller, the slices by the collector), and a deleted
namespace is emptied and removed without the controllers writing anything new into it."""

from __future__ import annotations

from engenho.reconcilers import (
    EndpointsController,
    EndpointSliceController,
    GarbageCollector,
    NamespaceController,
    ServiceAccountController,
)
from engenho.registry import DeleteOptions

from .conftest import KUBELET, Cluster, eventually, running

CA = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def _with_ca(registry, informers, **options):  # type: ignore[no-untyped-def]
    return ServiceAccountController(registry, informers, ca_pem=CA, **options)


async def test_services_and_namespaces_end_to_end(cluster: Cluster) -> None:
    await cluster.node("node-1", zone="zone-a")
    controllers = (
        EndpointsController,
        EndpointSliceController,
        _with_ca,
        GarbageCollector,
        NamespaceController,
    )
    async with running(cluster, *controllers):
        body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}
        await cluster.create("namespaces", "", body)

        async def provisioned() -> bool:
            account = await cluster.get("serviceaccounts", "shop", "default")
            configmap = await cluster.get("configmaps", "shop", "kube-root-ca.crt")
            return account is not None and configmap is not None

        await eventually(provisioned)

        await cluster.service("cart", {"app": "cart"}, namespace="shop")
        for number in range(3):
            await cluster.running_pod(
                f"cart-{number}",
                {"app": "cart"},
                f"10.0.0.{number + 1}",
                ready=number != 2,
                namespace="shop",
            )

        async def published(ready: list[str], not_ready: list[str]) -> bool:
            endpoints = await cluster.get("endpoints", "shop", "cart")
            slices = await cluster.slices("cart", "shop")
            if endpoints is None or len(slices) != 1:
                return False
            subsets = endpoints.object.get("subsets") or [{}]
            listed = (
                [a["ip"] for a in subsets[0].get("addresses", [])],
                [a["ip"] for a in subsets[0].get("notReadyAddresses", [])],
            )
            in_slice = sorted(
                (e["addresses"][0], e["conditions"]["ready"]) for e in slices[0]["endpoints"]
            )
            wanted = sorted([(ip, True) for ip in ready] + [(ip, False) for ip in not_ready])
            return listed == (ready, not_ready) and in_slice == wanted

        await eventually(lambda: published(["10.0.0.1", "10.0.0.2"], ["10.0.0.3"]))
        await cluster.pod_status("cart-2", "10.0.0.3", True, namespace="shop")
        await cluster.pod_status("cart-0", "10.0.0.1", False, namespace="shop")
        await eventually(lambda: published(["10.0.0.2", "10.0.0.3"], ["10.0.0.1"]))

        await cluster.delete("services", "shop", "cart")

        async def unpublished() -> bool:
            endpoints = await cluster.get("endpoints", "shop", "cart")
            return endpoints is None and await cluster.slices("cart", "shop") == []

        await eventually(unpublished)

        await cluster.delete("namespaces", "", "shop")

        async def kubelet_lets_pods_go() -> bool:
            """Play the kubelet: a terminating pod is removed once its containers stopped."""
            listed = await cluster.registry.list(cluster.rt("pods"), "shop")
            for pod in listed.items:
                if pod.object["metadata"].get("deletionTimestamp"):
                    await cluster.registry.delete(
                        cluster.ctx(KUBELET),
                        cluster.rt("pods"),
                        "shop",
                        pod.name,
                        DeleteOptions(grace_period_seconds=0),
                    )
            return await cluster.get("namespaces", "", "shop") is None

        await eventually(kubelet_lets_pods_go, timeout=20)
        for plural in ("serviceaccounts", "configmaps", "endpoints", "pods"):
            listed = await cluster.registry.list(cluster.rt(plural), "shop")
            assert listed.items == [], f"{plural} left in a removed namespace"
