"""The node agent built from engenho's configuration: ``engenho server``'s own node and the
defaults of ``engenho agent``.

``run_embedded_agent`` is what the server starts once its API listens: a client from the
admin kubeconfig the server wrote, the runtime asked for (``oci`` falls back to ``fake``
when crun cannot run here, saying why), the agent's HTTPS endpoint (``kubectl logs`` and
``kubectl exec`` go through it) and a :class:`NodeAgent` that runs until ``stop`` is set.

The endpoint listens on the node's InternalIP at a port the system picks (several servers
may share a machine; the Node's ``daemonEndpoints`` tell the apiserver where it is), with a
serving certificate from the cluster CA for that address, the node name and loopback.

It closes its client before returning, so that the server's graceful shutdown is not held up
by idle connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from typing import Any

from attrs import evolve

from engenho.client import KubeClient
from engenho.config import EngenhoConfig
from engenho.node_agent.agent import AgentConfig, NodeAgent, lease_renew_interval
from engenho.node_agent.choosing import open_runtime
from engenho.node_agent.credentials import ensure_serving_certificate, server_ssl_context
from engenho.node_agent.host import internal_ip
from engenho.node_agent.serving import AgentAuthenticator, AgentServer
from engenho.paths import DataDir
from engenho.schema.quantity import Quantity

__all__ = ["agent_config", "run_embedded_agent"]

_log = logging.getLogger("engenho.node_agent")
_FIELD_MANAGER = "kubelet"


def agent_config(config: EngenhoConfig, data: DataDir, **changes: Any) -> AgentConfig:
    """The AgentConfig of a node from engenho's configuration (``node_agent`` and
    ``networking`` sections); ``changes`` override fields."""
    section = config.node_agent
    capacity: dict[str, str] = {}
    if section.capacity.cpu:
        capacity["cpu"] = section.capacity.cpu
    if section.capacity.memory:
        capacity["memory"] = section.capacity.memory
    if section.capacity.ephemeral_storage:
        capacity["ephemeral-storage"] = section.capacity.ephemeral_storage
    if section.capacity.pods:
        capacity["pods"] = str(section.capacity.pods)
    base = AgentConfig(
        node_name=section.node_name,
        data_dir=data.node,
        capacity=capacity,
        host_path_allowlist=tuple(section.host_path_allowlist),
        cluster_dns=str(config.networking.cluster_dns),
        cluster_domain=config.networking.cluster_domain,
        status_update_every=section.node_status_update_frequency_seconds,
        lease_duration=section.node_lease_duration_seconds,
        lease_renew_every=lease_renew_interval(section.node_lease_duration_seconds),
    )
    return evolve(base, **changes)


def log_limits(config: EngenhoConfig) -> tuple[int, int]:
    section = config.node_agent
    return Quantity.parse(section.container_log_max_size).value(), section.container_log_max_files


async def run_embedded_agent(
    data: DataDir,
    config: EngenhoConfig,
    runtime_kind: str,
    *,
    stop: asyncio.Event,
    labels: Mapping[str, str] | None = None,
) -> None:
    """Run this server's node until ``stop`` is set (or the task is cancelled)."""
    logging.getLogger("httpx").setLevel(logging.WARNING)  # not a line per request
    max_bytes, max_files = log_limits(config)
    runtime = await open_runtime(
        runtime_kind, data.root, fallback=True, log_max_bytes=max_bytes, log_max_files=max_files
    )
    client = KubeClient.from_kubeconfig(data.kubeconfig, field_manager=_FIELD_MANAGER)
    node_ip = await asyncio.to_thread(internal_ip)
    base = agent_config(config, data, labels=dict(labels or {}), node_ip=node_ip)
    endpoint: AgentServer | None = None
    running: asyncio.Task[None] | None = None
    stopping = asyncio.create_task(stop.wait(), name="embedded node agent stop")
    try:
        cert, key = await asyncio.to_thread(
            ensure_serving_certificate,
            data.node / "pki",
            ca_cert_path=data.pki / "ca.crt",
            ca_key_path=data.pki / "ca.key",
            hosts=sorted({node_ip, base.node_name, "127.0.0.1", "localhost"}),
        )
        ca_pem = (data.pki / "ca.crt").read_bytes()
        agent = NodeAgent(client, runtime, base)
        endpoint = AgentServer(
            agent,
            runtime,
            ssl_context=server_ssl_context(cert, key, ca_pem),
            authenticator=AgentAuthenticator(),
            host=node_ip,
            port=0,
        )
        await endpoint.start()
        agent.config = evolve(agent.config, kubelet_port=endpoint.port)
        _log.info(
            "node %s: the embedded node agent runs pods with the %s runtime",
            agent.name,
            runtime.name,
        )
        running = asyncio.create_task(agent.run(), name="embedded node agent")
        await asyncio.wait({running, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        tasks = [task for task in (running, stopping) if task is not None]
        for task in tasks:
            task.cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        if endpoint is not None:
            with contextlib.suppress(Exception):
                await endpoint.stop()
        with contextlib.suppress(Exception):
            await runtime.close()
        await client.aclose()
    failure = results[0] if running is not None else None
    if isinstance(failure, Exception):
        _log.error("the embedded node agent stopped: %s", failure)
