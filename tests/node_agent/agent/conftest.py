"""Fixtures for the node agent tests: a real ``engenho server`` subprocess (with no
embedded node) per module, a client of it, and node agents run in the test's event loop
over the fake runtime (the process edge), each on its own node with its own pod CIDR."""

from __future__ import annotations

import asyncio
import itertools
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from attrs import evolve

from engenho.client import ConflictError, InvalidError, KubeClient, load_config
from engenho.node_agent.agent import AgentConfig, NodeAgent
from engenho.node_agent.backoff import BackOffPolicy
from engenho.node_agent.runtime import ContainerConfig, ContainerStatus
from engenho.node_agent.runtimes.fake import FakeRuntime
from tests.integration.server import ServerProcess

Obj = dict[str, Any]
_CIDRS = itertools.count(1)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    process = ServerProcess(tmp_path_factory.mktemp("engenho-agent"), "--runtime", "none").start()
    yield process
    if process.process is not None:
        process.stop()


@pytest.fixture
async def client(server: ServerProcess) -> AsyncIterator[KubeClient]:
    async with KubeClient(load_config(server.kubeconfig), field_manager="test") as kube:
        yield kube


@pytest.fixture
async def namespace(client: KubeClient, request: pytest.FixtureRequest) -> str:
    stem = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:30].strip("-")
    name = f"{stem}-{uuid.uuid4().hex[:6]}"
    await client.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    return name


class RecordingRuntime(FakeRuntime):
    """The fake runtime, keeping the configs it was given (what the agent resolved)."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.configs: list[ContainerConfig] = []

    async def create_container(self, sandbox_id: str, config: ContainerConfig) -> ContainerStatus:
        self.configs.append(config)
        return await super().create_container(sandbox_id, config)

    def config_of(self, container: str) -> ContainerConfig:
        return [c for c in self.configs if c.name == container][-1]


async def eventually(
    check: Callable[[], Awaitable[Any]], *, timeout: float = 20.0, what: str = "a condition"
) -> Any:
    """Poll ``check`` until it returns something truthy; its last answer on failure."""
    last: Any = None
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        try:
            last = await check()
        except AssertionError as exc:
            last = exc
        else:
            if last:
                return last
        await asyncio.sleep(0.05)
    raise AssertionError(f"{what} never held within {timeout} s; last: {last!r}")


async def ensure_pod_cidr(client: KubeClient, node: str) -> str:
    """Give the node a pod CIDR unless the node-ipam controller already did."""
    cidr = f"10.{200 + next(_CIDRS) // 250}.{next(_CIDRS) % 250}.0/24"
    for _ in range(5):
        current = await client.get("nodes", node)
        held = (current.get("spec") or {}).get("podCIDR")
        if held:
            return str(held)
        try:
            await client.patch("nodes", node, {"spec": {"podCIDR": cidr, "podCIDRs": [cidr]}})
        except (ConflictError, InvalidError):
            continue
        return cidr
    raise AssertionError("could not set a pod CIDR")


class RunningAgent:
    def __init__(self, agent: NodeAgent, runtime: FakeRuntime, task: asyncio.Task[None]) -> None:
        self.agent = agent
        self.runtime = runtime
        self.task = task

    @property
    def name(self) -> str:
        return self.agent.name

    async def stop(self) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


StartAgent = Callable[..., Awaitable[RunningAgent]]


def agent_config_for(name: str, data_dir: Path, **changes: Any) -> AgentConfig:
    base = AgentConfig(
        node_name=name,
        data_dir=data_dir,
        back_off=BackOffPolicy(initial=timedelta(seconds=0.3), maximum=timedelta(seconds=1)),
        min_grace=0.0,
        relist_period=1.0,
        lease_renew_every=10.0,
        cluster_dns=None,
    )
    return evolve(base, **changes)


@pytest.fixture
async def start_agent(client: KubeClient, tmp_path: Path) -> AsyncIterator[StartAgent]:
    running: list[RunningAgent] = []

    async def start(
        name: str | None = None,
        *,
        runtime: FakeRuntime | None = None,
        pod_cidr: bool = True,
        **changes: Any,
    ) -> RunningAgent:
        node = name or f"node-{uuid.uuid4().hex[:8]}"
        runtime = runtime if runtime is not None else RecordingRuntime()
        await runtime.open()
        config = agent_config_for(node, tmp_path / node, **changes)
        agent = NodeAgent(client, runtime, config)
        task = asyncio.create_task(agent.run(), name=f"agent {node}")
        handle = RunningAgent(agent, runtime, task)
        running.append(handle)
        async with asyncio.timeout(20):
            await agent.accepting.wait()
        if pod_cidr:
            await ensure_pod_cidr(client, node)
        async with asyncio.timeout(20):
            await agent.ready.wait()
        return handle

    yield start
    for handle in running:
        await handle.stop()
    for handle in running:
        await handle.runtime.close()


def pod_manifest(
    name: str,
    node: str,
    *,
    containers: list[Obj] | None = None,
    annotations: dict[str, str] | None = None,
    **spec: Any,
) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "annotations": annotations or {}},
        "spec": {
            "nodeName": node,
            "containers": containers or [{"name": "app", "image": "busybox"}],
            **spec,
        },
    }


def condition(pod: Obj, kind: str) -> Obj | None:
    for entry in (pod.get("status") or {}).get("conditions") or []:
        if entry.get("type") == kind:
            return dict(entry)
    return None


def container_state(pod: Obj, name: str = "app") -> Obj:
    status = pod.get("status") or {}
    for entry in (status.get("containerStatuses") or []) + (
        status.get("initContainerStatuses") or []
    ):
        if entry.get("name") == name:
            return dict(entry)
    return {}


async def events_of(client: KubeClient, namespace: str, pod: str) -> list[Obj]:
    return [
        event
        async for event in client.list("events", namespace=namespace)
        if (event.get("involvedObject") or {}).get("name") == pod
    ]
