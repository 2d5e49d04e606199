"""``kubectl logs`` and ``kubectl exec`` end to end: a real ``engenho server`` subprocess
proxies pods/log and pods/exec to a node agent endpoint (started by the test in a thread of
its own, over the cluster CA, registered as Node ``stream-node``), whose pods run on the fake
runtime (with ``exec`` running real host processes); and the official Python client's
``stream()``."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import subprocess
import threading
import time
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from attrs import frozen
from kubernetes import client, config
from kubernetes.stream import stream

from engenho.node_agent.logs import STDOUT, CriLogWriter
from engenho.node_agent.runtime import ContainerRuntime
from engenho.node_agent.serving import AgentAuthenticator, AgentServer
from engenho.pki import ensure_pki

from ...integration.server import KUBECTL, ServerProcess, kubectl
from .conftest import agent_tls
from .pods import HostExecRuntime, PodRunner

pytestmark = pytest.mark.slow

NODE = "stream-node"
T = TypeVar("T")


@frozen
class Cluster:
    server: ServerProcess
    runner: PodRunner
    runtime: ContainerRuntime
    loop: asyncio.AbstractEventLoop

    def call(self, work: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        """Run ``work`` on the agent's event loop and wait for it."""
        return asyncio.run_coroutine_threadsafe(work, self.loop).result(timeout)

    def run_pod(self, manifest: dict[str, Any], *, start: bool = True) -> None:
        """Create the pod in the API (bound to our node) and run it on the agent."""
        manifest["spec"]["nodeName"] = NODE
        kubectl(self.server, "apply", "-f", "-", input=json.dumps(manifest))
        self.call(self.runner.add(manifest, start=start))


def _node(port: int) -> dict[str, Any]:
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": NODE},
        "status": {
            "addresses": [
                {"type": "InternalIP", "address": "127.0.0.1"},
                {"type": "Hostname", "address": NODE},
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": port}},
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "KubeletReady",
                    "message": "test agent",
                    "lastHeartbeatTime": now,
                    "lastTransitionTime": now,
                }
            ],
        },
    }


@contextlib.contextmanager
def running_cluster(root: Path, runtime: ContainerRuntime) -> Iterator[Cluster]:
    """A server subprocess, and an agent endpoint on ``runtime`` in a thread of its own,
    registered as the Node ``stream-node``."""
    server = ServerProcess(root / "data").start()
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="test-agent", daemon=True)
    thread.start()
    runner = PodRunner(runtime, root / "node")
    pki = ensure_pki(server.data_dir / "pki", hosts=["127.0.0.1"])

    async def start() -> AgentServer:
        await runtime.open()
        agent = AgentServer(
            runner,
            runtime,
            ssl_context=agent_tls(pki, root / "agent-pki"),
            authenticator=AgentAuthenticator({}),
            port=0,
        )
        await agent.start()
        return agent

    cluster = Cluster(server, runner, runtime, loop)
    agent: AgentServer | None = None
    try:
        agent = cluster.call(start())
        node = _node(agent.port)
        status, body, _ = server.request("POST", "/api/v1/nodes", json.dumps(node).encode())
        assert status == 201, body
        assert isinstance(body, dict)
        # A merge patch, not a PUT: node-ipam may have written spec.podCIDR in between.
        status, body, _ = server.request(
            "PATCH",
            f"/api/v1/nodes/{NODE}/status",
            json.dumps({"status": node["status"]}).encode(),
            content_type="application/merge-patch+json",
        )
        assert status == 200, body
        yield cluster
    finally:
        if agent is not None:
            cluster.call(agent.stop())
        cluster.call(runner.close())
        cluster.call(runtime.close())
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
        server.stop()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running_cluster(tmp_path_factory.mktemp("streaming"), HostExecRuntime()) as cluster:
        yield cluster


def pod(name: str, *containers: str, line: str = "hello") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": "default",
            "annotations": {"fake.engenho.io/log-line": line},
        },
        "spec": {"containers": [{"name": c, "image": "busybox"} for c in containers or ("app",)]},
    }


def append(path: Path, *lines: str) -> None:
    writer = CriLogWriter(path)
    for line in lines:
        writer.write_line(STDOUT, line)
    writer.close()


# -- logs ------------------------------------------------------------------------------------


