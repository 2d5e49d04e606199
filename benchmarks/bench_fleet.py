"""A fleet at the node agent's scale target: 1,000 simulated nodes and 10,000 pods Running
(quick: 100 nodes, 1,000 pods). Targets: converged within 60 s, server resident memory
<= 1.5 GiB.

An ``engenho server`` subprocess (no embedded node, a cluster CIDR of a /12 so 1,000 nodes get
a /24 each, node lifecycle at its defaults) and one ``engenho agent --simulate-nodes N``
subprocess. Measured from outside, as a user would: the seconds from the agent's start until
every Node is Ready with a podCIDR; then, from the first of ten Deployment creates, until every
pod is Running and until the Deployments report every replica available. Nodes and pods are
followed by one watch each (a LIST, then events: the server sends each event's stored bytes,
so a watcher costs it little, where a LIST of 10,000 pods every second would be most of its
work); Deployments by a LIST every half second; one final paged LIST confirms the count.
Beside the times: the peak resident memory (VmHWM) of both processes, the log's entries and
bytes, and the API requests the pods phase cost by verb and resource (from ``/metrics``).
Waits are bounded (pods: ten times the target): a run that does not converge says what it
reached instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import IO, Any

import uvloop
from rich.console import Console
from rich.table import Table

from benchmarks.bench_api import _SERVING
from engenho.client import ClientError, KubeClient, WatchEvent, load_config
from engenho.log import verify_log

console = Console(width=120)  # the table's ten columns, in a log file too
Obj = dict[str, Any]

NAMESPACE = "fleet-bench"
DEPLOYMENTS = 10
TARGET_SECONDS = 60.0
TARGET_RSS_MIB = 1.5 * 1024
PROGRESS_EVERY = 10.0
SERVER_ENV = {
    # 10.32.0.0/12 holds 4,096 /24 node ranges and stays clear of the service CIDR
    # (10.96.0.0/12); the default 10.42.0.0/16 holds 256.
    "ENGENHO_NETWORKING__CLUSTER_CIDR": "10.32.0.0/12",
}
_METRIC = re.compile(r"^(\w+)(?:\{(.*)\})? (\S+)$")
_LABEL = re.compile(r'(\w+)="([^"]*)"')


# ---------------------------------------------------------------------- processes


class Process:
    """A subprocess whose output goes to a file (a pipe nobody reads would block it)."""

    def __init__(self, name: str, argv: list[str], output: Path, env: dict[str, str]) -> None:
        self.name = name
        self.output = output
        self._file: IO[str] = output.open("w")
        self.started = time.perf_counter()
        self.popen = subprocess.Popen(
            argv,
            stdout=self._file,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **env},
        )

    def status(self) -> dict[str, int]:
        """VmHWM and VmRSS (KiB) from /proc, while the process lives."""
        found: dict[str, int] = {}
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{self.popen.pid}/status").read_text().splitlines():
                key, _, value = line.partition(":")
                if key in ("VmHWM", "VmRSS"):
                    found[key] = int(value.split()[0])
        return found

    def cpu_seconds(self) -> float:
        """User plus system CPU time so far (0 once the process is gone)."""
        try:
            fields = Path(f"/proc/{self.popen.pid}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            return 0.0
        # utime and stime are the stat file's 14th and 15th fields (the 12th, 13th after ")").
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def tail(self, chars: int = 3000) -> str:
        return self.output.read_text(errors="replace")[-chars:]

    def check(self) -> None:
        code = self.popen.poll()
        if code is not None:
            raise RuntimeError(f"{self.name} exited with {code}:\n{self.tail()}")

    def stop(self, timeout: float = 120) -> int | None:
        """SIGTERM, then wait; SIGKILL if it does not stop in time (None: it had to be)."""
        code: int | None
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
        try:
            code = self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()
            code = None
        self._file.close()
        return code


def _engenho(*args: str) -> list[str]:
    return [sys.executable, "-m", "engenho", "--log-level", "WARNING", *args]


def start_server(data: Path, work: Path) -> Process:
    server = Process(
        "engenho server",
        _engenho(
            "server",
            "--data-dir",
            str(data),
            "--listen",
            "127.0.0.1:0",  # a free port; the kubeconfig names the one taken
            "--runtime",
            "none",
        ),
        work / "server.out",
        SERVER_ENV,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        server.check()
        if _SERVING.search(server.output.read_text(errors="replace")):
            return server
        time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"the server did not start:\n{server.tail()}")


def start_agent(data: Path, work: Path, nodes: int) -> Process:
    return Process(
        "engenho agent",
        _engenho(
            "agent",
            "--kubeconfig",
            str(data / "kubeconfig"),
            "--data-dir",
            str(work / "agent"),
            "--node-name",
            "sim",
            "--simulate-nodes",
            str(nodes),
        ),
        work / "agent.out",
        {},
    )


# ---------------------------------------------------------------------- the API side


def _ready(node: Obj) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in (node.get("status") or {}).get("conditions") or ()
    )


def _deployment(index: int, replicas: int) -> Obj:
    labels = {"app": f"fleet-{index}"}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": f"fleet-{index}", "namespace": NAMESPACE},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "app", "image": "busybox"}]},
            },
        },
    }


class Tally:
    """Nodes and pods as the watches report them, counted incrementally (10,000 pods make
    tens of thousands of events: no rescans)."""

    def __init__(self, nodes: int, pods: int) -> None:
        self.nodes = nodes
        self.pods = pods
        self.ready: set[str] = set()
        self.with_cidr: set[str] = set()
        self.live: set[str] = set()
        self.bound: set[str] = set()
        self.running: set[str] = set()
        self.events = 0

    def node_event(self, event: WatchEvent[Obj]) -> None:
        name = str(event.object["metadata"]["name"])
        self.ready.discard(name)
        self.with_cidr.discard(name)
        if event.type.value == "DELETED":
            return
        if _ready(event.object):
            self.ready.add(name)
            if (event.object.get("spec") or {}).get("podCIDR"):
                self.with_cidr.add(name)

    def pod_event(self, event: WatchEvent[Obj]) -> None:
        self.events += 1
        pod = event.object
        name = str(pod["metadata"]["name"])
        for group in (self.live, self.bound, self.running):
            group.discard(name)
        if event.type.value == "DELETED" or pod["metadata"].get("deletionTimestamp"):
            return
        self.live.add(name)
        if (pod.get("spec") or {}).get("nodeName"):
            self.bound.add(name)
        if (pod.get("status") or {}).get("phase") == "Running":
            self.running.add(name)


async def _metrics(kube: KubeClient) -> tuple[float, Counter[str]]:
    """The log's commit index and API requests by ``verb resource[/subresource]``."""
    response = await kube.transport.request("GET", "/metrics", accept="text/plain")
    commit = 0.0
    requests: Counter[str] = Counter()
    for line in response.text.splitlines():
        match = _METRIC.match(line)
        if match is None:
            continue
        name, labels, value = match.groups()
        if name == "engenho_log_commit_index":
            commit = float(value)
        elif name == "apiserver_request_total":
            fields = dict(_LABEL.findall(labels or ""))
            resource = fields.get("resource", "")
            if fields.get("subresource"):
                resource += "/" + fields["subresource"]
            requests[f"{fields.get('verb', '')} {resource}"] += int(float(value))
    return commit, requests


