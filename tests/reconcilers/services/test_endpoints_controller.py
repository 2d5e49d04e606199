"""The endpoints controller in process, over a real registry: Endpoints follow pod readiness,
named target ports, selector and port changes, terminating pods and publishNotReadyAddresses;
Services without a selector are left alone; Endpoints go with their Service, come back when
deleted, are removed at start when their Service is gone, and are not rewritten on resync."""

from __future__ import annotations

from typing import Any

from engenho.reconcilers import EndpointsController
from engenho.registry import DeleteOptions

from .conftest import Cluster, actor_of, eventually, resync, running, tracked

Endpoints = tracked(EndpointsController)


async def _subsets(cluster: Cluster, name: str, namespace: str = "default") -> Any:
    """(ready addresses, not-ready addresses, ports) per subset, or None when absent."""
    stored = await cluster.get("endpoints", namespace, name)
    if stored is None:
        return None
    return [
        (
            [a["ip"] for a in subset.get("addresses", [])],
            [a["ip"] for a in subset.get("notReadyAddresses", [])],
            [(p.get("name"), p["port"]) for p in subset.get("ports", [])],
        )
        for subset in stored.object.get("subsets", [])
    ]


def _is(cluster: Cluster, name: str, expected: Any) -> Any:
    async def check() -> bool:
        return await _subsets(cluster, name) == expected

    return check


async def test_endpoints_follow_pod_readiness(cluster: Cluster) -> None:
    await cluster.service("web", {"app": "web"}, labels={"team": "a"})
    async with running(cluster, Endpoints) as (controller,):
        await eventually(_is(cluster, "web", []))
        await cluster.running_pod("a", {"app": "web"}, "10.0.0.1", ready=False)
        await cluster.pod("pending", {"app": "web"})  # no IP yet: not listed
        await cluster.running_pod("other", {"app": "db"}, "10.0.0.9")
        await eventually(_is(cluster, "web", [([], ["10.0.0.1"], [("http", 8080)])]))
        await cluster.pod_status("a", "10.0.0.1", True)
        await cluster.running_pod("b", {"app": "web"}, "10.0.0.2")
        await eventually(_is(cluster, "web", [(["10.0.0.1", "10.0.0.2"], [], [("http", 8080)])]))
        await cluster.pod_status("b", "10.0.0.2", False)
        await eventually(_is(cluster, "web", [(["10.0.0.1"], ["10.0.0.2"], [("http", 8080)])]))

        stored = await cluster.get("endpoints", "default", "web")
        assert stored is not None
        meta = stored.object["metadata"]
        assert meta["labels"] == {"team": "a"}, "the Service's labels"
        assert "endpoints.kubernetes.io/last-change-trigger-time" in meta["annotations"]
        (subset,) = stored.object["subsets"]
        pod = await cluster.get("pods", "default", "a")
        assert pod is not None
        assert subset["addresses"][0] == {
            "ip": "10.0.0.1",
            "nodeName": "node-1",
            "targetRef": {"kind": "Pod", "namespace": "default", "name": "a", "uid": pod.uid},
        }
        assert await actor_of(cluster, stored) == (
            "system:serviceaccount:kube-system:endpoint-controller"
        )

        head = cluster.head
        await resync(controller, "default/web")
        assert cluster.head == head, "a resync of converged Endpoints writes nothing"

        await cluster.delete("pods", "default", "a")  # not bound to a running node: removed
        await eventually(_is(cluster, "web", [([], ["10.0.0.2"], [("http", 8080)])]))


async def test_a_named_target_port_resolves_per_pod(cluster: Cluster) -> None:
    ports = [{"name": "http", "port": 80, "targetPort": "web"}]
    await cluster.service("web", {"app": "web"}, ports)
    async with running(cluster, Endpoints):
        for name, ip, port in (("a", "10.0.0.1", 8080), ("b", "10.0.0.2", 9090)):
            await cluster.running_pod(
                name, {"app": "web"}, ip, ports=[{"name": "web", "containerPort": port}]
            )
        await cluster.running_pod("c", {"app": "web"}, "10.0.0.3")  # no port named web
        await eventually(
            _is(
                cluster,
                "web",
                [(["10.0.0.1"], [], [("http", 8080)]), (["10.0.0.2"], [], [("http", 9090)])],
            )
        )


