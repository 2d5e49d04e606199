"""A runtime with no processes: containers follow a timetable (kwok's stages, in time).

Each container goes created → running → exited on its ``Timetable``: how long create and
start take, how long it runs (or forever), its exit code (or an OOM kill), how it reacts to
the stop signal, one line it logs at start, what exec returns. A timetable comes from the
runtime's default, a callable choosing per container, and annotations on the container or the
pod (so a test's pod spec can say ``fake.engenho.io/run-for: 2s``)::

    fake.engenho.io/run-for            "2s", "150ms", "1m", "forever"
    fake.engenho.io/exit-code          "3"
    fake.engenho.io/oom                "true"
    fake.engenho.io/start-delay        "1s"          (also create-delay, pull-delay, stop-delay)
    fake.engenho.io/start-error        "exec: not found"
    fake.engenho.io/ignore-stop-signal "true"        (only SIGKILL after the grace period stops it)
    fake.engenho.io/log-line           "hello"
    fake.engenho.io/exec-exit-code     "1"
    fake.engenho.io/<container>.run-for ...          (one container of the pod)

It is cheap: no task per container (transitions are ``loop.call_later`` timers), a slotted
record each, one log write at start. 10,000 pods in one process are fine. State is in memory:
a new FakeRuntime holds nothing.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import re
import shutil
from collections.abc import AsyncIterable, AsyncIterator, Callable, Mapping, Sequence
from datetime import UTC, datetime

from attrs import evolve, frozen

from engenho.node_agent.images.errors import InvalidReferenceError
from engenho.node_agent.images.model import ImageConfig
from engenho.node_agent.images.reference import Reference, parse_reference
from engenho.node_agent.logs import STDOUT, CriLogWriter
from engenho.node_agent.runtime import (
    DEFAULT_PATH,
    ByteSink,
    ContainerConfig,
    ContainerEvent,
    ContainerState,
    ContainerStateError,
    ContainerStatus,
    EventHub,
    ExecError,
    ImageInfo,
    NetworkMode,
    PullPolicy,
    RuntimeInfo,
    SandboxConfig,
    SandboxNotFoundError,
    SandboxState,
    SandboxStatus,
    StartContainerError,
    TerminalSize,
    invalid_image_name,
    missing_image,
)
from engenho.node_agent.runtimes.container_record import ContainerRecord, find_container

__all__ = ["ANNOTATION_PREFIX", "FakeRuntime", "Timetable", "parse_duration"]

ANNOTATION_PREFIX = "fake.engenho.io/"
_SIGKILL_EXIT = 137
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h)?$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


@frozen
class Timetable:
    pull_delay: float = 0.0
    """Seconds ``ensure_image`` takes the first time an image is asked for."""
    create_delay: float = 0.0
    start_delay: float = 0.0
    run_for: float | None = None
    """Seconds from start to exit; None runs until stopped."""
    exit_code: int = 0
    oom: bool = False
    """Exit as OOMKilled (exit code 137) after ``run_for``."""
    start_error: str | None = None
    """Fail ``start_container`` with this message (the status says StartError)."""
    stop_delay: float = 0.0
    """Seconds the container takes to exit after the stop signal."""
    stop_exit_code: int = 143
    """Exit code after the stop signal (128 + SIGTERM, like a process the signal killed)."""
    ignore_stop_signal: bool = False
    log_line: str | None = None
    """Written to the log (stdout) at start."""
    exec_exit_code: int = 0
    exec_output: str = ""


TimetableFor = Callable[[SandboxConfig, ContainerConfig], Timetable]


def parse_duration(text: str) -> float | None:
    """``"2s"``, ``"150ms"``, ``"1.5m"``, ``"3"`` (seconds); ``"forever"`` is None."""
    text = text.strip()
    if text in ("forever", "never", "inf"):
        return None
    match = _DURATION.match(text)
    if match is None:
        raise ValueError(f"not a duration: {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def _truthy(text: str) -> bool:
    return text.strip().lower() in ("1", "true", "yes", "on")


_FIELDS: dict[str, tuple[str, Callable[[str], object]]] = {
    "pull-delay": ("pull_delay", lambda t: parse_duration(t) or 0.0),
    "create-delay": ("create_delay", lambda t: parse_duration(t) or 0.0),
    "start-delay": ("start_delay", lambda t: parse_duration(t) or 0.0),
    "run-for": ("run_for", parse_duration),
    "exit-code": ("exit_code", int),
    "oom": ("oom", _truthy),
    "start-error": ("start_error", str),
    "stop-delay": ("stop_delay", lambda t: parse_duration(t) or 0.0),
    "stop-exit-code": ("stop_exit_code", int),
    "ignore-stop-signal": ("ignore_stop_signal", _truthy),
    "log-line": ("log_line", str),
    "exec-exit-code": ("exec_exit_code", int),
    "exec-output": ("exec_output", str),
}


def _with_annotations(base: Timetable, container: str, *sources: Mapping[str, str]) -> Timetable:
    changes: dict[str, object] = {}
    for source in sources:  # pod first, then the container: the later wins
        for key, value in source.items():
            if not key.startswith(ANNOTATION_PREFIX):
                continue
            name = key[len(ANNOTATION_PREFIX) :]
            if "." in name:
                continue  # one container's: below
            spec = _FIELDS.get(name)
            if spec is None:
                continue
            try:
                changes[spec[0]] = spec[1](value)
            except ValueError:
                continue  # a bad annotation leaves the default: the fake never refuses a pod
    # Container-specific keys ("<name>.run-for") win over the pod-wide ones.
    for source in sources:
        for key, value in source.items():
            prefix = f"{ANNOTATION_PREFIX}{container}."
            if key.startswith(prefix):
                spec = _FIELDS.get(key[len(prefix) :])
                if spec is not None:
                    try:
                        changes[spec[0]] = spec[1](value)
                    except ValueError:
                        continue
    return evolve(base, **changes) if changes else base  # type: ignore[arg-type]


class _Sandbox:
    __slots__ = ("config", "containers", "created_at", "id")

    def __init__(self, sandbox_id: str, config: SandboxConfig, created_at: datetime) -> None:
        self.id = sandbox_id
        self.config = config
        self.created_at = created_at
        self.containers: set[str] = set()


class _Container(ContainerRecord):
    runtime = "fake"
    __slots__ = ("sandbox", "timer", "timetable")

    def __init__(
        self,
        container_id: str,
        sandbox: _Sandbox,
        config: ContainerConfig,
        timetable: Timetable,
        image_ref: str,
        created_at: datetime,
    ) -> None:
        super().__init__(container_id, sandbox.id, config, image_ref, created_at)
        self.sandbox = sandbox
        self.timetable = timetable
        self.timer: asyncio.TimerHandle | None = None


class FakeRuntime:
    """The ``fake`` runtime. ``timetable`` is the default timetable or a callable choosing
    one per container; ``has_image`` says which references the fake "registry" serves
    (default: all)."""

    def __init__(
        self,
        *,
        timetable: Timetable | TimetableFor = Timetable(),
        has_image: Callable[[Reference], bool] | None = None,
        clock: Callable[[], datetime] | None = None,
        log_max_bytes: int = 10 * 1024 * 1024,
        log_max_files: int = 5,
    ) -> None:
        self._timetable = timetable
        self._has_image = has_image
        self._clock = clock or (lambda: datetime.now(UTC))
        self._log_max_bytes = log_max_bytes
        self._log_max_files = log_max_files
        self._sandboxes: dict[str, _Sandbox] = {}
        self._containers: dict[str, _Container] = {}
        self._pulled: set[str] = set()
        self._ids = itertools.count(1)
        self._hub = EventHub()

    @property
    def name(self) -> str:
        return "fake"

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        for container in self._containers.values():
            if container.timer is not None:
                container.timer.cancel()
                container.timer = None
        self._hub.close()

    async def info(self) -> RuntimeInfo:
        return RuntimeInfo(
            name="fake",
            version="1",
            cgroups=False,
            pod_network=True,
            notes=("no processes: containers follow timetables",),
        )

    # -- images ---------------------------------------------------------------------------

    async def ensure_image(self, reference: str, policy: PullPolicy) -> ImageInfo:
        try:
            ref = parse_reference(reference)
        except InvalidReferenceError as exc:
            raise invalid_image_name(reference, str(exc)) from exc
        if self._has_image is not None and not self._has_image(ref):
            raise missing_image(
                reference, policy, f'the fake runtime\'s registry has no image "{ref}"'
            )
        key = str(ref)
        if key not in self._pulled:
            default = self._timetable if isinstance(self._timetable, Timetable) else Timetable()
            if default.pull_delay > 0 and policy is not PullPolicy.NEVER:
                await asyncio.sleep(default.pull_delay)
            self._pulled.add(key)
        return _image_info(ref)

    # -- sandboxes ------------------------------------------------------------------------

    async def create_sandbox(self, config: SandboxConfig) -> SandboxStatus:
        # The pod's directory is real when asked for (the agent keeps volumes there).
        if config.directory is not None:
            config.directory.mkdir(parents=True, exist_ok=True)
        sandbox = _Sandbox(f"fake-sandbox-{next(self._ids)}", config, self._clock())
        self._sandboxes[sandbox.id] = sandbox
        return self._sandbox_status(sandbox)

    async def sandbox_status(self, sandbox_id: str) -> SandboxStatus:
        return self._sandbox_status(self._sandbox(sandbox_id))

    async def list_sandboxes(self) -> list[SandboxStatus]:
        return [self._sandbox_status(s) for s in self._sandboxes.values()]

    async def remove_sandbox(self, sandbox_id: str) -> None:
        sandbox = self._sandboxes.pop(sandbox_id, None)
        if sandbox is None:
            return
        for container_id in list(sandbox.containers):
            await self.remove_container(container_id)
        if sandbox.config.directory is not None:
            shutil.rmtree(sandbox.config.directory, ignore_errors=True)

    def _sandbox(self, sandbox_id: str) -> _Sandbox:
        sandbox = self._sandboxes.get(sandbox_id)
        if sandbox is None:
            raise SandboxNotFoundError(f"sandbox {sandbox_id!r} not found")
        return sandbox

    def _sandbox_status(self, sandbox: _Sandbox) -> SandboxStatus:
        network = sandbox.config.network
        return SandboxStatus(
            id=sandbox.id,
            config=sandbox.config,
            state=SandboxState.READY,
            created_at=sandbox.created_at,
            network_mode=NetworkMode.POD if network is not None else NetworkMode.HOST,
            ip=str(network.ip) if network is not None else None,
        )

    # -- containers -----------------------------------------------------------------------

    def _timetable_for(self, sandbox: _Sandbox, config: ContainerConfig) -> Timetable:
        base = (
            self._timetable
            if isinstance(self._timetable, Timetable)
            else self._timetable(sandbox.config, config)
        )
        return _with_annotations(base, config.name, sandbox.config.annotations, config.annotations)

    async def create_container(self, sandbox_id: str, config: ContainerConfig) -> ContainerStatus:
        sandbox = self._sandbox(sandbox_id)
        info = await self.ensure_image(config.image, PullPolicy.NEVER)
        timetable = self._timetable_for(sandbox, config)
        if timetable.create_delay > 0:
            await asyncio.sleep(timetable.create_delay)
        container = _Container(
            f"fake-{next(self._ids)}",
            sandbox,
            config,
            timetable,
            info.repo_digest,
            self._clock(),
        )
        self._containers[container.id] = container
        sandbox.containers.add(container.id)
        self._publish(container)
        return container.status()

    async def start_container(self, container_id: str) -> ContainerStatus:
        container = self._container(container_id)
        container.require_created()
        timetable = container.timetable
        if timetable.start_delay > 0:
            await asyncio.sleep(timetable.start_delay)
        if container.state is not ContainerState.CREATED:  # removed while starting
            raise ContainerStateError(f"container {container_id} went away while starting")
        if timetable.start_error is not None:
            self._exit(container, 128, reason="StartError", message=timetable.start_error)
            raise StartContainerError(timetable.start_error)
        container.state = ContainerState.RUNNING
        container.started_at = self._clock()
        if timetable.log_line is not None:
            self._log(container, timetable.log_line)
        if timetable.run_for is not None:
            loop = asyncio.get_running_loop()
            code = _SIGKILL_EXIT if timetable.oom else timetable.exit_code
            container.timer = loop.call_later(
                timetable.run_for, self._exit, container, code, "", "", timetable.oom
            )
        self._publish(container)
        return container.status()

    async def stop_container(self, container_id: str, grace_period: float) -> ContainerStatus:
        container = self._container(container_id)
        if container.state is ContainerState.CREATED:
            self._exit(container, 0, reason="", message="stopped before it started")
            return container.status()
        if container.state is not ContainerState.RUNNING:
            return container.status()
        timetable = container.timetable
        loop = asyncio.get_running_loop()
        if container.timer is not None:
            container.timer.cancel()
        if timetable.ignore_stop_signal or timetable.stop_delay > grace_period:
            delay, code = max(grace_period, 0.0), _SIGKILL_EXIT
        else:
            delay, code = timetable.stop_delay, timetable.stop_exit_code
        if delay <= 0:
            self._exit(container, code)
        else:
            container.timer = loop.call_later(delay, self._exit, container, code)
        return await self.wait_container(container_id)

    async def remove_container(self, container_id: str) -> None:
        container = self._containers.pop(container_id, None)
        if container is None:
            return
        container.sandbox.containers.discard(container_id)
        if container.state in (ContainerState.CREATED, ContainerState.RUNNING):
            self._exit(container, _SIGKILL_EXIT)

    async def container_status(self, container_id: str) -> ContainerStatus:
        return self._container(container_id).status()

    async def list_containers(self, sandbox_id: str | None = None) -> list[ContainerStatus]:
        if sandbox_id is None:
            return [c.status() for c in self._containers.values()]
        sandbox = self._sandboxes.get(sandbox_id)
        if sandbox is None:
            return []
        return [self._containers[c].status() for c in sandbox.containers]

    async def wait_container(self, container_id: str) -> ContainerStatus:
        container = self._container(container_id)
        await container.wait_exited()
        return container.status()

    async def exec(
        self,
        container_id: str,
        argv: Sequence[str],
        *,
        stdin: AsyncIterable[bytes] | None = None,
        stdout: ByteSink | None = None,
        stderr: ByteSink | None = None,
        tty: bool = False,
        resize: AsyncIterable[TerminalSize] | None = None,
    ) -> int:
        container = self._container(container_id)
        if container.state is not ContainerState.RUNNING:
            raise ExecError(f"container {container_id} is not running")
        if not argv:
            raise ExecError("exec needs a command")
        if container.timetable.exec_output and stdout is not None:
            await stdout(container.timetable.exec_output.encode())
        return container.timetable.exec_exit_code

    def events(self) -> AsyncIterator[ContainerEvent]:
        return self._hub.subscribe()

    # -- internals ------------------------------------------------------------------------

    def _container(self, container_id: str) -> _Container:
        return find_container(self._containers, container_id)

    def _exit(
        self,
        container: _Container,
        code: int,
        reason: str = "",
        message: str = "",
        oom: bool = False,
    ) -> None:
        if container.state is ContainerState.EXITED:
            return
        if container.timer is not None:
            container.timer.cancel()
            container.timer = None
        container.finish(code, self._clock(), reason=reason, message=message, oom_killed=oom)
        self._publish(container)

    def _log(self, container: _Container, line: str) -> None:
        writer = CriLogWriter(
            container.config.log_path,
            max_bytes=self._log_max_bytes,
            max_files=self._log_max_files,
        )
        try:
            writer.write_line(STDOUT, line)
        finally:
            writer.close()

    def _publish(self, container: _Container) -> None:
        self._hub.publish(container.event(self._clock()))


def _image_info(ref: Reference) -> ImageInfo:
    # A stable, made-up digest per name, so that imageID looks like the real thing.
    digest = hashlib.sha256(str(ref).encode()).hexdigest()
    return ImageInfo(
        reference=str(ref),
        image_id=f"sha256:{digest}",
        repo_digest=f"{ref.repository}@sha256:{digest}",
        config=ImageConfig(env=(f"PATH={DEFAULT_PATH}",)),
        size=0,
    )
