"""WebAssembly pods end to end.

- ``engenho server --runtime wasm``: the embedded node runs on wasmtime (its Node says
  ``wasmtime://<version>``); a Pod of a module imported with ``engenho image import --wasm``
  reaches Succeeded with its output (args, env) in its CRI log file, and a module that exits 3
  fails its Pod with that exit code.
- ``kubectl logs`` (also ``-f``, live while the module runs) and ``kubectl exec`` through a
  real apiserver to a node agent endpoint over the wasm runtime (the streaming tests'
  harness): the output is the module's, and exec is refused with the runtime's reason.
"""

from __future__ import annotations

import importlib.metadata
import json
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest

from engenho.node_agent.images import ImageStore
from engenho.node_agent.runtime import ContainerState
from engenho.node_agent.runtimes.wasm import WasmRuntime
from tests.integration.server import KUBECTL, ServerProcess, kubectl

from ..streaming.test_end_to_end import Cluster, running_cluster
from . import modules
from .conftest import import_module

pytestmark = pytest.mark.slow

_DEADLINE = 60.0


@pytest.fixture(scope="module")
def wasm_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    data = tmp_path_factory.mktemp("engenho-wasm") / "data"
    import_module(data, "echo", modules.compile_wat(modules.ECHO), "echo:1")
    import_module(data, "hello", modules.compile_wat(modules.HELLO), "hello:1")
    process = ServerProcess(data, "--runtime", "wasm").start()
    try:
        node = _wait_for_node(process)
        runtime = node["status"]["nodeInfo"]["containerRuntimeVersion"]
        if runtime != f"wasmtime://{importlib.metadata.version('wasmtime')}":
            pytest.fail(f"the embedded node does not run wasm ({runtime}):\n{process.output}")
        if not node["spec"].get("podCIDR"):  # no node-ipam controller here: set one
            cidr = {"spec": {"podCIDR": "10.42.19.0/24", "podCIDRs": ["10.42.19.0/24"]}}
            kubectl(process, "patch", "node", "test-node", "-p", json.dumps(cidr))
        yield process
    finally:
        if process.process is not None:
            process.stop()


def _wait_for_node(server: ServerProcess) -> dict[str, Any]:
    deadline = time.monotonic() + _DEADLINE
    while time.monotonic() < deadline:
        result = kubectl(server, "get", "node", "test-node", "-o", "json", check=False)
        if result.returncode == 0:
            node: dict[str, Any] = json.loads(result.stdout)
            if node.get("status", {}).get("nodeInfo", {}).get("containerRuntimeVersion"):
                return node
        time.sleep(0.1)
    raise AssertionError("the embedded node never registered:\n" + "".join(server.output))


def _wait_phase(server: ServerProcess, name: str, phase: str) -> dict[str, Any]:
    deadline = time.monotonic() + _DEADLINE
    pod: dict[str, Any] = {}
    while time.monotonic() < deadline:
        result = kubectl(server, "get", "pod", name, "-o", "json", check=False)
        pod = json.loads(result.stdout) if result.returncode == 0 else {}
        if pod.get("status", {}).get("phase") == phase:
            return pod
        time.sleep(0.1)
    raise AssertionError(f"{name} never reached {phase}: {json.dumps(pod.get('status'))}")


def _pod(name: str, image: str, **container: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "nodeName": "test-node",
            "restartPolicy": "Never",
            "containers": [{"name": "app", "image": image, **container}],
        },
    }


def _logged(server: ServerProcess, pod: dict[str, Any]) -> list[str]:
    """The container's output, from the CRI log file the runtime wrote."""
    meta = pod["metadata"]
    directory = f"{meta['namespace']}_{meta['name']}_{meta['uid']}"
    path = server.data_dir / "node" / "logs" / directory / "app" / "0.log"
    return [line.split(" ", 3)[3] for line in path.read_text().splitlines()]


