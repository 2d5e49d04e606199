"""Node IPAM in process: every node gets the lowest free block, two allocators racing over
many concurrently registered nodes never hand out one block twice (the claim makes the loser
choose again), an exhausted range leaves a node without one and says so until a block is
freed, and the write path refuses pod CIDRs that are malformed, collide or change."""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from engenho.log import Actor
from engenho.reconcilers import ControllerManager, NodeIpamController
from engenho.registry import InvalidError, NetworkSettings

from .conftest import NODES, Cluster, eventually, open_cluster


def ipam(**options: Any) -> Callable[[ControllerManager], NodeIpamController]:
    def build(manager: ControllerManager) -> NodeIpamController:
        return NodeIpamController(manager.registry, manager.informers, **options)

    return build


async def cidr_of(cluster: Cluster, name: str) -> str | None:
    stored = await cluster.node(name)
    spec = stored.object.get("spec", {}) if stored is not None else {}
    assert spec.get("podCIDRs", [spec.get("podCIDR")])[0] == spec.get("podCIDR")
    return spec.get("podCIDR")


async def test_two_allocators_racing_over_many_nodes_never_share_a_block(
    cluster: Cluster,
) -> None:
    before = cluster.log.last_index
    cluster.run(ipam())
    second = ControllerManager(cluster.registry)
    second.add(NodeIpamController(cluster.registry, second.informers))
    second.start()
    try:
        names = [f"node-{i:02d}" for i in range(40)]
        await asyncio.gather(*(cluster.register(n, lease=False) for n in names))

        async def all_allocated() -> bool:
            return all([await cidr_of(cluster, n) for n in names])

        await eventually(all_allocated, timeout=30)
    finally:
        await second.stop()
    cidrs = [str(await cidr_of(cluster, n)) for n in names]
    # Lowest free first, whoever won each race: exactly the first forty /24s.
    assert sorted(cidrs, key=lambda c: ipaddress.ip_network(c).network_address) == [
        f"10.42.{i}.0/24" for i in range(40)
    ]
    assert set(cluster.projections.claims("nodes/podCIDR/")) == {
        f"nodes/podCIDR/{c}" for c in cidrs
    }
    outcomes = [
        await cluster.projections.wait_outcome(index)
        for index in range(before + 1, cluster.log.last_index + 1)
    ]
    assert any(o.reason == "Claimed" for o in outcomes), "the allocators did race"


async def test_a_lost_race_is_refused_by_the_claim_and_chosen_again(cluster: Cluster) -> None:
    """Two allocators decide from the same state, so both choose 10.42.0.0/24; the apply
    step refuses the second command (Claimed) and its allocator takes the next block."""
    manager = ControllerManager(cluster.registry)
    first = NodeIpamController(cluster.registry, manager.informers)
    second = NodeIpamController(cluster.registry, ControllerManager(cluster.registry).informers)
    await cluster.register("a", lease=False)
    await cluster.register("b", lease=False)
    before = cluster.log.last_index
    await asyncio.gather(first.reconcile("a"), second.reconcile("b"))
    assert {await cidr_of(cluster, "a"), await cidr_of(cluster, "b")} == {
        "10.42.0.0/24",
        "10.42.1.0/24",
    }
    outcomes = [
        await cluster.projections.wait_outcome(index)
        for index in range(before + 1, cluster.log.last_index + 1)
    ]
    assert [o.reason for o in outcomes if not o.applied] == ["Claimed"]


async def test_exhausted_range_leaves_the_node_without_until_one_is_freed(
    tmp_path: Path,
) -> None:
    cluster = await open_cluster(tmp_path, NetworkSettings(cluster_cidr="10.42.0.0/23"))
    try:
        cluster.run(ipam(retry_after=60.0))
        for name in ("first", "second"):
            await cluster.register(name, lease=False)
        await eventually(lambda: _allocated(cluster, "first", "second"))
        await cluster.register("third", lease=False)

        async def reported() -> bool:
            events = await cluster.events("CIDRNotAvailable")
            return any(
                e["message"] == "Node third status is now: CIDRNotAvailable"
                and e["involvedObject"]
                == {"apiVersion": "v1", "kind": "Node", "name": "third", "uid": "third"}
                for e in events
            )

        await eventually(reported)
        assert await cidr_of(cluster, "third") is None
        freed = await cidr_of(cluster, "first")
        await cluster.registry.delete(cluster.ctx(), NODES, "", "first")
        await eventually(lambda: _allocated(cluster, "third"))
        assert await cidr_of(cluster, "third") == freed
    finally:
        await cluster.close()
        await cluster.projections.close()
        await cluster.log.close()


