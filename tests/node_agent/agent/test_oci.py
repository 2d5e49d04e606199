"""The node agent with the oci runtime (crun), end to end: ``engenho server --runtime oci``
with a busybox image built from the host's static busybox. ``kubectl run --restart=Never``
reaches Succeeded with its output in the container log, and a ConfigMap mounted into a
container is what it reads. Skipped, saying why, where crun cannot run a container."""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engenho.node_agent.images import ImageStore, build_busybox_archive, import_archive
from engenho.node_agent.runtime import RuntimeUnavailableError
from engenho.node_agent.runtimes.oci_monitors import probe_host
from tests.integration.server import ServerProcess, kubectl


@pytest.fixture(scope="module")
def oci_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    if shutil.which("crun") is None:
        pytest.skip("crun is not installed (make test installs it: apt-get install crun)")
    busybox = Path(shutil.which("busybox") or "/bin/busybox")
    if not busybox.exists():
        pytest.skip("busybox-static is not installed (make test installs it)")
    probe = tmp_path_factory.mktemp("oci-probe")
    try:
        asyncio.run(probe_host(probe, None, "/engenho-agent-test"))
    except RuntimeUnavailableError as exc:
        pytest.skip(f"crun cannot run containers on this host: {exc}")
    data = tmp_path_factory.mktemp("engenho-oci") / "data"
    archive = data.parent / "busybox.tar"
    build_busybox_archive(archive, busybox=busybox)
    import_archive(ImageStore(data / "images"), archive)
    process = ServerProcess(data, "--runtime", "oci").start()
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            result = kubectl(process, "get", "node", "test-node", "-o", "json", check=False)
            if result.returncode == 0:
                node = json.loads(result.stdout)
                if not node["spec"].get("podCIDR"):  # no node-ipam controller here: set one
                    cidr = {"spec": {"podCIDR": "10.42.9.0/24", "podCIDRs": ["10.42.9.0/24"]}}
                    kubectl(process, "patch", "node", "test-node", "-p", json.dumps(cidr))
                break
            time.sleep(0.1)
        runtime = json.loads(kubectl(process, "get", "node", "test-node", "-o", "json").stdout)[
            "status"
        ]["nodeInfo"]["containerRuntimeVersion"]
        if not runtime.startswith("crun://"):
            pytest.fail(f"the embedded node fell back from oci:\n{''.join(process.output)}")
        yield process
        # Let the agent remove every container (and unmount their filesystems) before the
        # server goes: containers outlive a stopped agent by design.
        kubectl(process, "delete", "pods", "--all", "--grace-period=1", "--wait=true")
        sandboxes = data / "node" / "oci" / "sandboxes"
        deadline = time.monotonic() + 60
        while any(sandboxes.iterdir()) and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        if process.process is not None:
            process.stop()


def _pod(server: ServerProcess, name: str) -> dict[str, Any]:
    result = kubectl(server, "get", "pod", name, "-o", "json", check=False)
    return json.loads(result.stdout) if result.returncode == 0 else {}


def _wait_phase(
    server: ServerProcess, name: str, phase: str, timeout: float = 60
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    pod: dict[str, Any] = {}
    while time.monotonic() < deadline:
        pod = _pod(server, name)
        if pod.get("status", {}).get("phase") == phase:
            return pod
        time.sleep(0.1)
    raise AssertionError(f"{name} never reached {phase}: {json.dumps(pod.get('status'))}")


def _log(server: ServerProcess, pod: dict[str, Any], container: str = "app") -> str:
    meta = pod["metadata"]
    directory = (
        server.data_dir / "node" / "logs" / f"{meta['namespace']}_{meta['name']}_{meta['uid']}"
    )
    lines = (directory / container / "0.log").read_text().splitlines()
    return "".join(line.split(" ", 3)[3] + "\n" for line in lines)


def test_kubectl_run_echo_succeeds(oci_server: ServerProcess) -> None:
    # Scheduled by the server's scheduler onto its own node, as a newcomer's would be.
    kubectl(
        oci_server, "run", "hi", "--restart=Never", "--image=busybox", "--", "sh", "-c", "echo hi"
    )
    pod = _wait_phase(oci_server, "hi", "Succeeded")
    assert pod["spec"]["nodeName"] == "test-node"
    terminated = pod["status"]["containerStatuses"][0]["state"]["terminated"]
    assert terminated["exitCode"] == 0 and terminated["reason"] == "Completed"
    assert pod["status"]["containerStatuses"][0]["containerID"].startswith("oci://")
    assert _log(oci_server, pod, "hi") == "hi\n"


def test_a_mounted_config_map_is_read_by_the_container(oci_server: ServerProcess) -> None:
    kubectl(oci_server, "create", "configmap", "greeting", "--from-literal=text=hello from a file")
    manifest = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "reader"},
        "spec": {
            "nodeName": "test-node",
            "restartPolicy": "Never",
            "containers": [
                {
                    "name": "app",
                    "image": "busybox",
                    "command": ["sh", "-c", "cat /etc/greeting/text; echo; echo $GREETING"],
                    "env": [
                        {
                            "name": "GREETING",
                            "valueFrom": {"configMapKeyRef": {"name": "greeting", "key": "text"}},
                        }
                    ],
                    "volumeMounts": [{"name": "cfg", "mountPath": "/etc/greeting"}],
                }
            ],
            "volumes": [{"name": "cfg", "configMap": {"name": "greeting"}}],
        },
    }
    kubectl(oci_server, "apply", "-f", "-", input=json.dumps(manifest))
    pod = _wait_phase(oci_server, "reader", "Succeeded")
    assert _log(oci_server, pod) == "hello from a file\nhello from a file\n"
