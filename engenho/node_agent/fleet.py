"""Many simulated nodes in one process (``engenho agent --simulate-nodes N``), for scale tests.

Each node is a full :class:`~engenho.node_agent.agent.NodeAgent` (its own Node, Lease,
pods, pod addresses and fake runtime), but the expensive parts are shared, as kwok shares
them: one watch of every assigned pod (``spec.nodeName!=``) and one of every Node, whose
events are handed to the node they concern; one Services informer and one Event poster.
So 1,000 nodes cost two watches, not two thousand.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from attrs import evolve

from engenho.client import ALL_NAMESPACES, KubeClient, WatchEvent
from engenho.node_agent.agent import AgentConfig, NodeAgent
from engenho.node_agent.host import read_host_facts, simulated_facts
from engenho.node_agent.recording import EventRecorder
from engenho.node_agent.runtime import ContainerRuntime
from engenho.node_agent.runtimes.fake import FakeRuntime
from engenho.node_agent.sources import Sources

__all__ = ["SimulatedFleet", "simulated_name"]

_log = logging.getLogger("engenho.node_agent")
Obj = dict[str, Any]


def simulated_name(base: str, index: int) -> str:
    return f"{base}-{index}"


class SimulatedFleet:
    """``count`` nodes named ``<base>-<i>`` (``base`` is ``config.node_name``)."""

    def __init__(
        self,
        client: KubeClient,
        config: AgentConfig,
        count: int,
        *,
        runtime_factory: Callable[[], ContainerRuntime] = FakeRuntime,
    ) -> None:
        self._client = client
        self._config = config
        self._count = count
        self._runtime_factory = runtime_factory
        self.agents: dict[str, NodeAgent] = {}
        self.ready = asyncio.Event()

    async def run(self) -> None:
        client = self._client
        base = await asyncio.to_thread(read_host_facts, self._config.data_dir, self._config.node_ip)
        sources = Sources(client)
        recorder = EventRecorder(client, workers=8, capacity=20000)
        runtimes = [self._runtime_factory() for _ in range(self._count)]
        for runtime in runtimes:
            await runtime.open()
        for index, runtime in enumerate(runtimes):
            name = simulated_name(self._config.node_name, index)
            config = evolve(
                self._config,
                node_name=name,
                data_dir=self._config.data_dir / name,
                simulated=True,
            )
            self.agents[name] = NodeAgent(
                client,
                runtime,
                config,
                sources=sources,
                recorder=recorder,
                facts=simulated_facts(base, name),
            )
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(recorder.run(), name="fleet events")
                for agent in self.agents.values():
                    group.create_task(agent.run(feeds=False), name=f"node {agent.name}")
                for agent in self.agents.values():
                    await agent.accepting.wait()
                nodes = client.informer("nodes")
                await nodes.add_handler(self._node_event)
                pods = client.informer(
                    "pods", namespace=ALL_NAMESPACES, field_selector="spec.nodeName!="
                )
                await pods.add_handler(self._pod_event)
                try:
                    nodes.start()
                    pods.start()
                    await nodes.wait_synced()
                    await pods.wait_synced()
                    for agent in self.agents.values():
                        agent.pods_synced()
                    self.ready.set()
                    _log.info("%d simulated nodes are running", len(self.agents))
                    await asyncio.Event().wait()
                finally:
                    await asyncio.gather(nodes.stop(), pods.stop(), return_exceptions=True)
        finally:
            await sources.close()
            for runtime in runtimes:
                await runtime.close()

    def _node_event(self, event: WatchEvent[Obj]) -> None:
        name = (event.object.get("metadata") or {}).get("name")
        agent = self.agents.get(str(name))
        if agent is not None and event.type.value != "DELETED":
            agent.on_node(event.object)

    def _pod_event(self, event: WatchEvent[Obj]) -> None:
        node = (event.object.get("spec") or {}).get("nodeName")
        agent = self.agents.get(str(node))
        if agent is not None:
            agent.on_pod_event(event)
