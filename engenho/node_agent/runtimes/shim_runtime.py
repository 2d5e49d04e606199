"""What the runtimes whose containers run in detached shim processes share: ``oci`` (crun
under ``oci_shim``) and ``wasm`` (wasmtime in ``wasm_shim``).

Such a runtime runs images from the node's store (``local_images``) and keeps, under its
state directory ``root``::

    sandboxes/<id>/meta.json      a SandboxRecord (``stored_records``)
    containers/<id>/meta.json     a StoredContainer
    containers/<id>/{shim,state,exit}.json, shim.log   what the shim runs, its start, its exit

Each container start is one shim process that outlives the agent (``shim_supervision``,
``shim_process``); the runtime watches it with a pidfd and reads its exit from ``exit.json``.
So ``open()`` after an agent restart finds every sandbox and container again (``_recover``),
and watches the shims still running.

``ShimRuntime`` is that bookkeeping; a subclass supplies what differs: ``open``, ``info``,
``create_container`` (ending in ``_add_container``), the sandbox's own setup and release,
starting its shim (``_spawn``), signalling it (``_signal``), what an exit the shim did not
record means (``_exit_lost``) and ``exec``.
"""

from __future__ import annotations

import abc
import asyncio
import shutil
import signal
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, ClassVar, Generic, TypeVar

from engenho.node_agent.images.model import ImageConfig, StoredImage
from engenho.node_agent.images.store import ImageStore
from engenho.node_agent.runtime import (
    ContainerConfig,
    ContainerEvent,
    ContainerRuntimeError,
    ContainerState,
    ContainerStatus,
    CreateContainerError,
    EventHub,
    ImageInfo,
    PullPolicy,
    SandboxConfig,
    SandboxNotFoundError,
    SandboxStatus,
    StartContainerError,
)
from engenho.node_agent.runtimes.container_record import find_container
from engenho.node_agent.runtimes.local_images import Unpacker, find_image, image_info
from engenho.node_agent.runtimes.shim_process import START_ERROR_EXIT, process_start_ticks
from engenho.node_agent.runtimes.shim_supervision import ExitWatcher
from engenho.node_agent.runtimes.stored_records import (
    STATUS_UNKNOWN_EXIT,
    SandboxRecord,
    StoredContainer,
    from_ns,
    now,
    read_json,
    write_json,
)

__all__ = ["ShimRuntime", "require_mount_sources", "stop_signal_number"]

_Container = TypeVar("_Container", bound=StoredContainer)
_KILL_WAIT = 10.0


