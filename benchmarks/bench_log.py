"""Log throughput: durable appends/s at 1, 16 and 256 proposers beside the machine's raw
write+fdatasync rate measured in the same run, and the verifier's rate.

Commands are 1 KiB of canonical JSON. Appends use the event loop the server uses (uvloop).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import uvloop
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


async def append_rate(directory: Path, proposers: int, seconds: float) -> tuple[float, float]:
    commands = [one_kib_command(i) for i in range(512)]
    log = await LogStore.open(directory)
    stop = time.perf_counter() + seconds
    done = 0

    async def proposer(offset: int) -> None:
        nonlocal done
        i = offset
        while time.perf_counter() < stop:
            await log.append([commands[i % len(commands)]], term=1)
            done += 1
            i += proposers

    started = time.perf_counter()
    batches_before = log.stats.batches
    async with asyncio.TaskGroup() as group:
        for p in range(proposers):
            group.create_task(proposer(p))
    elapsed = time.perf_counter() - started
    batches = log.stats.batches - batches_before
    log.commit_to(log.last_index)
    await log.close()
    return done / elapsed, done / max(batches, 1)


def main(quick: bool = False) -> None:
    seconds = 1.0 if quick else 4.0
    base = Path(tempfile.mkdtemp(prefix="engenho-bench-log-", dir=os.environ.get("BENCH_DIR")))
    try:
        raw = raw_fsync_rate(base, seconds)
        table = Table(title="durable appends, 1 KiB commands")
        for column in ("proposers", "appends/s", "mean batch", "x raw fsync rate"):
            table.add_column(column, justify="right")
        table.add_row("raw write+fdatasync", f"{raw:,.0f}", "1", "1.00")
        for proposers in (1, 16, 256):
            log_dir = base / f"log-{proposers}"
            rate, batch = uvloop.run(append_rate(log_dir, proposers, seconds))
            table.add_row(str(proposers), f"{rate:,.0f}", f"{batch:,.1f}", f"{rate / raw:,.2f}")
        console.print(table)

        log_dir = base / "log-256"
        report = verify_log(log_dir)
        assert report.ok, report.failure
        console.print(
            f"verify: {report.verified:,} entries, {report.bytes / 1e6:,.1f} MB in "
            f"{report.seconds:.2f} s = {report.verified / report.seconds:,.0f} entries/s, "
            f"{report.bytes / 1e6 / report.seconds:,.0f} MB/s"
        )
    finally:
        shutil.rmtree(base, ignore_errors=True)
