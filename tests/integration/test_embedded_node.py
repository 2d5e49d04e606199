"""The single-node cluster as ``make run`` starts it: ``engenho server`` with its embedded
node agent (the fake runtime here, so no container tooling is needed), driven by the real
kubectl. A Deployment becomes Available on pods the agent runs; ``kubectl expose`` gives it
a ClusterIP and an EndpointSlice of the ready pods; ``kubectl logs`` and ``kubectl exec``
reach the agent through the apiserver; deletion honours the propagation policies; and a
SIGKILL of the whole server in the middle of a rollout loses nothing it acknowledged."""

from __future__ import annotations

import ipaddress
import json
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from .server import ServerProcess, kubectl

pytestmark = pytest.mark.slow

NODE = "test-node"
WEBSOCKETS = {"KUBECTL_REMOTE_COMMAND_WEBSOCKETS": "true"}  # kubectl < 1.30 speaks SPDY otherwise


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = ServerProcess(tmp_path_factory.mktemp("embedded") / "data", "--runtime", "fake")
    server.start()
    try:
        kubectl(server, "wait", f"node/{NODE}", "--for=condition=Ready", "--timeout=60s")
        yield server
    finally:
        server.stop()


def get(server: ServerProcess, *what: str) -> Any:
    return json.loads(kubectl(server, "get", *what, "-o", "json").stdout)


def eventually(check: Callable[[], Any], timeout: float = 60, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.2)
    raise AssertionError(f"not within {timeout} s: {what or check} (last: {last!r})")


def test_the_node_registers_with_its_agent_endpoint(cluster: ServerProcess) -> None:
    node = get(cluster, "node", NODE)
    assert node["metadata"]["labels"]["node-role.kubernetes.io/control-plane"] == "true"
    assert node["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"] > 0
    assert node["status"]["nodeInfo"]["containerRuntimeVersion"].startswith("fake://")
    assert node["spec"]["podCIDR"]  # node-ipam gave it a range


def test_a_deployment_becomes_available_and_a_service_selects_its_pods(
    cluster: ServerProcess,
) -> None:
    kubectl(cluster, "create", "deployment", "web", "--image=nginx:1.25", "--replicas=3")
    kubectl(cluster, "rollout", "status", "deployment/web", "--timeout=60s")
    kubectl(
        cluster,
        "wait",
        "deployment/web",
        "--for=condition=Available",
        "--timeout=30s",
    )
    pods = get(cluster, "pods", "-l", "app=web")["items"]
    assert len(pods) == 3
    assert {pod["spec"]["nodeName"] for pod in pods} == {NODE}
    assert all(pod["status"]["phase"] == "Running" for pod in pods)
    assert all(pod["status"]["podIP"] for pod in pods)

    kubectl(cluster, "expose", "deployment", "web", "--port=80", "--target-port=8080")
    service = get(cluster, "service", "web")
    assert ipaddress.ip_address(service["spec"]["clusterIP"]) in ipaddress.ip_network(
        "10.96.0.0/12"  # engenho's default service CIDR, as kube-apiserver's
    )

    def ready_addresses() -> set[str]:
        slices = get(cluster, "endpointslices", "-l", "kubernetes.io/service-name=web")["items"]
        return {
            address
            for slice_ in slices
            for endpoint in slice_.get("endpoints") or ()
            if (endpoint.get("conditions") or {}).get("ready")
            for address in endpoint["addresses"]
        }

    wanted = {pod["status"]["podIP"] for pod in pods}
    eventually(lambda: ready_addresses() == wanted, what="the EndpointSlice lists the pods")
    slices = get(cluster, "endpointslices", "-l", "kubernetes.io/service-name=web")["items"]
    assert slices[0]["ports"] == [{"name": "", "port": 8080, "protocol": "TCP"}]

    kubectl(cluster, "scale", "deployment/web", "--replicas=1")
    eventually(lambda: len(ready_addresses()) == 1, what="the slice follows the scale-down")


