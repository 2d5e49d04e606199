"""The Watcher against a real engenho server: events in resourceVersion order from a list's
resourceVersion (the official client's e2e sequence), list-then-watch, typed events,
single-object and label-selected watches, clean cancellation, resuming after the server
ends a stream, after a server restart, and after the server compacted its history (410:
re-list, synthetic events, an exact cache)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from engenho.client import (
    Backoff,
    EventType,
    KubeClient,
    NotFoundError,
    UnknownResourceTypeError,
    Watcher,
    WatchEvent,
    load_config,
)
from engenho.log import LogStore
from engenho.projections import Projections
from engenho.schema.generated.models import core_v1
from tests.integration.server import QUIET_CONTROLLERS, ServerProcess


def configmap(name: str, **labels: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": labels}}


def summary(events: list[WatchEvent[Any]]) -> list[tuple[str, str]]:
    return [(event.type.value, event.key[1]) for event in events]


class Collector:
    """Consumes a watcher in a named task; tests wait for the events they expect."""

    def __init__(self, watcher: Watcher[Any]) -> None:
        self.watcher = watcher
        self.events: list[WatchEvent[Any]] = []
        self._changed = asyncio.Event()
        self.task = asyncio.create_task(self._consume(), name="watch collector")

    async def _consume(self) -> None:
        async with self.watcher:
            async for event in self.watcher:
                self.events.append(event)
                self._changed.set()

    async def wait_for(self, count: int, timeout: float = 15) -> list[WatchEvent[Any]]:
        async with asyncio.timeout(timeout):
            while len(self.events) < count:
                if self.task.done():
                    await self.task
                self._changed.clear()
                await self._changed.wait()
        return self.events[:count]

    async def stop(self) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)
        if self.task.exception() if not self.task.cancelled() else None:
            raise self.task.exception()  # type: ignore[misc]


@pytest.fixture
async def collectors() -> AsyncIterator[Callable[[Watcher[Any]], Collector]]:
    made: list[Collector] = []

    def make(watcher: Watcher[Any]) -> Collector:
        made.append(Collector(watcher))
        return made[-1]

    yield make
    for collector in made:
        await collector.stop()


async def test_events_after_a_list_resource_version(
    client: KubeClient, namespace: str, collectors: Callable[[Watcher[Any]], Collector]
) -> None:
    await client.create(configmap("a"), namespace=namespace)
    listing = client.list("configmaps", namespace=namespace)
    assert len(await listing.collect()) == 1
    await client.create(configmap("b"), namespace=namespace)
    await client.patch("configmaps", "b", {"data": {"k": "v"}}, namespace=namespace)
    await client.delete_collection("configmaps", namespace=namespace)
    watch = collectors(
        client.watch("configmaps", namespace=namespace, resource_version=listing.resource_version)
    )
    events = await watch.wait_for(4)
    assert summary(events) == [
        ("ADDED", "b"),
        ("MODIFIED", "b"),
        ("DELETED", "a"),
        ("DELETED", "b"),
    ]
    versions = [int(event.resource_version) for event in events]
    assert versions == sorted(versions) and len(set(versions)) == 4
    assert not any(event.synthetic for event in events)
    assert watch.watcher.resource_version == events[-1].resource_version


async def test_without_a_resource_version_it_lists_first(
    client: KubeClient, namespace: str, collectors: Callable[[Watcher[Any]], Collector]
) -> None:
    for name in ("x", "y"):
        await client.create(configmap(name), namespace=namespace)
    watch = collectors(client.watch(core_v1.ConfigMap, namespace=namespace))
    initial = await watch.wait_for(2)
    assert summary(initial) == [("ADDED", "x"), ("ADDED", "y")]
    assert all(event.synthetic for event in initial)
    assert all(isinstance(event.object, core_v1.ConfigMap) for event in initial)
    await client.delete("configmaps", "x", namespace=namespace)
    await client.create(configmap("z"), namespace=namespace)
    later = (await watch.wait_for(4))[2:]
    assert summary(later) == [("DELETED", "x"), ("ADDED", "z")]
    assert not any(event.synthetic for event in later)
    assert set(watch.watcher.known) == {(namespace, "y"), (namespace, "z")}
    assert watch.watcher.relists == 1


async def test_one_object_and_label_transitions(
    client: KubeClient, namespace: str, collectors: Callable[[Watcher[Any]], Collector]
) -> None:
    single = collectors(client.watch("configmaps", namespace=namespace, name="only"))
    selected = collectors(
        client.watch("configmaps", namespace=namespace, label_selector={"team": "blue"})
    )
    await asyncio.sleep(0.2)  # both watches are established (they list first)
    await client.create(configmap("other", team="blue"), namespace=namespace)
    await client.create(configmap("only", team="red"), namespace=namespace)
    await client.patch(
        "configmaps", "only", {"metadata": {"labels": {"team": "blue"}}}, namespace=namespace
    )
    await client.patch(
        "configmaps", "only", {"metadata": {"labels": {"team": "green"}}}, namespace=namespace
    )
    assert summary(await single.wait_for(3)) == [
        ("ADDED", "only"),
        ("MODIFIED", "only"),
        ("MODIFIED", "only"),
    ]
    assert summary(await selected.wait_for(3)) == [
        ("ADDED", "other"),
        ("ADDED", "only"),
        ("DELETED", "only"),
    ]


async def test_resumes_when_the_server_ends_the_stream(
    client: KubeClient, namespace: str, collectors: Callable[[Watcher[Any]], Collector]
) -> None:
    watch = collectors(client.watch("configmaps", namespace=namespace, timeout_seconds=1))
    await client.create(configmap("before"), namespace=namespace)
    await watch.wait_for(1)
    await asyncio.sleep(1.3)  # the server closes the first stream after one second
    await client.create(configmap("after"), namespace=namespace)
    events = await watch.wait_for(2)
    assert summary(events) == [("ADDED", "before"), ("ADDED", "after")]
    assert watch.watcher.connections >= 2 and watch.watcher.relists == 1


async def test_cancelling_the_consumer_closes_the_stream(
    client: KubeClient, server: ServerProcess, namespace: str
) -> None:
    def open_watches() -> float:
        _, text, _ = server.request("GET", "/metrics", accept="*/*")
        assert isinstance(text, str)
        for line in text.splitlines():
            if line.startswith('apiserver_registered_watchers{group="",resource="secrets"}'):
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    watcher = client.watch("secrets", namespace=namespace)
    started = asyncio.Event()

    async def consume() -> None:
        async for _ in watcher:
            pass

    task = asyncio.create_task(consume(), name="secrets watch")
    async with asyncio.timeout(10):
        while watcher.connections == 0:
            await asyncio.sleep(0.02)
    started.set()
    assert await asyncio.to_thread(open_watches) == 1
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    async with asyncio.timeout(10):
        while await asyncio.to_thread(open_watches) != 0:
            await asyncio.sleep(0.05)


async def test_errors_that_retrying_cannot_fix_reach_the_consumer(client: KubeClient) -> None:
    watcher = client.watch("configmaps", namespace="no-such-namespace", resource_version="1")
    async with watcher:
        # A namespace that does not exist is not an error for a watch: nothing comes.
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.5):
                await anext(aiter(watcher))
    gone = client.watch("nothings.example.com")
    with pytest.raises(UnknownResourceTypeError, match=r"nothings\.example\.com"):
        await anext(aiter(gone))
    with pytest.raises(NotFoundError):
        await client.get("configmaps", "x", namespace="no-such-namespace")


# ---------------------------------------------------------------------- restarts and 410


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def pinned_server(tmp_path: Path) -> Any:
    process = ServerProcess(
        tmp_path / "data", "--listen", f"127.0.0.1:{free_port()}", env=QUIET_CONTROLLERS
    ).start()
    yield process
    if process.process is not None:
        process.stop()


@pytest.mark.slow
async def test_resumes_across_a_server_restart(pinned_server: ServerProcess) -> None:
    server = pinned_server
    async with KubeClient(load_config(server.kubeconfig)) as client:
        watch = Collector(
            client.watch("configmaps", namespace="default", backoff=Backoff(0.1, cap=0.5))
        )
        try:
            await client.create(configmap("one"), namespace="default")
            await watch.wait_for(1)
            await asyncio.to_thread(server.stop)
            await asyncio.to_thread(server.start)
            await client.create(configmap("two"), namespace="default")
            await client.patch("configmaps", "one", {"data": {"k": "v"}}, namespace="default")
            events = await watch.wait_for(3)
            await asyncio.sleep(0.3)  # nothing else (no duplicate) arrives
            assert summary(watch.events) == [
                ("ADDED", "one"),
                ("ADDED", "two"),
                ("MODIFIED", "one"),
            ]
            assert not any(event.synthetic for event in events)
            assert watch.watcher.connections >= 2 and watch.watcher.relists == 1
        finally:
            await watch.stop()


async def compact(data_dir: Path) -> int:
    """Forget the stopped server's history up to its last entry; return the new floor."""
    log = await LogStore.open(data_dir / "log")
    try:
        projections = await Projections.open(
            f"sqlite+aiosqlite:///{data_dir / 'projections.db'}", log
        )
        try:
            floor = projections.applied_index
            await projections.compact(floor)
            return floor
        finally:
            await projections.close()
    finally:
        await log.close()


