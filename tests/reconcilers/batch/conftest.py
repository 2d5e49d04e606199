"""Fixtures for the Job, TTL-after-finished and CronJob tests: the cluster of
:mod:`tests.reconcilers.sets.harness` with the batch controllers on a clock the test can move."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from engenho.reconcilers import GarbageCollector
from engenho.reconcilers.cronjobs import CronJobController
from engenho.reconcilers.jobs import JobController
from engenho.reconcilers.ttlafterfinished import TTLAfterFinishedController

from ..sets.harness import NODES, Harness, node, running


class Clock:
    """The real time plus an offset the test moves forward (so times the registry stamps and
    times the controllers compute stay comparable)."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def batch(tmp_path: Path, clock: Clock) -> AsyncIterator[Harness]:
    async with running(
        tmp_path,
        lambda registry, manager: [
            JobController(
                registry, manager.informers, clock=clock, backoff_base=0.02, backoff_max=0.1
            ),
            TTLAfterFinishedController(registry, manager.informers, clock=clock),
            CronJobController(registry, manager.informers, clock=clock),
            GarbageCollector(registry, manager.informers, retry_after=0.05),
        ],
    ) as harness:
        await harness.create(NODES, node("node-a"))
        yield harness
