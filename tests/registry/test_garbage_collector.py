"""The garbage collector in process: background deletion of dangling dependents, dropping dead
references while a live owner remains, foreground deletion held by blocking dependents, orphan
deletion, and an owner replaced by another object of the same name."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from engenho.reconcilers import GarbageCollector
from engenho.registry import DeleteOptions

from .conftest import Cluster, configmap


@pytest.fixture
async def collected(cluster: Cluster) -> AsyncIterator[Cluster]:
    collector = GarbageCollector(cluster.registry, retry_after=0.05)
    running = asyncio.create_task(collector.run(), name="gc-under-test")
    yield cluster
    running.cancel()
    await asyncio.gather(running, return_exceptions=True)


async def _eventually(check: Callable[[], Awaitable[bool]], timeout: float = 5) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "condition never held"
        await asyncio.sleep(0.02)


async def _owner(cluster: Cluster, name: str) -> str:
    stored = await cluster.registry.create(
        cluster.ctx(), cluster.rt("configmaps"), "default", configmap(name)
    )
    return stored.uid


async def _dependent(
    cluster: Cluster, name: str, *owners: tuple[str, str], block: bool = False
) -> None:
    refs = [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "name": n,
            "uid": uid,
            "blockOwnerDeletion": block,
        }
        for n, uid in owners
    ]
    body = configmap(name, metadata={"name": name, "ownerReferences": refs})
    await cluster.registry.create(cluster.ctx(), cluster.rt("configmaps"), "default", body)


async def _gone(cluster: Cluster, name: str) -> bool:
    return await cluster.projections.get("", "configmaps", "default", name) is None


async def test_background_deletes_dependents_of_a_deleted_owner(collected: Cluster) -> None:
    cluster = collected
    uid = await _owner(cluster, "owner")
    await _dependent(cluster, "child", ("owner", uid))
    await cluster.registry.delete(cluster.ctx(), cluster.rt("configmaps"), "default", "owner")
    await _eventually(lambda: _gone(cluster, "child"))


async def test_dead_references_are_dropped_while_a_live_owner_remains(collected: Cluster) -> None:
    cluster = collected
    live = await _owner(cluster, "live")
    dead = await _owner(cluster, "dead")
    await _dependent(cluster, "shared", ("live", live), ("dead", dead))
    await cluster.registry.delete(cluster.ctx(), cluster.rt("configmaps"), "default", "dead")

    async def only_live() -> bool:
        stored = await cluster.projections.get("", "configmaps", "default", "shared")
        refs = stored.object["metadata"].get("ownerReferences", []) if stored else []
        return [r["name"] for r in refs] == ["live"]

    await _eventually(only_live)


async def test_foreground_waits_for_blocking_dependents(collected: Cluster) -> None:
    cluster = collected
    uid = await _owner(cluster, "parent")
    await _dependent(cluster, "kid-1", ("parent", uid), block=True)
    held = configmap(
        "kid-2",
        metadata={
            "name": "kid-2",
            "finalizers": ["example.com/hold"],
            "ownerReferences": [
                {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "name": "parent",
                    "uid": uid,
                    "blockOwnerDeletion": True,
                }
            ],
        },
    )
    rt = cluster.rt("configmaps")
    await cluster.registry.create(cluster.ctx(), rt, "default", held)
    await cluster.registry.delete(
        cluster.ctx(), rt, "default", "parent", DeleteOptions(propagation_policy="Foreground")
    )
    await _eventually(lambda: _gone(cluster, "kid-1"))
    await asyncio.sleep(0.2)
    assert not await _gone(cluster, "parent"), "kid-2 still blocks its owner"
    kid = await cluster.registry.get(rt, "default", "kid-2")
    body = dict(kid.object)
    body["metadata"] = {**body["metadata"], "finalizers": []}
    await cluster.registry.update(cluster.ctx(), rt, "default", "kid-2", body)
    await _eventually(lambda: _gone(cluster, "parent"))


async def test_orphan_keeps_dependents_and_drops_references(collected: Cluster) -> None:
    cluster = collected
    uid = await _owner(cluster, "boss")
    await _dependent(cluster, "worker", ("boss", uid))
    await cluster.registry.delete(
        cluster.ctx(),
        cluster.rt("configmaps"),
        "default",
        "boss",
        DeleteOptions(propagation_policy="Orphan"),
    )
    await _eventually(lambda: _gone(cluster, "boss"))
    worker = await cluster.projections.get("", "configmaps", "default", "worker")
    assert worker is not None and "ownerReferences" not in worker.object["metadata"]


async def test_an_owner_replaced_by_a_namesake_does_not_keep_dependents(collected: Cluster) -> None:
    cluster = collected
    uid = await _owner(cluster, "phoenix")
    rt = cluster.rt("configmaps")
    await cluster.registry.delete(cluster.ctx(), rt, "default", "phoenix")
    await _owner(cluster, "phoenix")  # same name, new uid
    await _dependent(cluster, "stale", ("phoenix", uid))
    await _eventually(lambda: _gone(cluster, "stale"))