async def _allocated(cluster: Cluster, *names: str) -> bool:
    return all([await cidr_of(cluster, n) for n in names])


async def test_mask_size_and_range_are_configurable(cluster: Cluster) -> None:
    cluster.run(ipam(cluster_cidr="10.200.0.0/16", node_cidr_mask_size=26))
    await cluster.register("small", lease=False)
    await eventually(lambda: _allocated(cluster, "small"))
    assert await cidr_of(cluster, "small") == "10.200.0.0/26"
    with pytest.raises(ValueError, match="does not fit"):
        NodeIpamController(cluster.registry, cluster_cidr="10.0.0.0/24", node_cidr_mask_size=16)


async def test_a_node_that_has_a_cidr_keeps_it(cluster: Cluster) -> None:
    await cluster.register("preset", lease=False, podCIDR="10.42.7.0/24")
    cluster.run(ipam())
    await cluster.register("fresh", lease=False)
    await eventually(lambda: _allocated(cluster, "fresh"))
    assert await cidr_of(cluster, "preset") == "10.42.7.0/24"
    assert await cidr_of(cluster, "fresh") == "10.42.0.0/24"


# ---------------------------------------------------------------------------- the write path


async def test_write_path_refuses_colliding_malformed_and_changed_cidrs(cluster: Cluster) -> None:
    held = await cluster.register("holder", lease=False, podCIDR="10.42.5.0/24")
    assert held.object["spec"]["podCIDRs"] == ["10.42.5.0/24"], "kept in step"
    assert held.claims == ("nodes/podCIDR/10.42.5.0/24",)
    with pytest.raises(InvalidError) as same:
        await cluster.register("twin", lease=False, podCIDRs=["10.42.5.0/24"])
    assert str(same.value) == (
        'Node "twin" is invalid: spec.podCIDRs[0]: Invalid value: "10.42.5.0/24": provided CIDR '
        "is already allocated"
    )
    with pytest.raises(InvalidError, match=r"overlaps 10\.42\.5\.0/24"):
        await cluster.register("wide", lease=False, podCIDR="10.42.4.0/23")
    with pytest.raises(InvalidError, match="must be a valid CIDR value"):
        await cluster.register("bad", lease=False, podCIDR="10.42.300.0/24")
    with pytest.raises(InvalidError, match="no more than one CIDR for each IP family"):
        await cluster.register("two", lease=False, podCIDRs=["10.42.8.0/24", "10.42.9.0/24"])
    assert await cluster.node("twin") is None
    await cluster.register("late", lease=False)
    with pytest.raises(InvalidError, match="provided CIDR is already allocated"):
        await cluster.registry.patch(
            cluster.ctx(), NODES, "", "late", "merge", {"spec": {"podCIDR": "10.42.5.0/24"}}
        )
    with pytest.raises(InvalidError) as changed:
        await cluster.registry.patch(
            cluster.ctx(),
            NODES,
            "",
            "holder",
            "merge",
            {"spec": {"podCIDR": "10.42.6.0/24", "podCIDRs": None}},
        )
    assert 'node updates may not change podCIDR except from "" to valid' in str(changed.value)
    # Status writes and other changes leave the CIDR (and its claim) alone.
    await cluster.post("holder", "True")
    await cluster.registry.patch(
        cluster.ctx(), NODES, "", "holder", "merge", {"metadata": {"labels": {"a": "b"}}}
    )
    assert set(cluster.projections.claims("nodes/podCIDR/")) == {"nodes/podCIDR/10.42.5.0/24"}
    # A deleted node releases its block.
    await cluster.registry.delete(cluster.ctx(), NODES, "", "holder")
    await cluster.register("twin", lease=False, podCIDRs=["10.42.5.0/24"])


async def test_identity_is_the_node_controller() -> None:
    assert NodeIpamController.identity == Actor(
        "system:serviceaccount:kube-system:node-controller",
        ("system:serviceaccounts", "system:serviceaccounts:kube-system", "system:authenticated"),
    )
