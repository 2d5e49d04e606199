"""engenho.client against a real `engenho server` subprocess, each figure beside the same
work done with bare httpx in the same run (the client's own cost is the ratio):

- creates/s with 32 concurrent tasks on one pooled client;
- GET latency (p50) one at a time;
- LIST of N ConfigMaps, paged by 500, as dicts and as typed models;
- a Watcher's delivery: N creates, time from the last acknowledgement to its event.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import orjson
import uvloop
from rich.console import Console
from rich.table import Table

from benchmarks.bench_api import client as bare_client
from benchmarks.bench_api import start_server
from engenho.client import KubeClient, Watcher, load_config
from engenho.schema.generated.models import core_v1

console = Console()


def configmap(name: str) -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name},
        "data": {"payload": "x" * 200},
    }


async def concurrently(count: int, make: Callable[[int], Awaitable[object]]) -> float:
    """Run ``make(i)`` for every i below ``count`` with 32 workers; returns calls/s."""
    queue = list(range(count))

    async def worker() -> None:
        while queue:
            await make(queue.pop())

    started = time.perf_counter()
    async with asyncio.TaskGroup() as group:
        for n in range(32):
            group.create_task(worker(), name=f"bench worker {n}")
    return count / (time.perf_counter() - started)


async def p50s(count: int, *calls: Callable[[], Awaitable[object]]) -> list[float]:
    """Median latency (ms) of each call, the calls interleaved so noise hits them alike."""
    timings: list[list[float]] = [[] for _ in calls]
    for _ in range(count):
        for call, samples in zip(calls, timings, strict=True):
            started = time.perf_counter()
            await call()
            samples.append(time.perf_counter() - started)
    return [statistics.median(samples) * 1000 for samples in timings]


async def measure(data_dir: Path, url: str, count: int) -> list[tuple[str, str, str]]:
    rows: list[tuple[str, str, str]] = []
    config = load_config(data_dir / "kubeconfig")
    async with (
        KubeClient(config) as kube,
        bare_client(data_dir, url, limits=httpx.Limits(max_connections=32)) as http,
    ):
        for ns in ("bare", "client"):
            await kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})

        async def bare_create(i: int) -> None:
            response = await http.post(
                "/api/v1/namespaces/bare/configmaps", content=orjson.dumps(configmap(f"b{i}"))
            )
            response.raise_for_status()

        async def client_create(i: int) -> None:
            await kube.create(configmap(f"c{i}"), namespace="client")

        # Alternate (bare, client, client, bare): the log and projections grow as the run
        # goes, so whichever ran second would otherwise look slower.
        half = count // 2
        rates: dict[str, list[float]] = {"bare": [], "client": []}
        for name, create, offset in (
            ("bare", bare_create, 0),
            ("client", client_create, 0),
            ("client", client_create, half),
            ("bare", bare_create, half),
        ):
            rates[name].append(await concurrently(half, lambda i, c=create, o=offset: c(i + o)))
        bare_rate, client_rate = (statistics.mean(rates[k]) for k in ("bare", "client"))
        rows.append(("creates/s (32 tasks)", f"{client_rate:,.0f}", f"{bare_rate:,.0f}"))

        async def bare_get() -> None:
            (await http.get("/api/v1/namespaces/bare/configmaps/b1")).raise_for_status()

        client_get_ms, bare_get_ms = await p50s(
            200, lambda: kube.get("configmaps", "c1", namespace="client"), bare_get
        )
        rows.append(("GET p50 (ms)", f"{client_get_ms:.2f}", f"{bare_get_ms:.2f}"))

        async def bare_list() -> int:
            items, token = 0, ""
            while True:
                params = {"limit": "500", **({"continue": token} if token else {})}
                response = await http.get("/api/v1/namespaces/bare/configmaps", params=params)
                body = orjson.loads(response.content)
                items += len(body["items"])
                token = body["metadata"].get("continue", "")
                if not token:
                    return items

        async def timed(call: Callable[[], Awaitable[object]]) -> float:
            started = time.perf_counter()
            await call()
            return (time.perf_counter() - started) * 1000

        bare_ms = statistics.median([await timed(bare_list) for _ in range(3)])
        dict_ms = statistics.median(
            [await timed(kube.list("cm", namespace="client").collect) for _ in range(3)]
        )
        typed_ms = statistics.median(
            [
                await timed(kube.list(core_v1.ConfigMap, namespace="client").collect)
                for _ in range(3)
            ]
        )
        rows.append((f"LIST {count} paged (ms), dicts", f"{dict_ms:.0f}", f"{bare_ms:.0f}"))
        rows.append((f"LIST {count} paged (ms), typed", f"{typed_ms:.0f}", f"{bare_ms:.0f}"))

        await kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "w"}})
        watcher: Watcher[dict[str, object]] = kube.watch("configmaps", namespace="w")
        received = 0
        done = asyncio.Event()

        async def consume() -> None:
            nonlocal received
            async with watcher:
                async for _ in watcher:
                    received += 1
                    if received == count:
                        done.set()
                        return

        consumer = asyncio.create_task(consume(), name="bench watcher")
        while watcher.connections == 0:  # noqa: ASYNC110 - a watcher has no "connected" event
            await asyncio.sleep(0.01)
        started = time.perf_counter()
        await concurrently(count, lambda i: kube.create(configmap(f"w{i}"), namespace="w"))
        acknowledged = time.perf_counter()
        await done.wait()
        await consumer
        lag = (time.perf_counter() - acknowledged) * 1000
        rate = count / (time.perf_counter() - started)
        rows.append(("watch: events/s while creating", f"{rate:,.0f}", "-"))
        rows.append(("watch: last event after last ack (ms)", f"{lag:.1f}", "-"))
    return rows


def main(quick: bool) -> None:
    count = 300 if quick else 2000
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        process, url = start_server(data_dir)
        try:
            rows = uvloop.run(measure(data_dir, url, count))
        finally:
            process.terminate()
            process.wait(30)
    table = Table(title=f"engenho.client vs bare httpx ({count} objects)")
    for column in ("measure", "engenho.client", "bare httpx"):
        table.add_column(column, justify="right" if column != "measure" else "left")
    for row in rows:
        table.add_row(*row)
    console.print(table)
