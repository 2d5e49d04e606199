"""Fixtures for the OCI runtime tests: the busybox image, built once per session from the
host's static busybox and imported into a shared store, and the host's capabilities, probed
once per session. Tests that need crun skip, saying why, only when crun cannot be installed
or cannot run a container here (``make test`` installs crun and busybox-static)."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from engenho.node_agent.images import (
    ImageStore,
    build_busybox_archive,
    ensure_rootfs,
    import_archive,
)
from engenho.node_agent.runtime import RuntimeUnavailableError
from engenho.node_agent.runtimes.oci_host import HostCapabilities
from engenho.node_agent.runtimes.oci_monitors import probe_host


@pytest.fixture(scope="session")
def busybox_store(tmp_path_factory: pytest.TempPathFactory) -> ImageStore:
    busybox = shutil.which("busybox") or "/bin/busybox"
    if not Path(busybox).exists():
        pytest.skip("busybox-static is not installed (make test installs it)")
    root = tmp_path_factory.mktemp("busybox-image")
    archive = root / "busybox.tar"
    build_busybox_archive(archive, busybox=Path(busybox))
    store = ImageStore(root / "images")
    (image,) = import_archive(store, archive).images
    ensure_rootfs(store, image)
    return store


CGROUP_PARENT = "/engenho-test"


@pytest.fixture(scope="session")
def host_capabilities(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[HostCapabilities]:
    if shutil.which("crun") is None:
        pytest.skip("crun is not installed (make test installs it: apt-get install crun)")
    root = tmp_path_factory.mktemp("oci-probe")
    try:
        capabilities = asyncio.run(probe_host(root, None, CGROUP_PARENT))
    except RuntimeUnavailableError as exc:
        pytest.skip(f"crun cannot run containers on this host: {exc}")
    yield capabilities
    # crun removes each container's cgroup, not the parent the tests put them under.
    for parent in Path("/sys/fs/cgroup").glob(f"*{CGROUP_PARENT}"):
        with contextlib.suppress(OSError):
            parent.rmdir()
    with contextlib.suppress(OSError):
        Path(f"/sys/fs/cgroup{CGROUP_PARENT}").rmdir()
