"""A real log, projections and registry for the node controllers, with helpers that play the
kubelet's part (register a node, keep its Lease, post its Ready condition, run its pods) and a
clock the tests move by hand."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from attrs import define, field

from engenho.log import Actor, LogStore
from engenho.projections import Projections, StoredObject
from engenho.reconcilers import Controller, ControllerManager
from engenho.registry import AdmissionSettings, NetworkSettings, Registry, RequestContext
from engenho.replication import SingleVoter
from engenho.schema import CATALOGUE, ResourceType
from engenho.server import bootstrap

ADMIN = Actor("admin", ("system:masters",))
NODES = CATALOGUE.get("", "v1", "nodes")
PODS = CATALOGUE.get("", "v1", "pods")
LEASES = CATALOGUE.get("coordination.k8s.io", "v1", "leases")
EVENTS = CATALOGUE.get("", "v1", "events")


class ManualClock:
    """A clock that moves only when told (starts at the current second)."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 10) -> None:
    """Wait until ``check`` holds, failing after ``timeout`` seconds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "condition never held"
        await asyncio.sleep(0.01)


def _micro(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@define
class Cluster:
    log: LogStore
    projections: Projections
    registry: Registry
    manager: ControllerManager | None = None
    beats: int = 0
    _tasks: list[asyncio.Task[None]] = field(factory=list)

    def ctx(self) -> RequestContext:
        return RequestContext(actor=ADMIN, request_id="test", now=datetime.now(UTC))

    @staticmethod
    def rt(plural: str, group: str = "", version: str = "v1") -> ResourceType:
        return CATALOGUE.get(group, version, plural)

    def run(self, *controllers: Callable[[ControllerManager], Controller]) -> None:
        """Start controllers (built over one manager's shared informers)."""
        assert self.manager is None
        self.manager = ControllerManager(self.registry)
        for build in controllers:
            self.manager.add(build(self.manager))
        self.manager.start()

    async def stop(self) -> None:
        if self.manager is not None:
            await self.manager.stop()
            self.manager = None

    # ------------------------------------------------------------------ reading

    async def node(self, name: str) -> StoredObject | None:
        return await self.projections.get("", "nodes", "", name)

    async def pod(self, name: str, namespace: str = "default") -> StoredObject | None:
        return await self.projections.get("", "pods", namespace, name)

    async def events(self, reason: str) -> list[dict[str, Any]]:
        listed = await self.registry.list(EVENTS, None)
        return [e.object for e in listed.items if e.object.get("reason") == reason]

    # ------------------------------------------------------------------ the kubelet's part

    def _heartbeat(self) -> str:
        self.beats += 1  # a new heartbeat each time, whatever the clock says
        moment = datetime(2020, 1, 1, tzinfo=UTC) + timedelta(seconds=self.beats)
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")

    async def register(
        self,
        name: str,
        *,
        ready: str | None = "True",
        lease: bool = True,
        labels: dict[str, str] | None = None,
        **spec: Any,
    ) -> StoredObject:
        body: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": name, "labels": labels or {}},
            "spec": spec,
        }
        if ready is not None:
            body["status"] = {"conditions": [self._ready(ready)]}
        stored = await self.registry.create(self.ctx(), NODES, "", body)
        if lease:
            await self.registry.create(
                self.ctx(),
                LEASES,
                "kube-node-lease",
                {
                    "apiVersion": "coordination.k8s.io/v1",
                    "kind": "Lease",
                    "metadata": {"name": name, "namespace": "kube-node-lease"},
                    "spec": {
                        "holderIdentity": name,
                        "leaseDurationSeconds": 40,
                        "renewTime": _micro(datetime.now(UTC)),
                    },
                },
            )
        return stored

    def _ready(self, status: str) -> dict[str, Any]:
        beat = self._heartbeat()
        return {
            "type": "Ready",
            "status": status,
            "reason": "KubeletReady" if status == "True" else "KubeletNotReady",
            "message": "kubelet is posting ready status",
            "lastHeartbeatTime": beat,
            "lastTransitionTime": beat,
        }

    async def renew(self, name: str) -> None:
        """Renew the node's Lease (renewTime strictly later than the last one)."""
        self.beats += 1
        moment = datetime.now(UTC) + timedelta(microseconds=self.beats)
        await self.registry.patch(
            self.ctx(),
            LEASES,
            "kube-node-lease",
            name,
            "merge",
            {"spec": {"renewTime": _micro(moment)}},
        )

    async def post(self, name: str, ready: str = "True", **conditions: str) -> None:
        """Post the node's conditions, as the kubelet does: Ready (with a new heartbeat) and
        any other ``Type=status``."""
        stored = await self.node(name)
        assert stored is not None
        posted = [self._ready(ready)] + [
            {"type": type_, "status": status, "lastHeartbeatTime": self._heartbeat()}
            for type_, status in conditions.items()
        ]
        kept = [
            c
            for c in (stored.object.get("status") or {}).get("conditions") or []
            if c["type"] not in {p["type"] for p in posted}
        ]
        await self.registry.patch(
            self.ctx(),
            NODES,
            "",
            name,
            "merge",
            {"status": {"conditions": kept + posted}},
            subresource="status",
        )

    async def run_pod(
        self, name: str, node: str, tolerations: list[dict[str, Any]] | None = None
    ) -> StoredObject:
        """A pod bound to ``node``, Running and Ready."""
        spec: dict[str, Any] = {
            "nodeName": node,
            "containers": [{"name": "app", "image": "registry.example/app:1"}],
        }
        if tolerations is not None:
            spec["tolerations"] = tolerations
        await self.registry.create(
            self.ctx(),
            PODS,
            "default",
            {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec},
        )
        return await self.registry.patch(
            self.ctx(),
            PODS,
            "default",
            name,
            "merge",
            {
                "status": {
                    "phase": "Running",
                    "conditions": [
                        {"type": "Ready", "status": "True"},
                    ],
                }
            },
            subresource="status",
        )

    def keep_alive(self, name: str, interval: float = 0.02) -> None:
        """Renew the node's Lease in the background until the test ends."""

        async def beat() -> None:
            while True:
                await self.renew(name)
                await asyncio.sleep(interval)

        self._tasks.append(asyncio.create_task(beat(), name=f"kubelet-{name}"))

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.stop()


async def open_cluster(
    tmp_path: Path,
    network: NetworkSettings | None = None,
    admission: AdmissionSettings | None = None,
) -> Cluster:
    log = await LogStore.open(tmp_path / "log")
    projections = await Projections.open(f"sqlite+aiosqlite:///{tmp_path}/p.db", log)
    registry = Registry(
        proposer=SingleVoter(log),
        projections=projections,
        commit_index=lambda: log.commit_index,
        token_key=b"k" * 32,
        bookmark_interval=0.2,
        network=network,
        admission=admission,
    )
    await bootstrap(registry)
    return Cluster(log, projections, registry)


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[Cluster]:
    made = await open_cluster(tmp_path)
    yield made
    await made.close()
    await made.projections.close()
    await made.log.close()
