"""Fixtures: the agent endpoint in-process (real TLS, real uvicorn) over a host-exec runtime."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from attrs import frozen

from engenho.node_agent.credentials import ensure_serving_certificate, server_ssl_context
from engenho.node_agent.serving import AgentAuthenticator, AgentServer, Caller
from engenho.pki import ClusterPKI, ensure_pki

from .pods import HostExecRuntime, PodRunner

TOKEN = "streaming-test-token"


@frozen
class Agent:
    server: AgentServer
    runner: PodRunner
    runtime: HostExecRuntime
    pki: ClusterPKI
    client_cert: tuple[Path, Path]

    @property
    def url(self) -> str:
        return self.server.url

    def client_context(self, *, certificate: bool = True) -> ssl.SSLContext:
        context = ssl.create_default_context(cadata=self.pki.ca_pem.decode())
        if certificate:
            context.load_cert_chain(*self.client_cert)
        return context


def agent_tls(pki: ClusterPKI, directory: Path) -> ssl.SSLContext:
    cert, key = ensure_serving_certificate(
        directory,
        ca_cert_path=pki.ca_cert_path,
        ca_key_path=pki.ca_key_path,
        hosts=["127.0.0.1", "localhost"],
    )
    return server_ssl_context(cert, key, pki.ca_pem)


@pytest.fixture
def pki(tmp_path: Path) -> ClusterPKI:
    return ensure_pki(tmp_path / "pki", hosts=["127.0.0.1"])


@pytest.fixture
async def agent(tmp_path: Path, pki: ClusterPKI) -> AsyncIterator[Agent]:
    runtime = HostExecRuntime()
    runner = PodRunner(runtime, tmp_path / "node")
    server = AgentServer(
        runner,
        runtime,
        ssl_context=agent_tls(pki, tmp_path / "agent-pki"),
        authenticator=AgentAuthenticator({TOKEN: Caller("tester")}),
        port=0,
    )
    await server.start()
    cert, key = tmp_path / "admin.crt", tmp_path / "admin.key"
    cert.write_bytes(pki.admin_cert_pem)
    key.write_bytes(pki.admin_key_pem)
    try:
        yield Agent(server, runner, runtime, pki, (cert, key))
    finally:
        await server.stop()
        await runner.close()
        await runtime.close()
