"""Exactly-once apply across crashes: a child process applying a big log is SIGKILLed at
random moments (often inside a batch's transaction); after each kill the projection resumes
from its stored applied index, and at the end its state, digest and version history equal
those of a clean rebuild (contract §21 items 2 and 22)."""

from __future__ import annotations

import random
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from engenho.log import LogStore
from engenho.paths import DataDir
from engenho.projections import Projections, rebuild, sqlite_url
from tests.projections.helpers import create, delete, update

CHILD = Path(__file__).with_name("apply_child.py")
TOTAL = 12_000


async def build_log(data_dir: DataDir) -> None:
    rng = random.Random(2026)
    async with await LogStore.open(data_dir.log) as log:
        commands = []
        for n in range(TOTAL):
            i = rng.randrange(2500)
            kind = rng.random()
            name, namespace = f"cm-{i}", f"ns-{i % 7}"
            commands.append(
                create(name, namespace, v=str(n) * 40)
                if kind < 0.5
                else update(name, namespace, v=str(n) * 40)
                if kind < 0.85
                else delete(name, namespace)
            )
        for start in range(0, TOTAL, 1000):
            entries = await log.append(commands[start : start + 1000], term=1)
            log.commit_to(entries[-1].index)


def run_and_kill(data_dir: DataDir, stop_after: int, batch: int) -> tuple[int, bool]:
    """Run the child until it reports ``stop_after`` applied, SIGKILL it; return the last
    applied index it reported and whether it finished first."""
    child = subprocess.Popen(
        [sys.executable, str(CHILD), str(data_dir.root), str(batch)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert child.stdout is not None
    assert child.stdout.readline() == b"ready\n", child.stderr.read() if child.stderr else ""
    reported, finished = 0, False
    for line in child.stdout:
        if line == b"done\n":
            finished = True
            break
        reported = int(line)
        if reported >= stop_after:
            break
    child.send_signal(signal.SIGKILL)
    _, err = child.communicate(timeout=30)
    assert finished or child.returncode == -signal.SIGKILL, err.decode()
    return reported, finished


def versions(path: Path) -> list[tuple[object, ...]]:
    with sqlite3.connect(path) as db:
        return db.execute(
            "SELECT valid_from, valid_to, key, uid, data FROM object_versions ORDER BY valid_from"
        ).fetchall()


@pytest.mark.slow
async def test_killed_applier_resumes_exactly_once(tmp_path: Path) -> None:
    data_dir = DataDir(tmp_path / "node")
    await build_log(data_dir)
    rng = random.Random(7)
    applied = 0
    for round_number in range(4):
        target = applied + rng.randrange(500, 2500)
        reported, finished = run_and_kill(data_dir, target, batch=[16, 64, 256, 1024][round_number])
        assert not finished, "the kill should land before the log is fully applied"
        assert reported >= applied
        with sqlite3.connect(data_dir.projections_db) as db:
            stored = db.execute("SELECT applied_index FROM projection_state").fetchone()[0]
        assert stored >= reported  # whatever was reported as applied had committed
        applied = stored

    async with await LogStore.open(data_dir.log) as log:
        log.commit_to(log.last_index)
        async with await Projections.open(sqlite_url(data_dir.projections_db), log) as projections:
            assert projections.applied_index == applied
            await projections.wait_for(TOTAL, timeout=60)
            resumed = await projections.digest()
        rebuilt_db = tmp_path / "rebuilt.db"
        summary = await rebuild(sqlite_url(rebuilt_db), log)
    assert summary.digest == resumed
    # Not only the state: the version history is the same, so no entry was applied twice.
    assert versions(data_dir.projections_db) == versions(rebuilt_db)
