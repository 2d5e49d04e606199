"""Crash safety: a child appends under load and is SIGKILLed at random moments; after every
kill the reopened log holds every acknowledged entry, unchanged, and the chain verifies."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engenho.log import LogOptions, LogStore, verify_log

CHILD = Path(__file__).with_name("crash_child.py")


def run_and_kill(directory: Path, seed: int, max_size: int, rng: random.Random) -> dict[int, str]:
    """Run the child until a random moment, SIGKILL it, return what it acknowledged."""
    child = subprocess.Popen(
        [sys.executable, str(CHILD), str(directory), str(seed), str(max_size)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert child.stdout is not None
    assert child.stdout.readline() == b"ready\n", child.stderr.read() if child.stderr else ""
    time.sleep(rng.uniform(0.05, 0.6))
    child.send_signal(signal.SIGKILL)
    out, err = child.communicate(timeout=30)
    assert child.returncode == -signal.SIGKILL, err.decode()
    acknowledged = {}
    for line in out.decode().splitlines():
        parts = line.split()
        if len(parts) == 2:  # the final line may itself be torn by the kill
            acknowledged[int(parts[0])] = parts[1]
    return acknowledged


@pytest.mark.slow
async def test_nothing_acknowledged_is_lost_across_sigkills(tmp_path: Path) -> None:
    rng = random.Random(20261127)
    acknowledged: dict[int, str] = {}
    for round_number in range(8):
        # Large entries make multi-megabyte batch writes, which a kill can interrupt midway.
        max_size = 3000 if round_number % 2 else 300_000
        acknowledged.update(run_and_kill(tmp_path, round_number, max_size, rng))
        async with await LogStore.open(tmp_path, LogOptions(recent_entries=1)) as log:
            assert log.last_index >= max(acknowledged, default=0)
            for start in range(1, log.last_index + 1, 1000):
                for entry in await log.read(start, limit=1000):
                    if entry.index in acknowledged:
                        assert entry.hash.hex() == acknowledged[entry.index], entry.index
        report = verify_log(tmp_path)
        assert report.ok, report.failure
    assert len(acknowledged) > 1000, "the child should have acknowledged plenty of entries"
