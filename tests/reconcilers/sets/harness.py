"""An in-process cluster for the StatefulSet, DaemonSet, Job and CronJob tests: a real log,
projections and registry in a temporary directory, the controllers under test and the real
scheduler over shared informers, and a stand-in kubelet (there is no node agent yet) that
reports pods Running and Ready, or finished, through the status subresource, and completes the
deletion of pods being deleted, as a kubelet would."""

from __future__ import annotations

import asyncio
import contextlib
import copy
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from attrs import define, field

from engenho.log import Actor, LogStore
from engenho.projections import Projections, StoredObject
from engenho.reconcilers import Controller, ControllerManager, Source, object_key
from engenho.registry import (
    ConflictError,
    DeleteOptions,
    ListQuery,
    NotFoundError,
    Registry,
    RequestContext,
    WatchEvent,
    WatchQuery,
)
from engenho.registry.naming import format_timestamp
from engenho.replication import SingleVoter
from engenho.schema import CATALOGUE, ResourceType
from engenho.server import bootstrap

try:  # the real scheduler binds the pods when it is there (it is being built alongside)
    from engenho.reconcilers.scheduling.controller import Scheduler
except ImportError:  # pragma: no cover - the stand-in kubelet binds them instead
    Scheduler = None  # type: ignore[assignment,misc]

ADMIN = Actor("admin", ("system:masters",))
NAMESPACE = "default"
PODS = CATALOGUE.get("", "v1", "pods")
NODES = CATALOGUE.get("", "v1", "nodes")
EVENTS = CATALOGUE.get("", "v1", "events")

Verdict = Callable[[dict[str, Any]], str | None]
"""What the kubelet makes of a bound pod: ``"ready"``, ``"unready"`` (running, not ready),
``"Succeeded"`` or ``"Failed"`` (it finishes at once), or None (leave it pending)."""


def always_ready(_pod: dict[str, Any]) -> str | None:
    return "ready"


def container_template(labels: dict[str, str], image: str = "nginx", **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"labels": dict(labels)},
        "spec": {"containers": [{"name": "main", "image": image}], **spec},
    }


def node(
    name: str,
    *,
    labels: dict[str, str] | None = None,
    taints: list[dict[str, str]] | None = None,
    ready: str = "True",
    unschedulable: bool = False,
) -> dict[str, Any]:
    allocatable = {"cpu": "16", "memory": "32Gi", "pods": "110"}
    obj: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, **(labels or {})}},
        "spec": {},
        "status": {
            "capacity": dict(allocatable),
            "allocatable": allocatable,
            "conditions": [{"type": "Ready", "status": ready, "reason": "Test"}],
        },
    }
    if taints:
        obj["spec"]["taints"] = taints
    if unschedulable:
        obj["spec"]["unschedulable"] = True
    return obj


def _conditions(status: dict[str, Any], ready: bool, stamp: str) -> list[dict[str, Any]]:
    previous = {c.get("type"): c for c in status.get("conditions") or []}
    flag = "True" if ready else "False"

    def condition(type_: str, value: str) -> dict[str, Any]:
        old = previous.get(type_)
        since = (
            old.get("lastTransitionTime", stamp) if old and old.get("status") == value else stamp
        )
        return {"type": type_, "status": value, "lastProbeTime": None, "lastTransitionTime": since}

    return [
        condition("Initialized", "True"),
        condition("Ready", flag),
        condition("ContainersReady", flag),
        condition("PodScheduled", "True"),
    ]


def running_status(pod: dict[str, Any], *, ready: bool, now: datetime) -> dict[str, Any]:
    stamp = format_timestamp(now)
    status = copy.deepcopy(pod.get("status") or {})
    started = status.get("startTime", stamp)
    status.update(
        {
            "phase": "Running",
            "startTime": started,
            "conditions": _conditions(status, ready, stamp),
            "containerStatuses": [
                {
                    "name": c["name"],
                    "image": c.get("image", ""),
                    "imageID": f"fake://{c.get('image', '')}",
                    "containerID": f"fake://{c['name']}",
                    "ready": ready,
                    "started": True,
                    "restartCount": 0,
                    "state": {"running": {"startedAt": started}},
                }
                for c in (pod.get("spec") or {}).get("containers") or []
            ],
        }
    )
    return status


