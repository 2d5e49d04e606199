"""Endpoints and EndpointSlices of one Service while 1,000 of its pods become ready.

In process (a real log, SQLite projections and the registry, as `engenho server` runs them):
1,000 pods selected by one Service run on one node with an IP but not ready, and the
controllers have published them as not ready. Then every pod's Ready condition turns True
(status writes from 32 concurrent "kubelets"), and we time, from the first of those writes:

- the status writes alone (the rate the controllers have to keep up with);
- until the EndpointSlices show every endpoint ready (EndpointSlice controller alone), and
  until the Endpoints object lists every address as ready (endpoints controller alone);
- how many writes each controller made to get there, and the slice layout it ended with;

beside the same status writes with no controller running, and with only the informers the
EndpointSlice controller keeps (the baselines: what following the change feed costs the
writers on the shared event loop, and what the controller's own work adds).

The controllers run one at a time so that each has the event loop to itself; each run starts
from a fresh data directory. Ratios against the status writes are the figures to compare
across machines.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import uvloop
from rich.console import Console
from rich.table import Table

from engenho.log import Actor, LogStore
from engenho.projections import Projections, sqlite_url
from engenho.reconcilers import (
    Controller,
    ControllerManager,
    EndpointsController,
    EndpointSliceController,
)
from engenho.registry import Registry, RequestContext
from engenho.replication import SingleVoter
from engenho.schema import CATALOGUE
from engenho.server import bootstrap

console = Console()
ADMIN = Actor("admin", ("system:masters",))
KUBELET = Actor("system:node:node-1", ("system:nodes", "system:authenticated"))
WRITERS = 32

_Json = dict[str, Any]


class Watching(Controller):
    """The informers the EndpointSlice controller keeps, and nothing done with them: what
    following the change feed alone costs the writers."""

    name = "informers only"
    identity = ADMIN

    def setup(self) -> None:
        self.watch_primary(CATALOGUE.get("", "v1", "services"))
        for plural in ("pods", "nodes"):
            self.informers.get(CATALOGUE.get("", "v1", plural))
        self.informers.get(CATALOGUE.get("discovery.k8s.io", "v1", "endpointslices"))

    async def reconcile(self, key: str) -> None:
        return None


def _ctx(actor: Actor = ADMIN) -> RequestContext:
    return RequestContext(actor=actor, request_id="bench", now=datetime.now(UTC))


def _ip(number: int) -> str:
    return f"10.42.{number // 250}.{number % 250 + 1}"


def _status(number: int, ready: bool) -> _Json:
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return {
        "phase": "Running",
        "podIP": _ip(number),
        "podIPs": [{"ip": _ip(number)}],
        "conditions": [
            {"type": "Ready", "status": "True" if ready else "False", "lastTransitionTime": stamp}
        ],
    }


async def _parallel(count: int, write: Callable[[int], Any]) -> None:
    async def writer(offset: int) -> None:
        for number in range(offset, count, WRITERS):
            await write(number)

    async with asyncio.TaskGroup() as group:
        for offset in range(WRITERS):
            group.create_task(writer(offset), name=f"bench-writer-{offset}")


async def _seed(registry: Registry, pods: int) -> None:
    node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-1"}}
    await registry.create(_ctx(), CATALOGUE.get("", "v1", "nodes"), "", node)
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "bench"},
        "spec": {"selector": {"app": "bench"}, "ports": [{"name": "http", "port": 80}]},
    }
    await registry.create(_ctx(), CATALOGUE.get("", "v1", "services"), "default", service)
    pod_type = CATALOGUE.get("", "v1", "pods")

    async def create(number: int) -> None:
        body = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": f"bench-{number}", "labels": {"app": "bench"}},
            "spec": {
                "nodeName": "node-1",
                "containers": [{"name": "app", "image": "nginx", "ports": [{"containerPort": 80}]}],
            },
        }
        stored = await registry.create(_ctx(), pod_type, "default", body)
        await _set_status(registry, stored.object, number, ready=False)

    await _parallel(pods, create)


async def _set_status(registry: Registry, pod: _Json, number: int, *, ready: bool) -> None:
    body = {**pod, "status": _status(number, ready)}
    await registry.update(
        _ctx(KUBELET),
        CATALOGUE.get("", "v1", "pods"),
        "default",
        pod["metadata"]["name"],
        body,
        subresource="status",
    )


async def _slices(registry: Registry) -> list[_Json]:
    listed = await registry.list(
        CATALOGUE.get("discovery.k8s.io", "v1", "endpointslices"), "default"
    )
    return [item.object for item in listed.items]


async def _slices_ready(registry: Registry, pods: int, ready: bool) -> bool:
    endpoints = [e for s in await _slices(registry) for e in s["endpoints"]]
    return len(endpoints) == pods and all(e["conditions"]["ready"] is ready for e in endpoints)


async def _endpoints_ready(registry: Registry, pods: int, ready: bool) -> bool:
    stored = await registry.projections.get("", "endpoints", "default", "bench")
    if stored is None:
        return False
    field = "addresses" if ready else "notReadyAddresses"
    return sum(len(s.get(field, ())) for s in stored.object.get("subsets") or ()) == pods


async def _nothing(_registry: Registry, _pods: int, _ready: bool) -> bool:
    return True


async def _wait(check: Callable[[], Any], within: float = 300) -> None:
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            raise TimeoutError("the controller never converged")
        await asyncio.sleep(0.005)


async def _writes_by(log: LogStore, start: int, user: str) -> int:
    count, index = 0, start
    while index <= log.last_index:
        entries = await log.read(index, limit=1024)
        count += sum(1 for e in entries if e.command.actor.user == user)
        index = entries[-1].index + 1
    return count


async def run(base: Path, pods: int, which: type[Controller] | None) -> dict[str, Any]:
    """Seed, converge on not-ready, then time every pod becoming ready (with no controller:
    the status writes alone, the baseline)."""
    async with (
        await LogStore.open(base / "log") as log,
        await Projections.open(sqlite_url(base / "projections.db"), log) as projections,
    ):
        registry = Registry(
            proposer=SingleVoter(log),
            projections=projections,
            commit_index=lambda: log.commit_index,
            token_key=b"k" * 32,
        )
        await bootstrap(registry)
        await _seed(registry, pods)
        converged: Callable[[Registry, int, bool], Awaitable[bool]] = _endpoints_ready
        if which is EndpointSliceController:
            converged = _slices_ready
        elif which is Watching:
            converged = _nothing
        manager = ControllerManager(registry)
        if which is not None:
            manager.add(which(registry, manager.informers, workers=5))
            manager.start()
        try:
            if which is not None:
                await _wait(lambda: converged(registry, pods, False))
            listed = await registry.list(CATALOGUE.get("", "v1", "pods"), "default")
            by_name = {item.name: item.object for item in listed.items}
            first = log.last_index + 1
            started = time.perf_counter()

            async def ready(number: int) -> None:
                await _set_status(registry, by_name[f"bench-{number}"], number, ready=True)

            await _parallel(pods, ready)
            written = time.perf_counter() - started
            if which is not None:
                await _wait(lambda: converged(registry, pods, True))
            done = time.perf_counter() - started
        finally:
            await manager.stop()
        writes = await _writes_by(log, first, which.identity.user) if which else 0
        writes = 0 if which is Watching else writes
        sizes = sorted(len(s["endpoints"]) for s in await _slices(registry))
        return {"status": written, "converged": done, "writes": writes, "sizes": sizes}


def main(quick: bool = False) -> None:
    pods = 200 if quick else 1_000
    base = Path(tempfile.mkdtemp(prefix="engenho-bench-ep-", dir=os.environ.get("BENCH_DIR")))
    try:
        table = Table(title=f"1 Service, {pods:,} pods turning ready (32 status writers)")
        columns = ("controller", "status writes", "converged after", "x writes", "its writes")
        for column in columns:
            table.add_column(column, justify="right")
        layout = ""
        for which in (None, Watching, EndpointSliceController, EndpointsController):
            name = which.name if which is not None else "none (baseline)"
            result = uvloop.run(run(base / name, pods, which))
            table.add_row(
                name,
                f"{result['status']:.2f} s ({pods / result['status']:,.0f}/s)",
                f"{result['converged']:.2f} s",
                f"{result['converged'] / result['status']:.2f}",
                f"{result['writes']:,}",
            )
            if which is EndpointSliceController:
                layout = f"EndpointSlice sizes at the end: {result['sizes']}"
        console.print(table)
        console.print(layout)
    finally:
        shutil.rmtree(base, ignore_errors=True)
