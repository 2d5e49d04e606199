"""A small agent for the streaming tests: it runs pods' containers on a real runtime and
reports their statuses, which is all the endpoint asks of the agent core (``ServedPods``).

``HostExecRuntime`` is the fake runtime whose ``exec`` runs the command as a real process of
this host (no container around it): real streams, stdin, exit codes, for the exec protocol
tests when no OCI runtime can run here.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from engenho.node_agent.runtime import (
    ByteSink,
    ContainerConfig,
    ContainerRuntime,
    ContainerState,
    ContainerStatus,
    ExecError,
    SandboxConfig,
    TerminalSize,
)
from engenho.node_agent.runtimes.fake import FakeRuntime


class HostExecRuntime(FakeRuntime):
    """The fake runtime, with ``exec`` running real host processes."""

    async def exec(  # type: ignore[override]
        self,
        container_id: str,
        argv: Sequence[str],
        *,
        stdin: AsyncIterable[bytes] | None = None,
        stdout: ByteSink | None = None,
        stderr: ByteSink | None = None,
        tty: bool = False,
        resize: AsyncIterable[TerminalSize] | None = None,
        timeout: float | None = None,
    ) -> int:
        status = await self.container_status(container_id)
        if status.state is not ContainerState.RUNNING:
            raise ExecError(f"container {container_id} is not running")
        try:
            process = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT if tty else asyncio.subprocess.PIPE,
            )
        except OSError as exc:
            raise ExecError(f"cannot run {argv[0]!r}: {exc}") from exc

        async def pump(reader: asyncio.StreamReader | None, sink: ByteSink | None) -> None:
            if reader is None:
                return
            while chunk := await reader.read(65536):
                if sink is not None:
                    await sink(chunk)

        async def feed() -> None:
            assert process.stdin is not None and stdin is not None
            try:
                async for chunk in stdin:
                    process.stdin.write(chunk)
                    await process.stdin.drain()
            finally:
                process.stdin.close()

        tasks = [
            asyncio.ensure_future(pump(process.stdout, stdout)),
            asyncio.ensure_future(pump(process.stderr, stderr)),
        ]
        if stdin is not None:
            tasks.append(asyncio.ensure_future(feed()))
        try:
            code = await process.wait()
            await asyncio.gather(*tasks[:2])
            return code
        finally:
            for task in tasks:
                task.cancel()
            if process.returncode is None:
                process.kill()
                await process.wait()


def _time(status: ContainerStatus, which: str) -> str:
    moment = getattr(status, which)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ") if moment is not None else ""


def _state(status: ContainerStatus) -> dict[str, Any]:
    if status.state is ContainerState.RUNNING:
        return {"running": {"startedAt": _time(status, "started_at")}}
    if status.state is ContainerState.EXITED:
        return {
            "terminated": {
                "exitCode": status.exit_code,
                "reason": status.reason,
                "containerID": status.container_id,
                "finishedAt": _time(status, "finished_at"),
            }
        }
    return {"waiting": {"reason": "ContainerCreating"}}


class PodRunner:
    """Pods on ``runtime``: one sandbox each, containers started in order, restarts by hand.
    Call :meth:`refresh` to pick up state changes the runtime made on its own."""

    def __init__(self, runtime: ContainerRuntime, root: Path) -> None:
        self.runtime = runtime
        self.root = root
        self._pods: dict[tuple[str, str], dict[str, Any]] = {}
        self._sandboxes: dict[tuple[str, str], str] = {}
        self._instances: dict[tuple[str, str, str], list[ContainerStatus]] = {}

    async def add(self, pod: Mapping[str, Any], *, start: bool = True) -> None:
        meta = pod["metadata"]
        key = (meta.get("namespace", "default"), meta["name"])
        self._pods[key] = dict(pod)
        sandbox = await self.runtime.create_sandbox(
            SandboxConfig(
                name=key[1],
                namespace=key[0],
                uid=meta.get("uid", key[1]),
                hostname=key[1],
                directory=self.root / "pods" / f"{key[0]}_{key[1]}",
                annotations=meta.get("annotations") or {},
            )
        )
        self._sandboxes[key] = sandbox.id
        for container in pod["spec"]["containers"]:
            self._instances[(*key, container["name"])] = []
            if start:
                await self.start(key[0], key[1], container["name"])

    async def start(self, namespace: str, name: str, container: str) -> ContainerStatus:
        """Start the container's next instance (after the current one, if any, exits)."""
        pod = self._pods[(namespace, name)]
        spec = next(c for c in pod["spec"]["containers"] if c["name"] == container)
        instances = self._instances[(namespace, name, container)]
        attempt = len(instances)
        log_path = self.root / "logs" / f"{namespace}_{name}" / container / f"{attempt}.log"
        created = await self.runtime.create_container(
            self._sandboxes[(namespace, name)],
            ContainerConfig(
                name=container,
                image=spec.get("image", "busybox"),
                log_path=log_path,
                command=tuple(spec.get("command") or ()),
                args=tuple(spec.get("args") or ()),
                annotations=pod["metadata"].get("annotations") or {},
                attempt=attempt,
            ),
        )
        started = await self.runtime.start_container(created.id)
        instances.append(started)
        return started

    async def restart(self, namespace: str, name: str, container: str) -> ContainerStatus:
        current = self._instances[(namespace, name, container)][-1]
        stopped = await self.runtime.stop_container(current.id, 0)
        self._instances[(namespace, name, container)][-1] = stopped
        return await self.start(namespace, name, container)

    async def refresh(self) -> None:
        for instances in self._instances.values():
            if instances:
                with contextlib.suppress(Exception):
                    instances[-1] = await self.runtime.container_status(instances[-1].id)

    async def close(self) -> None:
        for sandbox in self._sandboxes.values():
            await self.runtime.remove_sandbox(sandbox)

    def current(self, namespace: str, name: str, container: str) -> ContainerStatus:
        return self._instances[(namespace, name, container)][-1]

    # -- ServedPods ------------------------------------------------------------------------

    def pod(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        pod = self._pods.get((namespace, name))
        if pod is None:
            return None
        statuses = []
        for container in pod["spec"]["containers"]:
            instances = self._instances[(namespace, name, container["name"])]
            entry: dict[str, Any] = {"name": container["name"], "restartCount": 0}
            if not instances:
                entry["state"] = {"waiting": {"reason": "ContainerCreating"}}
                entry["lastState"] = {}
            else:
                current = instances[-1]
                entry["containerID"] = current.container_id
                entry["state"] = _state(current)
                entry["restartCount"] = len(instances) - 1
                entry["lastState"] = _state(instances[-2]) if len(instances) > 1 else {}
            statuses.append(entry)
        return {**pod, "status": {"phase": "Running", "containerStatuses": statuses}}

    def pods(self) -> Sequence[Mapping[str, Any]]:
        found = (self.pod(*key) for key in self._pods)
        return [pod for pod in found if pod is not None]

    def log_path(self, namespace: str, name: str, container: str, *, previous: bool) -> Path | None:
        instances = self._instances.get((namespace, name, container)) or []
        wanted = 2 if previous else 1
        return instances[-wanted].log_path if len(instances) >= wanted else None
