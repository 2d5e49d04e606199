"""ClusterIP and NodePort allocation: decided before proposing, held as claims, refused at
apply when another object holds them, released on delete, kept across updates."""

from __future__ import annotations

import asyncio
import copy
import ipaddress
from datetime import UTC, datetime
from typing import Any

import pytest

from engenho.log import Precondition, ResourceCommand, ResourceKey, Verb
from engenho.registry import InvalidError

from .conftest import ADMIN, Cluster


def service(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {"ports": [{"port": 80}], "selector": {"app": name}, **spec},
    }


async def test_cluster_ips_are_allocated_uniquely_under_concurrency(cluster: Cluster) -> None:
    rt = cluster.rt("services")
    made = await asyncio.gather(
        *(
            cluster.registry.create(cluster.ctx(), rt, "default", service(f"s{i}"))
            for i in range(40)
        )
    )
    ips = [s.object["spec"]["clusterIP"] for s in made]
    assert len(set(ips)) == 40
    network = ipaddress.ip_network(cluster.registry.network.service_cidr)
    assert all(ipaddress.ip_address(ip) in network for ip in ips)
    assert all(s.object["spec"]["clusterIPs"] == [s.object["spec"]["clusterIP"]] for s in made)
    assert set(cluster.projections.claims("services/clusterIP/")) == {
        f"services/clusterIP/{ip}" for ip in ips
    }


async def test_a_requested_ip_that_is_taken_is_refused(cluster: Cluster) -> None:
    rt = cluster.rt("services")
    await cluster.registry.create(
        cluster.ctx(), rt, "default", service("first", clusterIP="10.96.0.50")
    )
    head = cluster.head
    with pytest.raises(InvalidError, match="provided IP is already allocated"):
        await cluster.registry.create(
            cluster.ctx(), rt, "default", service("second", clusterIP="10.96.0.50")
        )
    with pytest.raises(InvalidError, match="is not in the valid range"):
        await cluster.registry.create(
            cluster.ctx(), rt, "default", service("third", clusterIP="192.168.1.1")
        )
    assert cluster.head == head
    await cluster.registry.delete(cluster.ctx(), rt, "default", "first")
    reused = await cluster.registry.create(
        cluster.ctx(), rt, "default", service("second", clusterIP="10.96.0.50")
    )
    assert reused.object["spec"]["clusterIP"] == "10.96.0.50", "a delete releases the address"


async def test_headless_and_external_name_services_hold_no_address(cluster: Cluster) -> None:
    rt = cluster.rt("services")
    headless = await cluster.registry.create(
        cluster.ctx(), rt, "default", service("h", clusterIP="None")
    )
    assert headless.object["spec"]["clusterIP"] == "None" and headless.claims == ()
    external = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "e"},
        "spec": {"type": "ExternalName", "externalName": "example.com"},
    }
    stored = await cluster.registry.create(cluster.ctx(), rt, "default", external)
    assert "clusterIP" not in stored.object["spec"] and stored.claims == ()


async def test_node_ports(cluster: Cluster) -> None:
    rt = cluster.rt("services")
    made = await cluster.registry.create(
        cluster.ctx(),
        rt,
        "default",
        service(
            "np", type="NodePort", ports=[{"port": 80, "name": "web"}, {"port": 443, "name": "tls"}]
        ),
    )
    ports = [p["nodePort"] for p in made.object["spec"]["ports"]]
    assert len(set(ports)) == 2 and all(30000 <= p <= 32767 for p in ports)
    with pytest.raises(InvalidError, match="provided port is already allocated"):
        await cluster.registry.create(
            cluster.ctx(),
            rt,
            "default",
            service("np2", type="NodePort", ports=[{"port": 80, "nodePort": ports[0]}]),
        )
    body = copy.deepcopy(made.object)
    for port in body["spec"]["ports"]:
        del port["nodePort"]
    body["metadata"]["labels"] = {"touched": "yes"}
    updated, _ = await cluster.registry.update(cluster.ctx(), rt, "default", "np", body)
    assert [p["nodePort"] for p in updated.object["spec"]["ports"]] == ports, "kept across updates"
    assert set(updated.claims) == {
        f"services/clusterIP/{made.object['spec']['clusterIP']}",
        *(f"services/nodePort/{p}" for p in ports),
    }


async def test_apply_refuses_a_claim_another_object_holds(cluster: Cluster) -> None:
    """Two proposers that drew the same address: the apply step lets only the first win."""
    rt = cluster.rt("services")
    await cluster.registry.create(
        cluster.ctx(), rt, "default", service("holder", clusterIP="10.96.0.77")
    )

    def raw(name: str) -> ResourceCommand:
        obj = service(name, clusterIP="10.96.0.77", clusterIPs=["10.96.0.77"])
        obj["metadata"].update(namespace="default", uid=f"uid-{name}")
        return ResourceCommand(
            verb=Verb.CREATE,
            key=ResourceKey("", "v1", "services", "default", name),
            uid=f"uid-{name}",
            object=obj,
            precondition=Precondition(must_not_exist=True),
            actor=ADMIN,
            request_id="race",
            time=datetime.now(UTC),
            claims=("services/clusterIP/10.96.0.77",),
        )

    entries = await cluster.registry.writer._proposer.propose([raw("racer")])
    outcome = await cluster.projections.wait_outcome(entries[0].index)
    assert not outcome.applied and outcome.reason == "Claimed"
    assert await cluster.projections.get("", "services", "default", "racer") is None
