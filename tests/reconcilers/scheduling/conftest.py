"""A real log, projections and registry in a temporary directory, and a scheduler running
over them with its own informers, for the end-to-end tests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from attrs import define, field

from engenho.log import Actor, LogStore
from engenho.projections import Projections, StoredObject
from engenho.reconcilers import InformerFactory
from engenho.reconcilers.scheduling import RetryPolicy, Scheduler
from engenho.registry import Registry, RequestContext
from engenho.replication import SingleVoter
from engenho.schema import CATALOGUE, ResourceType
from engenho.server import bootstrap

ADMIN = Actor("admin", ("system:masters",))
PODS = CATALOGUE.get("", "v1", "pods")
NODES = CATALOGUE.get("", "v1", "nodes")
LEASES = CATALOGUE.get("coordination.k8s.io", "v1", "leases")
EVENTS = CATALOGUE.get("", "v1", "events")


@define
class Cluster:
    log: LogStore
    projections: Projections
    registry: Registry
    running: list[asyncio.Task[None]] = field(factory=list)

    def ctx(self) -> RequestContext:
        return RequestContext(actor=ADMIN, request_id="test", now=datetime.now(UTC))

    async def create(self, rt: ResourceType, body: dict[str, Any]) -> StoredObject:
        namespace = body["metadata"].get("namespace", "default") if rt.namespaced else ""
        return await self.registry.create(self.ctx(), rt, namespace, body)

    async def pod(self, name: str, namespace: str = "default") -> dict[str, Any]:
        stored = await self.registry.get(PODS, namespace, name)
        return stored.object

    async def events(self, namespace: str = "default") -> list[dict[str, Any]]:
        listed = await self.registry.list(EVENTS, namespace)
        return [item.object for item in listed.items]

    def start(self, **options: Any) -> Scheduler:
        """Run a scheduler (and its informers) until the test ends."""
        options.setdefault("retry", RetryPolicy(initial=0.05, maximum=0.5))
        scheduler = Scheduler(self.registry, InformerFactory(self.registry), **options)
        self.running.append(
            asyncio.create_task(scheduler.informers.run(), name="test-scheduler-informers")
        )
        self.running.append(asyncio.create_task(scheduler.run(), name="test-scheduler"))
        return scheduler


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[Cluster]:
    log = await LogStore.open(tmp_path / "log")
    projections = await Projections.open(f"sqlite+aiosqlite:///{tmp_path}/p.db", log)
    registry = Registry(
        proposer=SingleVoter(log),
        projections=projections,
        commit_index=lambda: log.commit_index,
        token_key=b"k" * 32,
        bookmark_interval=0.2,
    )
    await bootstrap(registry)
    cluster = Cluster(log, projections, registry)
    yield cluster
    for task in cluster.running:
        task.cancel()
    await asyncio.gather(*cluster.running, return_exceptions=True)
    await projections.close()
    await log.close()


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 10) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "condition never held"
        await asyncio.sleep(0.02)