def test_kubectl_logs_and_exec_reach_the_agent(cluster: ServerProcess) -> None:
    manifest = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "talker",
            "annotations": {
                "fake.engenho.io/log-line": "hello from the node",
                "fake.engenho.io/exec-output": "ran it\n",
            },
        },
        "spec": {"containers": [{"name": "app", "image": "busybox"}]},
    }
    kubectl(cluster, "apply", "-f", "-", input=json.dumps(manifest))
    kubectl(cluster, "wait", "pod/talker", "--for=condition=Ready", "--timeout=60s")
    assert kubectl(cluster, "logs", "talker").stdout == "hello from the node\n"
    stamped = kubectl(cluster, "logs", "talker", "--timestamps").stdout
    assert stamped.endswith(" hello from the node\n") and stamped[:4].isdigit()
    result = kubectl(cluster, "exec", "talker", "--", "anything", env=WEBSOCKETS)
    assert result.stdout == "ran it\n"
    assert kubectl(cluster, "exec", "talker", "--", "anything").stdout == "ran it\n"  # SPDY
    status, body, _ = cluster.request(
        "POST", "/api/v1/namespaces/default/pods/talker/exec?command=anything&stdout=true"
    )
    assert isinstance(body, dict)
    assert (status, body["reason"], body["message"]) == (
        400,
        "BadRequest",
        "Upgrade request required",
    )

    missing = kubectl(cluster, "logs", "talker", "-c", "nope", check=False)
    assert missing.returncode != 0
    assert "container nope is not valid for pod talker" in missing.stderr


def test_deletion_follows_the_propagation_policy(cluster: ServerProcess) -> None:
    for name in ("orphaned", "foreground"):
        kubectl(cluster, "create", "deployment", name, "--image=busybox", "--replicas=2")
        kubectl(cluster, "rollout", "status", f"deployment/{name}", "--timeout=60s")

    kubectl(cluster, "delete", "deployment", "orphaned", "--cascade=orphan")
    replicasets = get(cluster, "replicasets", "-l", "app=orphaned")["items"]
    assert len(replicasets) == 1
    assert not replicasets[0]["metadata"].get("ownerReferences")
    pods = get(cluster, "pods", "-l", "app=orphaned")["items"]
    assert len(pods) == 2 and all(p["metadata"]["ownerReferences"] for p in pods)

    kubectl(cluster, "delete", "deployment", "foreground", "--cascade=foreground", "--wait=true")
    # Foreground: the Deployment is gone only after its dependents are.
    assert get(cluster, "replicasets", "-l", "app=foreground")["items"] == []
    eventually(
        lambda: get(cluster, "pods", "-l", "app=foreground")["items"] == [],
        what="the pods of the foreground deletion are gone",
    )

    kubectl(cluster, "delete", "replicaset", "-l", "app=orphaned")  # background, the default
    eventually(
        lambda: get(cluster, "pods", "-l", "app=orphaned")["items"] == [],
        what="background deletion removes the pods",
    )


def test_a_rollout_survives_a_sigkill_of_the_server(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "data", "--runtime", "fake").start()
    try:
        kubectl(server, "wait", f"node/{NODE}", "--for=condition=Ready", "--timeout=60s")
        kubectl(server, "create", "deployment", "app", "--image=busybox:1.36", "--replicas=4")
        kubectl(server, "rollout", "status", "deployment/app", "--timeout=60s")
        kubectl(server, "set", "image", "deployment/app", "busybox=busybox:1.37")
        acknowledged = get(server, "deployment", "app")
        assert acknowledged["metadata"]["generation"] == 2

        server.stop(signal.SIGKILL)  # mid-rollout
        server.start()

        after = get(server, "deployment", "app")
        assert after["spec"]["template"]["spec"]["containers"][0]["image"] == "busybox:1.37"
        assert int(after["metadata"]["resourceVersion"]) >= int(
            acknowledged["metadata"]["resourceVersion"]
        )
        kubectl(server, "rollout", "status", "deployment/app", "--timeout=90s", timeout=120)
        pods = get(server, "pods", "-l", "app=app")["items"]
        live = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
        assert len(live) == 4
        assert {p["spec"]["containers"][0]["image"] for p in live} == {"busybox:1.37"}
        replicasets = get(server, "replicasets", "-l", "app=app")["items"]
        assert sorted(rs["spec"]["replicas"] for rs in replicasets) == [0, 4]
    finally:
        server.stop()
