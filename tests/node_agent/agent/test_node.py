"""The node itself, end to end: registration with upstream's labels, capacity, addresses,
nodeInfo and conditions; the Lease in kube-node-lease renewed by the agent; re-registration
adopting an existing Node; ``engenho agent`` (and its ``--simulate-nodes``) as a process; and
``engenho server``'s embedded node."""

from __future__ import annotations

import ipaddress
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from engenho import __version__
from engenho.client import KubeClient, NotFoundError
from engenho.node_agent.node import KUBELET_VERSION
from tests.integration.server import ServerProcess, kubectl

from .conftest import StartAgent, eventually, pod_manifest


async def test_the_node_registers_as_a_kubelet_does(
    client: KubeClient, start_agent: StartAgent
) -> None:
    agent = await start_agent(
        labels={"zone": "a"}, taints=({"key": "dedicated", "value": "db", "effect": "NoSchedule"},)
    )
    node = await client.get("nodes", agent.name)
    labels = node["metadata"]["labels"]
    assert labels["kubernetes.io/hostname"] == agent.name
    assert labels["kubernetes.io/os"] == "linux" and labels["beta.kubernetes.io/os"] == "linux"
    assert labels["kubernetes.io/arch"] == labels["beta.kubernetes.io/arch"]
    assert labels["zone"] == "a"
    assert node["spec"]["taints"] == [{"key": "dedicated", "value": "db", "effect": "NoSchedule"}]
    status = node["status"]
    assert status["capacity"]["pods"] == "110"
    assert int(status["capacity"]["cpu"]) >= 1
    assert status["capacity"]["memory"].endswith("Ki")
    assert status["allocatable"]["memory"] != status["capacity"]["memory"]
    info = status["nodeInfo"]
    assert info["kubeletVersion"] == KUBELET_VERSION == f"v1.29.0-engenho.{__version__}"
    assert info["containerRuntimeVersion"] == "fake://1"
    assert info["operatingSystem"] == "linux" and info["kernelVersion"] == os.uname().release
    assert info["machineID"] and info["bootID"]
    types = [a["type"] for a in status["addresses"]]
    assert types == ["InternalIP", "Hostname"]
    conditions = {c["type"]: c for c in status["conditions"]}
    assert [c["type"] for c in status["conditions"]] == [
        "MemoryPressure",
        "DiskPressure",
        "PIDPressure",
        "Ready",
    ]
    ready = conditions["Ready"]
    assert (ready["status"], ready["reason"], ready["message"]) == (
        "True",
        "KubeletReady",
        "kubelet is posting ready status",
    )
    assert conditions["PIDPressure"]["reason"] == "KubeletHasSufficientPID"
    assert ready["lastHeartbeatTime"] and ready["lastTransitionTime"]


async def test_node_events_say_what_the_kubelet_says(
    client: KubeClient, start_agent: StartAgent
) -> None:
    agent = await start_agent()

    async def events() -> dict:
        found = {
            e["reason"]: e
            async for e in client.list("events", namespace="default")
            if e["involvedObject"]["name"] == agent.name
        }
        return found if {"Starting", "NodeReady", "NodeHasSufficientPID"} <= found.keys() else {}

    found = await eventually(events, what="the node's events")
    assert found["Starting"]["message"] == "Starting kubelet."
    assert found["NodeReady"]["message"] == f"Node {agent.name} status is now: NodeReady"
    assert found["NodeReady"]["involvedObject"]["kind"] == "Node"
    assert found["NodeReady"]["involvedObject"]["uid"] == agent.name


async def test_the_lease_is_held_and_renewed(client: KubeClient, start_agent: StartAgent) -> None:
    agent = await start_agent(lease_renew_every=0.2)
    node = await client.get("nodes", agent.name)

    async def lease() -> dict | None:
        try:
            return await client.get(
                "leases.coordination.k8s.io", agent.name, namespace="kube-node-lease"
            )
        except NotFoundError:
            return None  # not created yet

    first = await eventually(lease, what="the Lease")
    assert first["spec"]["holderIdentity"] == agent.name
    assert first["spec"]["leaseDurationSeconds"] == 40
    assert first["metadata"]["ownerReferences"][0]["uid"] == node["metadata"]["uid"]

    async def renewed() -> bool:
        current = await lease()
        return current is not None and current["spec"]["renewTime"] != first["spec"]["renewTime"]

    await eventually(renewed, what="a renewal")


async def test_a_status_change_is_reported_with_stable_transition_times(
    client: KubeClient, start_agent: StartAgent
) -> None:
    agent = await start_agent(status_update_every=0.1, status_report_every=0.3)
    before = {c["type"]: c for c in (await client.get("nodes", agent.name))["status"]["conditions"]}

    async def heartbeat() -> dict | None:
        node = await client.get("nodes", agent.name)
        now = {c["type"]: c for c in node["status"]["conditions"]}
        later = now["Ready"]["lastHeartbeatTime"] != before["Ready"]["lastHeartbeatTime"]
        return now if later else None

    now = await eventually(heartbeat, what="a heartbeat after the report period")
    assert now["Ready"]["lastTransitionTime"] == before["Ready"]["lastTransitionTime"]


