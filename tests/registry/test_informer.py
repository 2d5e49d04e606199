"""The informer: it lists, follows the watch, keeps indexes, calls handlers for adds,
updates and deletes, and ends up equal to the registry's state."""

from __future__ import annotations

import asyncio

from engenho.reconcilers import Informer

from .conftest import Cluster, configmap


async def test_informer_follows_and_indexes(cluster: Cluster) -> None:
    rt = cluster.rt("configmaps")
    await cluster.registry.create(
        cluster.ctx(),
        rt,
        "default",
        configmap("before", metadata={"name": "before", "labels": {"tier": "a"}}),
    )
    informer = Informer(cluster.registry, rt)
    informer.add_index("tier", lambda o: [o.object["metadata"].get("labels", {}).get("tier", "")])
    seen: list[tuple[str, str]] = []
    informer.add_handler(lambda event, old, new: seen.append((event, (new or old).name)))  # type: ignore[union-attr]
    running = asyncio.create_task(informer.run())
    try:
        await asyncio.wait_for(informer.synced.wait(), 5)
        await cluster.registry.create(
            cluster.ctx(),
            rt,
            "default",
            configmap("after", metadata={"name": "after", "labels": {"tier": "b"}}),
        )
        await cluster.registry.patch(
            cluster.ctx(), rt, "default", "before", "merge", {"metadata": {"labels": {"tier": "b"}}}
        )
        await cluster.registry.delete(cluster.ctx(), rt, "default", "after")
        for _ in range(100):
            if len(seen) >= 4:
                break
            await asyncio.sleep(0.02)
        assert seen == [
            ("ADDED", "before"),
            ("ADDED", "after"),
            ("MODIFIED", "before"),
            ("DELETED", "after"),
        ]
        assert [o.name for o in informer.by_index("tier", "b")] == ["before"]
        assert informer.by_index("tier", "a") == []
        assert (
            informer.get("default", "before") is not None
            and informer.get("default", "after") is None
        )
        assert informer.resource_version == cluster.head
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