def test_kubectl_logs_tail_and_timestamps(cluster: Cluster) -> None:
    cluster.run_pod(pod("logs-web", line="line one"))
    current = cluster.runner.current("default", "logs-web", "app")
    append(current.log_path, "line two", "line three")
    out = kubectl(cluster.server, "logs", "logs-web").stdout
    assert out == "line one\nline two\nline three\n"
    assert kubectl(cluster.server, "logs", "logs-web", "--tail=1").stdout == "line three\n"
    stamped = kubectl(cluster.server, "logs", "logs-web", "--timestamps", "--tail=2").stdout
    lines = stamped.splitlines()
    assert [line.split(" ", 1)[1] for line in lines] == ["line two", "line three"]
    assert all(line.split(" ", 1)[0].endswith("Z") for line in lines)
    assert kubectl(cluster.server, "logs", "logs-web", "--limit-bytes=6").stdout == "line o"


def test_kubectl_logs_follow_sees_new_lines(cluster: Cluster) -> None:
    cluster.run_pod(pod("logs-follow", line="before"))
    current = cluster.runner.current("default", "logs-follow", "app")
    with subprocess.Popen(
        [KUBECTL, "--kubeconfig", str(cluster.server.kubeconfig), "logs", "-f", "logs-follow"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    ) as follower:
        try:
            assert follower.stdout is not None
            assert follower.stdout.readline() == "before\n"
            append(current.log_path, "after")
            assert follower.stdout.readline() == "after\n"
            # The container stops: the stream ends and kubectl exits 0.
            cluster.call(cluster.runtime.stop_container(current.id, 0))
            assert follower.wait(30) == 0
        finally:
            if follower.poll() is None:
                follower.kill()


def test_kubectl_logs_previous_after_a_restart(cluster: Cluster) -> None:
    cluster.run_pod(pod("logs-restart", line="first run"))
    refused = kubectl(cluster.server, "logs", "logs-restart", "--previous", check=False)
    assert refused.returncode != 0
    assert (
        'Error from server (BadRequest): previous terminated container "app" in pod '
        '"logs-restart" not found'
    ) in refused.stderr
    restarted = cluster.call(cluster.runner.restart("default", "logs-restart", "app"))
    append(restarted.log_path, "second run")
    assert kubectl(cluster.server, "logs", "logs-restart", "-p").stdout == "first run\n"
    assert kubectl(cluster.server, "logs", "logs-restart").stdout == "first run\nsecond run\n"


def test_kubectl_logs_container_choice_and_errors(cluster: Cluster) -> None:
    cluster.run_pod(pod("logs-two", "main", "sidecar", line="both say this"))
    append(cluster.runner.current("default", "logs-two", "sidecar").log_path, "sidecar only")
    assert kubectl(cluster.server, "logs", "logs-two", "-c", "sidecar").stdout == (
        "both say this\nsidecar only\n"
    )
    # kubectl picks the first container itself; the server's own answer, asked directly:
    raw = kubectl(
        cluster.server, "get", "--raw", "/api/v1/namespaces/default/pods/logs-two/log", check=False
    )
    assert raw.returncode != 0
    assert (
        "Error from server (BadRequest): a container name must be specified for pod logs-two, "
        "choose one of: [main sidecar]"
    ) in raw.stderr
    wrong = kubectl(cluster.server, "logs", "logs-two", "-c", "nope", check=False)
    assert "container nope is not valid for pod logs-two" in wrong.stderr
    missing = kubectl(cluster.server, "logs", "no-such-pod", check=False)
    assert 'pods "no-such-pod" not found' in missing.stderr
    cluster.run_pod(pod("logs-waiting"), start=False)
    waiting = kubectl(cluster.server, "logs", "logs-waiting", check=False)
    assert (
        'Error from server (BadRequest): container "app" in pod "logs-waiting" is waiting to '
        "start: ContainerCreating"
    ) in waiting.stderr
    invalid = kubectl(
        cluster.server,
        "get",
        "--raw",
        "/api/v1/namespaces/default/pods/logs-waiting/log?tailLines=-2",
        check=False,
    )
    assert 'PodLogOptions "logs-waiting" is invalid: tailLines: Invalid value: -2' in (
        invalid.stderr
    )


def test_logs_of_an_unscheduled_pod_are_empty(cluster: Cluster) -> None:
    manifest = pod("logs-unbound")
    kubectl(cluster.server, "apply", "-f", "-", input=json.dumps(manifest))
    status, body, headers = cluster.server.request(
        "GET", "/api/v1/namespaces/default/pods/logs-unbound/log", accept="*/*"
    )
    assert (status, body) == (200, "")
    assert headers["content-type"].startswith("text/plain")
    refused = kubectl(cluster.server, "exec", "logs-unbound", "--", "true", check=False)
    assert "pod logs-unbound does not have a host assigned" in refused.stderr


# -- exec ------------------------------------------------------------------------------------

NEW_KUBECTL = Path("/usr/lib/google-cloud-sdk/bin/kubectl.1.32")
WEBSOCKETS = {"KUBECTL_REMOTE_COMMAND_WEBSOCKETS": "true"}


def kubectl_exec(
    cluster: Cluster, *args: str, input: str | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """``kubectl exec`` over WebSocket: the kubectl here is dispatched to the server's minor
    version (1.29), where the WebSocket executor is behind this switch (on from 1.30)."""
    return kubectl(cluster.server, "exec", *args, input=input, check=check, env=WEBSOCKETS)


def test_kubectl_exec_output_exit_status_and_stdin(cluster: Cluster) -> None:
    cluster.run_pod(pod("exec-web"))
    assert kubectl_exec(cluster, "exec-web", "--", "echo", "ok").stdout == "ok\n"
    failed = kubectl_exec(cluster, "exec-web", "--", "sh", "-c", "exit 3", check=False)
    assert failed.returncode == 3
    typed = kubectl_exec(cluster, "-i", "exec-web", "--", "cat", input="piped in\n")
    assert typed.stdout == "piped in\n"
    both = kubectl_exec(cluster, "exec-web", "--", "sh", "-c", "echo out; echo err >&2")
    assert (both.stdout, both.stderr) == ("out\n", "err\n")


@pytest.mark.skipif(not NEW_KUBECTL.exists(), reason=f"no {NEW_KUBECTL} (kubectl 1.30+) here")
def test_kubectl_130_and_later_use_websockets_by_default(cluster: Cluster) -> None:
    cluster.run_pod(pod("exec-new"))
    base = [str(NEW_KUBECTL), "--kubeconfig", str(cluster.server.kubeconfig)]
    done = subprocess.run(
        [*base, "exec", "exec-new", "--", "sh", "-c", "echo new; exit 5"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (done.returncode, done.stdout) == (5, "new\n"), done.stderr


def test_kubectl_without_websockets_speaks_spdy(cluster: Cluster) -> None:
    cluster.run_pod(pod("exec-old"))
    spdy = {"KUBECTL_REMOTE_COMMAND_WEBSOCKETS": "false"}
    script = "echo old; exit 5"
    done = kubectl(
        cluster.server, "exec", "exec-old", "--", "sh", "-c", script, check=False, env=spdy
    )
    assert (done.returncode, done.stdout) == (5, "old\n"), done.stderr
    typed = kubectl(cluster.server, "exec", "-i", "exec-old", "--", "cat", input="in\n", env=spdy)
    assert typed.stdout == "in\n"


def test_kubectl_exec_errors(cluster: Cluster) -> None:
    missing = kubectl_exec(cluster, "no-such-pod", "--", "true", check=False)
    assert 'pods "no-such-pod" not found' in missing.stderr
    cluster.run_pod(pod("exec-waiting"), start=False)
    # Refused by the agent: the reason reaches kubectl, even through its SPDY fallback.
    waiting = kubectl_exec(cluster, "exec-waiting", "--", "true", check=False)
    assert waiting.returncode != 0
    assert 'container not found ("app")' in waiting.stderr


# The client's preloaded ``stream()`` (websocket_call) never closes its socket: the garbage
# collector does, with a ResourceWarning that is the library's, not the server's.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_python_client_stream(cluster: Cluster) -> None:
    cluster.run_pod(pod("exec-python"))
    api_client = config.new_client_from_config(config_file=str(cluster.server.kubeconfig))
    try:
        core = client.CoreV1Api(api_client)
        out = stream(
            core.connect_get_namespaced_pod_exec,
            "exec-python",
            "default",
            command=["sh", "-c", "echo from python"],
            stdout=True,
            stderr=True,
            stdin=False,
            tty=False,
        )
        assert out == "from python\n"
        session = stream(
            core.connect_get_namespaced_pod_exec,
            "exec-python",
            "default",
            command=["sh", "-c", "read line; echo got $line; exit 4"],
            stdout=True,
            stderr=True,
            stdin=True,
            tty=False,
            _preload_content=False,
        )
        session.write_stdin("hi\n")
        session.run_forever(timeout=30)
        assert session.read_stdout() == "got hi\n"
        assert session.returncode == 4
        session.close()
    finally:
        api_client.close()
        gc.collect()  # the leaked socket goes here, under this test's filter
