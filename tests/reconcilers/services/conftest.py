"""A real log, projections and registry in a temporary directory, controllers running over them
in a ControllerManager, and helpers that play the kubelet: pods are created by the test and
their status (IP, Ready condition) is written through the status subresource."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from attrs import define

from engenho.log import Actor, LogStore
from engenho.projections import Projections, StoredObject
from engenho.reconcilers import Controller, ControllerManager
from engenho.registry import Registry, RequestContext
from engenho.replication import SingleVoter
from engenho.schema import CATALOGUE, ResourceType
from engenho.server import bootstrap

ADMIN = Actor("admin", ("system:masters",))
KUBELET = Actor("system:node:node-1", ("system:nodes", "system:authenticated"))

_Json = dict[str, Any]


@define
class Cluster:
    log: LogStore
    projections: Projections
    registry: Registry

    def ctx(self, actor: Actor = ADMIN) -> RequestContext:
        return RequestContext(actor=actor, request_id="test", now=datetime.now(UTC))

    @staticmethod
    def rt(plural: str, group: str = "", version: str = "v1") -> ResourceType:
        return CATALOGUE.get(group, version, plural)

    @property
    def head(self) -> int:
        return self.log.last_index

    async def get(
        self, plural: str, namespace: str, name: str, group: str = ""
    ) -> StoredObject | None:
        return await self.projections.get(group, plural, namespace, name)

    async def create(
        self, plural: str, namespace: str, body: _Json, group: str = ""
    ) -> StoredObject:
        return await self.registry.create(self.ctx(), self.rt(plural, group), namespace, body)

    async def delete(self, plural: str, namespace: str, name: str, group: str = "") -> None:
        await self.registry.delete(self.ctx(), self.rt(plural, group), namespace, name)

    async def slices(self, service: str, namespace: str = "default") -> list[_Json]:
        listed = await self.registry.list(self.rt("endpointslices", "discovery.k8s.io"), namespace)
        return [
            item.object
            for item in listed.items
            if (item.object["metadata"].get("labels") or {}).get("kubernetes.io/service-name")
            == service
        ]

    # ------------------------------------------------------------------ playing the kubelet

    async def node(self, name: str, zone: str | None = None) -> StoredObject:
        labels = {"kubernetes.io/hostname": name}
        if zone:
            labels["topology.kubernetes.io/zone"] = zone
        body = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": labels}}
        return await self.create("nodes", "", body)

    async def pod(
        self,
        name: str,
        labels: dict[str, str],
        *,
        namespace: str = "default",
        node: str = "node-1",
        ports: list[_Json] | None = None,
        finalizers: list[str] | None = None,
        **spec: Any,
    ) -> StoredObject:
        container: _Json = {"name": "app", "image": "nginx"}
        if ports:
            container["ports"] = ports
        meta: _Json = {"name": name, "labels": labels}
        if finalizers:
            meta["finalizers"] = finalizers
        body = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": meta,
            "spec": {"nodeName": node, "containers": [container], **spec},
        }
        return await self.create("pods", namespace, body)

    async def pod_status(
        self,
        name: str,
        ip: str | None,
        ready: bool,
        *,
        namespace: str = "default",
        phase: str = "Running",
        since: str | None = None,
    ) -> StoredObject:
        stored = await self.get("pods", namespace, name)
        assert stored is not None
        body = dict(stored.object)
        status: _Json = {
            "phase": phase,
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True" if ready else "False",
                    "lastTransitionTime": since or _now(),
                }
            ],
        }
        if ip:
            status["podIP"] = ip
            status["podIPs"] = [{"ip": ip}]
        body["status"] = status
        updated, _ = await self.registry.update(
            self.ctx(KUBELET), self.rt("pods"), namespace, name, body, subresource="status"
        )
        return updated

    async def running_pod(
        self, name: str, labels: dict[str, str], ip: str, ready: bool = True, **options: Any
    ) -> StoredObject:
        namespace = options.get("namespace", "default")
        await self.pod(name, labels, **options)
        return await self.pod_status(name, ip, ready, namespace=namespace)

    async def service(
        self,
        name: str,
        selector: dict[str, str] | None,
        ports: list[_Json] | None = None,
        *,
        namespace: str = "default",
        labels: dict[str, str] | None = None,
        **spec: Any,
    ) -> StoredObject:
        body_spec: _Json = {"ports": ports or [{"name": "http", "port": 80, "targetPort": 8080}]}
        if selector is not None:
            body_spec["selector"] = selector
        body_spec.update(spec)
        meta: _Json = {"name": name}
        if labels:
            meta["labels"] = labels
        body = {"apiVersion": "v1", "kind": "Service", "metadata": meta, "spec": body_spec}
        return await self.create("services", namespace, body)


def _now() -> str:
    # Microseconds, so that transitions written in the same second still move forward.
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


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
    yield Cluster(log, projections, registry)
    await projections.close()
    await log.close()


@contextlib.asynccontextmanager
async def running(
    cluster: Cluster, *builders: Callable[..., Controller], **options: Any
) -> AsyncIterator[list[Controller]]:
    """Controllers built over one manager's informers, running until the block ends."""
    manager = ControllerManager(cluster.registry)
    controllers = [
        manager.add(build(cluster.registry, manager.informers, **options)) for build in builders
    ]
    manager.start()
    try:
        await manager.informers.wait_synced()
        yield controllers
    finally:
        await manager.stop()


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 10) -> None:
    """Wait until ``check`` holds, failing after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await check():
        assert loop.time() < deadline, "condition never held"
        await asyncio.sleep(0.02)


class Tracking:
    """Mixed into a controller: remembers every reconcile that finished, so that a test can
    wait for one (and then assert what it wrote, or that it wrote nothing)."""

    finished: list[str]

    async def reconcile(self, key: str) -> None:
        try:
            await super().reconcile(key)  # type: ignore[misc]
        finally:
            self.__dict__.setdefault("finished", []).append(key)


def tracked(cls: type[Controller]) -> type[Controller]:
    return type(f"Tracked{cls.__name__}", (Tracking, cls), {})


async def resync(controller: Controller, key: str) -> None:
    """Queue ``key`` as a periodic resync would, and wait until it has been reconciled."""
    finished: list[str] = controller.__dict__.setdefault("finished", [])
    before = finished.count(key)
    controller.queue.add(key)
    await eventually(lambda: _true(finished.count(key) > before and _idle(controller, key)))


def _idle(controller: Controller, key: str) -> bool:
    """Nothing more is due for ``key`` (the queue has no public view of this: tests only)."""
    queue = controller.queue
    return not any(key in pending for pending in (queue._queued, queue._processing, queue._timers))


async def _true(value: bool) -> bool:
    return value


async def actor_of(cluster: Cluster, stored: StoredObject) -> str:
    """Who wrote this version (the log records the identity with every command)."""
    (entry,) = await cluster.log.read(stored.resource_version, stored.resource_version)
    return entry.command.actor.user
