"""Fixtures for the PKI tests: a freshly created PKI directory, and a real HTTPS server that
serves with :meth:`ClusterPKI.server_ssl_context` and records who called it."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from ssl import SSLSocket

import attrs
import pytest

from engenho.pki import ClusterPKI, ensure_pki, identity_from_certificate

VERSION = {
    "major": "1",
    "minor": "29",
    "gitVersion": "v1.29.0-engenho",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2024-01-01T00:00:00Z",
    "goVersion": "go1.21.5",
    "compiler": "gc",
    "platform": "linux/amd64",
}


@attrs.frozen
class Call:
    """One request as the server saw it."""

    path: str
    authorization: str | None
    identity: tuple[str, tuple[str, ...]] | None


@attrs.frozen
class HttpsServer:
    url: str
    calls: list[Call]


@pytest.fixture
def pki(tmp_path: Path) -> ClusterPKI:
    return ensure_pki(tmp_path / "pki", hosts=["node-1"])


@pytest.fixture
def https_server(pki: ClusterPKI) -> Iterator[HttpsServer]:
    """Answers ``GET /version`` over TLS on 127.0.0.1, like an apiserver would."""
    calls: list[Call] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            assert isinstance(self.connection, SSLSocket)
            der = self.connection.getpeercert(binary_form=True)
            identity = identity_from_certificate(der) if der else None
            calls.append(Call(self.path, self.headers.get("Authorization"), identity))
            body = json.dumps(VERSION).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass  # keep test output clean

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.socket = pki.server_ssl_context().wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(
        target=server.serve_forever, args=(0.02,), name="https-server", daemon=True
    )
    thread.start()
    try:
        yield HttpsServer(f"https://127.0.0.1:{server.server_address[1]}", calls)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