class Run:
    def __init__(self, server: Process, agent: Process, nodes: int, pods: int) -> None:
        self.server = server
        self.agent = agent
        self.tally = Tally(nodes, pods)
        self.result: dict[str, Any] = {"nodes": nodes, "pods": pods}
        self.peak: dict[str, int] = {}
        self.rss: dict[str, int] = {}

    def sample(self) -> None:
        """Check both processes live; note their memory (peak and current)."""
        for key, process in (("server", self.server), ("agent", self.agent)):
            process.check()
            found = process.status()
            self.peak[key] = max(self.peak.get(key, 0), found.get("VmHWM", 0))
            self.rss[key] = found.get("VmRSS", 0)

    def cpu(self) -> dict[str, float]:
        """CPU seconds of both processes so far, and the wall time since the agent started."""
        return {
            "server": self.server.cpu_seconds(),
            "agent": self.agent.cpu_seconds(),
            "wall": time.perf_counter() - self.agent.started,
        }

    def progress(self, phase: str, since: float, extra: str = "") -> None:
        t = self.tally
        console.print(
            f"  {phase} {time.perf_counter() - since:6.1f} s | nodes {len(t.ready)} Ready,"
            f" {len(t.with_cidr)} with podCIDR /{t.nodes} | pods {len(t.live)} live,"
            f" {len(t.bound)} bound, {len(t.running)} Running{extra} /{t.pods}"
            f" | RSS MiB server {self.rss['server'] / 1024:.0f},"
            f" agent {self.rss['agent'] / 1024:.0f}",
            highlight=False,
        )

    async def wait_nodes(self, deadline: float) -> None:
        t = self.tally
        last = 0.0
        while len(t.with_cidr) < t.nodes and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
            self.sample()
            if time.monotonic() - last >= PROGRESS_EVERY:
                last = time.monotonic()
                self.progress("nodes", self.agent.started)
        if len(t.with_cidr) >= t.nodes:
            self.result["nodes_ready"] = time.perf_counter() - self.agent.started

    async def wait_pods(self, kube: KubeClient, start: float, deadline: float) -> None:
        t = self.tally
        last = 0.0
        available = 0
        next_poll = 0.0
        while time.monotonic() < deadline:
            await asyncio.sleep(0.05)
            now = time.perf_counter()
            if len(t.running) >= t.pods and "running" not in self.result:
                self.result["running"] = now - start
            if now >= next_poll:
                next_poll = now + 0.5
                self.sample()
                try:
                    deployments = await kube.list("deployments", namespace=NAMESPACE).collect()
                except ClientError as exc:  # an overloaded server: look again next time
                    console.print(f"  listing the Deployments failed: {exc}", highlight=False)
                    continue
                available = sum(
                    int((d.get("status") or {}).get("availableReplicas") or 0) for d in deployments
                )
                if available >= t.pods and "available" not in self.result:
                    self.result["available"] = time.perf_counter() - start
            if "running" in self.result and "available" in self.result:
                return
            if time.monotonic() - last >= PROGRESS_EVERY:
                last = time.monotonic()
                self.progress("pods ", start, f", {available} available")
        self.result["seen"] = f"{len(t.running):,} Running, {available:,} available"

    async def measure(self, data: Path) -> None:
        nodes, pods = self.tally.nodes, self.tally.pods
        async with KubeClient(load_config(data / "kubeconfig")) as kube:
            node_watch = kube.informer("nodes")
            await node_watch.add_handler(self.tally.node_event)
            async with node_watch:
                await self.wait_nodes(time.monotonic() + max(300.0, nodes * 0.3))
                if "nodes_ready" not in self.result:
                    self.progress("nodes", self.agent.started)
                    console.print("  [red]not every node became Ready with a podCIDR[/red]")
                    return
                self.progress("nodes", self.agent.started)
                commit, requests = await _metrics(kube)
                self.result["entries_nodes"] = commit
                self.result["cpu_nodes"] = self.cpu()
                cpu = self.cpu()
                await kube.create(
                    {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}
                )
                pod_watch = kube.informer("pods", namespace=NAMESPACE)
                await pod_watch.add_handler(self.tally.pod_event)
                async with pod_watch:
                    start = time.perf_counter()
                    for index in range(DEPLOYMENTS):
                        await kube.create(_deployment(index, pods // DEPLOYMENTS))
                    self.result["create"] = time.perf_counter() - start
                    # Ten times the target at most: what a slower run reached is reported.
                    await self.wait_pods(kube, start, time.monotonic() + max(300.0, pods * 0.06))
                    self.progress("pods ", start)
                    self.result["events"] = self.tally.events
                    self.result["cpu_pods"] = {
                        k: v - cpu[k] for k, v in self.cpu().items() if k != "wall"
                    } | {"wall": time.perf_counter() - start}
                try:
                    # The watch's count, confirmed by a paged LIST (limit 500, continue tokens).
                    listed = await kube.list("pods", namespace=NAMESPACE, limit=500).collect()
                    end_commit, end_requests = await _metrics(kube)
                except ClientError as exc:
                    console.print(f"  [red]the server did not answer: {exc}[/red]")
                    return
                self.result["listed_running"] = sum(
                    1
                    for p in listed
                    if (p.get("status") or {}).get("phase") == "Running"
                    and not p["metadata"].get("deletionTimestamp")
                )
                self.result["entries_pods"] = end_commit - commit
                end_requests.subtract(requests)
                self.result["requests"] = +end_requests
                self.sample()


# ---------------------------------------------------------------------- running it


def _du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def run(nodes: int, pods: int) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="engenho-bench-fleet-"))
    data = work / "data"
    data.mkdir()
    server = start_server(data, work)
    agent: Process | None = None
    try:
        agent = start_agent(data, work, nodes)
        state = Run(server, agent, nodes, pods)
        try:
            uvloop.run(state.measure(data))
        finally:
            with contextlib.suppress(RuntimeError):
                state.sample()
        result = state.result
        result["server_peak"] = state.peak.get("server", 0) / 1024
        result["agent_peak"] = state.peak.get("agent", 0) / 1024
        result["agent_exit"] = agent.stop()
        agent = None
        result["server_exit"] = server.stop()
        report = verify_log(data / "log")
        result["log_entries"] = report.head_index
        result["log_mib"] = _du(data / "log") / 2**20
        result["data_mib"] = _du(data) / 2**20
        return result
    finally:
        if agent is not None:
            agent.stop()
        server.stop()
        shutil.rmtree(work, ignore_errors=True)


