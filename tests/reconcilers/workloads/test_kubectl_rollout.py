"""Deployments end to end: a real ``engenho server`` subprocess (running the ReplicaSet and
Deployment controllers), the real kubectl, and a thread playing the kubelet through the official
Python client (pods/binding, pods/status, the final delete). ``kubectl create deployment``,
``wait --for=condition=Available``, ``scale``, ``set image`` + ``rollout status``, ``rollout
history``, ``rollout undo``, ``pause``/``resume``, ``restart``, and ``get``/``describe``."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config, watch
from kubernetes.client.exceptions import ApiException

from engenho.server.controllers import BUILDERS
from tests.integration.server import ServerProcess, kubectl

pytestmark = [
    pytest.mark.slow,
    # Until `engenho server` runs them (engenho/server/controllers.py), there is nothing to test.
    pytest.mark.skipif(
        not {"replicaset", "deployment"} <= set(BUILDERS),
        reason="engenho server does not run the ReplicaSet and Deployment controllers yet",
    ),
]

NAMESPACE = "default"


class KubeletThread:
    """Binds the pods of ``default`` to a fake node, reports them Running and Ready, and
    finishes their deletion: what a node agent does, through the official client."""

    def __init__(self, kubeconfig: Path) -> None:
        self.api_client = config.new_client_from_config(config_file=str(kubeconfig))  # type: ignore[no-untyped-call]
        self.core = client.CoreV1Api(self.api_client)
        self.stopping = threading.Event()
        self.failures: list[str] = []
        self.thread = threading.Thread(target=self._run, name="kubelet", daemon=True)

    def __enter__(self) -> KubeletThread:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stopping.set()
        self.thread.join(10)
        self.api_client.close()

    def _run(self) -> None:
        while not self.stopping.is_set():
            try:
                listed: Any = self.core.list_namespaced_pod(NAMESPACE)
                for pod in listed.items:
                    self._handle(pod)
                stream = watch.Watch().stream(  # type: ignore[no-untyped-call]
                    self.core.list_namespaced_pod,
                    NAMESPACE,
                    resource_version=listed.metadata.resource_version,
                    timeout_seconds=1,
                )
                for event in stream:
                    if event["type"] != "DELETED":
                        self._handle(event["object"])
            except ApiException as exc:
                if exc.status != 410:
                    self.failures.append(f"{exc.status}: {exc.reason}")
                time.sleep(0.1)

    def _handle(self, pod: Any) -> None:
        name, meta = pod.metadata.name, pod.metadata
        try:
            if meta.deletion_timestamp is not None:
                self.core.delete_namespaced_pod(
                    name,
                    NAMESPACE,
                    body=client.V1DeleteOptions(
                        grace_period_seconds=0, preconditions=client.V1Preconditions(uid=meta.uid)
                    ),
                )
            elif not pod.spec.node_name:
                binding = client.V1Binding(
                    metadata=client.V1ObjectMeta(name=name),
                    target=client.V1ObjectReference(api_version="v1", kind="Node", name="node-1"),
                )
                # The answer is a Status, which the client cannot read as a Binding.
                self.core.create_namespaced_pod_binding(
                    name, NAMESPACE, binding, _preload_content=False
                )
            elif pod.status.phase != "Running":
                self.core.patch_namespaced_pod_status(name, NAMESPACE, self._running(pod))
        except ApiException as exc:
            if exc.status not in (404, 409):
                self.failures.append(f"{name}: {exc.status} {exc.body}")

    @staticmethod
    def _running(pod: Any) -> dict[str, Any]:
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        conditions = [
            {"type": kind, "status": "True", "lastTransitionTime": now}
            for kind in ("Initialized", "Ready", "ContainersReady", "PodScheduled")
        ]
        containers = [
            {
                "name": c.name,
                "image": c.image,
                "imageID": f"docker.io/library/{c.image}",
                "containerID": f"fake://{pod.metadata.uid}/{c.name}",
                "ready": True,
                "started": True,
                "restartCount": 0,
                "state": {"running": {"startedAt": now}},
            }
            for c in pod.spec.containers
        ]
        return {
            "status": {
                "phase": "Running",
                "hostIP": "10.0.0.1",
                "podIP": "10.244.0.9",
                "startTime": now,
                "conditions": conditions,
                "containerStatuses": containers,
            }
        }


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    process = ServerProcess(tmp_path_factory.mktemp("engenho")).start()
    yield process
    if process.process is not None:
        process.stop()
    # Neither controller may have failed a sync on the way (conflicts are retried silently).
    failures = [
        line
        for line in process.output
        if "replicaset-controller: " in line
        or "deployment-controller: " in line
        or "Traceback" in line
    ]
    assert failures == [], "".join(process.output)


@pytest.fixture(scope="module")
def kubelet(server: ServerProcess) -> Iterator[KubeletThread]:
    with KubeletThread(server.kubeconfig) as thread:
        yield thread
    assert thread.failures == []


def _json(server: ServerProcess, *args: str) -> Any:
    return json.loads(kubectl(server, *args, "-o", "json").stdout)


def _replica_sets(server: ServerProcess) -> dict[str, dict[str, Any]]:
    listed = _json(server, "get", "replicasets", "-l", "app=web")
    return {rs["metadata"]["name"]: rs for rs in listed["items"]}


def _rollout_status(server: ServerProcess) -> None:
    out = kubectl(server, "rollout", "status", "deployment/web", "--timeout=60s", timeout=90)
    assert 'deployment "web" successfully rolled out' in out.stdout


def _images(server: ServerProcess) -> set[str]:
    pods = _json(server, "get", "pods", "-l", "app=web")["items"]
    live = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
    return {p["spec"]["containers"][0]["image"] for p in live}


def _eventually(check: Any, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        assert time.monotonic() < deadline, f"never held: {check}"
        time.sleep(0.2)


def test_create_and_wait_available(server: ServerProcess, kubelet: KubeletThread) -> None:
    out = kubectl(server, "create", "deployment", "web", "--image=nginx", "--replicas=3")
    assert "deployment.apps/web created" in out.stdout
    waited = kubectl(
        server,
        "wait",
        "--for=condition=Available",
        "deployment/web",
        "--timeout=60s",
        timeout=90,
    )
    assert "deployment.apps/web condition met" in waited.stdout
    _rollout_status(server)
    (rs,) = _replica_sets(server).values()
    hash_ = rs["metadata"]["labels"]["pod-template-hash"]
    assert rs["metadata"]["name"] == f"web-{hash_}"
    assert rs["status"]["readyReplicas"] == 3
    table = kubectl(server, "get", "deployment", "web").stdout.splitlines()
    assert table[0].split() == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    assert table[1].split()[:4] == ["web", "3/3", "3", "3"]


def test_scale(server: ServerProcess, kubelet: KubeletThread) -> None:
    assert (
        "deployment.apps/web scaled"
        in kubectl(server, "scale", "deploy/web", "--replicas=5").stdout
    )
    _rollout_status(server)
    d = _json(server, "get", "deployment", "web")
    assert d["status"]["availableReplicas"] == 5 and d["status"]["replicas"] == 5


def test_set_image_rolls_out(server: ServerProcess, kubelet: KubeletThread) -> None:
    out = kubectl(server, "set", "image", "deployment/web", "nginx=nginx:1.25")
    assert "deployment.apps/web image updated" in out.stdout
    _rollout_status(server)
    assert _images(server) == {"nginx:1.25"}
    revisions = sorted(
        rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"]
        for rs in _replica_sets(server).values()
    )
    assert revisions == ["1", "2"]


def test_rollout_history(server: ServerProcess, kubelet: KubeletThread) -> None:
    history = kubectl(server, "rollout", "history", "deployment/web").stdout.splitlines()
    assert history[0] == "deployment.apps/web "
    assert history[1].split() == ["REVISION", "CHANGE-CAUSE"]
    assert [line.split()[0] for line in history[2:] if line.strip()] == ["1", "2"]
    detail = kubectl(server, "rollout", "history", "deployment/web", "--revision=2").stdout
    assert "nginx:1.25" in detail and "pod-template-hash=" in detail


def test_rollout_undo(server: ServerProcess, kubelet: KubeletThread) -> None:
    out = kubectl(server, "rollout", "undo", "deployment/web")
    assert "deployment.apps/web rolled back" in out.stdout
    _rollout_status(server)
    assert _images(server) == {"nginx"}
    history = kubectl(server, "rollout", "history", "deployment/web").stdout.splitlines()
    assert [line.split()[0] for line in history[2:] if line.strip()] == ["2", "3"]
    d = _json(server, "get", "deployment", "web")
    assert d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"
    assert len(_replica_sets(server)) == 2


def test_pause_and_resume(server: ServerProcess, kubelet: KubeletThread) -> None:
    assert "deployment.apps/web paused" in kubectl(server, "rollout", "pause", "deploy/web").stdout
    kubectl(server, "set", "image", "deployment/web", "nginx=nginx:1.26")
    time.sleep(1)
    assert len(_replica_sets(server)) == 2  # paused: no new revision
    d = _json(server, "get", "deployment", "web")
    progressing = {c["type"]: c for c in d["status"]["conditions"]}["Progressing"]
    assert (progressing["status"], progressing["reason"]) == ("Unknown", "DeploymentPaused")
    resumed = kubectl(server, "rollout", "resume", "deploy/web").stdout
    assert "deployment.apps/web resumed" in resumed
    _rollout_status(server)
    assert _images(server) == {"nginx:1.26"}


def test_restart(server: ServerProcess, kubelet: KubeletThread) -> None:
    before = set(_replica_sets(server))
    out = kubectl(server, "rollout", "restart", "deployment/web")
    assert "deployment.apps/web restarted" in out.stdout
    _rollout_status(server)
    after = _replica_sets(server)
    (new,) = set(after) - before
    annotations = after[new]["spec"]["template"]["metadata"]["annotations"]
    assert "kubectl.kubernetes.io/restartedAt" in annotations


def test_describe_shows_the_rollout(server: ServerProcess, kubelet: KubeletThread) -> None:
    described = kubectl(server, "describe", "deployment", "web").stdout
    assert "NewReplicaSet:" in described
    assert "ScalingReplicaSet" in described
    assert "Available      True    MinimumReplicasAvailable" in described


def test_delete_removes_everything(server: ServerProcess, kubelet: KubeletThread) -> None:
    kubectl(server, "delete", "deployment", "web", timeout=90)
    _eventually(lambda: not _replica_sets(server) and not _images(server))