def test_a_wasm_pod_succeeds_with_its_output_logged(wasm_server: ServerProcess) -> None:
    manifest = _pod(
        "echo", "echo:1", args=["first", "second word"], env=[{"name": "GREETING", "value": "hi"}]
    )
    kubectl(wasm_server, "apply", "-f", "-", input=json.dumps(manifest))
    pod = _wait_phase(wasm_server, "echo", "Succeeded")
    (status,) = pod["status"]["containerStatuses"]
    terminated = status["state"]["terminated"]
    assert (terminated["exitCode"], terminated["reason"]) == (0, "Completed")
    assert status["containerID"].startswith("wasm://")
    assert status["imageID"].startswith("docker.io/library/echo@sha256:")
    output = _logged(wasm_server, pod)
    assert output[:4] == ["echo.wasm", "first", "second word", "HOSTNAME=echo"]
    assert "GREETING=hi" in output


def test_a_module_exit_code_fails_the_pod(wasm_server: ServerProcess) -> None:
    kubectl(wasm_server, "apply", "-f", "-", input=json.dumps(_pod("three", "hello:1", args=["3"])))
    pod = _wait_phase(wasm_server, "three", "Failed")
    terminated = pod["status"]["containerStatuses"][0]["state"]["terminated"]
    assert (terminated["exitCode"], terminated["reason"]) == (3, "Error")
    assert _logged(wasm_server, pod) == ["hello"]


# -- kubectl logs and exec through the apiserver, to an agent endpoint over wasm -------------


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, wasm_store: ImageStore) -> Iterator[Cluster]:
    root = tmp_path_factory.mktemp("wasm-streaming")
    with running_cluster(root, WasmRuntime(root / "wasm", store=wasm_store)) as cluster:
        yield cluster


def _streamed_pod(name: str, image: str, **container: Any) -> dict[str, Any]:
    manifest = _pod(name, image, **container)
    del manifest["spec"]["nodeName"]  # the harness binds it to its own node
    return manifest


def test_kubectl_logs_shows_the_module_output(cluster: Cluster) -> None:
    cluster.run_pod(_streamed_pod("echo", "echo:1", args=["from kubectl"]))
    current = cluster.runner.current("default", "echo", "app")
    cluster.call(cluster.runtime.wait_container(current.id))
    cluster.call(cluster.runner.refresh())
    out = kubectl(cluster.server, "logs", "echo").stdout.splitlines()
    assert out[:3] == ["echo.wasm", "from kubectl", "HOSTNAME=echo"]


def test_kubectl_logs_follows_a_running_module(cluster: Cluster) -> None:
    cluster.run_pod(_streamed_pod("spin", "ticker:1"))
    current = cluster.runner.current("default", "spin", "app")
    command = [KUBECTL, "--kubeconfig", str(cluster.server.kubeconfig), "logs", "-f", "spin"]
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    ) as follower:
        try:
            assert follower.stdout is not None
            assert follower.stdout.readline() == "tick\n"
            status = cluster.call(cluster.runtime.container_status(current.id))
            assert status.state is ContainerState.RUNNING
            # The module stops: the stream ends and kubectl exits 0.
            stopped = cluster.call(cluster.runtime.stop_container(current.id, 30))
            assert stopped.exit_code == 143
            assert follower.wait(30) == 0
        finally:
            if follower.poll() is None:
                follower.kill()


def test_kubectl_exec_is_refused_with_the_reason(cluster: Cluster) -> None:
    cluster.run_pod(_streamed_pod("no-exec", "ticker:1"))
    websockets = {"KUBECTL_REMOTE_COMMAND_WEBSOCKETS": "true"}  # as the streaming tests do
    result = kubectl(
        cluster.server, "exec", "no-exec", "--", "sh", "-c", "true", check=False, env=websockets
    )
    assert result.returncode != 0
    assert "exec is not supported by the wasm runtime" in result.stderr
