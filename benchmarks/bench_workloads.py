"""Workload controllers in process: a Deployment of 1,000 replicas on 100 fake nodes (quick: 100
on 10), from ``create`` to every pod Running and the Deployment Available, then a rolling
update of the same Deployment (25% surge and unavailability) until ``kubectl rollout status``
would call it done.

The ReplicaSet and Deployment controllers and the garbage collector run over a real registry
(log + SQLite projections in a temp dir) on uvloop; the benchmark plays the kubelet: it binds
pods round-robin (``pods/binding``), reports them Running and Ready (``pods/status``) and
finishes the deletion of terminating pods, 64 pods in flight. Reported beside the ceiling: the
same number of pod creates, bindings and status writes sent straight to the registry with 64
in flight and no controller at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import shutil
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import uvloop
from rich.console import Console
from rich.table import Table

from engenho.log import Actor, LogStore
from engenho.projections import Projections
from engenho.reconcilers import Controller, ControllerManager, GarbageCollector, Source, object_key
from engenho.reconcilers.deployments import DeploymentController
from engenho.reconcilers.replicasets import ReplicaSetController
from engenho.registry import (
    ConflictError,
    DeleteOptions,
    NotFoundError,
    Registry,
    RequestContext,
    WatchEvent,
    WatchQuery,
)
from engenho.registry.naming import format_timestamp
from engenho.replication import SingleVoter
from engenho.schema import CATALOGUE
from engenho.server import bootstrap

console = Console()
_ADMIN = Actor("bench", ("system:masters",))
_PODS = CATALOGUE.get("", "v1", "pods")
_DEPLOYMENTS = CATALOGUE.get("apps", "v1", "deployments")
_IN_FLIGHT = 64


def _running(pod: dict[str, Any], now: datetime) -> dict[str, Any]:
    stamp = format_timestamp(now)
    status = copy.deepcopy(pod.get("status") or {})
    status.update(
        {
            "phase": "Running",
            "hostIP": "10.0.0.1",
            "podIP": "10.244.0.1",
            "startTime": stamp,
            "conditions": [
                {"type": kind, "status": "True", "lastTransitionTime": stamp}
                for kind in ("Initialized", "Ready", "ContainersReady", "PodScheduled")
            ],
            "containerStatuses": [
                {
                    "name": c["name"],
                    "image": c.get("image", ""),
                    "imageID": f"bench://{c.get('image', '')}",
                    "containerID": f"bench://{c['name']}",
                    "ready": True,
                    "started": True,
                    "restartCount": 0,
                    "state": {"running": {"startedAt": stamp}},
                }
                for c in pod["spec"]["containers"]
            ],
        }
    )
    return status


class _Kubelet(Controller):
    """Every node agent at once: bind round-robin, report Running and Ready, finish deletes."""

    name = "bench-kubelet"
    identity = Actor("system:node:bench", ("system:nodes", "system:authenticated"))

    def __init__(self, registry: Registry, nodes: int) -> None:
        self.nodes = [f"node-{i:03d}" for i in range(nodes)]
        self._next = 0
        super().__init__(registry, workers=_IN_FLIGHT)

    def sources(self) -> list[Source]:
        def keys(event: WatchEvent) -> list[str]:
            if event.object is None or event.type == "DELETED":
                return []
            return [object_key(event.object)]

        return [Source(_PODS, keys)]

    async def reconcile(self, key: str) -> None:
        namespace, _, name = key.partition("/")
        try:
            pod = await self.registry.get(_PODS, namespace, name)
        except NotFoundError:
            return
        obj = pod.object
        with contextlib.suppress(NotFoundError, ConflictError):
            if obj["metadata"].get("deletionTimestamp"):
                options = DeleteOptions(grace_period_seconds=0, precondition_uid=pod.uid)
                await self.registry.delete(self.context(), _PODS, namespace, name, options)
            elif not obj["spec"].get("nodeName"):
                node = self.nodes[self._next % len(self.nodes)]
                self._next += 1
                binding = {
                    "metadata": {"name": name, "uid": pod.uid},
                    "target": {"kind": "Node", "name": node},
                }
                await self.registry.bind(self.context(), namespace, binding)
            elif (obj.get("status") or {}).get("phase") != "Running":
                body = copy.deepcopy(obj)
                body["status"] = _running(obj, datetime.now(UTC))
                await self.registry.update(
                    self.context(), _PODS, namespace, name, body, subresource="status"
                )


def _deployment(replicas: int, image: str) -> dict[str, Any]:
    labels = {"app": "bench"}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "bench"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "web", "image": image}]},
            },
        },
    }


class _Milestones:
    """Follows pods and the Deployment and notes when each milestone is first reached."""

    def __init__(self, registry: Registry, replicas: int, start: float) -> None:
        self.registry = registry
        self.replicas = replicas
        self.start = start
        self.at: dict[str, float] = {}
        self.done: dict[str, asyncio.Event] = {}
        self._live: set[str] = set()
        self._running: set[str] = set()

    def wait(self, name: str) -> asyncio.Event:
        return self.done.setdefault(name, asyncio.Event())

    def _reach(self, name: str) -> None:
        if name not in self.at:
            self.at[name] = time.perf_counter() - self.start
            self.wait(name).set()

    def _pod(self, name: str, pod: dict[str, Any] | None, image: str) -> None:
        """Count live pods of ``image`` and those Running (incrementally: 1,000 pods make
        tens of thousands of events)."""
        self._live.discard(name)
        self._running.discard(name)
        if pod is None or pod["metadata"].get("deletionTimestamp"):
            return
        if pod["spec"]["containers"][0]["image"] != image:
            return
        self._live.add(name)
        if (pod.get("status") or {}).get("phase") == "Running":
            self._running.add(name)
        if len(self._live) >= self.replicas:
            self._reach(f"created {image}")
        if len(self._running) >= self.replicas:
            self._reach(f"running {image}")

    async def follow_pods(self, image: str, since: str) -> None:
        query = WatchQuery(resource_version=since)
        async for event in self.registry.watch(_PODS, "default", query):
            if event.object is None:
                continue
            gone = event.type == "DELETED"
            self._pod(event.object.name, None if gone else event.object.object, image)

    async def follow_deployment(self, label: str, since: str) -> None:
        query = WatchQuery(resource_version=since, name="bench")
        async for event in self.registry.watch(_DEPLOYMENTS, "default", query):
            if event.object is None or event.type == "DELETED":
                continue
            obj = event.object.object
            status = obj.get("status") or {}
            available = any(
                c.get("type") == "Available" and c.get("status") == "True"
                for c in status.get("conditions") or []
            )
            rolled_out = (
                status.get("observedGeneration", 0) >= obj["metadata"]["generation"]
                and status.get("updatedReplicas") == self.replicas
                and status.get("replicas") == self.replicas
                and status.get("availableReplicas") == self.replicas
            )
            if available and rolled_out:
                self._reach(label)


async def _open(directory: Path) -> tuple[LogStore, Projections, Registry]:
    log = await LogStore.open(directory / "log")
    projections = await Projections.open(f"sqlite+aiosqlite:///{directory}/p.db", log)
    registry = Registry(
        proposer=SingleVoter(log),
        projections=projections,
        commit_index=lambda: log.commit_index,
        token_key=b"b" * 32,
    )
    await bootstrap(registry)
    return log, projections, registry


def _context() -> RequestContext:
    return RequestContext(actor=_ADMIN, request_id="bench", now=datetime.now(UTC))


async def _controllers_run(directory: Path, replicas: int, nodes: int) -> dict[str, Any]:
    log, projections, registry = await _open(directory)
    manager = ControllerManager(registry)
    manager.add(ReplicaSetController(registry, manager.informers))
    manager.add(DeploymentController(registry, manager.informers))
    manager.add(GarbageCollector(registry, manager.informers))
    manager.add(_Kubelet(registry, nodes))
    manager.start()
    tasks: list[asyncio.Task[None]] = []
    try:
        await asyncio.gather(*(i.synced.wait() for i in manager.informers))
        entries_before = log.last_index
        listed = await registry.list(_PODS, "default")
        start = time.perf_counter()
        milestones = _Milestones(registry, replicas, start)
        since = str(listed.resource_version)
        tasks = [
            asyncio.create_task(milestones.follow_pods("nginx:1", since)),
            asyncio.create_task(milestones.follow_deployment("available", since)),
        ]
        await registry.create(_context(), _DEPLOYMENTS, "default", _deployment(replicas, "nginx:1"))
        await milestones.wait("available").wait()
        await milestones.wait("running nginx:1").wait()
        created_entries = log.last_index - entries_before
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

        listed = await registry.list(_PODS, "default")
        rollout = _Milestones(registry, replicas, time.perf_counter())
        since = str(listed.resource_version)
        tasks = [
            asyncio.create_task(rollout.follow_pods("nginx:2", since)),
            asyncio.create_task(rollout.follow_deployment("rolled out", since)),
        ]
        patch = {
            "spec": {"template": {"spec": {"containers": [{"name": "web", "image": "nginx:2"}]}}}
        }
        await registry.patch(_context(), _DEPLOYMENTS, "default", "bench", "strategic", patch)
        await rollout.wait("rolled out").wait()
        dropped = sum(c.events.dropped for c in manager.controllers)
        return {
            "created": milestones.at["created nginx:1"],
            "running": milestones.at["running nginx:1"],
            "available": milestones.at["available"],
            "entries": created_entries,
            "rolled_out": rollout.at["rolled out"],
            "dropped": dropped,
        }
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await manager.stop()
        await projections.close()
        await log.close()


async def _ceiling(directory: Path, replicas: int) -> float:
    """Seconds to create, bind and report Running the same number of pods, no controllers."""
    log, projections, registry = await _open(directory)
    template = _deployment(replicas, "nginx:1")["spec"]["template"]
    semaphore = asyncio.Semaphore(_IN_FLIGHT)

    async def one(i: int) -> None:
        async with semaphore:
            body = {"apiVersion": "v1", "kind": "Pod", **copy.deepcopy(template)}
            body["metadata"]["generateName"] = "bench-"
            pod = await registry.create(_context(), _PODS, "default", body)
            binding = {
                "metadata": {"name": pod.name},
                "target": {"kind": "Node", "name": f"node-{i % 100:03d}"},
            }
            bound = await registry.bind(_context(), "default", binding)
            running = copy.deepcopy(bound.object)
            running["status"] = _running(running, datetime.now(UTC))
            await registry.update(
                _context(), _PODS, "default", pod.name, running, subresource="status"
            )

    try:
        start = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(replicas)))
        return time.perf_counter() - start
    finally:
        await projections.close()
        await log.close()


def _run(step: Callable[[Path], Any]) -> Any:
    directory = Path(tempfile.mkdtemp(prefix="engenho-bench-workloads-"))
    try:
        return uvloop.run(step(directory))
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def main(quick: bool) -> None:
    replicas, nodes = (100, 10) if quick else (1000, 100)
    result = _run(lambda d: _controllers_run(d, replicas, nodes))
    ceiling = _run(lambda d: _ceiling(d, replicas))
    table = Table(title=f"Deployment of {replicas:,} replicas on {nodes} fake nodes")
    table.add_column("milestone")
    table.add_column("seconds", justify="right")
    table.add_column("pods/s", justify="right")
    for label, key in (
        ("every pod created", "created"),
        ("every pod Running", "running"),
        ("Deployment Available, rolled out", "available"),
        ("rolling update to a new image, rolled out", "rolled_out"),
    ):
        seconds = result[key]
        table.add_row(label, f"{seconds:.2f}", f"{replicas / seconds:,.0f}")
    table.add_row(
        "ceiling: same pod writes, no controllers", f"{ceiling:.2f}", f"{replicas / ceiling:,.0f}"
    )
    console.print(table)
    console.print(
        f"log entries until Available: {result['entries']:,} "
        f"({result['entries'] / replicas:.1f} per pod); events dropped: {result['dropped']}; "
        f"controllers reach Available at {ceiling / result['available']:.0%} of the ceiling's pace"
    )
