"""Probes end to end with the fake runtime: exec probes through the runtime, httpGet and
tcpSocket against a server the test runs on the loopback (where probes of fake pods go),
readiness driving Ready, liveness restarting the container, startup gating the others, and
upstream's Unhealthy and Killing events."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from engenho.client import KubeClient

from .conftest import StartAgent, condition, container_state, events_of, eventually, pod_manifest


class HealthServer:
    """A tiny HTTP server on 127.0.0.1 answering every request with ``status``."""

    def __init__(self) -> None:
        self.status = 200
        self.requests: list[bytes] = []
        self._server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        self.requests.append(head)
        writer.write(
            f"HTTP/1.1 {self.status} X\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok".encode()
        )
        await writer.drain()
        writer.close()

    async def __aenter__(self) -> HealthServer:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()


@pytest.fixture
async def health() -> AsyncIterator[HealthServer]:
    async with HealthServer() as server:
        yield server


async def _ready(client: KubeClient, namespace: str, name: str, value: str) -> dict:
    async def check() -> dict | None:
        pod = await client.get("pods", name, namespace=namespace)
        ready = condition(pod, "Ready")
        running = (pod.get("status") or {}).get("phase") == "Running"
        return pod if running and ready and ready["status"] == value else None

    result: dict = await eventually(check, what=f"{name} Ready={value}")
    return result


async def _events(client: KubeClient, namespace: str, name: str, reason: str) -> list[dict]:
    async def check() -> list:
        return [e for e in await events_of(client, namespace, name) if e["reason"] == reason]

    result: list[dict] = await eventually(check, what=f"a {reason} event")
    return result


async def test_a_failing_exec_readiness_probe_keeps_the_pod_unready(
    client: KubeClient, namespace: str, start_agent: StartAgent
) -> None:
    node = await start_agent()
    probe = {"exec": {"command": ["check"]}, "periodSeconds": 1}
    annotations = {"fake.engenho.io/exec-exit-code": "1", "fake.engenho.io/exec-output": "nope"}
    spec = [{"name": "app", "image": "busybox", "readinessProbe": probe}]
    await client.create(
        pod_manifest("unready", node.name, containers=spec, annotations=annotations),
        namespace=namespace,
    )
    (event, *_) = await _events(client, namespace, "unready", "Unhealthy")
    assert event["type"] == "Warning" and event["message"] == "Readiness probe failed: nope"
    pod = await _ready(client, namespace, "unready", "False")
    assert condition(pod, "Ready")["message"] == "containers with unready status: [app]"
    assert container_state(pod)["ready"] is False


async def test_a_failing_liveness_probe_restarts_the_container(
    client: KubeClient, namespace: str, start_agent: StartAgent
) -> None:
    node = await start_agent()
    probe = {"exec": {"command": ["alive"]}, "periodSeconds": 1, "failureThreshold": 1}
    annotations = {"fake.engenho.io/exec-exit-code": "1", "fake.engenho.io/exec-output": "dead"}
    spec = [{"name": "app", "image": "busybox", "livenessProbe": probe}]
    await client.create(
        pod_manifest("zombie", node.name, containers=spec, annotations=annotations),
        namespace=namespace,
    )

    async def restarted() -> dict | None:
        pod = await client.get("pods", "zombie", namespace=namespace)
        return pod if container_state(pod).get("restartCount", 0) >= 1 else None

    pod = await eventually(restarted, what="a restart")
    assert "terminated" in container_state(pod)["lastState"]
    killing = await _events(client, namespace, "zombie", "Killing")
    assert killing[0]["message"] == "Container app failed liveness probe, will be restarted"
    unhealthy = await _events(client, namespace, "zombie", "Unhealthy")
    assert unhealthy[0]["message"] == "Liveness probe failed: dead"


async def test_http_readiness_follows_the_answers(
    client: KubeClient, namespace: str, start_agent: StartAgent, health: HealthServer
) -> None:
    node = await start_agent()
    probe = {
        "httpGet": {
            "path": "/healthz",
            "port": "web",
            "httpHeaders": [{"name": "X-Check", "value": "1"}],
        },
        "periodSeconds": 1,
        "failureThreshold": 1,
    }
    spec = [
        {
            "name": "app",
            "image": "busybox",
            "ports": [{"name": "web", "containerPort": health.port}],
            "readinessProbe": probe,
        }
    ]
    await client.create(pod_manifest("web", node.name, containers=spec), namespace=namespace)
    await _ready(client, namespace, "web", "True")
    request = health.requests[0].decode()
    assert request.startswith("GET /healthz HTTP/1.1")
    assert "user-agent: kube-probe/1.29" in request.lower() and "x-check: 1" in request.lower()
    health.status = 503
    await _ready(client, namespace, "web", "False")
    messages = [e["message"] for e in await _events(client, namespace, "web", "Unhealthy")]
    assert "Readiness probe failed: HTTP probe failed with statuscode: 503" in messages
    health.status = 302  # 3xx passes
    await _ready(client, namespace, "web", "True")


async def test_tcp_liveness_and_startup_gating(
    client: KubeClient, namespace: str, start_agent: StartAgent, health: HealthServer
) -> None:
    node = await start_agent()
    spec = [
        {
            "name": "app",
            "image": "busybox",
            "startupProbe": {"tcpSocket": {"port": health.port}, "periodSeconds": 1},
            "livenessProbe": {"tcpSocket": {"port": 1}, "periodSeconds": 1, "failureThreshold": 1},
        }
    ]
    await client.create(pod_manifest("tcp", node.name, containers=spec), namespace=namespace)

    async def restarted() -> dict | None:
        pod = await client.get("pods", "tcp", namespace=namespace)
        return pod if container_state(pod).get("restartCount", 0) >= 1 else None

    await eventually(restarted, what="a restart after the startup probe passed")
    messages = [e["message"] for e in await _events(client, namespace, "tcp", "Unhealthy")]
    assert "Liveness probe failed: dial tcp 127.0.0.1:1: connect: connection refused" in messages
