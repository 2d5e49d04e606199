"""Log throughput: durable appends/s at 1, 16 and 256 proposers beside the machine's raw
write+fdatasync rate measured in the same run, and the verifier's rate.

Commands are 1 KiB of canonical JSON. Appends use the event loop the server uses (uvloop). Each
proposer is a task with one append outstanding, as an API request is; the last row proposes
through ``SingleVoter`` (append, then commit), the path the registry takes.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from statistics import median

import attrs
import uvloop
from attrs import define
from rich.console import Console
from rich.table import Table

from engenho.log import (
    Actor,
    LogStore,
    Precondition,
    ResourceCommand,
    ResourceKey,
    Verb,
    encode_command,
    verify_log,
)
from engenho.replication import SingleVoter

console = Console()


def one_kib_command(i: int) -> ResourceCommand:
    cmd = ResourceCommand(
        verb=Verb.CREATE,
        key=ResourceKey("", "v1", "configmaps", "bench", f"cm-{i}"),
        uid=f"00000000-0000-0000-0000-{i:012d}",
        object={
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": f"cm-{i}", "namespace": "bench"},
            "data": {"payload": ""},
        },
        precondition=Precondition(must_not_exist=True),
        actor=Actor("admin", ("system:masters",)),
        request_id=f"bench-{i}",
        time=datetime.now(UTC),
    )
    assert cmd.object is not None
    cmd.object["data"]["payload"] = "x" * (1024 - len(encode_command(cmd)))
    assert len(encode_command(cmd)) == 1024
    return cmd


def raw_fsync_rate(directory: Path, seconds: float) -> float:
    path = directory / "raw"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    block = b"x" * 1024
    count, started = 0, time.perf_counter()
    try:
        while time.perf_counter() - started < seconds:
            os.write(fd, block)
            os.fdatasync(fd)
            count += 1
    finally:
        os.close(fd)
        path.unlink()
    return count / (time.perf_counter() - started)


@define
class Run:
    rate: float
    """Appends acknowledged per second."""
    batch: float
    """Mean entries per write+fdatasync."""
    sync_ms: float
    """Mean milliseconds per write+fdatasync (in the writer thread)."""
    cpu_us: float
    """Process CPU time per append, in microseconds (all threads)."""


async def measure(directory: Path, proposers: int, seconds: float, *, voter: bool = False) -> Run:
    """``proposers`` coroutines each appending one 1 KiB command at a time for ``seconds``.

    With ``voter`` they propose through :class:`SingleVoter`, so every entry is also committed.
    """
    commands = [one_kib_command(i) for i in range(512)]
    log = await LogStore.open(directory)
    propose = SingleVoter(log).propose if voter else None
    stop = time.perf_counter() + seconds
    done = 0

    async def proposer(offset: int) -> None:
        nonlocal done
        i = offset
        while time.perf_counter() < stop:
            if propose is not None:
                await propose([commands[i % len(commands)]])
            else:
                await log.append([commands[i % len(commands)]], term=1)
            done += 1
            i += proposers

    before = attrs.evolve(log.stats)
    cpu, started = time.process_time(), time.perf_counter()
    async with asyncio.TaskGroup() as group:
        for p in range(proposers):
            group.create_task(proposer(p))
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu
    batches = max(log.stats.batches - before.batches, 1)
    sync = log.stats.sync_seconds - before.sync_seconds
    log.commit_to(log.last_index)
    await log.close()
    return Run(done / elapsed, done / batches, sync / batches * 1e3, cpu / max(done, 1) * 1e6)


async def append_rate(directory: Path, proposers: int, seconds: float) -> tuple[float, float]:
    """Appends/s and mean batch size (used by other benchmarks as their reference)."""
    run = await measure(directory, proposers, seconds)
    return run.rate, run.batch


def main(quick: bool = False) -> None:
    # Disks and CPUs of shared machines drift by the second: every figure is the median of
    # several short runs, and each row's raw fsync rate is measured right before its own runs.
    seconds, repeats = (1.0, 1) if quick else (2.0, 5)
    base = Path(tempfile.mkdtemp(prefix="engenho-bench-log-", dir=os.environ.get("BENCH_DIR")))
    try:
        table = Table(title=f"durable appends, 1 KiB commands (median of {repeats})")
        columns = ("proposers", "appends/s", "raw fsync/s", "x raw", "mean batch", "sync ms")
        for column in (*columns, "CPU µs/append"):
            table.add_column(column, justify="right")
        raws: list[float] = []
        rows = [(1, False), (16, False), (256, False), (256, True)]
        for proposers, voter in rows:
            raw = median(raw_fsync_rate(base, seconds / 2) for _ in range(repeats))
            raws.append(raw)
            runs = []
            for attempt in range(repeats):
                log_dir = base / f"log-{proposers}-{voter}-{attempt}"
                runs.append(uvloop.run(measure(log_dir, proposers, seconds, voter=voter)))
                if attempt < repeats - 1:
                    shutil.rmtree(log_dir)
            rate = median(r.rate for r in runs)
            table.add_row(
                f"{proposers}{' voter' if voter else ''}",
                f"{rate:,.0f}",
                f"{raw:,.0f}",
                f"{rate / raw:,.2f}",
                f"{median(r.batch for r in runs):,.1f}",
                f"{median(r.sync_ms for r in runs):.2f}",
                f"{median(r.cpu_us for r in runs):.1f}",
            )
        console.print(table)
        spread = f"{min(raws):,.0f} to {max(raws):,.0f}"
        console.print(f"raw write+fdatasync of 1 KiB: {median(raws):,.0f}/s (rows: {spread})")

        log_dir = base / f"log-256-False-{repeats - 1}"
        report = verify_log(log_dir)
        assert report.ok, report.failure
        console.print(
            f"verify: {report.verified:,} entries, {report.bytes / 1e6:,.1f} MB in "
            f"{report.seconds:.2f} s = {report.verified / report.seconds:,.0f} entries/s, "
            f"{report.bytes / 1e6 / report.seconds:,.0f} MB/s"
        )
    finally:
        shutil.rmtree(base, ignore_errors=True)
