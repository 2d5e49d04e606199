"""Fixtures for the image store tests: a store in a temporary directory and a busybox
oci-archive built once per session from the host's static busybox."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from engenho.node_agent.images import ImageStore, build_busybox_archive


@pytest.fixture(scope="session")
def busybox_archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    busybox = shutil.which("busybox") or "/bin/busybox"
    if not Path(busybox).exists():
        pytest.skip("busybox-static is not installed (make test installs it)")
    path = tmp_path_factory.mktemp("busybox") / "busybox.tar"
    build_busybox_archive(path, busybox=Path(busybox))
    return path


@pytest.fixture
def store(tmp_path: Path) -> ImageStore:
    return ImageStore(tmp_path / "images")
