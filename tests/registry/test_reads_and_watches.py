"""The registry's reads and watches in process: resourceVersion semantics, consistent paging,
tamper-evident continue tokens, 410 after compaction, 504 for a future resourceVersion, watch
starts, selector transitions, bookmarks, sendInitialEvents and the namespace controller."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator

import pytest

from engenho.reconcilers import NamespaceController
from engenho.registry import (
    BadRequestError,
    ExpiredError,
    GatewayTimeoutError,
    ListQuery,
    WatchEvent,
    WatchQuery,
)

from .conftest import Cluster, configmap


async def _fill(cluster: Cluster, count: int, namespace: str = "default") -> None:
    for i in range(count):
        await cluster.registry.create(
            cluster.ctx(),
            cluster.rt("configmaps"),
            namespace,
            configmap(
                f"cm-{i:02d}",
                metadata={
                    "name": f"cm-{i:02d}",
                    "labels": {"parity": "even" if i % 2 == 0 else "odd"},
                },
            ),
        )


async def test_paging_is_a_snapshot_and_tokens_are_checked(cluster: Cluster) -> None:
    rt = cluster.rt("configmaps")
    await _fill(cluster, 12)
    first = await cluster.registry.list(rt, "default", ListQuery(limit=5))
    assert [o.name for o in first.items] == [f"cm-{i:02d}" for i in range(5)]
    assert first.remaining_item_count == 7
    await cluster.registry.delete(cluster.ctx(), rt, "default", "cm-07")
    await cluster.registry.create(cluster.ctx(), rt, "default", configmap("cm-99"))
    names = [o.name for o in first.items]
    token = first.continue_token
    while token:
        page = await cluster.registry.list(rt, "default", ListQuery(limit=5, continue_token=token))
        assert page.resource_version == first.resource_version
        names += [o.name for o in page.items]
        token = page.continue_token
    assert names == [f"cm-{i:02d}" for i in range(12)]
    tampered = first.continue_token[:-2] + (
        "AA" if not first.continue_token.endswith("AA") else "BB"
    )
    with pytest.raises(BadRequestError, match="continue key is not valid"):
        await cluster.registry.list(rt, "default", ListQuery(limit=5, continue_token=tampered))
    with pytest.raises(BadRequestError):
        await cluster.registry.list(rt, "default", ListQuery(limit=5, continue_token="not-a-token"))


async def test_selectors_fill_pages(cluster: Cluster) -> None:
    rt = cluster.rt("configmaps")
    await _fill(cluster, 12)
    page = await cluster.registry.list(
        rt, "default", ListQuery(label_selector="parity=odd", limit=4)
    )
    assert [o.name for o in page.items] == ["cm-01", "cm-03", "cm-05", "cm-07"]
    assert page.remaining_item_count is None, "unknown with selectors, as upstream"
    rest = await cluster.registry.list(
        rt,
        "default",
        ListQuery(label_selector="parity=odd", limit=4, continue_token=page.continue_token),
    )
    assert [o.name for o in rest.items] == ["cm-09", "cm-11"] and not rest.continue_token


async def test_history_below_the_floor_is_gone(cluster: Cluster) -> None:
    rt = cluster.rt("configmaps")
    await _fill(cluster, 6)
    first = await cluster.registry.list(rt, "default", ListQuery(limit=2))
    for i in range(6):
        await cluster.registry.patch(
            cluster.ctx(), rt, "default", f"cm-{i:02d}", "merge", {"data": {"v": "2"}}
        )
    await cluster.projections.compact(cluster.projections.applied_index)
    with pytest.raises(ExpiredError) as expired:
        await cluster.registry.list(
            rt, "default", ListQuery(limit=2, continue_token=first.continue_token)
        )
    assert expired.value.code == 410 and expired.value.continue_token, "a fresh inconsistent token"
    page = await cluster.registry.list(
        rt, "default", ListQuery(limit=10, continue_token=expired.value.continue_token)
    )
    assert [o.name for o in page.items] == [f"cm-{i:02d}" for i in range(2, 6)]
    events = [
        e async for e in cluster.registry.watch(rt, "default", WatchQuery(resource_version="1"))
    ]
    assert events[0].type == "ERROR" and events[0].error is not None and events[0].error.code == 410
    assert "too old resource version: 1" in events[0].error.message


async def test_a_resource_version_from_the_future_times_out(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("engenho.registry.reading.RESOURCE_VERSION_WAIT", 0.2)
    with pytest.raises(GatewayTimeoutError) as timeout:
        await cluster.registry.list(
            cluster.rt("configmaps"), "default", ListQuery(resource_version="999999")
        )
    assert timeout.value.code == 504 and timeout.value.retry_after == 1
    with pytest.raises(BadRequestError):
        await cluster.registry.list(
            cluster.rt("configmaps"), "default", ListQuery(resource_version="abc")
        )


async def _take(
    events: AsyncIterator[WatchEvent], count: int, timeout: float = 5
) -> list[WatchEvent]:
    taken: list[WatchEvent] = []

    async def pull() -> None:
        async for event in events:
            taken.append(event)
            if len(taken) == count:
                return

    await asyncio.wait_for(pull(), timeout)
    await events.aclose()  # type: ignore[attr-defined]
    return taken


async def test_watch_starts(cluster: Cluster) -> None:
    rt = cluster.rt("configmaps")
    await _fill(cluster, 3)
    listed = await cluster.registry.list(rt, "default")
    initial = cluster.registry.watch(rt, "default", WatchQuery())
    assert [(e.type, e.object.name if e.object else "") for e in await _take(initial, 3)] == [
        ("ADDED", "cm-00"),
        ("ADDED", "cm-01"),
        ("ADDED", "cm-02"),
    ]
    resumed = cluster.registry.watch(
        rt, "default", WatchQuery(resource_version=str(listed.resource_version))
    )
    await cluster.registry.create(cluster.ctx(), rt, "default", configmap("late"))
    await cluster.registry.delete(cluster.ctx(), rt, "default", "cm-00")
    events = await _take(resumed, 2)
    assert [(e.type, e.object.name if e.object else "") for e in events] == [
        ("ADDED", "late"),
        ("DELETED", "cm-00"),
    ]
    assert events[1].object is not None
    assert events[1].object.object["metadata"]["resourceVersion"] == str(cluster.head), (
        "stamped with the delete"
    )


async def test_selector_transitions(cluster: Cluster) -> None:
    rt = cluster.rt("configmaps")
    await cluster.registry.create(
        cluster.ctx(), rt, "default", configmap("m", metadata={"name": "m", "labels": {"app": "a"}})
    )
    start = str(cluster.head)
    events = cluster.registry.watch(
        rt, "default", WatchQuery(resource_version=start, label_selector="app=a")
    )
    for labels in ({"app": "a", "x": "1"}, {"app": "b"}, {"app": "a"}):
        await cluster.registry.patch(
            cluster.ctx(),
            rt,
            "default",
            "m",
            "merge",
            {"metadata": {"labels": {"x": None, "app": None, **labels}}},
        )
    await cluster.registry.delete(cluster.ctx(), rt, "default", "m")
    taken = await _take(events, 4)
    assert [e.type for e in taken] == ["MODIFIED", "DELETED", "ADDED", "DELETED"]
    leaving = taken[1].object
    assert leaving is not None and leaving.object["metadata"]["labels"] == {"app": "a", "x": "1"}
    assert leaving.object["metadata"]["resourceVersion"] == str(int(start) + 2), (
        "the prior, stamped"
    )


async def test_bookmarks_and_initial_events(cluster: Cluster) -> None:
    rt = cluster.rt("configmaps")
    await _fill(cluster, 2)
    query = WatchQuery(
        resource_version="",
        resource_version_match="NotOlderThan",
        send_initial_events=True,
        allow_bookmarks=True,
    )
    stream = cluster.registry.watch(rt, "default", query)
    events = await _take(stream, 3)
    assert [e.type for e in events] == ["ADDED", "ADDED", "BOOKMARK"]
    assert events[2].initial_events_end and events[2].index >= events[1].object.resource_version  # type: ignore[union-attr]
    with pytest.raises(BadRequestError, match="sendInitialEvents is forbidden"):
        cluster.registry.watch(rt, "default", WatchQuery(send_initial_events=True))
    idle = cluster.registry.watch(
        rt, "default", WatchQuery(resource_version=str(cluster.head), allow_bookmarks=True)
    )
    await cluster.registry.create(
        cluster.ctx(),
        cluster.rt("secrets"),
        "default",
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "elsewhere"}},
    )
    bookmark = await _take(idle, 1, timeout=5)
    assert bookmark[0].type == "BOOKMARK" and bookmark[0].index == cluster.head, (
        "progress past other kinds"
    )


async def test_watch_timeout_ends_the_stream(cluster: Cluster) -> None:
    rt = cluster.rt("configmaps")
    events = cluster.registry.watch(
        rt, "default", WatchQuery(resource_version=str(cluster.head), timeout_seconds=0.3)
    )
    got = await asyncio.wait_for(_collect(events), 5)
    assert got == []


async def _collect(events: AsyncIterator[WatchEvent]) -> list[WatchEvent]:
    return [e async for e in events]


async def test_namespace_controller_empties_and_removes_a_namespace(cluster: Cluster) -> None:
    ns = cluster.rt("namespaces")
    await cluster.registry.create(
        cluster.ctx(),
        ns,
        "",
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "doomed"}},
    )
    await _fill(cluster, 3, "doomed")
    held = configmap("held", metadata={"name": "held", "finalizers": ["example.com/x"]})
    await cluster.registry.create(cluster.ctx(), cluster.rt("configmaps"), "doomed", held)
    controller = NamespaceController(cluster.registry, retry_after=0.05)
    running = asyncio.create_task(controller.run())
    try:
        await cluster.registry.delete(cluster.ctx(), ns, "", "doomed")
        for _ in range(100):
            if await cluster.projections.get("", "configmaps", "doomed", "cm-00") is None:
                break
            await asyncio.sleep(0.05)
        remaining = await cluster.registry.list(cluster.rt("configmaps"), "doomed")
        assert [o.name for o in remaining.items] == ["held"], "held by its finalizer"
        assert await cluster.projections.get("", "namespaces", "", "doomed") is not None
        stored = await cluster.registry.get(cluster.rt("configmaps"), "doomed", "held")
        body = copy.deepcopy(stored.object)
        body["metadata"]["finalizers"] = []
        await cluster.registry.update(
            cluster.ctx(), cluster.rt("configmaps"), "doomed", "held", body
        )
        for _ in range(100):
            if await cluster.projections.get("", "namespaces", "", "doomed") is None:
                break
            await asyncio.sleep(0.05)
        assert await cluster.projections.get("", "namespaces", "", "doomed") is None
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
