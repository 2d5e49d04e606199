"""Restarts: write, stop (SIGTERM, clean; SIGKILL, crash), start again: every acknowledged write
is still served and the projection digest is unchanged; a rebuild from the log gives the same
digest."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest

from .server import ServerProcess, kubectl

pytestmark = pytest.mark.slow


def digest(server: ServerProcess) -> str:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "engenho",
            "projections",
            "digest",
            "--data-dir",
            str(server.data_dir),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return result.stdout.strip().splitlines()[-1]


def rebuild(server: ServerProcess) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "engenho",
            "projections",
            "rebuild",
            "--data-dir",
            str(server.data_dir),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_acknowledged_writes_survive_a_restart(fresh_server: ServerProcess, sig: int) -> None:
    server = fresh_server
    kubectl(server, "create", "namespace", "durable")
    for i in range(20):
        kubectl(server, "create", "configmap", f"cm-{i}", "-n", "durable", f"--from-literal=i={i}")
    kubectl(server, "label", "cm", "cm-3", "-n", "durable", "touched=yes")
    kubectl(server, "delete", "cm", "cm-4", "-n", "durable")
    code = server.stop(sig)
    assert code == (0 if sig == signal.SIGTERM else -signal.SIGKILL), "".join(server.output)
    before = digest(server)
    server.start()
    names = kubectl(server, "get", "cm", "-n", "durable", "-o", "name").stdout.split()
    assert sorted(names) == sorted(f"configmap/cm-{i}" for i in range(20) if i != 4)
    label = kubectl(
        server, "get", "cm", "cm-3", "-n", "durable", "-o", "jsonpath={.metadata.labels.touched}"
    )
    assert label.stdout == "yes"
    assert server.stop() == 0
    assert digest(server) == before, "a restart must not change the projected state"
    rebuild(server)
    assert digest(server) == before, "a rebuild from the log must give the same digest"
