"""Run a real ``engenho server`` as a subprocess and drive it with real clients."""

from __future__ import annotations

import json
import os
import re
import signal
import ssl
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from engenho.log import verify_log

KUBECTL = "/usr/bin/kubectl"
_SERVING = re.compile(r"engenho is serving at (https://\S+);")


class ServerProcess:
    """One ``engenho server`` subprocess over a data directory that outlives it."""

    def __init__(self, data_dir: Path, *extra: str, env: dict[str, str] | None = None) -> None:
        self.data_dir = data_dir
        self.extra = extra
        self.env = env or {}
        self.process: subprocess.Popen[str] | None = None
        self.url = ""
        self.port = 0
        self.output: list[str] = []

    @property
    def kubeconfig(self) -> Path:
        return self.data_dir / "kubeconfig"

    def start(self, timeout: float = 60) -> ServerProcess:
        self.url = ""
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **self.env}
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "engenho",
                "--log-level",
                "WARNING",
                "server",
                "--data-dir",
                str(self.data_dir),
                "--listen",
                # A restart keeps its address, as a real one does (the `kubernetes` Endpoints
                # name it: a new port would be a real change of state).
                f"127.0.0.1:{self.port}",
                "--node-name",
                "test-node",
                # No embedded node agent unless a test asks for one (a later --runtime wins):
                # its Lease renewals would move the log head that tests compare.
                "--runtime",
                "none",
                *self.extra,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        deadline = time.monotonic() + timeout
        assert self.process.stdout is not None
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:
                break
            self.output.append(line)
            match = _SERVING.search(line)
            if match:
                self.url = match.group(1)
                self.port = int(self.url.rpartition(":")[2])
                break
        if not self.url:
            self.process.kill()
            raise AssertionError("the server did not start:\n" + "".join(self.output))
        self._drain()
        self.wait_ready(deadline - time.monotonic())
        return self

    def _drain(self) -> None:
        """Keep reading the server's output so it never blocks on a full pipe."""

        def pump() -> None:
            assert self.process is not None and self.process.stdout is not None
            for line in self.process.stdout:
                self.output.append(line)

        self._pump = threading.Thread(target=pump, daemon=True)
        self._pump.start()

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.data_dir / "pki" / "ca.crt"))

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(
                    self.url + "/readyz", context=self.ssl_context(), timeout=5
                ) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.05)
        raise AssertionError("the server never became ready:\n" + "".join(self.output))

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        assert self.process is not None
        self.process.send_signal(sig)
        code = self.process.wait(timeout)
        self._pump.join(timeout)
        assert self.process.stdout is not None
        self.process.stdout.close()
        self.process = None
        return code

    @property
    def admin_token(self) -> str:
        return (self.data_dir / "pki" / "admin.token").read_text().strip()

    def log_head(self) -> int:
        """How many entries the log holds (read without taking the server's lock)."""
        return verify_log(self.data_dir / "log").head_index

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        *,
        content_type: str = "application/json",
        token: str | None = "admin",
        accept: str = "application/json",
    ) -> tuple[int, dict[str, Any] | str, dict[str, str]]:
        """One raw HTTPS request; returns (status, JSON or text body, headers)."""
        headers = {"Accept": accept}
        if body is not None:
            headers["Content-Type"] = content_type
        if token == "admin":
            headers["Authorization"] = f"Bearer {self.admin_token}"
        elif token is not None:
            headers["Authorization"] = f"Bearer {token}"
        request = urllib.request.Request(self.url + path, data=body, method=method, headers=headers)
        try:
            with urllib.request.urlopen(
                request, context=self.ssl_context(), timeout=30
            ) as response:
                status, raw, got = (
                    response.status,
                    response.read(),
                    {k.lower(): v for k, v in response.headers.items()},
                )
        except urllib.error.HTTPError as error:
            status, raw, got = (
                error.code,
                error.read(),
                {k.lower(): v for k, v in error.headers.items()},
            )
        try:
            return status, json.loads(raw), got
        except ValueError:
            return status, raw.decode(errors="replace"), got


def kubectl(
    server: ServerProcess,
    *args: str,
    input: str | None = None,
    check: bool = True,
    env: dict[str, str] | None = None,
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    """Run the real kubectl against ``server``; fail the test with its output if it fails."""
    cache = server.data_dir / "kubectl-cache"
    result = subprocess.run(
        [KUBECTL, "--kubeconfig", str(server.kubeconfig), "--cache-dir", str(cache), *args],
        input=input,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        check=False,
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"kubectl {' '.join(args)} exited {result.returncode}\n"
            f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
        )
    return result


def yaml_documents(text: str) -> list[Any]:
    return [doc for doc in yaml.safe_load_all(text) if doc is not None]


ROOT_CA_CONFIGMAP = "kube-root-ca.crt"

QUIET_CONTROLLERS = {
    f"ENGENHO_CONTROLLERS__{name}__ENABLED": "false"
    for name in ("DEPLOYMENT", "REPLICASET", "SERVICEACCOUNT", "SCHEDULER", "NODE_LIFECYCLE")
}
"""Environment for a server whose log only the test writes to (bar GC and namespaces): for
tests that check that a refused or no-op request did not grow the log."""


def own(names: list[str]) -> list[str]:
    """Names a test made: without the ``kube-root-ca.crt`` ConfigMap that the root CA
    publisher puts in every namespace (as upstream's does)."""
    return [n for n in names if n.rpartition("/")[2] != ROOT_CA_CONFIGMAP]
