"""Fixtures for end-to-end tests: a real engenho server subprocess per test module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .server import ServerProcess


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    process = ServerProcess(tmp_path_factory.mktemp("engenho")).start()
    yield process
    if process.process is not None:
        process.stop()


@pytest.fixture
def fresh_server(tmp_path: Path) -> Iterator[ServerProcess]:
    process = ServerProcess(tmp_path / "data").start()
    yield process
    if process.process is not None:
        process.stop()
