"""Fixtures for the client tests: one real engenho server for the session, clients of it,
and a fresh namespace per test (so tests sharing the server never see each other's objects)."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest

from engenho.client import ClientConfig, KubeClient, load_config
from tests.integration.server import QUIET_CONTROLLERS, ServerProcess


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    # The client's tests count objects and events exactly: no controller writes beside them.
    process = ServerProcess(
        tmp_path_factory.mktemp("engenho-client"), env=QUIET_CONTROLLERS
    ).start()
    yield process
    if process.process is not None:
        process.stop()


@pytest.fixture
def config(server: ServerProcess) -> ClientConfig:
    return load_config(server.kubeconfig)


@pytest.fixture
async def client(config: ClientConfig) -> AsyncIterator[KubeClient]:
    async with KubeClient(config) as kube:
        yield kube


@pytest.fixture
async def namespace(client: KubeClient, request: pytest.FixtureRequest) -> str:
    stem = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:40].strip("-")
    name = f"{stem}-{uuid.uuid4().hex[:6]}"
    await client.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    return name
