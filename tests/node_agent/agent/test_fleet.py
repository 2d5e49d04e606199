"""A fleet of simulated nodes, end to end: two ``engenho agent --simulate-nodes`` processes
(100 nodes on the fake runtime) against a real ``engenho server``; a 1,000-replica Deployment
converges on them; then one agent process dies (SIGKILL), its nodes go Unknown and are tainted
unreachable, their pods are evicted by the taint manager and replaced on the nodes left.

The server runs kube-controller-manager's node lifecycle with short timings (nodes checked
every 0.5 s) and an eviction rate high enough that ten nodes are tainted at once; the pods
tolerate the readiness taints for 1 s, so eviction follows at once. The agents hold 12 s
Leases (renewed every 3 s, a quarter, as the kubelet's) and the grace period is 20 s: it must
outlast the renewal interval with ample room for renewals delayed by a busy 2-core machine
(the whole suite running beside it), or live nodes flap to Unknown and lose their pods. The
ten dead nodes are 10 % of the only zone, so the zone stays healthy and evictions are not
held back (upstream's partial-disruption rule needs 55 %).

Pods on a dead node cannot be finished by their kubelet: as upstream's, they stay Terminating
(only a ``node.kubernetes.io/out-of-service`` taint or the Node's deletion would let the pod GC
remove them). The ReplicaSet does not count them as active, so their replacements are created
regardless; that is what the test checks.

Every check is one LIST (of nodes, of the Deployment's pods) through the API.
"""

from __future__ import annotations

import ipaddress
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any, TypeVar

import pytest

from tests.integration.server import ServerProcess, kubectl

pytestmark = [pytest.mark.slow, pytest.mark.timeout(420)]

Obj = dict[str, Any]
T = TypeVar("T")

FLEETS = {"fleet-a": 90, "fleet-b": 10}
"""Agent process (its nodes' name prefix) -> how many nodes it simulates."""
REPLICAS = 1000
NAMESPACE = "fleet"
APP = "fleet"
UNREACHABLE = "node.kubernetes.io/unreachable"
NOT_READY = "node.kubernetes.io/not-ready"

SERVER_ENV = {
    "ENGENHO_NODE_LIFECYCLE__NODE_MONITOR_GRACE_PERIOD_SECONDS": "20",
    "ENGENHO_NODE_LIFECYCLE__NODE_MONITOR_PERIOD_SECONDS": "0.5",
    "ENGENHO_NODE_LIFECYCLE__NODE_STARTUP_GRACE_PERIOD_SECONDS": "30",
    "ENGENHO_NODE_LIFECYCLE__NODE_EVICTION_RATE": "100",
}


def _node_names(fleet: str) -> set[str]:
    return {f"{fleet}-{i}" for i in range(FLEETS[fleet])}


ALL_NODES = set().union(*(_node_names(fleet) for fleet in FLEETS))


