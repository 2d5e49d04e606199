"""End to end: the real kubectl renders these Tables. A small plain-HTTP server on 127.0.0.1
answers discovery and pod lists with ``table()``; ``kubectl get pods`` (default, ``-o wide``,
``-A``) must print upstream's header and rows."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from engenho.api.printing import table
from tests.api.printing.helpers import NOW, load

KUBECTL = shutil.which("kubectl") or "/usr/bin/kubectl"
pytestmark = pytest.mark.skipif(not Path(KUBECTL).exists(), reason="kubectl is not installed")

PODS = [case["object"] for case in load("pods.yaml")[:3]]
OTHER_NAMESPACE_POD = {
    "metadata": {
        "name": "coredns-76f75df574-abcde",
        "namespace": "kube-system",
        "creationTimestamp": "2025-05-02T12:00:00Z",
    },
    "spec": {"nodeName": "cp-1", "containers": [{"name": "coredns", "image": "coredns:1.11"}]},
    "status": {
        "phase": "Running",
        "podIP": "10.244.0.2",
        "conditions": [{"type": "Ready", "status": "True"}],
        "containerStatuses": [
            {"name": "coredns", "ready": True, "restartCount": 0, "state": {"running": {}}}
        ],
    },
}
DISCOVERY: dict[str, Any] = {
    "/api": {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []},
    "/apis": {"kind": "APIGroupList", "apiVersion": "v1", "groups": []},
    "/api/v1": {
        "kind": "APIResourceList",
        "groupVersion": "v1",
        "resources": [
            {
                "name": "pods",
                "singularName": "pod",
                "namespaced": True,
                "kind": "Pod",
                "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"],
                "shortNames": ["po"],
                "categories": ["all"],
            }
        ],
    },
}


class _Handler(BaseHTTPRequestHandler):
    requests: list[tuple[str, str]]  # (path, Accept) of every request; set per server

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        self.requests.append((self.path, self.headers.get("Accept", "")))
        if url.path in DISCOVERY:
            return self._send(200, DISCOVERY[url.path])
        if url.path == "/api/v1/namespaces/default/pods":
            pods = [p for p in PODS if p["metadata"].get("namespace") == "default"]
        elif url.path == "/api/v1/pods":
            pods = [*PODS, OTHER_NAMESPACE_POD]
        else:
            return self._send(
                404,
                {
                    "kind": "Status",
                    "apiVersion": "v1",
                    "status": "Failure",
                    "reason": "NotFound",
                    "code": 404,
                },
            )
        if "as=Table" not in self.headers.get("Accept", ""):
            return self._send(
                406,
                {
                    "kind": "Status",
                    "apiVersion": "v1",
                    "status": "Failure",
                    "reason": "NotAcceptable",
                    "code": 406,
                },
            )
        return self._send(
            200, table("pods", "", pods, list_meta={"resourceVersion": "42"}, now=NOW)
        )

    def _send(self, code: int, body: Any) -> None:
        payload = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep test output clean


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, list[tuple[str, str]]]]:
    handler = type("Handler", (_Handler,), {"requests": []})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, name="table-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", handler.requests
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def kubectl(base: str, tmp_path: Path, *args: str) -> list[str]:
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path)}
    done = subprocess.run(
        [
            KUBECTL,
            "--kubeconfig",
            os.devnull,
            "--server",
            base,
            "--cache-dir",
            str(tmp_path / "cache"),
            "get",
            "pods",
            *args,
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def aligned(*rows: list[str]) -> list[str]:
    """Rows laid out as kubectl's tabwriter does: each column as wide as its widest cell plus
    three spaces, the last column unpadded."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "".join(c.ljust(w + 3) for c, w in zip(row[:-1], widths, strict=False)) + row[-1]
        for row in rows
    ]


def test_get_pods(server: tuple[str, list[tuple[str, str]]], tmp_path: Path) -> None:
    base, requests = server
    assert kubectl(base, tmp_path) == aligned(
        ["NAME", "READY", "STATUS", "RESTARTS", "AGE"],
        ["web-7d4b9c8f5-x2x9q", "1/1", "Running", "0", "5m30s"],
        ["api-5f6d7c9b8-qwert", "0/1", "CrashLoopBackOff", "5 (2m ago)", "3h"],
    )
    path, accept = requests[-1]
    assert path == "/api/v1/namespaces/default/pods?limit=500"
    assert accept.startswith("application/json;as=Table;v=v1;g=meta.k8s.io,")


def test_get_pods_wide(server: tuple[str, list[tuple[str, str]]], tmp_path: Path) -> None:
    base, _ = server
    assert kubectl(base, tmp_path, "-o", "wide") == aligned(
        [
            "NAME",
            "READY",
            "STATUS",
            "RESTARTS",
            "AGE",
            "IP",
            "NODE",
            "NOMINATED NODE",
            "READINESS GATES",
        ],
        [
            "web-7d4b9c8f5-x2x9q",
            "1/1",
            "Running",
            "0",
            "5m30s",
            "10.244.1.5",
            "node-1",
            "<none>",
            "<none>",
        ],
        [
            "api-5f6d7c9b8-qwert",
            "0/1",
            "CrashLoopBackOff",
            "5 (2m ago)",
            "3h",
            "10.244.2.7",
            "node-2",
            "<none>",
            "<none>",
        ],
    )


def test_get_pods_in_all_namespaces(
    server: tuple[str, list[tuple[str, str]]], tmp_path: Path
) -> None:
    """The NAMESPACE column comes from each row's PartialObjectMetadata."""
    base, _ = server
    assert kubectl(base, tmp_path, "-A") == aligned(
        ["NAMESPACE", "NAME", "READY", "STATUS", "RESTARTS", "AGE"],
        ["default", "web-7d4b9c8f5-x2x9q", "1/1", "Running", "0", "5m30s"],
        ["default", "api-5f6d7c9b8-qwert", "0/1", "CrashLoopBackOff", "5 (2m ago)", "3h"],
        ["jobs", "worker-0", "2/2", "Running", "12 (3h5m ago)", "12d"],
        ["kube-system", "coredns-76f75df574-abcde", "1/1", "Running", "0", "30d"],
    )
