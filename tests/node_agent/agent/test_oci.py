"""The node agent with the oci runtime (crun), end to end: ``engenho server --runtime oci``
with a busybox image built from the host's static busybox, driven by the real kubectl.

``kubectl run --restart=Never`` reaches Succeeded and ``kubectl logs`` shows its output; a
mounted ConfigMap is what a container reads; a Deployment rolls out Running and Ready; a
container killed behind the agent's back, or failing its liveness probe, is restarted;
``kubectl delete pod`` stops containers within their grace period, whether they handle
SIGTERM or not; a missing image shows ErrImagePull then ImagePullBackOff; ``kubectl exec``
relays output and exit codes. Skipped, saying why, where crun cannot run a container."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from engenho.node_agent.images import ImageStore, build_busybox_archive, import_archive
from engenho.node_agent.runtime import RuntimeUnavailableError
from engenho.node_agent.runtimes.oci_monitors import probe_host
from tests.integration.server import ServerProcess, kubectl
from tests.node_agent.agent.oci_helpers import (
    SLEEP_UNTIL_TERM,
    Pod,
    apply,
    container_process,
    container_status,
    diagnosis,
    events_for,
    is_running_and_ready,
    pod_manifest,
    pods_labelled,
    wait_phase,
    wait_pod,
)

# kubectl before 1.30 speaks SPDY for exec unless told otherwise; engenho speaks WebSocket.
WEBSOCKETS = {"KUBECTL_REMOTE_COMMAND_WEBSOCKETS": "true"}


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
        _wait_for_pod_cidr(process)
        runtime = json.loads(kubectl(process, "get", "node", "test-node", "-o", "json").stdout)[
            "status"
        ]["nodeInfo"]["containerRuntimeVersion"]
        if not runtime.startswith("crun://"):
            pytest.fail(f"the embedded node fell back from oci:\n{''.join(process.output)}")
        yield process
        # Let the agent remove every container (and unmount their filesystems) before the
        # server goes: containers outlive a stopped agent by design. Deployments first, so
        # that no ReplicaSet makes new pods behind the pods' deletion.
        kubectl(process, "delete", "deployments", "--all", "--cascade=foreground", "--wait=true")
        kubectl(process, "delete", "pods", "--all", "--grace-period=1", "--wait=true")
        sandboxes = data / "node" / "oci" / "sandboxes"
        deadline = time.monotonic() + 60
        while any(sandboxes.iterdir()) and time.monotonic() < deadline:
            time.sleep(0.1)
        left = sorted(p.name for p in sandboxes.iterdir())
        assert not left, f"sandboxes left behind (their containers run on): {left}\n" + "".join(
            process.output[-40:]
        )
    finally:
        if process.process is not None:
            process.stop()


def _wait_for_pod_cidr(server: ServerProcess) -> None:
    """The node registers, and the node-ipam controller gives it a pod CIDR. Should that
    controller be off, give one after a while (a patch racing the controller may be refused,
    as spec.podCIDR cannot change once set: harmless)."""
    deadline = time.monotonic() + 30
    patch_at = time.monotonic() + 10
    node: Pod = {}
    while time.monotonic() < deadline:
        result = kubectl(server, "get", "node", "test-node", "-o", "json", check=False)
        if result.returncode == 0:
            node = json.loads(result.stdout)
            if node["spec"].get("podCIDR"):
                return
            if time.monotonic() > patch_at:
                cidr = {"spec": {"podCIDR": "10.42.9.0/24", "podCIDRs": ["10.42.9.0/24"]}}
                kubectl(server, "patch", "node", "test-node", "-p", json.dumps(cidr), check=False)
        time.sleep(0.1)
    raise AssertionError(f"node test-node never had a pod CIDR: {json.dumps(node)}")


def _delete_soon(server: ServerProcess, *names: str) -> None:
    """Delete pods without waiting (the module's teardown waits for their sandboxes)."""
    kubectl(server, "delete", "pod", *names, "--wait=false")


def test_kubectl_run_echo_succeeds(oci_server: ServerProcess) -> None:
    # Scheduled by the server's scheduler onto its own node, as a newcomer's would be.
    kubectl(
        oci_server, "run", "hi", "--restart=Never", "--image=busybox", "--", "sh", "-c", "echo hi"
    )
    pod = wait_phase(oci_server, "hi", "Succeeded")
    assert pod["spec"]["nodeName"] == "test-node"
    status = container_status(pod)
    terminated = status["state"]["terminated"]
    assert terminated["exitCode"] == 0 and terminated["reason"] == "Completed"
    assert status["containerID"].startswith("oci://")
    # Through the apiserver to the node agent's endpoint, as upstream's kubectl logs goes.
    assert kubectl(oci_server, "logs", "hi").stdout == "hi\n"
    _delete_soon(oci_server, "hi")


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
    wait_phase(oci_server, "reader", "Succeeded")
    logs = kubectl(oci_server, "logs", "reader").stdout
    assert logs == "hello from a file\nhello from a file\n"
    _delete_soon(oci_server, "reader")


def test_a_deployment_rolls_out_running_and_ready(oci_server: ServerProcess) -> None:
    kubectl(
        oci_server,
        "create",
        "deployment",
        "sleeper",
        "--image=busybox",
        "--replicas=2",
        "--",
        "sh",
        "-c",
        SLEEP_UNTIL_TERM,
    )
    rollout = kubectl(
        oci_server, "rollout", "status", "deployment/sleeper", "--timeout=60s", timeout=90,
        check=False,
    )  # fmt: skip
    pods = pods_labelled(oci_server, "app=sleeper")
    assert rollout.returncode == 0, (
        f"{rollout.stdout}{rollout.stderr}"
        + "".join(f"\n{p['metadata']['name']}: {json.dumps(p.get('status'))}" for p in pods)
        + "\n"
        + "".join(diagnosis(oci_server, p["metadata"]["name"]) for p in pods)
    )
    assert len(pods) == 2, [p["metadata"]["name"] for p in pods]
    for pod in pods:
        assert is_running_and_ready(pod), json.dumps(pod["status"], indent=1)
        conditions = {c["type"]: c["status"] for c in pod["status"]["conditions"]}
        assert conditions["Ready"] == conditions["ContainersReady"] == "True", conditions
        assert pod["status"]["podIP"], pod["status"]
    # Foreground: the delete returns once the ReplicaSet and its pods are gone too.
    kubectl(
        oci_server,
        "delete",
        "deployment",
        "sleeper",
        "--cascade=foreground",
        "--timeout=60s",
        timeout=90,
    )
    assert pods_labelled(oci_server, "app=sleeper") == []


def test_a_container_killed_from_outside_is_restarted(oci_server: ServerProcess) -> None:
    apply(oci_server, pod_manifest("victim", SLEEP_UNTIL_TERM))
    pod = wait_pod(oci_server, "victim", is_running_and_ready, "Running and Ready")
    first = container_status(pod)
    process = container_process(oci_server, first["containerID"])
    os.kill(process.pid, signal.SIGKILL)  # behind the agent's back, as an OOM killer would

    def restarted(pod: Pod) -> bool:
        return container_status(pod).get("restartCount", 0) >= 1 and is_running_and_ready(pod)

    pod = wait_pod(oci_server, "victim", restarted, "restarted, Running and Ready")
    status = container_status(pod)
    assert status["restartCount"] == 1, status
    terminated = status["lastState"]["terminated"]
    assert (terminated["exitCode"], terminated["reason"]) == (137, "Error"), terminated
    assert terminated["containerID"] == first["containerID"], terminated
    assert status["containerID"] != first["containerID"], status
    assert not process.alive()
    assert container_process(oci_server, status["containerID"]).alive()
    _delete_soon(oci_server, "victim")


def test_a_failing_liveness_probe_restarts_the_container(oci_server: ServerProcess) -> None:
    # The first instance makes itself unhealthy at once (/tmp/sick); the emptyDir, which
    # outlives the container, tells the next one it is not the first, so it stays healthy.
    # The probe fails while /tmp/sick exists rather than passing while a file exists, so a
    # probe that runs before the shell does cannot kill the healthy instance.
    script = "if [ ! -e /state/ran ]; then touch /state/ran /tmp/sick; fi; " + SLEEP_UNTIL_TERM
    manifest = pod_manifest(
        "unwell",
        script,
        livenessProbe={
            "exec": {"command": ["sh", "-c", "test ! -e /tmp/sick"]},
            "periodSeconds": 1,
            "failureThreshold": 1,
        },
        volumeMounts=[{"name": "state", "mountPath": "/state"}],
    )
    manifest["spec"]["volumes"] = [{"name": "state", "emptyDir": {}}]
    apply(oci_server, manifest)

    def restarted(pod: Pod) -> bool:
        return container_status(pod).get("restartCount", 0) >= 1 and is_running_and_ready(pod)

    pod = wait_pod(oci_server, "unwell", restarted, "restarted after its liveness probe failed")
    status = container_status(pod)
    assert status["restartCount"] == 1, status
    # The trap made the stopped instance exit 0 on the kill's SIGTERM.
    assert status["lastState"]["terminated"]["exitCode"] == 0, status
    deadline = time.monotonic() + 30
    reasons: dict[str, str] = {}
    while time.monotonic() < deadline and not {"Unhealthy", "Killing"} <= reasons.keys():
        reasons = {e["reason"]: e["message"] for e in events_for(oci_server, "unwell")}
        time.sleep(0.2)
    assert reasons.get("Unhealthy", "").startswith("Liveness probe failed"), reasons
    assert reasons.get("Killing") == "Container app failed liveness probe, will be restarted", (
        reasons
    )
    _delete_soon(oci_server, "unwell")


def test_deleting_pods_stops_their_containers_within_the_grace_period(
    oci_server: ServerProcess,
) -> None:
    # "stubborn" ignores SIGTERM (so is killed when its 3 s are up); "polite" exits on it,
    # long before its 45 s would end.
    stubborn_grace, polite_grace = 3, 45
    apply(
        oci_server,
        pod_manifest("stubborn", "trap '' TERM; sleep 3600", grace=stubborn_grace),
        pod_manifest("polite", SLEEP_UNTIL_TERM, grace=polite_grace),
    )
    processes = {}
    for name in ("stubborn", "polite"):
        pod = wait_pod(oci_server, name, is_running_and_ready, "Running and Ready")
        processes[name] = container_process(oci_server, container_status(pod)["containerID"])

    def delete(name: str, bound: int) -> float:
        started = time.monotonic()
        # kubectl waits for the pod object to go, which the agent allows only once its
        # containers stopped; its own timeout turns a hang into a failure with a message.
        kubectl(oci_server, "delete", "pod", name, f"--timeout={bound}s", timeout=bound + 30)
        return time.monotonic() - started

    with ThreadPoolExecutor(2) as pool:
        stubborn = pool.submit(delete, "stubborn", stubborn_grace + 30)
        polite = pool.submit(delete, "polite", polite_grace - 5)
        stubborn_took, polite_took = stubborn.result(), polite.result()
    for name, process in processes.items():
        assert not process.alive(), f"{name}'s process {process.pid} outlived its pod"
        assert kubectl(oci_server, "get", "pod", name, check=False).returncode != 0
    # Lower bound by causality: the SIGKILL waits for the grace period to end.
    assert stubborn_took >= stubborn_grace, stubborn_took
    # Generous: the polite one exits on SIGTERM, in well under a second when idle.
    assert polite_took < polite_grace - 15, polite_took


def test_a_missing_image_waits_in_err_image_pull_then_back_off(oci_server: ServerProcess) -> None:
    kubectl(oci_server, "run", "nothere", "--restart=Never", "--image=nothere:1")
    seen: dict[str, str] = {}

    def both_seen(pod: Pod) -> bool:
        waiting = container_status(pod).get("state", {}).get("waiting", {})
        if waiting.get("reason"):
            seen.setdefault(waiting["reason"], waiting.get("message", ""))
        return {"ErrImagePull", "ImagePullBackOff"} <= seen.keys()

    # ErrImagePull, then ImagePullBackOff half-way through the 10 s back-off, then again.
    pod = wait_pod(oci_server, "nothere", both_seen, "ErrImagePull then ImagePullBackOff")
    assert pod["status"]["phase"] == "Pending", pod["status"]
    assert seen["ErrImagePull"].startswith('Failed to pull image "nothere:1": '), seen
    assert "docker.io/library/nothere:1" in seen["ErrImagePull"], seen
    assert "engenho image import" in seen["ErrImagePull"], seen
    assert seen["ImagePullBackOff"] == 'Back-off pulling image "nothere:1"', seen
    assert set(seen) <= {"ContainerCreating", "ErrImagePull", "ImagePullBackOff"}, seen
    _delete_soon(oci_server, "nothere")


def test_kubectl_exec_relays_output_and_the_exit_code(oci_server: ServerProcess) -> None:
    apply(oci_server, pod_manifest("shell", SLEEP_UNTIL_TERM))
    wait_pod(oci_server, "shell", is_running_and_ready, "Running and Ready")
    failed = kubectl(
        oci_server,
        "exec",
        "shell",
        "--",
        "sh",
        "-c",
        "echo from-exec; exit 3",
        env=WEBSOCKETS,
        check=False,
    )
    assert failed.returncode == 3, (failed.stdout, failed.stderr)
    assert failed.stdout == "from-exec\n"
    assert "command terminated with exit code 3" in failed.stderr, failed.stderr
    both = kubectl(
        oci_server, "exec", "shell", "--", "sh", "-c", "echo out; echo err >&2", env=WEBSOCKETS
    )
    assert both.stdout == "out\n"
    assert "err" in both.stderr.splitlines(), both.stderr
    _delete_soon(oci_server, "shell")
