"""Restarts: write, stop (SIGTERM, clean; SIGKILL, crash), start again: every acknowledged write
is still served and the projection digest is unchanged; a rebuild from the log gives the same
digest."""

from __future__ import annotations

import http.client
import signal
import subprocess
import sys

import pytest
import yaml

from .server import ServerProcess, kubectl, own

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
    assert sorted(own(names)) == sorted(f"configmap/cm-{i}" for i in range(20) if i != 4)
    label = kubectl(
        server, "get", "cm", "cm-3", "-n", "durable", "-o", "jsonpath={.metadata.labels.touched}"
    )
    assert label.stdout == "yes"
    assert server.stop() == 0
    assert digest(server) == before, "a restart must not change the projected state"
    rebuild(server)
    assert digest(server) == before, "a rebuild from the log must give the same digest"


def test_sigterm_does_not_wait_on_idle_keep_alive_connections(fresh_server: ServerProcess) -> None:
    """A pooled client connection never answers a TLS close; the server drops it instead of
    sitting out its graceful-shutdown timeout (uvicorn then reports the cancelled tasks)."""
    server = fresh_server
    token = yaml.safe_load(server.kubeconfig.read_text())["users"][0]["user"]["token"]
    connection = http.client.HTTPSConnection(
        server.url.removeprefix("https://"), context=server.ssl_context()
    )
    connection.request("GET", "/api/v1/namespaces", headers={"Authorization": f"Bearer {token}"})
    assert connection.getresponse().read()  # the connection stays open, idle, kept alive
    try:
        assert server.stop(signal.SIGTERM) == 0
    finally:
        connection.close()
    output = "".join(server.output)
    assert "timeout graceful shutdown exceeded" not in output, output
