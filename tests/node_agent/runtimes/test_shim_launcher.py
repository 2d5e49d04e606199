"""``ShimLauncher`` and the launcher process (``shim_launcher``): shims forked by a zygote
with their module imported report as ``python -m`` shims do, run detached in their own
session, many at once; a shim that dies before reporting says why; a launcher that died is
replaced; closing the launcher leaves its shims running. Uses a stand-in shim
(``launched_shim``), not crun."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from engenho.node_agent.runtimes.shim_process import process_start_ticks
from engenho.node_agent.runtimes.shim_supervision import ShimLauncher
from tests.node_agent.runtimes.launched_shim import MODULE

WHO = "the test shim"


@pytest.fixture
async def launcher(tmp_path: Path) -> AsyncIterator[ShimLauncher]:
    launcher = ShimLauncher(MODULE, tmp_path / "launcher.log")
    launcher.start()
    yield launcher
    await launcher.close()


def shim_directory(tmp_path: Path, name: str) -> Path:
    directory = tmp_path / name
    directory.mkdir()
    return directory


async def stop(directory: Path, pid: int) -> None:
    (directory / "stop").touch()
    async with asyncio.timeout(30):
        while alive(pid):
            await asyncio.sleep(0.02)


def stat_fields(pid: int) -> list[str]:
    """``/proc/<pid>/stat`` after the command name: state, parent, ...; [] when gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return []
    return stat[stat.rfind(")") + 2 :].split()


def alive(pid: int) -> bool:
    """Running (a zombie is not: init may take its time to reap an orphan)."""
    fields = stat_fields(pid)
    return bool(fields) and fields[0] != "Z"


def parent_of(pid: int) -> int:
    return int(stat_fields(pid)[1])


async def test_a_launched_shim_reports_and_runs_detached(
    launcher: ShimLauncher, tmp_path: Path
) -> None:
    directory = shim_directory(tmp_path, "one")
    report = await launcher.spawn(directory, who=WHO, report_wait=30)
    pid = int(report["pid"])
    try:
        assert os.getsid(pid) == pid  # its own session, as a python -m shim's
        assert parent_of(pid) not in (os.getpid(), launcher.pid)
    finally:
        await stop(directory, pid)


async def test_many_shims_at_once(launcher: ShimLauncher, tmp_path: Path) -> None:
    directories = [shim_directory(tmp_path, f"s{n}") for n in range(10)]
    reports = await asyncio.gather(
        *(launcher.spawn(d, who=WHO, report_wait=30) for d in directories)
    )
    pids = [int(report["pid"]) for report in reports]
    assert len(set(pids)) == len(pids)
    await asyncio.gather(*(stop(d, pid) for d, pid in zip(directories, pids, strict=True)))


async def test_a_shim_that_dies_before_reporting_says_why(
    launcher: ShimLauncher, tmp_path: Path
) -> None:
    directory = shim_directory(tmp_path, "failing")
    (directory / "fail").touch()
    report = await launcher.spawn(directory, who=WHO, report_wait=30)
    assert report == {"error": "the test shim died: told to fail"}


async def test_a_launcher_that_died_is_replaced(launcher: ShimLauncher, tmp_path: Path) -> None:
    first = launcher.pid
    assert first is not None
    os.kill(first, signal.SIGKILL)
    async with asyncio.timeout(30):
        while alive(first):
            await asyncio.sleep(0.02)
    directory = shim_directory(tmp_path, "after")
    report = await launcher.spawn(directory, who=WHO, report_wait=30)
    await stop(directory, int(report["pid"]))
    assert launcher.pid not in (None, first)


async def test_closing_the_launcher_leaves_its_shims_running(tmp_path: Path) -> None:
    launcher = ShimLauncher(MODULE, tmp_path / "launcher.log")
    directory = shim_directory(tmp_path, "survivor")
    report = await launcher.spawn(directory, who=WHO, report_wait=30)
    process = launcher.pid
    await launcher.close()
    assert process is not None and process_start_ticks(process) is None  # reaped by close
    pid = int(report["pid"])
    assert alive(pid)
    await stop(directory, pid)