class Agent:
    """One ``engenho agent --simulate-nodes`` process; its output goes to a file."""

    def __init__(self, server: ServerProcess, data: Path, fleet: str) -> None:
        data.mkdir(parents=True)
        self.log_path = data / "agent.log"
        self._log: IO[str] = self.log_path.open("w")
        self.process = subprocess.Popen(
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
                "--node-name",
                fleet,
                "--simulate-nodes",
                str(FLEETS[fleet]),
                "--node-lease-duration-seconds",
                "12",
                "--node-status-update-frequency",
                "5s",
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(30)
        finally:
            self._log.close()


def _until(check: Callable[[], tuple[T | None, str]], timeout: float, what: str) -> T:
    """Call ``check`` until it returns a value; it also says what it saw, for the failure."""
    deadline = time.monotonic() + timeout
    seen = "nothing yet"
    while time.monotonic() < deadline:
        value, seen = check()
        if value is not None:
            return value
        time.sleep(0.25)
    raise AssertionError(f"{what}: not within {timeout} s; last seen: {seen}")


def _list(server: ServerProcess, path: str) -> list[Obj]:
    status, body, _ = server.request("GET", path)
    assert status == 200 and isinstance(body, dict), (status, body)
    return list(body["items"])


def _nodes(server: ServerProcess) -> dict[str, Obj]:
    return {n["metadata"]["name"]: n for n in _list(server, "/api/v1/nodes")}


def _pods(server: ServerProcess) -> list[Obj]:
    return _list(server, f"/api/v1/namespaces/{NAMESPACE}/pods?labelSelector=app%3D{APP}")


def _deployment(server: ServerProcess) -> Obj:
    status, body, _ = server.request(
        "GET", f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments/{APP}"
    )
    assert status == 200 and isinstance(body, dict), (status, body)
    return body


def _condition(obj: Obj, kind: str) -> Obj:
    for entry in (obj.get("status") or {}).get("conditions") or []:
        if entry.get("type") == kind:
            return dict(entry)
    return {}


def _ready_status(node: Obj) -> str:
    return str(_condition(node, "Ready").get("status", "absent"))


def _taints(node: Obj) -> set[tuple[str, str]]:
    return {(t["key"], t["effect"]) for t in (node.get("spec") or {}).get("taints") or []}


def _live(pods: list[Obj]) -> list[Obj]:
    return [p for p in pods if not p["metadata"].get("deletionTimestamp")]


def _fleet_of(pod: Obj) -> str:
    return str((pod.get("spec") or {}).get("nodeName") or "").rpartition("-")[0] or "unbound"


def _available(deployment: Obj) -> tuple[int, int, int]:
    status = deployment.get("status") or {}
    return (
        int(status.get("replicas", 0)),
        int(status.get("readyReplicas", 0)),
        int(status.get("availableReplicas", 0)),
    )


def _deployment_manifest() -> Obj:
    tolerate = [
        {"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 1}
        for key in (NOT_READY, UNREACHABLE)
    ]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": APP, "namespace": NAMESPACE},
        "spec": {
            "replicas": REPLICAS,
            "selector": {"matchLabels": {"app": APP}},
            "template": {
                "metadata": {"labels": {"app": APP}},
                "spec": {
                    "containers": [{"name": "app", "image": "busybox"}],
                    "tolerations": tolerate,
                },
            },
        },
    }


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[tuple[ServerProcess, dict[str, Agent]]]:
    server = ServerProcess(tmp_path / "data", env=SERVER_ENV).start()
    agents: dict[str, Agent] = {}
    try:
        for fleet in FLEETS:
            agents[fleet] = Agent(server, tmp_path / fleet, fleet)
        yield server, agents
    finally:
        for agent in agents.values():
            if agent.process.poll() is None:
                agent.stop(signal.SIGKILL)
        assert server.stop() == 0, "".join(server.output[-50:])


def test_a_fleet_runs_a_deployment_and_replaces_the_pods_of_dead_nodes(
    cluster: tuple[ServerProcess, dict[str, Agent]],
) -> None:
    server, agents = cluster

    def all_ready() -> tuple[dict[str, Obj] | None, str]:
        nodes = _nodes(server)
        ready = {n for n in ALL_NODES if n in nodes and _ready_status(nodes[n]) == "True"}
        with_cidr = {n for n in ready if nodes[n]["spec"].get("podCIDR")}
        seen = f"{len(nodes)} nodes, {len(ready)} of ours Ready, {len(with_cidr)} with a podCIDR"
        return (nodes if len(with_cidr) == len(ALL_NODES) else None), seen

    try:
        nodes = _until(all_ready, 60, "all 100 simulated nodes Ready")
    except AssertionError as exc:
        raise AssertionError(
            f"{exc}\n" + "".join(f"{f}:\n{a.output()[-3000:]}" for f, a in agents.items())
        ) from None
    cidrs = {name: ipaddress.ip_network(nodes[name]["spec"]["podCIDR"]) for name in ALL_NODES}

    # ------------------------------------------------------------ a Deployment converges
    kubectl(server, "create", "namespace", NAMESPACE)
    kubectl(server, "apply", "-f", "-", input=json.dumps(_deployment_manifest()))
    kubectl(
        server,
        "rollout",
        "status",
        f"deployment/{APP}",
        "-n",
        NAMESPACE,
        "--timeout=180s",
        timeout=200,
    )

    def converged() -> tuple[list[Obj] | None, str]:
        pods = _live(_pods(server))
        running = [p for p in pods if p.get("status", {}).get("phase") == "Running"]
        replicas = _available(_deployment(server))
        seen = f"{len(pods)} live pods, {len(running)} Running; deployment {replicas}"
        done = len(running) == REPLICAS and replicas == (REPLICAS,) * 3
        return (pods if done else None), seen

    pods = _until(converged, 30, "1,000 Running pods and 1,000 available replicas")
    assert len(pods) == REPLICAS
    ips = [p["status"].get("podIP") for p in pods]
    assert all(ips) and len(set(ips)) == REPLICAS, "every pod has its own address"
    for pod in pods:
        node = pod["spec"].get("nodeName")
        assert node in ALL_NODES, pod["metadata"]["name"]
        assert pod["status"]["phase"] == "Running"
        assert _condition(pod, "Ready").get("status") == "True"
        assert ipaddress.ip_address(pod["status"]["podIP"]) in cidrs[node], pod["metadata"]
    spread = Counter(_fleet_of(p) for p in pods)
    assert spread["fleet-b"] > 0, f"the scheduler put nothing on fleet-b: {spread}"
    doomed = {p["metadata"]["uid"] for p in pods if _fleet_of(p) == "fleet-b"}
    survivors = {p["metadata"]["uid"] for p in pods if _fleet_of(p) == "fleet-a"}

    # ------------------------------------------------------------ fleet-b dies
    assert agents["fleet-b"].stop(signal.SIGKILL) == -signal.SIGKILL
    dead = _node_names("fleet-b")

    def unreachable() -> tuple[bool | None, str]:
        nodes = _nodes(server)
        statuses = Counter(_ready_status(nodes[n]) for n in dead)
        tainted = [n for n in dead if (UNREACHABLE, "NoExecute") in _taints(nodes[n])]
        seen = f"Ready statuses of fleet-b: {dict(statuses)}; {len(tainted)} tainted NoExecute"
        return (True if statuses["Unknown"] == len(dead) == len(tainted) else None), seen

    _until(unreachable, 60, "fleet-b's nodes Unknown and tainted unreachable")

    def replaced() -> tuple[list[Obj] | None, str]:
        pods = _pods(server)
        live = _live(pods)
        running = [p for p in live if p.get("status", {}).get("phase") == "Running"]
        on_dead = [p for p in live if _fleet_of(p) == "fleet-b"]
        replicas = _available(_deployment(server))
        seen = (
            f"{len(pods)} pods, {len(live)} live ({dict(Counter(map(_fleet_of, live)))}), "
            f"{len(running)} Running, {len(on_dead)} live on fleet-b; deployment {replicas}"
        )
        done = not on_dead and len(running) == len(live) == REPLICAS and replicas == (REPLICAS,) * 3
        return (pods if done else None), seen

    pods = _until(replaced, 60, "fleet-b's pods evicted and replaced on fleet-a")
    live = _live(pods)
    assert {p["spec"]["nodeName"] for p in live} <= _node_names("fleet-a")
    # Only the dead nodes' pods were replaced (one new pod each): fleet-a's stayed put.
    uids = {p["metadata"]["uid"] for p in live}
    assert survivors <= uids and not uids & doomed
    assert len(uids - survivors) == len(doomed)
    assert all(_condition(p, "Ready").get("status") == "True" for p in live)
    # fleet-b's pods are Terminating, as upstream's would be: no kubelet is left to finish
    # them (only an out-of-service taint or deleting the Node lets the pod GC remove them).
    # Each was marked not ready when its node went Unknown, then a disruption target of the
    # taint manager.
    left = {p["metadata"]["uid"]: p for p in pods if p["metadata"]["uid"] in doomed}
    assert left.keys() == doomed
    for pod in left.values():
        name = pod["metadata"]["name"]
        assert pod["metadata"].get("deletionTimestamp"), name
        assert _condition(pod, "Ready").get("status") == "False", name
        target = _condition(pod, "DisruptionTarget")
        assert (target.get("status"), target.get("reason")) == (
            "True",
            "DeletionByTaintManager",
        ), name
    nodes = _nodes(server)
    assert all(_ready_status(nodes[n]) == "True" for n in _node_names("fleet-a"))
    assert not any(_taints(nodes[n]) for n in _node_names("fleet-a"))

    # ------------------------------------------------------------ the survivors stop cleanly
    agent = agents["fleet-a"]
    code = agent.stop(signal.SIGTERM)
    assert code == 0, agent.output()[-5000:]