class ShimRuntime(abc.ABC, Generic[_Container]):
    """The shared part of a shim runtime. ``record`` is its container record class, whose
    ``runtime`` names it and its state directory, ``DATA_DIR/node/<runtime>``; images come
    from ``DATA_DIR/images`` unless ``store`` is given (tests share one)."""

    import_example: ClassVar[str]
    """How to import an image this runtime runs, for the missing-image message."""

    def __init__(
        self,
        data_dir: Path,
        record: type[_Container],
        store: ImageStore | None,
        *,
        log_max_bytes: int,
        log_max_files: int,
    ) -> None:
        self.root = data_dir / "node" / record.runtime
        self.store = store if store is not None else ImageStore(data_dir / "images")
        self.unpacker = Unpacker(self.store)
        self._record = record
        self._log_max_bytes = log_max_bytes
        self._log_max_files = log_max_files
        self._sandboxes: dict[str, SandboxRecord] = {}
        self._containers: dict[str, _Container] = {}
        self._hub = EventHub()
        self._watcher = ExitWatcher()

    @property
    def name(self) -> str:
        return self._record.runtime

    # -- opening --------------------------------------------------------------------------

    def _make_directories(self, *names: str) -> None:
        for name in ("sandboxes", "containers", *names):
            (self.root / name).mkdir(parents=True, exist_ok=True)

    async def _recover(self) -> None:
        """Pick up what a previous agent left: sandboxes, containers, running shims."""
        for directory in sorted((self.root / "sandboxes").iterdir()):
            data = read_json(directory / "meta.json")
            if data is None:
                continue
            sandbox = SandboxRecord.load(directory, data)
            self._sandboxes[sandbox.id] = sandbox
        for directory in sorted((self.root / "containers").iterdir()):
            data = read_json(directory / "meta.json")
            if data is None:
                continue
            container = self._record.load(directory, data)
            self._containers[container.id] = container
            owner = self._sandboxes.get(container.sandbox_id)
            if owner is not None:
                owner.containers.add(container.id)
            self._refresh(container)

    def _refresh(self, container: _Container) -> None:
        """Bring a recovered container's state up to date from its shim's files."""
        outcome = read_json(container.directory / "exit.json")
        state = read_json(container.directory / "state.json")
        if state is not None:
            container.started_at = from_ns(state.get("started_at"))
            container.pid = state.get("pid")
            container.shim_pid = state.get("shim_pid")
            container.shim_start_ticks = state.get("shim_start_ticks")
        if outcome is not None:
            container.apply_exit(outcome)
            return
        if state is None:
            return  # created, never started
        shim_pid = container.shim_pid
        if shim_pid is not None and process_start_ticks(shim_pid) == container.shim_start_ticks:
            container.state = ContainerState.RUNNING
            self._watch(container)
            return
        # The shim is gone without recording an exit: upstream's ContainerStatusUnknown.
        container.record_exit(
            {
                "exit_code": STATUS_UNKNOWN_EXIT,
                "reason": "ContainerStatusUnknown",
                "message": "The container could not be located when the agent restarted",
            }
        )

    async def close(self) -> None:
        for container in self._containers.values():
            container.unwatch()
        await self._watcher.close()
        self._hub.close()

    # -- images ---------------------------------------------------------------------------

    async def ensure_image(self, reference: str, policy: PullPolicy) -> ImageInfo:
        return image_info(await self._find_image(reference, policy))

    async def _find_image(self, reference: str, policy: PullPolicy) -> StoredImage:
        return await find_image(self.store, reference, policy, import_example=self.import_example)

    # -- sandboxes ------------------------------------------------------------------------

    async def create_sandbox(self, config: SandboxConfig) -> SandboxStatus:
        sandbox_id = uuid.uuid4().hex
        directory = self.root / "sandboxes" / sandbox_id
        directory.mkdir(parents=True)
        if config.directory is not None:
            config.directory.mkdir(parents=True, exist_ok=True)
        sandbox = SandboxRecord(sandbox_id, directory, config)
        self._sandboxes[sandbox_id] = sandbox
        try:
            await self._prepare_sandbox(sandbox)
            write_json(directory / "meta.json", sandbox.meta())
        except BaseException:
            await self.remove_sandbox(sandbox_id)
            raise
        return sandbox.status()

    async def _prepare_sandbox(self, sandbox: SandboxRecord) -> None:
        """The runtime's own part of a new sandbox (namespaces, network, files)."""

    async def sandbox_status(self, sandbox_id: str) -> SandboxStatus:
        return self._sandbox(sandbox_id).status()

    async def list_sandboxes(self) -> list[SandboxStatus]:
        return [sandbox.status() for sandbox in self._sandboxes.values()]

    async def remove_sandbox(self, sandbox_id: str) -> None:
        sandbox = self._sandboxes.get(sandbox_id)
        if sandbox is None:
            return
        for container_id in list(sandbox.containers):
            await self.remove_container(container_id)
        await self._release_sandbox(sandbox)
        del self._sandboxes[sandbox_id]

    async def _release_sandbox(self, sandbox: SandboxRecord) -> None:
        """Undo a sandbox whose containers are gone: its directory and the pod's."""
        await asyncio.to_thread(shutil.rmtree, sandbox.directory, True)
        if sandbox.config.directory is not None:
            await asyncio.to_thread(shutil.rmtree, sandbox.config.directory, True)

    def _sandbox(self, sandbox_id: str) -> SandboxRecord:
        sandbox = self._sandboxes.get(sandbox_id)
        if sandbox is None:
            raise SandboxNotFoundError(f"sandbox {sandbox_id!r} not found")
        return sandbox

    # -- containers -----------------------------------------------------------------------

    def _new_container_directory(self) -> tuple[str, Path]:
        container_id = uuid.uuid4().hex
        directory = self.root / "containers" / container_id
        directory.mkdir(parents=True)
        return container_id, directory

    def _add_container(self, sandbox: SandboxRecord, container: _Container) -> ContainerStatus:
        """The last step of ``create_container``: keep the record, on disk too."""
        write_json(container.directory / "meta.json", container.meta())
        self._containers[container.id] = container
        sandbox.containers.add(container.id)
        self._publish(container)
        return container.status()

    async def start_container(self, container_id: str) -> ContainerStatus:
        container = self._container(container_id)
        container.require_created()
        container.config.log_path.parent.mkdir(parents=True, exist_ok=True)
        report = await self._spawn(container)
        if "error" in report:
            outcome = read_json(container.directory / "exit.json") or {
                "exit_code": START_ERROR_EXIT,
                "reason": "StartError",
                "message": str(report["error"]),
            }
            container.apply_exit(outcome)
            self._publish(container)
            raise StartContainerError(container.message or str(report["error"]))
        state = read_json(container.directory / "state.json") or {}
        container.state = ContainerState.RUNNING
        container.pid = int(report["pid"])
        container.started_at = from_ns(int(report["started_at"]))
        container.shim_pid = state.get("shim_pid")
        container.shim_start_ticks = state.get("shim_start_ticks")
        self._watch(container)
        self._publish(container)
        return container.status()

    @abc.abstractmethod
    async def _spawn(self, container: _Container) -> dict[str, Any]:
        """Start the container's shim; its report (``shim_supervision.spawn_shim``)."""

    def _watch(self, container: _Container) -> None:
        """Learn of the container's exit from its shim's."""
        if container.shim_pid is None:
            self._shim_exited(container)
            return

        def exited() -> None:
            container.watch = None
            self._shim_exited(container)

        container.watch = self._watcher.watch(container.shim_pid, exited)

    def _shim_exited(self, container: _Container) -> None:
        if container.state is ContainerState.EXITED:
            return
        outcome = read_json(container.directory / "exit.json")
        if outcome is None:
            self._exit_lost(container)
        else:
            container.apply_exit(outcome)
        self._publish(container)

    @abc.abstractmethod
    def _exit_lost(self, container: _Container) -> None:
        """The shim exited without writing ``exit.json``: make the container exited, saying
        what that means in this runtime."""

    async def stop_container(self, container_id: str, grace_period: float) -> ContainerStatus:
        container = self._container(container_id)
        if container.state is ContainerState.CREATED:
            container.record_exit(
                {"exit_code": 0, "reason": "", "message": "stopped before it started"}
            )
            self._publish(container)
            return container.status()
        if container.state is not ContainerState.RUNNING:
            return container.status()
        await self._signal(container, container.stop_signal)
        if not await _exited_within(container, max(grace_period, 0.0)):
            await self._signal(container, int(signal.SIGKILL))
            if not await _exited_within(container, _KILL_WAIT):
                raise ContainerRuntimeError(
                    f"container {container_id} did not exit {_KILL_WAIT:.0f} s after SIGKILL"
                )
        return container.status()

    @abc.abstractmethod
    async def _signal(self, container: _Container, number: int) -> None:
        """Send signal ``number`` to the running container."""

    async def remove_container(self, container_id: str) -> None:
        container = self._containers.get(container_id)
        if container is None:
            return
        if container.state is ContainerState.RUNNING:
            await self.stop_container(container_id, 0)
        await self._discard(container)
        self._containers.pop(container_id, None)
        sandbox = self._sandboxes.get(container.sandbox_id)
        if sandbox is not None:
            sandbox.containers.discard(container_id)

    async def _discard(self, container: _Container) -> None:
        """Remove a container's files (and whatever else of it the runtime keeps)."""
        container.unwatch()
        await self._release_container(container)
        await asyncio.to_thread(shutil.rmtree, container.directory, True)

    async def _release_container(self, container: _Container) -> None:
        """What the runtime holds for a container besides its directory (mounts, ...)."""

    async def container_status(self, container_id: str) -> ContainerStatus:
        return self._container(container_id).status()

    async def list_containers(self, sandbox_id: str | None = None) -> list[ContainerStatus]:
        return [
            c.status()
            for c in self._containers.values()
            if sandbox_id is None or c.sandbox_id == sandbox_id
        ]

    async def wait_container(self, container_id: str) -> ContainerStatus:
        container = self._container(container_id)
        await container.wait_exited()
        return container.status()

    def events(self) -> AsyncIterator[ContainerEvent]:
        return self._hub.subscribe()

    def _container(self, container_id: str) -> _Container:
        return find_container(self._containers, container_id)

    def _publish(self, container: _Container) -> None:
        self._hub.publish(container.event(now()))


def stop_signal_number(config: ContainerConfig, image: ImageConfig) -> int:
    """The container's stop signal (its own, else the image's ``StopSignal``, else SIGTERM)
    as a number; an unknown name is SIGTERM."""
    text = (config.stop_signal or image.stop_signal or "SIGTERM").strip().upper()
    if text.isdigit():
        return int(text)
    if not text.startswith("SIG"):
        text = "SIG" + text
    try:
        return int(signal.Signals[text])
    except KeyError:
        return int(signal.SIGTERM)


def require_mount_sources(config: ContainerConfig) -> None:
    """Refuse a container whose volume source is missing, as containerd does at create."""
    for mount in config.mounts:
        if not mount.host_path.exists():
            raise CreateContainerError(
                f"failed to mount {mount.host_path} at {mount.container_path}: "
                "no such file or directory"
            )


async def _exited_within(container: StoredContainer, seconds: float) -> bool:
    try:
        async with asyncio.timeout(seconds):
            await container.wait_exited()
    except TimeoutError:
        return False
    return True
