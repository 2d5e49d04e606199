"""The pod and Service rules the service controllers share: readiness, which pods belong in
endpoints, named port resolution, hostnames, address families, the pod -> Services index and
which pod changes concern which Services, and the last-change trigger time."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import orjson

from engenho.projections import StoredObject
from engenho.reconcilers import InformerFactory
from engenho.reconcilers.podutil import (
    TriggerTimes,
    find_port,
    format_trigger_time,
    index_pods,
    index_services,
    is_pod_ready,
    pod_ips,
    selected_pods,
    service_ip_families,
    services_selecting,
    services_to_sync,
    should_be_in_endpoints,
    should_set_hostname,
)
from engenho.schema import CATALOGUE

from .conftest import Cluster


def _pod(**parts: Any) -> dict[str, Any]:
    meta = {"name": "p", "namespace": "default", "uid": "u1", **parts.pop("metadata", {})}
    return {"metadata": meta, "spec": parts.pop("spec", {}), "status": parts.pop("status", {})}


def _ready(status: str = "True", **extra: Any) -> dict[str, Any]:
    return {"conditions": [{"type": "Ready", "status": status}], "podIP": "10.0.0.1", **extra}


def test_readiness_is_the_ready_condition() -> None:
    assert is_pod_ready(_pod(status=_ready()))
    assert not is_pod_ready(_pod(status=_ready("False")))
    assert not is_pod_ready(_pod(status={"conditions": [{"type": "ContainersReady"}]}))
    # Terminating does not change readiness (EndpointSlices call it serving).
    assert is_pod_ready(_pod(status=_ready(), metadata={"deletionTimestamp": "x"}))


def test_pod_ips_prefer_the_list_and_fall_back_to_pod_ip() -> None:
    both = {"podIP": "10.0.0.1", "podIPs": [{"ip": "10.0.0.1"}, {"ip": "fd00::1"}]}
    assert pod_ips(_pod(status=both)) == ["10.0.0.1", "fd00::1"]
    assert pod_ips(_pod(status={"podIP": "10.0.0.2"})) == ["10.0.0.2"]
    assert pod_ips(_pod()) == []


def test_which_pods_belong_in_endpoints() -> None:
    assert should_be_in_endpoints(_pod(status=_ready()), include_terminating=False)
    assert not should_be_in_endpoints(_pod(status={}), include_terminating=True), "no IP"
    for phase in ("Succeeded", "Failed"):
        finished = _pod(status=_ready(phase=phase))
        assert not should_be_in_endpoints(finished, include_terminating=True)
    going = _pod(status=_ready(), metadata={"deletionTimestamp": "2024-01-01T00:00:00Z"})
    assert not should_be_in_endpoints(going, include_terminating=False)
    assert should_be_in_endpoints(going, include_terminating=True)


def test_named_ports_resolve_per_pod() -> None:
    pod = _pod(
        spec={
            "containers": [
                {"name": "a", "ports": [{"name": "http", "containerPort": 8080}]},
                {"name": "b", "ports": [{"name": "dns", "containerPort": 53, "protocol": "UDP"}]},
            ],
            "initContainers": [
                {
                    "name": "side",
                    "restartPolicy": "Always",
                    "ports": [{"name": "metrics", "containerPort": 9090}],
                },
                {"name": "init", "ports": [{"name": "once", "containerPort": 1}]},
            ],
        }
    )
    assert find_port(pod, {"port": 80, "targetPort": 9376}) == 9376
    assert find_port(pod, {"port": 80}) == 80, "targetPort defaults to port"
    assert find_port(pod, {"port": 80, "targetPort": "http", "protocol": "TCP"}) == 8080
    assert find_port(pod, {"port": 53, "targetPort": "dns", "protocol": "UDP"}) == 53
    assert find_port(pod, {"port": 53, "targetPort": "dns", "protocol": "TCP"}) is None
    assert find_port(pod, {"port": 1, "targetPort": "metrics"}) == 9090, "sidecars count"
    assert find_port(pod, {"port": 1, "targetPort": "once"}) is None, "plain init containers not"
    assert find_port(pod, {"port": 1, "targetPort": "nope"}) is None


def test_hostname_only_for_the_pods_subdomain() -> None:
    service = {"metadata": {"name": "web", "namespace": "default"}}
    pod = _pod(spec={"hostname": "web-0", "subdomain": "web"})
    assert should_set_hostname(pod, service)
    assert not should_set_hostname(_pod(spec={"hostname": "web-0", "subdomain": "db"}), service)
    assert not should_set_hostname(_pod(spec={"subdomain": "web"}), service)
    other = {"metadata": {"name": "web", "namespace": "elsewhere"}}
    assert not should_set_hostname(pod, other)


def test_service_families() -> None:
    assert service_ip_families({"spec": {"ipFamilies": ["IPv6", "IPv4"]}}, "IPv4") == [
        "IPv6",
        "IPv4",
    ]
    assert service_ip_families({"spec": {"clusterIP": "fd00::10"}}, "IPv4") == ["IPv6"]
    assert service_ip_families({"spec": {"clusterIP": "10.96.0.10"}}, "IPv6") == ["IPv4"]
    assert service_ip_families({"spec": {"clusterIP": "None"}}, "IPv4") == ["IPv4"]


def test_trigger_time_is_creation_first_then_the_earliest_new_transition() -> None:
    times = TriggerTimes()
    service = {"metadata": {"creationTimestamp": "2024-01-01T00:00:00Z"}}

    def pod(name: str, at: str) -> dict[str, Any]:
        condition = {"type": "Ready", "status": "True", "lastTransitionTime": at}
        return {"metadata": {"name": name}, "status": {"conditions": [condition]}}

    first = times.compute("ns/s", service, [pod("a", "2024-01-01T00:00:05Z")])
    assert first == datetime(2024, 1, 1, tzinfo=UTC)
    assert times.compute("ns/s", service, [pod("a", "2024-01-01T00:00:05Z")]) is None
    moved = [pod("a", "2024-01-01T00:00:09Z"), pod("b", "2024-01-01T00:00:07Z")]
    assert times.compute("ns/s", service, moved) == datetime(2024, 1, 1, 0, 0, 7, tzinfo=UTC)
    times.forget("ns/s")
    assert times.compute("ns/s", service, moved) == datetime(2024, 1, 1, tzinfo=UTC)


def test_trigger_time_format_is_rfc3339_nano() -> None:
    assert format_trigger_time(datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)) == "2024-01-02T03:04:05Z"
    moment = datetime(2024, 1, 2, 3, 4, 5, 120000, tzinfo=UTC)
    assert format_trigger_time(moment) == "2024-01-02T03:04:05.12Z"


async def test_pods_reach_the_services_selecting_them_through_the_index(
    cluster: Cluster,
) -> None:
    await cluster.service("web", {"app": "web"})
    await cluster.service("web-canary", {"app": "web", "track": "canary"})
    await cluster.service("db", {"app": "db"})
    await cluster.service("manual", None)
    await cluster.create(
        "namespaces", "", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "b"}}
    )
    await cluster.service("web", {"app": "web"}, namespace="b")
    canary = await cluster.pod("c1", {"app": "web", "track": "canary"})
    stable = await cluster.pod("s1", {"app": "web", "track": "stable"})
    await cluster.pod("d1", {"app": "db"})
    factory = InformerFactory(cluster.registry)
    services = factory.get(CATALOGUE.get("", "v1", "services"))
    pods = factory.get(CATALOGUE.get("", "v1", "pods"))
    index_services(services)
    index_pods(pods)
    running = asyncio.create_task(factory.run(), name="informers-under-test")
    try:
        await factory.wait_synced()
        labels = {"app": "web", "track": "canary"}
        assert services_selecting(services, "default", labels) == {
            "default/web",
            "default/web-canary",
        }
        assert services_selecting(services, "b", labels) == {"b/web"}
        names = {p["metadata"]["name"] for p in selected_pods(pods, "default", {"app": "web"})}
        assert names == {"c1", "s1"}
        assert [p["metadata"]["name"] for p in selected_pods(pods, "default", labels)] == ["c1"]

        # Only Services that gained or lost the pod care about a label change alone.
        relabelled = _version(canary, labels={"app": "web", "track": "stable"})
        assert services_to_sync(services, canary, relabelled) == {"default/web-canary"}
        # A status change that endpoints show concerns every Service of the pod.
        became_ready = _version(stable, status=_ready())
        assert services_to_sync(services, stable, became_ready) == {"default/web"}
        # One they do not show concerns none.
        annotated = _version(stable, annotations={"a": "b"})
        assert services_to_sync(services, stable, annotated) == set()
        assert services_to_sync(services, None, canary) == {"default/web", "default/web-canary"}
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)


def _version(stored: StoredObject, **changes: Any) -> StoredObject:
    """Another version of a stored pod (a later resourceVersion) with some fields changed."""
    obj = dict(stored.object)
    meta = dict(obj["metadata"])
    for field in ("labels", "annotations"):
        if field in changes:
            meta[field] = changes[field]
    obj["metadata"] = meta
    if "status" in changes:
        obj["status"] = changes["status"]
    return StoredObject(
        group=stored.group,
        resource=stored.resource,
        namespace=stored.namespace,
        name=stored.name,
        uid=stored.uid,
        resource_version=stored.resource_version + 1,
        data=orjson.dumps(obj),
    )
