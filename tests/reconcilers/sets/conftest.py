"""Fixtures for the StatefulSet and DaemonSet tests (see :mod:`.harness`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from engenho.reconcilers import GarbageCollector
from engenho.reconcilers.daemonsets import DaemonSetController
from engenho.reconcilers.statefulsets import StatefulSetController

from .harness import NODES, Harness, node, running


@pytest.fixture
async def stateful(tmp_path: Path) -> AsyncIterator[Harness]:
    async with running(
        tmp_path,
        lambda registry, manager: [
            StatefulSetController(registry, manager.informers),
            GarbageCollector(registry, manager.informers, retry_after=0.05),
        ],
    ) as harness:
        for name in ("node-a", "node-b"):
            await harness.create(NODES, node(name))
        yield harness


@pytest.fixture
async def daemons(tmp_path: Path) -> AsyncIterator[Harness]:
    async with running(
        tmp_path,
        lambda registry, manager: [
            DaemonSetController(registry, manager.informers),
            GarbageCollector(registry, manager.informers, retry_after=0.05),
        ],
    ) as harness:
        for name in ("node-a", "node-b", "node-c"):
            await harness.create(NODES, node(name))
        yield harness