def finished_status(
    pod: dict[str, Any], *, phase: str, now: datetime, code: int | None = None
) -> dict[str, Any]:
    stamp = format_timestamp(now)
    status = copy.deepcopy(pod.get("status") or {})
    if code is None:
        code = 0 if phase == "Succeeded" else 1
    started = status.get("startTime", stamp)
    status.update(
        {
            "phase": phase,
            "startTime": started,
            "conditions": _conditions(status, False, stamp),
            "containerStatuses": [
                {
                    "name": c["name"],
                    "image": c.get("image", ""),
                    "imageID": f"fake://{c.get('image', '')}",
                    "containerID": f"fake://{c['name']}",
                    "ready": False,
                    "started": False,
                    "restartCount": 0,
                    "state": {
                        "terminated": {
                            "exitCode": code,
                            "reason": "Completed" if code == 0 else "Error",
                            "startedAt": started,
                            "finishedAt": stamp,
                        }
                    },
                }
                for c in (pod.get("spec") or {}).get("containers") or []
            ],
        }
    )
    return status


class Kubelet(Controller):
    """Plays every node: bound pods start as ``verdict`` says; pods being deleted are removed
    (grace period 0), as a kubelet does once their containers stopped."""

    name = "fake-kubelet"
    identity = Actor("system:node:fake", ("system:nodes", "system:authenticated"))

    def __init__(
        self, registry: Registry, *, verdict: Verdict = always_ready, binds: bool = False
    ) -> None:
        self.verdict = verdict
        self.binds = binds
        """Bind pending pods itself (when there is no scheduler)."""
        self.finished: dict[str, tuple[str, int | None]] = {}
        """Pods told to finish: uid -> (phase, exit code)."""
        super().__init__(registry, workers=8)

    def sources(self) -> list[Source]:
        def keys(event: WatchEvent) -> list[str]:
            if event.object is None or event.type == "DELETED":
                return []
            return [object_key(event.object)]

        return [Source(PODS, keys)]

    async def _bind(self, pod: StoredObject) -> None:
        """Stand in for the scheduler: the node a daemon pod's affinity names, else the first
        node."""
        spec = pod.object.get("spec") or {}
        terms = (
            ((spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
                "requiredDuringSchedulingIgnoredDuringExecution"
            )
            or {}
        ).get("nodeSelectorTerms") or []
        named = [
            e["values"][0]
            for t in terms
            for e in t.get("matchFields") or []
            if e.get("key") == "metadata.name"
        ]
        nodes = [n.name for n in (await self.registry.list(NODES, None)).items]
        target = named[0] if named else (nodes[0] if nodes else "")
        if not target or target not in nodes:
            return
        binding = {
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": pod.name, "uid": pod.uid},
            "target": {"apiVersion": "v1", "kind": "Node", "name": target},
        }
        with contextlib.suppress(NotFoundError, ConflictError):
            await self.registry.bind(self.context(), pod.namespace, binding)

    async def again(self, verdict: Verdict | None = None) -> None:
        """Look at every pod again (with a new verdict)."""
        if verdict is not None:
            self.verdict = verdict
        for pod in (await self.registry.list(PODS, None)).items:
            self.queue.add(object_key(pod))

    async def finish(self, name: str, phase: str = "Succeeded", code: int | None = None) -> None:
        """Make the pod ``name`` (as it is now: a later pod of that name is not touched)
        finish in ``phase`` (its containers exiting with ``code``)."""
        pod = await self.registry.get(PODS, NAMESPACE, name)
        self.finished[pod.uid] = (phase, code)
        self.queue.add(f"{NAMESPACE}/{name}")

    async def reconcile(self, key: str) -> None:
        namespace, _, name = key.partition("/")
        try:
            pod = await self.registry.get(PODS, namespace, name)
        except NotFoundError:
            return
        obj = pod.object
        status = obj.get("status") or {}
        if obj["metadata"].get("deletionTimestamp"):
            with contextlib.suppress(NotFoundError, ConflictError):
                await self.registry.delete(
                    self.context(),
                    PODS,
                    namespace,
                    name,
                    DeleteOptions(grace_period_seconds=0, precondition_uid=pod.uid),
                )
            return
        if not (obj.get("spec") or {}).get("nodeName"):
            if self.binds:
                await self._bind(pod)
            return
        if status.get("phase") in ("Succeeded", "Failed"):
            return
        now = datetime.now(UTC)
        verdict = self.verdict(obj)
        if pod.uid in self.finished:
            phase, code = self.finished[pod.uid]
            wanted = finished_status(obj, phase=phase, now=now, code=code)
        elif verdict in ("Succeeded", "Failed"):
            wanted = finished_status(obj, phase=verdict, now=now)
        else:
            if verdict is None:
                return
            ready = verdict == "ready"
            conditions = status.get("conditions") or []
            current = next((c.get("status") for c in conditions if c.get("type") == "Ready"), None)
            if status.get("phase") == "Running" and current == ("True" if ready else "False"):
                return
            wanted = running_status(obj, ready=ready, now=now)
        body = copy.deepcopy(obj)
        body["status"] = wanted
        try:
            await self.registry.update(
                self.context(), PODS, namespace, name, body, subresource="status"
            )
        except (NotFoundError, ConflictError):
            self.queue.add(key)


@define
class Harness:
    log: LogStore
    projections: Projections
    registry: Registry
    manager: ControllerManager
    kubelet: Kubelet
    controllers: dict[str, Controller] = field(factory=dict)

    def ctx(self) -> RequestContext:
        return RequestContext(actor=ADMIN, request_id="test", now=datetime.now(UTC))

    async def create(self, rt: ResourceType, body: dict[str, Any]) -> StoredObject:
        namespace = NAMESPACE if rt.namespaced else ""
        return await self.registry.create(self.ctx(), rt, namespace, copy.deepcopy(body))

    async def get(self, rt: ResourceType, name: str) -> dict[str, Any]:
        namespace = NAMESPACE if rt.namespaced else ""
        return (await self.registry.get(rt, namespace, name)).object

    async def maybe(self, rt: ResourceType, name: str) -> dict[str, Any] | None:
        try:
            return await self.get(rt, name)
        except NotFoundError:
            return None

    async def patch(
        self, rt: ResourceType, name: str, patch: Any, kind: str = "merge"
    ) -> StoredObject:
        namespace = NAMESPACE if rt.namespaced else ""
        return await self.registry.patch(self.ctx(), rt, namespace, name, kind, patch)

    async def delete(self, rt: ResourceType, name: str, **options: Any) -> None:
        namespace = NAMESPACE if rt.namespaced else ""
        await self.registry.delete(self.ctx(), rt, namespace, name, DeleteOptions(**options))

    async def items(self, rt: ResourceType, selector: str = "") -> list[dict[str, Any]]:
        namespace = NAMESPACE if rt.namespaced else None
        listed = await self.registry.list(rt, namespace, ListQuery(label_selector=selector))
        return [item.object for item in listed.items]

    async def pods(self, selector: str = "") -> list[dict[str, Any]]:
        return await self.items(PODS, selector)

    async def events(self, name: str) -> list[tuple[str, str, str]]:
        """(type, reason, message) of the events about ``name``, oldest first."""
        found = [
            e for e in await self.items(EVENTS) if e.get("involvedObject", {}).get("name") == name
        ]
        found.sort(key=lambda e: int(e["metadata"]["resourceVersion"]))
        return [(e["type"], e["reason"], e["message"]) for e in found]


async def saw(harness: Harness, name: str, *wanted: tuple[str, str, str]) -> None:
    """Wait until the events about ``name`` include each (type, reason, message) wanted
    (events are written by a recorder in the background, after the change they report)."""

    async def check() -> bool:
        events = await harness.events(name)
        return all(event in events for event in wanted)

    await eventually(check, message=f"events {wanted} about {name} never appeared")


async def saw_count(harness: Harness, name: str, reason: str, count: int) -> None:
    """Wait until exactly ``count`` events about ``name`` have ``reason``."""

    async def check() -> bool:
        return sum(1 for e in await harness.events(name) if e[1] == reason) == count

    await eventually(check, message=f"never {count} {reason} events about {name}")


async def eventually(
    check: Callable[[], Awaitable[Any]], timeout: float = 15, message: str = ""
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


@contextlib.asynccontextmanager
async def running(
    tmp_path: Path,
    build: Callable[[Registry, ControllerManager], Iterable[Controller]],
    *,
    scheduler: bool = True,
    verdict: Verdict = always_ready,
) -> AsyncIterator[Harness]:
    """A cluster with the controllers ``build`` makes (over the manager's informers), the
    scheduler and the kubelet, stopped on the way out."""
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
    scheduler = scheduler and Scheduler is not None
    kubelet = Kubelet(registry, verdict=verdict, binds=not scheduler)
    controllers = {c.name: c for c in build(registry, manager)}
    for controller in controllers.values():
        manager.add(controller)
    if scheduler:
        manager.add(Scheduler(registry, manager.informers, workers=4))
    manager.add(kubelet)
    manager.start()
    try:
        yield Harness(log, projections, registry, manager, kubelet, controllers)
    finally:
        await manager.stop()
        await projections.close()
        await log.close()


def is_ready(pod: dict[str, Any]) -> bool:
    """Running, Ready, and not being deleted."""
    status = pod.get("status") or {}
    ready = any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in status.get("conditions") or []
    )
    return (
        status.get("phase") == "Running" and ready and not pod["metadata"].get("deletionTimestamp")
    )


class Recorder:
    """Watches pods matching a label selector and keeps every event, in order, so a test can
    check an invariant at every step the cluster went through."""

    def __init__(self, registry: Registry, selector: str = "") -> None:
        self.registry = registry
        self.selector = selector
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.initial = 0
        """How many of the events are the pods that existed when recording began."""
        self._task: asyncio.Task[None] | None = None
        self._started = asyncio.Event()

    async def __aenter__(self) -> Recorder:
        self._task = asyncio.create_task(self._watch(), name="pod-recorder")
        await self._started.wait()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)

    async def _watch(self) -> None:
        listed = await self.registry.list(PODS, NAMESPACE, ListQuery(label_selector=self.selector))
        for item in listed.items:
            self.events.append(("ADDED", item.object))
        self.initial = len(listed.items)
        query = WatchQuery(
            label_selector=self.selector, resource_version=str(listed.resource_version)
        )
        self._started.set()
        async for event in self.registry.watch(PODS, NAMESPACE, query):
            if event.object is not None and event.type in ("ADDED", "MODIFIED", "DELETED"):
                self.events.append((event.type, event.object.object))

    def states(self) -> Iterable[dict[str, dict[str, Any]]]:
        """The pods that existed when recording began, then after each later event
        (name -> object)."""
        pods: dict[str, dict[str, Any]] = {}
        for position, (type_, obj) in enumerate(self.events, start=1):
            if type_ == "DELETED":
                pods.pop(obj["metadata"]["name"], None)
            else:
                pods[obj["metadata"]["name"]] = obj
            if position >= self.initial:
                yield pods

    def sequence(self, type_: str) -> list[str]:
        """Names of pods in the order they were first seen as ``type_`` ("ADDED",
        "DELETED"), or as being deleted ("DELETING")."""
        names: list[str] = []
        for kind, obj in self.events:
            name = obj["metadata"]["name"]
            deleting = kind == "DELETED" or obj["metadata"].get("deletionTimestamp")
            if (kind == type_ or (type_ == "DELETING" and deleting)) and name not in names:
                names.append(name)
        return names