def _seconds(result: dict[str, Any], key: str) -> str:
    return f"{result[key]:.1f}" if key in result else "-"


def main(quick: bool) -> None:
    nodes, pods = (100, 1000) if quick else (1000, 10000)
    console.print(f"{nodes:,} simulated nodes, {pods:,} pods in {DEPLOYMENTS} Deployments")
    result = run(nodes, pods)

    table = Table(title=f"fleet: {nodes:,} simulated nodes, {pods:,} pods Running")
    columns = (
        "nodes",
        "pods",
        "nodes Ready s",
        "Running s",
        "available s",
        "pods/s",
        "server peak MiB",
        "agent peak MiB",
        "log entries",
        "log MiB",
    )
    for column in columns:
        table.add_column(column, justify="right")
    converged = max(result.get("running", 0.0), result.get("available", 0.0))
    rate = f"{pods / result['running']:,.0f}" if "running" in result else "-"
    table.add_row(
        f"{nodes:,}",
        f"{pods:,}",
        _seconds(result, "nodes_ready"),
        _seconds(result, "running"),
        _seconds(result, "available"),
        rate,
        f"{result['server_peak']:,.0f}",
        f"{result['agent_peak']:,.0f}",
        f"{result.get('log_entries', 0):,}",
        f"{result.get('log_mib', 0.0):,.1f}",
    )
    console.print(table)

    if "seen" in result and not ("running" in result and "available" in result):
        console.print(f"[red]not converged; at the deadline: {result['seen']}[/red]")
    if "listed_running" in result:
        console.print(
            f"final LIST: {result['listed_running']:,} pods Running; "
            f"{result['events']:,} pod watch events; "
            f"{result['entries_pods']:,.0f} log entries in the pods phase "
            f"({result['entries_pods'] / pods:.1f} per pod); "
            f"Deployments created in {result['create']:.2f} s; "
            f"data dir {result['data_mib']:,.1f} MiB",
            highlight=False,
        )
    for phase, key in (("until the nodes were Ready", "cpu_nodes"), ("pods phase", "cpu_pods")):
        if key in result:
            cpu = result[key]
            console.print(
                f"CPU seconds, {phase} ({cpu['wall']:.1f} s): server {cpu['server']:.1f}, "
                f"agent {cpu['agent']:.1f}",
                highlight=False,
            )
    requests: Counter[str] = result.get("requests", Counter())
    if requests:
        console.print(
            "API requests in the pods phase: "
            + ", ".join(f"{key} {count:,}" for key, count in requests.most_common(10)),
            highlight=False,
        )
    codes = [
        f"{name} {'killed (no exit 120 s after SIGTERM)' if code is None else code}"
        for name, code in (("agent", result["agent_exit"]), ("server", result["server_exit"]))
    ]
    console.print("exit codes after SIGTERM: " + ", ".join(codes))

    def verdict(ok: bool) -> str:
        return "[green]met[/green]" if ok else "[red]missed[/red]"

    reached = "running" in result and "available" in result and "nodes_ready" in result
    time_note = f"{converged:.1f} s" if reached else "not converged"
    console.print(
        f"targets: every pod Running and available, from the first create, <= "
        f"{TARGET_SECONDS:.0f} s: {time_note} "
        f"({verdict(reached and converged <= TARGET_SECONDS)}); server peak RSS <= "
        f"{TARGET_RSS_MIB / 1024:.1f} GiB: {result['server_peak'] / 1024:.2f} GiB "
        f"({verdict(result['server_peak'] <= TARGET_RSS_MIB)})"
    )
