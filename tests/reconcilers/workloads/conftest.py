"""A real log, projections and registry in a temporary directory, with the ReplicaSet and
Deployment controllers running over shared informers and a fake kubelet playing the nodes."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from attrs import define

from engenho.log import Actor, LogStore
from engenho.projections import Projections, StoredObject
from engenho.reconcilers import ControllerManager, GarbageCollector
from engenho.reconcilers.deployments import DeploymentController
from engenho.reconcilers.replicasets import ReplicaSetController
from engenho.registry import ListQuery, NotFoundError, Registry, RequestContext
from engenho.replication import SingleVoter
from engenho.schema import CATALOGUE
from engenho.server import bootstrap

from .kubelet import FakeKubelet

ADMIN = Actor("admin", ("system:masters",))
PODS = CATALOGUE.get("", "v1", "pods")
EVENTS = CATALOGUE.get("", "v1", "events")
REPLICASETS = CATALOGUE.get("apps", "v1", "replicasets")
DEPLOYMENTS = CATALOGUE.get("apps", "v1", "deployments")
NAMESPACE = "default"


def template(labels: dict[str, str], image: str = "nginx") -> dict[str, Any]:
    return {
        "metadata": {"labels": dict(labels)},
        "spec": {"containers": [{"name": "web", "image": image}]},
    }


def replica_set(name: str, replicas: int, **spec: Any) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": template(labels),
            **spec,
        },
    }


def deployment(name: str, replicas: int, image: str = "nginx", **spec: Any) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": template(labels, image),
            **spec,
        },
    }


@define
class Workloads:
    log: LogStore
    projections: Projections
    registry: Registry
    manager: ControllerManager
    kubelet: FakeKubelet
    replicasets: ReplicaSetController
    deployments: DeploymentController

    def ctx(self) -> RequestContext:
        return RequestContext(actor=ADMIN, request_id="test", now=datetime.now(UTC))

    async def create(self, rt: Any, body: dict[str, Any]) -> StoredObject:
        return await self.registry.create(self.ctx(), rt, NAMESPACE, copy.deepcopy(body))

    async def get(self, rt: Any, name: str) -> dict[str, Any]:
        return (await self.registry.get(rt, NAMESPACE, name)).object

    async def maybe(self, rt: Any, name: str) -> dict[str, Any] | None:
        try:
            return await self.get(rt, name)
        except NotFoundError:
            return None

    async def patch(self, rt: Any, name: str, patch: Any, kind: str = "merge") -> StoredObject:
        return await self.registry.patch(self.ctx(), rt, NAMESPACE, name, kind, patch)

    async def objects(self, rt: Any, selector: str = "") -> list[dict[str, Any]]:
        listed = await self.registry.list(rt, NAMESPACE, ListQuery(label_selector=selector))
        return [item.object for item in listed.items]

    async def pods(self, selector: str = "") -> list[dict[str, Any]]:
        return await self.objects(PODS, selector)

    async def events(self, name: str) -> list[tuple[str, str, str]]:
        """(type, reason, message) of the events about ``name``, oldest first."""
        found = [
            e for e in await self.objects(EVENTS) if e.get("involvedObject", {}).get("name") == name
        ]
        found.sort(key=lambda e: int(e["metadata"]["resourceVersion"]))
        return [(e["type"], e["reason"], e["message"]) for e in found]


async def eventually(
    check: Callable[[], Awaitable[Any]], timeout: float = 10, message: str = ""
) -> Any:
    """Poll ``check`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = await check()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(message or f"condition never held: {check}")
        await asyncio.sleep(0.02)


@pytest.fixture
async def workloads(tmp_path: Path) -> AsyncIterator[Workloads]:
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
    manager = ControllerManager(registry)
    replicasets = ReplicaSetController(registry, manager.informers)
    deployments = DeploymentController(registry, manager.informers)
    kubelet = FakeKubelet(registry, nodes=["node-a", "node-b", "node-c"])
    for controller in (
        replicasets,
        deployments,
        kubelet,
        GarbageCollector(registry, manager.informers, retry_after=0.05),
    ):
        manager.add(controller)
    manager.start()
    try:
        yield Workloads(log, projections, registry, manager, kubelet, replicasets, deployments)
    finally:
        await manager.stop()
        await projections.close()
        await log.close()