@pytest.mark.slow
async def test_expired_history_is_relisted_into_synthetic_events(
    pinned_server: ServerProcess,
) -> None:
    server = pinned_server
    async with KubeClient(load_config(server.kubeconfig)) as client:
        for name in ("kept", "changed", "removed"):
            await client.create(configmap(name), namespace="default")
        listing = client.list("configmaps", namespace="default")
        held = await listing.collect()
        await client.patch("configmaps", "changed", {"data": {"k": "v"}}, namespace="default")
        await client.delete("configmaps", "removed", namespace="default")
        await client.create(configmap("new"), namespace="default")
    # The client is closed first: an idle keep-alive connection would hold the server's
    # shutdown for its whole 10 s grace period (see docs/client.md, "Known server issues").
    await asyncio.to_thread(server.stop)
    floor = await compact(server.data_dir)
    assert floor > int(listing.resource_version or 0)
    await asyncio.to_thread(server.start)
    async with KubeClient(load_config(server.kubeconfig)) as client:
        watch = Collector(
            client.watch(
                "configmaps",
                namespace="default",
                resource_version=listing.resource_version,
                known=held,
            )
        )
        try:
            synthetic = await watch.wait_for(3)
            assert sorted(summary(synthetic)) == [
                ("ADDED", "new"),
                ("DELETED", "removed"),
                ("MODIFIED", "changed"),
            ]
            assert all(event.synthetic for event in synthetic)
            assert watch.watcher.relists == 1
            await client.create(configmap("live"), namespace="default")
            live = (await watch.wait_for(4))[3]
            assert (live.type, live.key[1], live.synthetic) == (EventType.ADDED, "live", False)
            # A cache fed by the events equals a fresh list.
            cache = {item["metadata"]["name"]: item for item in held}
            for event in watch.events:
                if event.type is EventType.DELETED:
                    del cache[event.key[1]]
                else:
                    cache[event.key[1]] = event.object
            fresh = await client.list("configmaps", namespace="default").collect()
            assert cache == {item["metadata"]["name"]: item for item in fresh}
        finally:
            await watch.stop()