async def test_a_node_marked_unknown_says_ready_again_at_the_next_update(
    client: KubeClient, start_agent: StartAgent
) -> None:
    # Reports only on change or every hour: the stored Node is what it compares with.
    agent = await start_agent(status_update_every=0.1, status_report_every=3600)
    node = await client.get("nodes", agent.name)
    conditions = [
        {**c, "status": "Unknown", "reason": "NodeStatusUnknown", "message": "stopped posting"}
        for c in node["status"]["conditions"]
    ]
    await client.patch(
        "nodes", agent.name, {"status": {"conditions": conditions}}, subresource="status"
    )

    async def ready_again() -> bool:
        current = await client.get("nodes", agent.name)
        ready = {c["type"]: c for c in current["status"]["conditions"]}["Ready"]
        return ready["status"] == "True" and ready["reason"] == "KubeletReady"

    await eventually(ready_again, timeout=5, what="Ready=True reported again")


def _agent_process(server: ServerProcess, data: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "engenho",
            "--log-level",
            "WARNING",
            "agent",
            "--kubeconfig",
            str(server.kubeconfig),
            "--data-dir",
            str(data),
            *args,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def _wait(check: object, timeout: float = 30) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()  # type: ignore[operator]
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("never happened")


def test_engenho_agent_simulates_nodes(server: ServerProcess, tmp_path: Path) -> None:
    process = _agent_process(server, tmp_path, "--node-name", "sim", "--simulate-nodes", "3")
    try:

        def nodes() -> list[str]:
            result = kubectl(server, "get", "nodes", "-o", "name", check=False)
            return sorted(n for n in result.stdout.split() if n.startswith("node/sim-"))

        assert _wait(lambda: len(nodes()) == 3)
        assert nodes() == ["node/sim-0", "node/sim-1", "node/sim-2"]
        for index in range(3):
            node = json.loads(kubectl(server, "get", "node", f"sim-{index}", "-o", "json").stdout)
            if not node["spec"].get("podCIDR"):  # unless the node-ipam controller gave one
                cidr = f"10.250.{index}.0/24"
                patch = json.dumps({"spec": {"podCIDR": cidr, "podCIDRs": [cidr]}})
                kubectl(server, "patch", "node", f"sim-{index}", "-p", patch, check=False)
        manifest = pod_manifest("sim-pod", "sim-2")
        kubectl(server, "apply", "-f", "-", input=json.dumps(manifest))

        def running() -> dict | None:
            result = kubectl(server, "get", "pod", "sim-pod", "-o", "json", check=False)
            pod = json.loads(result.stdout) if result.returncode == 0 else {}
            return pod if pod.get("status", {}).get("phase") == "Running" else None

        pod = _wait(running)
        node = json.loads(kubectl(server, "get", "node", "sim-2", "-o", "json").stdout)
        network = ipaddress.ip_network(node["spec"]["podCIDR"])
        assert ipaddress.ip_address(pod["status"]["podIP"]) in network  # type: ignore[index]
        leases = kubectl(server, "get", "lease", "-n", "kube-node-lease", "-o", "name").stdout
        assert {"lease.coordination.k8s.io/sim-0", "lease.coordination.k8s.io/sim-2"} <= set(
            leases.split()
        )
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(30)
        output = process.stdout.read() if process.stdout else ""
        if process.stdout:
            process.stdout.close()
    assert code == 0, output
    kubectl(server, "delete", "pod", "sim-pod", "--grace-period=0", "--force", check=False)


def test_the_embedded_node_runs_pods(tmp_path: Path) -> None:
    process = ServerProcess(tmp_path / "data", "--runtime", "fake").start()
    try:

        def ready() -> bool:
            result = kubectl(process, "get", "node", "test-node", "-o", "json", check=False)
            return result.returncode == 0 and '"KubeletReady"' in result.stdout

        _wait(ready)
        node = json.loads(kubectl(process, "get", "node", "test-node", "-o", "json").stdout)
        assert node["metadata"]["labels"]["node-role.kubernetes.io/control-plane"] == "true"
        cidr = node["spec"].get("podCIDR")
        if not cidr:  # no node-ipam controller in this server: give it one
            kubectl(
                process,
                "patch",
                "node",
                "test-node",
                "-p",
                json.dumps({"spec": {"podCIDR": "10.42.0.0/24", "podCIDRs": ["10.42.0.0/24"]}}),
            )
        kubectl(process, "apply", "-f", "-", input=json.dumps(pod_manifest("hello", "test-node")))

        def running() -> bool:
            result = kubectl(process, "get", "pod", "hello", "-o", "jsonpath={.status.phase}")
            return result.stdout == "Running"

        _wait(running)
    finally:
        code = process.stop()
    assert code == 0
