"""The apiserver end to end, over HTTPS against a real `engenho server` subprocess:

- creates/s with 32 keep-alive connections (ConfigMaps with generateName), p50/p99, beside the
  raw log append rate at 32 proposers on the same disk in the same run;
- LIST of 10,000 ConfigMaps (JSON, one request);
- watch delivery: 100 watchers, paced creates; latency from the create's acknowledgement to
  each watcher receiving the event.

Creates are driven by wrk (Debian's package; `make bench` installs it) because a Python load
generator would saturate the same two cores first; without wrk they fall back to httpx and
say so.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import orjson
import uvloop
from rich.console import Console
from rich.table import Table

from benchmarks.bench_log import append_rate

console = Console()
_SERVING = re.compile(r"engenho is serving at (https://\S+);")
_BODY = orjson.dumps(
    {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"generateName": "bench-"},
        "data": {"k": "v"},
    }
)


def start_server(data_dir: Path) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "engenho",
            "--log-level",
            "WARNING",
            "server",
            "--data-dir",
            str(data_dir),
            "--listen",
            "127.0.0.1:0",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    for line in process.stdout:
        match = _SERVING.search(line)
        if match:
            return process, match.group(1)
    raise RuntimeError("the server did not start")


def client(data_dir: Path, url: str, **kwargs: object) -> httpx.AsyncClient:
    token = (data_dir / "pki" / "admin.token").read_text().strip()
    context = ssl.create_default_context(cafile=str(data_dir / "pki" / "ca.crt"))
    return httpx.AsyncClient(
        base_url=url,
        verify=context,
        headers={"Authorization": f"Bearer {token}"},
        timeout=60,
        **kwargs,  # type: ignore[arg-type]
    )


def wrk_creates(data_dir: Path, url: str, seconds: float) -> tuple[float, str, str] | None:
    wrk = shutil.which("wrk")
    if wrk is None:
        return None
    token = (data_dir / "pki" / "admin.token").read_text().strip()
    script = data_dir / "post.lua"
    script.write_text(
        'wrk.method = "POST"\n'
        f"wrk.body = '{_BODY.decode()}'\n"
        'wrk.headers["Content-Type"] = "application/json"\n'
        f'wrk.headers["Authorization"] = "Bearer {token}"\n'
    )
    out = subprocess.run(
        [
            wrk,
            "-t1",
            "-c32",
            f"-d{seconds:.0f}s",
            "--latency",
            "-s",
            str(script),
            f"{url}/api/v1/namespaces/default/configmaps",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = re.search(r"50%\s+(\S+)", out).group(1)  # type: ignore[union-attr]
    p99 = re.search(r"99%\s+(\S+)", out).group(1)  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        raise RuntimeError(f"wrk saw {errors.group(1)} failed requests:\n{out}")
    return rate, p50, p99


async def python_creates(data_dir: Path, url: str, seconds: float) -> tuple[float, str, str]:
    latencies: list[float] = []
    stop = time.perf_counter() + seconds
    async with client(data_dir, url, limits=httpx.Limits(max_connections=32)) as http:

        async def worker() -> None:
            while time.perf_counter() < stop:
                started = time.perf_counter()
                response = await http.post(
                    "/api/v1/namespaces/default/configmaps",
                    content=_BODY,
                    headers={"Content-Type": "application/json"},
                )
                response.raise_for_status()
                latencies.append(time.perf_counter() - started)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(32)))
        elapsed = time.perf_counter() - started
    latencies.sort()
    return (
        len(latencies) / elapsed,
        f"{latencies[len(latencies) // 2] * 1000:.1f}ms",
        f"{latencies[int(len(latencies) * 0.99)] * 1000:.1f}ms",
    )


async def seed_and_list(data_dir: Path, url: str, count: int) -> tuple[float, int]:
    async with client(data_dir, url, limits=httpx.Limits(max_connections=32)) as http:
        await http.post(
            "/api/v1/namespaces",
            json={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "listing"}},
        )
        queue = list(range(count))

        async def worker() -> None:
            while queue:
                i = queue.pop()
                body = {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "metadata": {"name": f"cm-{i:05d}"},
                    "data": {"payload": "x" * 900},
                }
                (
                    await http.post("/api/v1/namespaces/listing/configmaps", json=body)
                ).raise_for_status()

        await asyncio.gather(*(worker() for _ in range(32)))
        timings = []
        items = 0
        for _ in range(5):
            started = time.perf_counter()
            response = await http.get("/api/v1/namespaces/listing/configmaps")
            response.raise_for_status()
            items = len(orjson.loads(response.content)["items"])
            timings.append(time.perf_counter() - started)
    return statistics.median(timings), items


async def watch_delivery(data_dir: Path, url: str, watchers: int, changes: int) -> list[float]:
    delays: list[float] = []
    acknowledged: dict[str, float] = {}
    async with client(data_dir, url, limits=httpx.Limits(max_connections=watchers + 4)) as http:
        await http.post(
            "/api/v1/namespaces",
            json={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "watching"}},
        )
        listed = await http.get("/api/v1/namespaces/watching/configmaps")
        rv = orjson.loads(listed.content)["metadata"]["resourceVersion"]
        ready = asyncio.Event()
        opened = 0

        async def watcher() -> None:
            nonlocal opened
            seen = 0
            async with http.stream(
                "GET",
                f"/api/v1/namespaces/watching/configmaps?watch=1&resourceVersion={rv}",
            ) as response:
                opened += 1
                if opened == watchers:
                    ready.set()
                async for line in response.aiter_lines():
                    if not line:
                        continue
                    arrived = time.perf_counter()
                    name = orjson.loads(line)["object"]["metadata"]["name"]
                    while name not in acknowledged:  # the 201 may arrive after the event
                        await asyncio.sleep(0)
                        arrived = max(arrived, time.perf_counter())
                    delays.append(max(0.0, arrived - acknowledged[name]))
                    seen += 1
                    if seen == changes:
                        return

        tasks = [asyncio.create_task(watcher()) for _ in range(watchers)]
        await asyncio.wait_for(ready.wait(), 60)
        for i in range(changes):
            name = f"w-{i}"
            body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}}
            started = time.perf_counter()
            (
                await http.post("/api/v1/namespaces/watching/configmaps", json=body)
            ).raise_for_status()
            acknowledged[name] = started + (time.perf_counter() - started)
            await asyncio.sleep(0.02)
        await asyncio.wait_for(asyncio.gather(*tasks), 120)
    return sorted(delays)


def main(quick: bool = False) -> None:
    seconds = 3.0 if quick else 10.0
    base = Path(tempfile.mkdtemp(prefix="engenho-bench-api-", dir=os.environ.get("BENCH_DIR")))
    process, url = start_server(base / "data")
    try:
        raw, _ = uvloop.run(append_rate(base / "raw-log", 32, min(seconds, 5)))
        measured = wrk_creates(base / "data", url, seconds)
        driver = "wrk"
        if measured is None:
            driver = "httpx (wrk not installed: client-bound)"
            measured = uvloop.run(python_creates(base / "data", url, seconds))
        rate, p50, p99 = measured
        table = Table(title="HTTPS creates, 32 keep-alive connections")
        for column in ("what", "per second", "p50", "p99", "x raw log appends"):
            table.add_column(column, justify="right")
        table.add_row("raw log appends (32 proposers)", f"{raw:,.0f}", "", "", "1.00")
        table.add_row(
            f"ConfigMap creates ({driver})", f"{rate:,.0f}", p50, p99, f"{rate / raw:.2f}"
        )
        console.print(table)

        count = 2_000 if quick else 10_000
        seconds_list, items = uvloop.run(seed_and_list(base / "data", url, count))
        console.print(
            f"LIST of {items:,} ConfigMaps (1 KiB each): {seconds_list * 1000:.1f} ms (median of 5)"
        )

        watchers = 20 if quick else 100
        delays = uvloop.run(watch_delivery(base / "data", url, watchers, 20 if quick else 100))
        console.print(
            f"watch delivery, {watchers} watchers, {len(delays):,} events: "
            f"p50 {delays[len(delays) // 2] * 1000:.1f} ms, "
            f"p99 {delays[int(len(delays) * 0.99)] * 1000:.1f} ms, max {delays[-1] * 1000:.1f} ms"
        )
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(60)
        shutil.rmtree(base, ignore_errors=True)
