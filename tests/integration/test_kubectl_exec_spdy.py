"""``kubectl exec`` over SPDY/3.1, end to end: the kubectl here is 1.29 (the Cloud SDK's
dispatcher picks it for the server's minor version), whose exec speaks SPDY unless
``KUBECTL_REMOTE_COMMAND_WEBSOCKETS=true``; these tests run it without that variable.

Against ``engenho server --runtime fake`` (exec answers with the pod's
``fake.engenho.io/exec-output`` and ``exec-exit-code``): the output is printed, a non-zero
exit code is kubectl's (``command terminated with exit code 3``), ``-i`` takes piped stdin,
and refusals read as upstream's (unknown container, a pod on no node, no such pod). The test
SPDY client (``tests/api/spdy_client.py``) checks what kubectl cannot show: the handshake's
refusals (403 with the accepted versions, 400 without a version), anonymous callers, the
outcome as text for a v3 client, a v4 session with a TTY (resize stream) and stdin, and that
a SPDY upgrade of another subresource (port-forward) still reaches the app.

With crun (skipped, saying why, where it cannot run a container): a busybox container reads
piped stdin (``echo hi | kubectl exec -i ... -- cat``) and its exit code 7 is kubectl's.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import orjson
import pytest

from engenho.api.spdy import Data, SpdyFrame
from engenho.node_agent.images import ImageStore, build_busybox_archive, import_archive
from engenho.node_agent.runtime import RuntimeUnavailableError
from engenho.node_agent.runtimes.oci_monitors import probe_host
from tests.api.spdy_client import SpdyClient, upgrade

from .server import KUBECTL, ServerProcess, kubectl

pytestmark = pytest.mark.slow

NODE = "test-node"
_SWITCH = "KUBECTL_REMOTE_COMMAND_WEBSOCKETS"


def spdy_kubectl(
    server: ServerProcess, *args: str, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    """kubectl with the environment of this process, less the WebSocket switch."""
    env = {name: value for name, value in os.environ.items() if name != _SWITCH}
    cache = server.data_dir / "kubectl-cache"
    return subprocess.run(
        [KUBECTL, "--kubeconfig", str(server.kubeconfig), "--cache-dir", str(cache), *args],
        input=input,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )


def fake_pod(name: str, *, output: str = "", exit_code: int = 0, **spec: Any) -> dict[str, Any]:
    annotations = {
        "fake.engenho.io/exec-output": output,
        "fake.engenho.io/exec-exit-code": str(exit_code),
    }
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "annotations": annotations},
        "spec": {"containers": [{"name": "app", "image": "busybox"}], **spec},
    }


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = ServerProcess(tmp_path_factory.mktemp("spdy") / "data", "--runtime", "fake")
    server.start()
    try:
        kubectl(server, "wait", f"node/{NODE}", "--for=condition=Ready", "--timeout=60s")
        kubectl(
            server,
            "apply",
            "-f",
            "-",
            input=json.dumps(
                {
                    "apiVersion": "v1",
                    "kind": "List",
                    "items": [
                        fake_pod("talker", output="ran it\n"),
                        fake_pod("failing", output="partial\n", exit_code=3),
                        # Nothing matches its selector: it is never scheduled.
                        fake_pod("floating", nodeSelector={"example.com/nowhere": "true"}),
                    ],
                }
            ),
        )
        kubectl(
            server, "wait", "pod/talker", "pod/failing", "--for=condition=Ready", "--timeout=60s"
        )
        yield server
    finally:
        server.stop()


# -- kubectl ---------------------------------------------------------------------------------


def test_kubectl_exec_prints_the_output(cluster: ServerProcess) -> None:
    done = spdy_kubectl(cluster, "exec", "talker", "--", "anything")
    assert (done.returncode, done.stdout, done.stderr) == (0, "ran it\n", "")


def test_the_exit_code_is_kubectls(cluster: ServerProcess) -> None:
    done = spdy_kubectl(cluster, "exec", "failing", "--", "anything")
    assert done.returncode == 3, done.stderr
    assert done.stdout == "partial\n"
    assert "command terminated with exit code 3" in done.stderr


def test_kubectl_exec_with_piped_stdin(cluster: ServerProcess) -> None:
    done = spdy_kubectl(cluster, "exec", "-i", "talker", "--", "cat", input="piped in\n")
    assert (done.returncode, done.stdout) == (0, "ran it\n"), done.stderr


def test_refusals_read_as_upstreams(cluster: ServerProcess) -> None:
    container = spdy_kubectl(cluster, "exec", "talker", "-c", "nope", "--", "true")
    assert container.returncode == 1
    assert (
        "Error from server (BadRequest): container nope is not valid for pod talker"
        in container.stderr
    )
    unscheduled = spdy_kubectl(cluster, "exec", "floating", "--", "true")
    assert unscheduled.returncode == 1
    assert (
        "Error from server (BadRequest): pod floating does not have a host assigned"
        in unscheduled.stderr
    )
    missing = spdy_kubectl(cluster, "exec", "ghost", "--", "true")
    assert 'Error from server (NotFound): pods "ghost" not found' in missing.stderr


# -- the protocol, with the test client ------------------------------------------------------


def _exec_path(pod: str, **query: str) -> str:
    params = [(key, value) for key, value in query.items() if key != "command"]
    params += [("command", query.get("command", "anything"))]
    return f"/api/v1/namespaces/default/pods/{pod}/exec?{urlencode(params)}"


async def _upgrade(
    server: ServerProcess, path: str, *headers: tuple[str, str], token: bool = True
) -> tuple[int, dict[str, list[str]], bytes, SpdyClient | None]:
    address = urlsplit(server.url)
    assert address.hostname is not None and address.port is not None
    auth = [("Authorization", f"Bearer {server.admin_token}")] if token else []
    return await upgrade(
        address.hostname,
        address.port,
        path,
        [*auth, *headers],
        context=server.ssl_context(),
    )


def test_the_handshake_refuses_as_the_kubelet(cluster: ServerProcess) -> None:
    path = _exec_path("talker", stdout="true")
    status, headers, body, _ = asyncio.run(
        _upgrade(cluster, path, ("X-Stream-Protocol-Version", "v9.channel.k8s.io"))
    )
    assert status == 403
    assert headers["x-accepted-stream-protocol-versions"] == [
        "v4.channel.k8s.io",
        "v3.channel.k8s.io",
        "v2.channel.k8s.io",
        "channel.k8s.io",
    ]
    assert orjson.loads(body)["message"] == (
        "unable to upgrade: unable to negotiate protocol: client supports [v9.channel.k8s.io], "
        "server accepts [v4.channel.k8s.io v3.channel.k8s.io v2.channel.k8s.io channel.k8s.io]"
    )
    status, _, body, _ = asyncio.run(_upgrade(cluster, path))
    assert status == 400
    assert "header X-Stream-Protocol-Version does not exist" in orjson.loads(body)["message"]
    status, _, body, _ = asyncio.run(
        _upgrade(cluster, path, ("X-Stream-Protocol-Version", "v4.channel.k8s.io"), token=False)
    )
    assert (status, orjson.loads(body)["reason"]) == (401, "Unauthorized")


def test_other_spdy_upgrades_still_reach_the_app(cluster: ServerProcess) -> None:
    path = "/api/v1/namespaces/default/pods/talker/portforward?ports=80"
    status, _, body, client = asyncio.run(
        _upgrade(cluster, path, ("X-Stream-Protocol-Version", "portforward.k8s.io"))
    )
    assert (status, client) == (503, None)
    assert orjson.loads(body)["message"].startswith("pods/portforward: ")


async def _v3_session(server: ServerProcess) -> tuple[bytes, bytes]:
    status, headers, _, client = await _upgrade(
        server,
        _exec_path("failing", stdout="true", command="x"),
        ("X-Stream-Protocol-Version", "v5.channel.k8s.io"),  # not over SPDY: skipped
        ("X-Stream-Protocol-Version", "v3.channel.k8s.io,channel.k8s.io"),
    )
    assert status == 101 and client is not None
    assert headers["x-stream-protocol-version"] == ["v3.channel.k8s.io"]
    assert headers["upgrade"] == ["SPDY/3.1"]
    try:
        error = await client.open_and_wait([("streamtype", "error")])
        stdout = await client.open_and_wait([("streamtype", "stdout")])
        received = await client.read_until_fin([error, stdout])
        return received[error], received[stdout]
    finally:
        await client.close()


def test_a_v3_client_reads_the_failure_as_text(cluster: ServerProcess) -> None:
    error, stdout = asyncio.run(_v3_session(cluster))
    assert stdout == b"partial\n"
    assert error == (
        b"command terminated with non-zero exit code: error executing command [x], exit code 3"
    )


async def _v4_terminal_session(server: ServerProcess) -> dict[str, bytes]:
    path = _exec_path("failing", stdin="true", stdout="true", stderr="true", tty="true")
    status, _, _, client = await _upgrade(
        server, path, ("X-Stream-Protocol-Version", "v4.channel.k8s.io")
    )
    assert status == 101 and client is not None
    try:
        ids = {}
        # With a TTY there is no stderr stream, and there is a resize stream.
        for kind in ("error", "stdin", "stdout", "resize"):
            ids[kind] = await client.open_and_wait([("streamtype", kind)])
        frames: list[SpdyFrame] = [
            Data(ids["resize"], b'{"Width":80,"Height":24}\n{"Width":100,'),
            Data(ids["resize"], b'"Height":30}\n', fin=True),
            Data(ids["stdin"], b"typed\n", fin=True),
        ]
        await client.send(*frames)
        received = await client.read_until_fin([ids["error"], ids["stdout"]])
        return {kind: received[ids[kind]] for kind in ("error", "stdout")}
    finally:
        await client.close()


def test_a_v4_terminal_session(cluster: ServerProcess) -> None:
    received = asyncio.run(_v4_terminal_session(cluster))
    assert received["stdout"] == b"partial\n"
    outcome = orjson.loads(received["error"])
    assert outcome["reason"] == "NonZeroExitCode"
    assert outcome["details"]["causes"] == [{"reason": "ExitCode", "message": "3"}]


# -- a real container ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def oci_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    if shutil.which("crun") is None:
        pytest.skip("crun is not installed (make test installs it: apt-get install crun)")
    busybox = Path(shutil.which("busybox") or "/bin/busybox")
    if not busybox.exists():
        pytest.skip("busybox-static is not installed (make test installs it)")
    try:
        asyncio.run(probe_host(tmp_path_factory.mktemp("probe"), None, "/engenho-spdy-test"))
    except RuntimeUnavailableError as exc:
        pytest.skip(f"crun cannot run containers on this host: {exc}")
    data = tmp_path_factory.mktemp("spdy-oci") / "data"
    archive = data.parent / "busybox.tar"
    build_busybox_archive(archive, busybox=busybox)
    import_archive(ImageStore(data / "images"), archive)
    server = ServerProcess(data, "--runtime", "oci").start()
    try:
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "shell"},
            "spec": {
                "terminationGracePeriodSeconds": 1,
                "containers": [
                    {
                        "name": "app",
                        "image": "busybox",
                        "command": ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"],
                    }
                ],
            },
        }
        kubectl(server, "apply", "-f", "-", input=json.dumps(pod))
        kubectl(server, "wait", "pod/shell", "--for=condition=Ready", "--timeout=90s", timeout=120)
        yield server
        # Containers outlive a stopped agent by design: let the agent remove them first.
        kubectl(server, "delete", "pod", "shell", "--wait=true", timeout=90)
        sandboxes = data / "node" / "oci" / "sandboxes"
        deadline = time.monotonic() + 60
        while sandboxes.exists() and any(sandboxes.iterdir()) and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        server.stop()


def test_a_container_reads_piped_stdin(oci_server: ServerProcess) -> None:
    done = spdy_kubectl(oci_server, "exec", "-i", "shell", "--", "cat", input="hi\n")
    assert (done.returncode, done.stdout) == (0, "hi\n"), done.stderr


def test_a_containers_exit_code_is_kubectls(oci_server: ServerProcess) -> None:
    done = spdy_kubectl(oci_server, "exec", "shell", "--", "sh", "-c", "echo out; exit 7")
    assert (done.returncode, done.stdout) == (7, "out\n"), done.stderr
    assert "command terminated with exit code 7" in done.stderr


def test_a_megabyte_each_way(oci_server: ServerProcess) -> None:
    # Far past the 64 KiB windows, which kubectl's spdystream neither keeps nor updates.
    out = spdy_kubectl(
        oci_server, "exec", "shell", "--", "sh", "-c", "yes 0123456789abcdef | head -c 1048576"
    )
    assert (out.returncode, len(out.stdout)) == (0, 1048576), out.stderr
    assert out.stdout.startswith("0123456789abcdef\n")
    typed = spdy_kubectl(oci_server, "exec", "-i", "shell", "--", "wc", "-c", input="x" * 1048576)
    assert (typed.returncode, typed.stdout.strip()) == (0, "1048576"), typed.stderr
