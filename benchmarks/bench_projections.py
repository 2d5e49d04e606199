"""Projection throughput and latency, beside raw log appends measured in the same run.

* applier: entries/s applied (1 KiB ConfigMap creates) when catching up on a reopened log
  (which includes reading and decoding it), and when applying live behind 64 proposers,
  beside the log's own appends/s for the same commands;
* LIST of 10,000 1 KiB ConfigMaps from the projection (whole, and in pages of 500 at one
  index): stored bytes, no JSON parsing;
* subscription delivery latency (commit → change delivered) at 100 subscribers.

SQLite (the default backend), on the event loop the server uses (uvloop).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import uvloop
from rich.console import Console
from rich.table import Table

from benchmarks.bench_log import one_kib_command
from engenho.log import LogOptions, LogStore
from engenho.projections import ProjectionOptions, Projections, sqlite_url

console = Console()


async def fill_log(log: LogStore, count: int, proposers: int) -> float:
    """Append ``count`` 1 KiB creates from ``proposers`` concurrent proposers; appends/s."""
    commands = [one_kib_command(i) for i in range(count)]
    started = time.perf_counter()

    async def proposer(offset: int) -> None:
        for i in range(offset, count, proposers):
            entries = await log.append([commands[i]], term=1)
            log.commit_to(max(log.commit_index, entries[-1].index))  # one voter

    async with asyncio.TaskGroup() as group:
        for p in range(proposers):
            group.create_task(proposer(p), name=f"bench-proposer-{p}")
    return count / (time.perf_counter() - started)


async def catch_up(base: Path, count: int) -> tuple[float, float, float]:
    """Fill a log, then time a fresh projection catching up (reading the log from disk);
    (appends/s, log reads/s, applied/s)."""
    async with await LogStore.open(base / "log") as log:
        append_rate = await fill_log(log, count, proposers=64)
    async with await LogStore.open(base / "log", LogOptions(recent_entries=1)) as log:
        started = time.perf_counter()
        index = 1
        while index <= log.last_index:
            index = (await log.read(index, limit=1024))[-1].index + 1
        read_rate = count / (time.perf_counter() - started)
    # Reopened, as after a restart: every entry is read from disk (and decoded) again.
    async with await LogStore.open(base / "log") as log:
        log.commit_to(log.last_index)
        started = time.perf_counter()
        async with await Projections.open(sqlite_url(base / "catch-up.db"), log) as projections:
            await projections.wait_for(count)
            apply_rate = count / (time.perf_counter() - started)
    return append_rate, read_rate, apply_rate


async def live(base: Path, count: int, subscribers: int = 0) -> tuple[float, float]:
    """Proposers append while the projection applies (and ``subscribers`` watch every
    change); (appends/s, applied/s end to end)."""
    name = f"live-{subscribers}"
    async with (
        await LogStore.open(base / f"log-{name}") as log,
        await Projections.open(
            sqlite_url(base / f"{name}.db"),
            log,
            options=ProjectionOptions(subscriber_buffer=count + 1),
        ) as projections,
    ):

        async def watcher() -> None:
            async with projections.subscribe("", "configmaps", None, 0) as subscription:
                async for change in subscription:
                    if change.index == count:
                        return

        started = time.perf_counter()
        async with asyncio.TaskGroup() as group:
            for w in range(subscribers):
                group.create_task(watcher(), name=f"bench-live-watcher-{w}")
            append_rate = await fill_log(log, count, proposers=64)
            await projections.wait_for(count)
        return append_rate, count / (time.perf_counter() - started)


async def list_times(base: Path, objects: int) -> tuple[list[float], list[float], int]:
    """LIST ``objects`` ConfigMaps of one namespace: whole, and in pages of 500 at one index."""
    async with (
        await LogStore.open(base / "log-list") as log,
        await Projections.open(sqlite_url(base / "list.db"), log) as projections,
    ):
        for start in range(0, objects, 1000):
            commands = [one_kib_command(i) for i in range(start, min(objects, start + 1000))]
            entries = await log.append(commands, term=1)
            log.commit_to(entries[-1].index)
        await projections.wait_for(objects)
        whole: list[float] = []
        paged: list[float] = []
        size = 0
        for _ in range(7):
            started = time.perf_counter()
            page = await projections.list("", "configmaps", "bench")
            whole.append(time.perf_counter() - started)
            size = len(page.items)
            started = time.perf_counter()
            at, after, more, seen = None, None, True, 0
            while more:
                page = await projections.list(
                    "", "configmaps", "bench", at=at, after=after, limit=500
                )
                at, more = page.index, page.more
                after = (page.items[-1].namespace, page.items[-1].name)
                seen += len(page.items)
            paged.append(time.perf_counter() - started)
            assert seen == size == objects
        return whole, paged, size


async def watch_latency(base: Path, subscribers: int, changes: int) -> list[float]:
    delays: list[float] = []
    committed_at: dict[int, float] = {}
    async with (
        await LogStore.open(base / "log-watch") as log,
        await Projections.open(
            sqlite_url(base / "watch.db"),
            log,
            options=ProjectionOptions(subscriber_buffer=changes + 1),
        ) as projections,
    ):

        async def watcher() -> None:
            async with projections.subscribe("", "configmaps", None, 0) as subscription:
                async for change in subscription:
                    delays.append(time.perf_counter() - committed_at[change.index])
                    if change.index == changes:
                        return

        async with asyncio.TaskGroup() as group:
            for w in range(subscribers):
                group.create_task(watcher(), name=f"bench-watcher-{w}")
            await asyncio.sleep(0.05)
            for i in range(changes):
                entries = await log.append([one_kib_command(i)], term=1)
                committed_at[entries[-1].index] = time.perf_counter()
                log.commit_to(entries[-1].index)
                await asyncio.sleep(0.002)  # paced: latency, not throughput
    return delays


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main(quick: bool = False) -> None:
    count = 10_000 if quick else 30_000
    base = Path(tempfile.mkdtemp(prefix="engenho-bench-proj-", dir=os.environ.get("BENCH_DIR")))
    try:
        append_rate, read_rate, apply_rate = uvloop.run(catch_up(base, count))
        live_append, live_apply = uvloop.run(live(base, count))
        watched_append, watched_apply = uvloop.run(live(base, count, subscribers=100))
        table = Table(title=f"projection applier, {count:,} 1 KiB ConfigMap creates (SQLite)")
        for column in ("mode", "log appends/s", "applied/s", "applied / appended"):
            table.add_column(column, justify="right")
        table.add_row(
            "catch up",
            f"{append_rate:,.0f}",
            f"{apply_rate:,.0f}",
            f"{apply_rate / append_rate:.2f}",
        )
        table.add_row(
            "live, 64 proposers",
            f"{live_append:,.0f}",
            f"{live_apply:,.0f}",
            f"{live_apply / live_append:.2f}",
        )
        table.add_row(
            "live, + 100 watchers",
            f"{watched_append:,.0f}",
            f"{watched_apply:,.0f}",
            f"{watched_apply / watched_append:.2f}",
        )
        console.print(table)
        console.print(
            f"(catching up reads the log from disk: the log alone reads {read_rate:,.0f} "
            "entries/s here)"
        )

        whole, paged, size = uvloop.run(list_times(base, 10_000))
        console.print(
            f"LIST {size:,} ConfigMaps (1 KiB): whole {statistics.median(whole) * 1000:.1f} ms "
            f"(median of {len(whole)}; best {min(whole) * 1000:.1f} ms); "
            f"{size // 500} pages of 500 at one index {statistics.median(paged) * 1000:.1f} ms"
        )

        subscribers, changes = 100, (200 if quick else 1000)
        delays = uvloop.run(watch_latency(base, subscribers, changes))
        console.print(
            f"watch delivery, {subscribers} subscribers, {changes:,} paced changes: "
            f"p50 {percentile(delays, 0.5) * 1000:.2f} ms, "
            f"p99 {percentile(delays, 0.99) * 1000:.2f} ms, "
            f"max {max(delays) * 1000:.2f} ms ({len(delays):,} deliveries)"
        )
    finally:
        shutil.rmtree(base, ignore_errors=True)
