"""A real log, projections and registry in a temporary directory, for in-process tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from attrs import define

from engenho.log import Actor, LogStore
from engenho.projections import Projections
from engenho.registry import Registry, RequestContext
from engenho.replication import SingleVoter
from engenho.schema import CATALOGUE, ResourceType
from engenho.server import bootstrap

ADMIN = Actor("admin", ("system:masters",))


@define
class Cluster:
    log: LogStore
    projections: Projections
    registry: Registry

    def ctx(self, **options: Any) -> RequestContext:
        return RequestContext(actor=ADMIN, request_id="test", now=datetime.now(UTC), **options)

    @staticmethod
    def rt(plural: str, group: str = "", version: str = "v1") -> ResourceType:
        return CATALOGUE.get(group, version, plural)

    @property
    def head(self) -> int:
        return self.log.last_index


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[Cluster]:
    log = await LogStore.open(tmp_path / "log")
    projections = await Projections.open(f"sqlite+aiosqlite:///{tmp_path}/p.db", log)
    registry = Registry(
        proposer=SingleVoter(log),
        projections=projections,
        commit_index=lambda: log.commit_index,
        token_key=b"k" * 32,
        bookmark_interval=0.2,
    )
    await bootstrap(registry)
    yield Cluster(log, projections, registry)
    await projections.close()
    await log.close()


def configmap(name: str, **extra: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, **extra}
