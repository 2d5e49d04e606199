"""The EndpointSlice controller in process, over a real registry: slices follow pod readiness
and termination with upstream's conditions, carry zones, node names, target references, ports,
labels and an owner reference; more than 100 endpoints are split and a change touches one
slice; selector and port changes; pods wait for their node; slices not managed by the
controller and Services without a selector are left alone; a resync writes nothing; with the
garbage collector running, a deleted Service's slices go with it."""

from __future__ import annotations

import asyncio
from typing import Any

from engenho.reconcilers import EndpointSliceController, GarbageCollector
from engenho.registry import DeleteOptions

from .conftest import Cluster, actor_of, eventually, resync, running, tracked

Slices = tracked(EndpointSliceController)
MANAGED = "endpointslice.kubernetes.io/managed-by"


def _summary(slices: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """Per slice: its ports, and (pod, ready, serving, terminating) per endpoint, sorted."""
    return sorted(
        (
            tuple((p["name"], p["port"]) for p in s["ports"]),
            tuple(
                sorted(
                    (
                        e["targetRef"]["name"],
                        e["conditions"]["ready"],
                        e["conditions"]["serving"],
                        e["conditions"]["terminating"],
                    )
                    for e in s["endpoints"]
                )
            ),
        )
        for s in slices
    )


def _is(cluster: Cluster, service: str, expected: list[tuple[Any, ...]]) -> Any:
    async def check() -> bool:
        return _summary(await cluster.slices(service)) == expected

    return check


HTTP = (("http", 8080),)


async def test_slices_follow_readiness_and_termination(cluster: Cluster) -> None:
    await cluster.node("node-1", zone="zone-a")
    service = await cluster.service("web", {"app": "web"}, labels={"team": "a"})
    async with running(cluster, Slices) as (controller,):
        await eventually(_is(cluster, "web", [((), ())]))  # the placeholder
        await cluster.running_pod("a", {"app": "web"}, "10.0.0.1", finalizers=["example/hold"])
        await cluster.running_pod("b", {"app": "web"}, "10.0.0.2", ready=False)
        await eventually(
            _is(cluster, "web", [(HTTP, (("a", True, True, False), ("b", False, False, False)))])
        )
        (slice_,) = await cluster.slices("web")
        # The time of the pod transitions it publishes (a deletion alone is not one, upstream).
        assert (
            "endpoints.kubernetes.io/last-change-trigger-time"
            in (slice_["metadata"]["annotations"])
        )
        await cluster.registry.delete(
            cluster.ctx(),
            cluster.rt("pods"),
            "default",
            "a",
            DeleteOptions(grace_period_seconds=30),
        )
        await eventually(
            _is(cluster, "web", [(HTTP, (("a", False, True, True), ("b", False, False, False)))])
        )

        (slice_,) = await cluster.slices("web")
        pod = await cluster.get("pods", "default", "a")
        assert pod is not None
        endpoint = next(e for e in slice_["endpoints"] if e["targetRef"]["name"] == "a")
        assert endpoint == {
            "addresses": ["10.0.0.1"],
            "conditions": {"ready": False, "serving": True, "terminating": True},
            "nodeName": "node-1",
            "zone": "zone-a",
            "targetRef": {"kind": "Pod", "namespace": "default", "name": "a", "uid": pod.uid},
        }
        meta = slice_["metadata"]
        assert meta["name"].startswith("web-") and meta["generateName"] == "web-"
        assert meta["labels"] == {
            "team": "a",
            "kubernetes.io/service-name": "web",
            MANAGED: "endpointslice-controller.k8s.io",
        }
        assert meta["ownerReferences"] == [
            {
                "apiVersion": "v1",
                "kind": "Service",
                "name": "web",
                "uid": service.uid,
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ]
        assert slice_["addressType"] == "IPv4"
        assert slice_["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]
        stored = await cluster.get("endpointslices", "default", meta["name"], "discovery.k8s.io")
        assert stored is not None
        assert await actor_of(cluster, stored) == (
            "system:serviceaccount:kube-system:endpointslice-controller"
        )
        head = cluster.head
        await resync(controller, "default/web")
        assert cluster.head == head, "a resync of converged slices writes nothing"


async def test_more_than_a_hundred_endpoints_are_split_and_stay_put(cluster: Cluster) -> None:
    await cluster.node("node-1")
    await cluster.service("web", {"app": "web"})
    async with running(cluster, Slices) as (controller,):
        semaphore = asyncio.Semaphore(16)

        async def start(number: int) -> None:
            async with semaphore:
                ip = f"10.1.{number // 200}.{number % 200 + 1}"
                await cluster.running_pod(f"p{number}", {"app": "web"}, ip)

        await asyncio.gather(*(start(n) for n in range(230)))

        async def split() -> bool:
            sizes = [len(s["endpoints"]) for s in await cluster.slices("web")]
            # How full each slice ends up depends on the order pods arrived in (upstream's
            # assignment fills slices being written anyway first), not only on their number.
            return sum(sizes) == 230 and max(sizes) <= 100 and len(sizes) >= 3

        await eventually(split, timeout=30)
        await resync(controller, "default/web")
        before = {s["metadata"]["name"]: s for s in await cluster.slices("web")}
        placed = {
            e["targetRef"]["name"]: name for name, s in before.items() for e in s["endpoints"]
        }
        await cluster.pod_status("p7", "10.1.0.8", False)

        async def p7_not_ready() -> bool:
            for s in await cluster.slices("web"):
                for e in s["endpoints"]:
                    if e["targetRef"]["name"] == "p7":
                        return e["conditions"]["ready"] is False
            return False

        await eventually(p7_not_ready)
        await resync(controller, "default/web")
        after = {s["metadata"]["name"]: s for s in await cluster.slices("web")}
        assert after.keys() == before.keys()
        changed = [
            name
            for name in after
            if after[name]["metadata"]["resourceVersion"]
            != before[name]["metadata"]["resourceVersion"]
        ]
        assert changed == [placed["p7"]], "one pod's change rewrites only its slice"
        moved = {e["targetRef"]["name"]: n for n, s in after.items() for e in s["endpoints"]}
        assert moved == placed, "no endpoint changed slices"


async def test_selector_and_port_changes(cluster: Cluster) -> None:
    await cluster.node("node-1")
    service = await cluster.service("web", {"app": "web"})
    async with running(cluster, Slices):
        await cluster.running_pod(
            "a", {"app": "web"}, "10.0.0.1", ports=[{"name": "grpc", "containerPort": 9000}]
        )
        await cluster.running_pod(
            "b", {"app": "api"}, "10.0.0.2", ports=[{"name": "grpc", "containerPort": 9001}]
        )
        await cluster.running_pod("c", {"app": "api"}, "10.0.0.3")
        await eventually(_is(cluster, "web", [(HTTP, (("a", True, True, False),))]))
        body = dict(service.object)
        body["spec"] = {
            **body["spec"],
            "selector": {"app": "api"},
            "ports": [{"name": "rpc", "port": 90, "targetPort": "grpc", "protocol": "TCP"}],
        }
        await cluster.registry.update(cluster.ctx(), cluster.rt("services"), "default", "web", body)
        # c has no port named grpc: it stands in a slice of its own, without ports.
        await eventually(
            _is(
                cluster,
                "web",
                [
                    ((), (("c", True, True, False),)),
                    ((("rpc", 9001),), (("b", True, True, False),)),
                ],
            )
        )


async def test_pods_on_an_unknown_node_wait_for_it(cluster: Cluster) -> None:
    await cluster.service("web", {"app": "web"})
    await cluster.service("peers", {"app": "web"}, clusterIP="None", publishNotReadyAddresses=True)
    await cluster.running_pod("a", {"app": "web"}, "10.0.0.1", node="node-7")
    async with running(cluster, Slices) as (controller,):
        # Published anyway where the Service asks for every address.
        await eventually(_is(cluster, "peers", [(HTTP, (("a", True, True, False),))]))
        await eventually(_is(cluster, "web", [((), ())]))
        head = cluster.head
        await resync(controller, "default/web")
        assert cluster.head == head, "the placeholder is not written again"
        await cluster.node("node-7", zone="zone-b")
        await eventually(_is(cluster, "web", [(HTTP, (("a", True, True, False),))]))
        (slice_,) = await cluster.slices("web")
        assert slice_["endpoints"][0]["zone"] == "zone-b"


async def test_other_slices_and_services_without_selector_are_left_alone(
    cluster: Cluster,
) -> None:
    await cluster.node("node-1")
    await cluster.service("web", {"app": "web"})
    await cluster.service("external", None)
    mine = {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": "web-by-hand",
            "labels": {"kubernetes.io/service-name": "web", MANAGED: "someone-else"},
        },
        "addressType": "IPv4",
        "endpoints": [{"addresses": ["192.0.2.1"]}],
        "ports": [{"name": "http", "port": 80, "protocol": "TCP"}],
    }
    hand = await cluster.create("endpointslices", "default", mine, "discovery.k8s.io")
    async with running(cluster, Slices) as (controller,):
        await cluster.running_pod("a", {"app": "web"}, "10.0.0.1")

        async def managed() -> bool:
            slices = await cluster.slices("web")
            return any(s["metadata"]["labels"][MANAGED] != "someone-else" for s in slices)

        await eventually(managed)
        await resync(controller, "default/external")
        assert await cluster.slices("external") == []
        still = await cluster.get("endpointslices", "default", "web-by-hand", "discovery.k8s.io")
        assert still is not None and still.resource_version == hand.resource_version


async def test_a_deleted_services_slices_go_with_the_garbage_collector(
    cluster: Cluster,
) -> None:
    await cluster.node("node-1")
    await cluster.service("web", {"app": "web"})
    for number in range(3):
        await cluster.running_pod(f"p{number}", {"app": "web"}, f"10.0.0.{number + 1}")
    async with running(cluster, Slices, GarbageCollector):
        await eventually(
            _is(cluster, "web", [(HTTP, tuple((f"p{n}", True, True, False) for n in range(3)))])
        )
        await cluster.delete("services", "default", "web")
        await eventually(_is(cluster, "web", []))
        # A Service of the same name gets slices of its own again.
        await cluster.service("web", {"app": "web"})
        await eventually(
            _is(cluster, "web", [(HTTP, tuple((f"p{n}", True, True, False) for n in range(3)))])
        )
        service = await cluster.get("services", "default", "web")
        assert service is not None
        for slice_ in await cluster.slices("web"):
            assert slice_["metadata"]["ownerReferences"][0]["uid"] == service.uid
