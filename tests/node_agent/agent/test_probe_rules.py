"""Probe rules without a cluster: upstream's defaults and thresholds, named ports, the
prober's counting (readiness flips both ways, liveness and startup report once), and
HTTP/TCP outcomes against a server the test runs."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from engenho.node_agent.probes import (
    Outcome,
    ProbeKind,
    ProbeSpec,
    ProbeWorker,
    http_probe,
    resolve_port,
    tcp_probe,
)


def test_upstream_defaults() -> None:
    spec = ProbeSpec.of(
        {"livenessProbe": {"exec": {"command": ["x"]}, "successThreshold": 5}}, ProbeKind.LIVENESS
    )
    assert spec is not None
    assert (spec.initial_delay, spec.period, spec.timeout) == (0.0, 10.0, 1.0)
    assert (spec.success_threshold, spec.failure_threshold) == (1, 3)
    readiness = ProbeSpec.of(
        {"readinessProbe": {"tcpSocket": {"port": 1}, "successThreshold": 2}}, ProbeKind.READINESS
    )
    assert readiness is not None and readiness.success_threshold == 2
    assert ProbeSpec.of({}, ProbeKind.STARTUP) is None


def test_named_ports() -> None:
    container = {"name": "app", "ports": [{"name": "http", "containerPort": 8080}]}
    assert resolve_port("http", container) == 8080
    assert resolve_port(80, container) == 80 and resolve_port("81", container) == 81
    with pytest.raises(ValueError, match="couldn't find port: grpc in app"):
        resolve_port("grpc", container)


class Script:
    """An exec runner answering with a script of exit codes."""

    def __init__(self, codes: Sequence[int]) -> None:
        self.codes = list(codes)

    async def __call__(self, argv: Sequence[str], limit: float) -> tuple[int, bytes]:
        code = self.codes.pop(0) if self.codes else self.codes_last
        self.codes_last = code
        return code, b"out"

    codes_last = 0


async def _run(
    kind: ProbeKind, codes: list[int], changes: int, **spec: float
) -> tuple[list[bool], list[str]]:
    verdicts: list[bool] = []
    warnings: list[str] = []
    done = asyncio.Event()

    def on_change(value: bool) -> None:
        verdicts.append(value)
        if len(verdicts) >= changes:
            done.set()

    probe = ProbeSpec(kind, {"exec": {"command": ["x"]}}, period=0.001, **spec)  # type: ignore[arg-type]
    worker = ProbeWorker(
        probe, {"name": "app"}, "127.0.0.1", Script(codes), on_change, warnings.append
    )
    task = asyncio.create_task(worker.run())
    try:
        async with asyncio.timeout(5):
            await done.wait()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    return verdicts, warnings


async def test_readiness_flips_on_thresholds() -> None:
    verdicts, warnings = await _run(
        ProbeKind.READINESS, [0, 0, 1, 1, 0, 0], 3, success_threshold=2, failure_threshold=2
    )
    assert verdicts == [True, False, True]
    assert warnings[0] == "Readiness probe failed: out"


async def test_liveness_reports_once_after_consecutive_failures() -> None:
    verdicts, warnings = await _run(ProbeKind.LIVENESS, [1, 1, 0, 1, 1, 1], 1, failure_threshold=3)
    assert verdicts == [False]
    assert len(warnings) == 5, "every failure is an Unhealthy event"


async def test_startup_reports_success_once() -> None:
    verdicts, _ = await _run(ProbeKind.STARTUP, [1, 0], 1)
    assert verdicts == [True]


async def _serve(status: int) -> asyncio.Server:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(f"HTTP/1.1 {status} X\r\nContent-Length: 0\r\n\r\n".encode())
        await writer.drain()
        writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", 0)


async def test_http_outcomes() -> None:
    for status, outcome in ((200, Outcome.SUCCESS), (399, Outcome.SUCCESS), (400, Outcome.FAILURE)):
        server = await _serve(status)
        port = server.sockets[0].getsockname()[1]
        try:
            result = await http_probe({"port": port, "path": "healthz"}, {}, "127.0.0.1", 1)
        finally:
            server.close()
            await server.wait_closed()
        assert result.outcome is outcome, status
        if outcome is Outcome.FAILURE:
            assert result.output == f"HTTP probe failed with statuscode: {status}"
    refused = await http_probe({"port": 1}, {}, "127.0.0.1", 1)
    assert refused.outcome is Outcome.FAILURE
    assert (
        refused.output
        == 'Get "http://127.0.0.1:1/": dial tcp 127.0.0.1:1: connect: connection refused'
    )


async def test_tcp_outcomes() -> None:
    server = await _serve(200)
    port = server.sockets[0].getsockname()[1]
    try:
        assert (await tcp_probe({"port": port}, {}, "127.0.0.1", 1)).outcome is Outcome.SUCCESS
    finally:
        server.close()
        await server.wait_closed()
    refused = await tcp_probe({"port": 1}, {}, "127.0.0.1", 1)
    assert refused.output == "dial tcp 127.0.0.1:1: connect: connection refused"