async def test_a_service_without_selector_is_left_alone(cluster: Cluster) -> None:
    await cluster.service("external", None)
    manual = {
        "apiVersion": "v1",
        "kind": "Endpoints",
        "metadata": {"name": "external"},
        "subsets": [{"addresses": [{"ip": "192.0.2.1"}], "ports": [{"port": 80}]}],
    }
    await cluster.create("endpoints", "default", manual)
    kubernetes = await cluster.get("endpoints", "default", "kubernetes")
    async with running(cluster, Endpoints) as (controller,):
        await cluster.running_pod("a", {"app": "web"}, "10.0.0.1")
        head = cluster.head
        await resync(controller, "default/external")
        await resync(controller, "default/kubernetes")
        assert cluster.head == head
        assert await _subsets(cluster, "external") == [(["192.0.2.1"], [], [(None, 80)])]
        assert await cluster.get("endpoints", "default", "kubernetes") == kubernetes


async def test_selector_and_port_changes(cluster: Cluster) -> None:
    service = await cluster.service("web", {"app": "web"})
    async with running(cluster, Endpoints):
        await cluster.running_pod("a", {"app": "web"}, "10.0.0.1")
        await cluster.running_pod("b", {"app": "api"}, "10.0.0.2")
        await eventually(_is(cluster, "web", [(["10.0.0.1"], [], [("http", 8080)])]))
        body = dict(service.object)
        body["spec"] = {
            **body["spec"],
            "selector": {"app": "api"},
            "ports": [{"name": "grpc", "port": 90, "targetPort": 9000, "protocol": "TCP"}],
        }
        await cluster.registry.update(cluster.ctx(), cluster.rt("services"), "default", "web", body)
        await eventually(_is(cluster, "web", [(["10.0.0.2"], [], [("grpc", 9000)])]))
        # A pod relabelled into the Service joins it.
        pod = await cluster.get("pods", "default", "a")
        assert pod is not None
        await cluster.registry.patch(
            cluster.ctx(),
            cluster.rt("pods"),
            "default",
            "a",
            "merge",
            {"metadata": {"labels": {"app": "api"}}},
        )
        await eventually(_is(cluster, "web", [(["10.0.0.1", "10.0.0.2"], [], [("grpc", 9000)])]))


async def test_endpoints_go_with_their_service_and_come_back_while_it_lives(
    cluster: Cluster,
) -> None:
    await cluster.service("web", {"app": "web"})
    await cluster.running_pod("a", {"app": "web"}, "10.0.0.1")
    async with running(cluster, Endpoints):
        expected = [(["10.0.0.1"], [], [("http", 8080)])]
        await eventually(_is(cluster, "web", expected))
        await cluster.delete("endpoints", "default", "web")
        await eventually(_is(cluster, "web", expected))
        await cluster.delete("services", "default", "web")
        await eventually(_is(cluster, "web", None))


async def test_terminating_pods_and_publish_not_ready_addresses(cluster: Cluster) -> None:
    await cluster.service("web", {"app": "web"})
    await cluster.service("peers", {"app": "web"}, clusterIP="None", publishNotReadyAddresses=True)
    await cluster.running_pod("a", {"app": "web"}, "10.0.0.1", finalizers=["example.com/hold"])
    await cluster.running_pod("b", {"app": "web"}, "10.0.0.2", ready=False)
    async with running(cluster, Endpoints):
        await eventually(_is(cluster, "web", [(["10.0.0.1"], ["10.0.0.2"], [("http", 8080)])]))
        await eventually(_is(cluster, "peers", [(["10.0.0.1", "10.0.0.2"], [], [("http", 8080)])]))
        peers = await cluster.get("endpoints", "default", "peers")
        assert peers is not None
        assert peers.object["metadata"]["labels"] == {"service.kubernetes.io/headless": ""}
        await cluster.registry.delete(
            cluster.ctx(),
            cluster.rt("pods"),
            "default",
            "a",
            DeleteOptions(grace_period_seconds=30),
        )
        pod = await cluster.get("pods", "default", "a")
        assert pod is not None and pod.object["metadata"].get("deletionTimestamp")
        await eventually(_is(cluster, "web", [([], ["10.0.0.2"], [("http", 8080)])]))
        # Not-ready and terminating pods are still published where the Service asks for them.
        await eventually(_is(cluster, "peers", [(["10.0.0.1", "10.0.0.2"], [], [("http", 8080)])]))


async def test_leftover_endpoints_are_removed_at_start(cluster: Cluster) -> None:
    def endpoints(name: str, **meta: Any) -> dict[str, Any]:
        return {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": name, **meta}}

    await cluster.create("endpoints", "default", endpoints("orphan"))
    leader = {"control-plane.alpha.kubernetes.io/leader": "{}"}
    await cluster.create("endpoints", "default", endpoints("lock", annotations=leader))
    async with running(cluster, Endpoints):
        await eventually(_is(cluster, "orphan", None))
        # Endpoints created once running are a user's business until a Service comes.
        await cluster.create("endpoints", "default", endpoints("early"))
        await cluster.service("early", None)
        assert await cluster.get("endpoints", "default", "lock") is not None
        assert await cluster.get("endpoints", "default", "early") is not None
