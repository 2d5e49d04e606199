"""``kubectl exec`` and ``kubectl logs`` into real containers: the same server and agent
endpoint as test_end_to_end, with the ``oci`` runtime (crun) running a busybox image built
from the host's static busybox. Skipped, with the reason, where crun or busybox cannot run."""

from __future__ import annotations

import gc
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client, config
from kubernetes.stream import stream

from engenho.node_agent.images.building import DEFAULT_BUSYBOX, build_busybox_archive
from engenho.node_agent.images.importing import import_archive
from engenho.node_agent.images.store import ImageStore

from ...integration.server import kubectl
from .test_end_to_end import Cluster, kubectl_exec, running_cluster

pytestmark = pytest.mark.slow


def _oci_runtime(root: Path) -> object:
    if shutil.which("crun") is None:
        pytest.skip("crun is not installed (make test installs it)")
    if not DEFAULT_BUSYBOX.exists():
        pytest.skip(f"no static busybox at {DEFAULT_BUSYBOX} to build the test image from")
    from engenho.node_agent.runtimes.oci import OciRuntime

    store = ImageStore(root / "images")
    build_busybox_archive(root / "busybox.tar")
    import_archive(store, root / "busybox.tar")
    return OciRuntime(root, store=store)


@pytest.fixture(scope="module")
def oci(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    root = tmp_path_factory.mktemp("oci")
    runtime = _oci_runtime(root)
    try:
        with running_cluster(root, runtime) as cluster:  # type: ignore[arg-type]
            yield cluster
    except Exception as exc:
        from engenho.node_agent.runtime import RuntimeUnavailableError

        if isinstance(exc, RuntimeUnavailableError):
            pytest.skip(f"the oci runtime cannot run here: {exc}")
        raise


def sleeper(name: str) -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "containers": [
                {
                    "name": "app",
                    "image": "busybox:latest",
                    "command": ["sh", "-c", "echo container started; exec sleep 3600"],
                }
            ]
        },
    }


def test_exec_into_a_real_container(oci: Cluster) -> None:
    oci.run_pod(sleeper("real"))
    assert kubectl_exec(oci, "real", "--", "echo", "ok").stdout == "ok\n"
    assert kubectl_exec(oci, "real", "--", "sh", "-c", "exit 3", check=False).returncode == 3
    typed = kubectl_exec(oci, "-i", "real", "--", "cat", input="into the container\n")
    assert typed.stdout == "into the container\n"
    # The command runs inside: the container's hostname is the pod's name.
    assert kubectl_exec(oci, "real", "--", "hostname").stdout == "real\n"


def test_logs_of_a_real_container(oci: Cluster) -> None:
    oci.run_pod(sleeper("talker"))
    deadline = time.monotonic() + 30
    out = ""
    while "container started" not in out and time.monotonic() < deadline:
        out = kubectl(oci.server, "logs", "talker").stdout
        time.sleep(0.1)
    assert out == "container started\n"


# The client's preloaded ``stream()`` never closes its socket (see test_end_to_end).
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_python_client_exec_into_a_real_container(oci: Cluster) -> None:
    oci.run_pod(sleeper("py"))
    api_client = config.new_client_from_config(config_file=str(oci.server.kubeconfig))
    try:
        out = stream(
            client.CoreV1Api(api_client).connect_get_namespaced_pod_exec,
            "py",
            "default",
            command=["sh", "-c", "echo inside $(hostname)"],
            stdout=True,
            stderr=True,
            stdin=False,
            tty=False,
        )
        assert out == "inside py\n"
    finally:
        api_client.close()
        gc.collect()
