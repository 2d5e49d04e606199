"""The ``wasm`` runtime: WebAssembly (WASI preview 1) modules run by wasmtime, as containerd's
runwasi wasmtime shim runs them.

What runs:

- **The module.** An image whose layers include WebAssembly modules (``engenho image import
  --wasm``, runwasi's oci-tar-builder, wasm-to-oci: ``WASM_LAYER_MEDIA_TYPES``) runs the
  module its command names (``hello.wasm``, matched against the layers' titles), or its only
  module. An ordinary image (tar layers) runs the ``.wasm`` file its command names in its
  root filesystem, or the only ``.wasm`` file there; the tree is preopened read-only as
  ``/``. ``name.wasm#func`` runs the export ``func`` instead of ``_start`` (runwasi's form).
- **Arguments and environment** follow Kubernetes' rule against the image (``resolve_argv``:
  argv[0] is the module's name) and containerd's (``merge_env``).
- **Volumes** are WASI preopened directories: each mount's host directory appears at its
  ``mountPath``, read-only when the mount is (wasmtime refuses writes there); the working
  directory's host directory is also preopened as ``.``, which wasi-libc resolves relative
  paths against. WASI preopens directories only: a mount of a single file is not visible.
- **Limits.** A memory limit caps the module's linear memory (wasmtime's store limiter:
  ``memory.grow`` fails past it); CPU limits are not enforced (``unenforced``).
- **Output** reaches the container's CRI log as the module writes it.
- **Exits**: ``proc_exit(n)`` → n (Completed/Error); a trap → 134, reason Error, the trap's
  message (its backtrace goes to the log's stderr); a stop → 128 + signal; a kill → 137.
- **exec** is refused with ``ExecError``: a module is one program, with nothing beside it to
  run (runwasi does not support exec either).
- **Network.** WASI preview 1 has no sockets: a pod keeps the IP the agent allocated (so
  Services and EndpointSlices stay consistent) but nothing in it can listen.

Each start runs one process, ``python -m engenho.node_agent.runtimes.wasm_shim DIR``
(see that module), detached from the agent: a stop signals it (epoch interruption stops even
a tight loop), SIGKILL after the grace period always works, and containers outlive an agent
restart. Modules are compiled at ``create_container`` (an invalid module is a
CreateContainerError) into a cache keyed by the module's digest and the wasmtime version, so
each later start only loads the compiled code.

Layout under ``DATA_DIR/node/wasm/``::

    sandboxes/<id>/meta.json        the SandboxConfig
    containers/<id>/meta.json       the ContainerConfig, image, stop signal
    containers/<id>/shim.json       what the shim runs (module, argv, env, preopens, limits)
    containers/<id>/{state,exit}.json, shim.log    written by the shim
    cache/<sha256>-<wasmtime version>.cwasm        compiled modules
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import shutil
import signal
import sys
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Callable, Sequence
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import IO, Any

import cattrs
import wasmtime
from attrs import frozen

import engenho
from engenho.node_agent.images.errors import ImageStoreError, InvalidReferenceError, UnpackError
from engenho.node_agent.images.model import WASM_LAYER_MEDIA_TYPES, Descriptor, StoredImage
from engenho.node_agent.images.reference import parse_reference
from engenho.node_agent.images.store import ImageStore
from engenho.node_agent.images.unpacking import ensure_rootfs, resolve_in_root
from engenho.node_agent.runtime import (
    ByteSink,
    ContainerConfig,
    ContainerEvent,
    ContainerNotFoundError,
    ContainerRuntimeError,
    ContainerState,
    ContainerStateError,
    ContainerStatus,
    CreateContainerError,
    EventHub,
    ExecError,
    ImageInfo,
    NetworkMode,
    PullPolicy,
    RuntimeInfo,
    RuntimeUnavailableError,
    SandboxConfig,
    SandboxNotFoundError,
    SandboxStatus,
    StartContainerError,
    TerminalSize,
    exit_reason,
    invalid_image_name,
    merge_env,
    missing_image,
    resolve_argv,
)
from engenho.node_agent.runtimes.oci_monitors import MonitorWatcher
from engenho.node_agent.runtimes.oci_records import (
    SandboxRecord,
    from_ns,
    now,
    read_json,
    write_json,
)
from engenho.node_agent.runtimes.wasm_shim import (
    START_ERROR_EXIT,
    compile_module,
    new_engine,
    process_start_ticks,
    trap_message,
    wasmtime_version,
)

__all__ = ["EXEC_UNSUPPORTED", "SHIM_MODULE", "WasmRuntime"]

log = logging.getLogger(__name__)

SHIM_MODULE = "engenho.node_agent.runtimes.wasm_shim"
EXEC_UNSUPPORTED = (
    "exec is not supported by the wasm runtime: a WebAssembly module runs alone, with no "
    "shell or other program beside it to run (containerd's runwasi shims do not support exec "
    "either)"
)
_KILLED_EXIT = 137
_KILL_WAIT = 10.0
_WASM_MAGIC = b"\0asm"
_MODULE_VERSION = b"\x01\0\0\0"
_COMPONENT_VERSION = b"\x0d\0\x01\0"
_TITLE = "org.opencontainers.image.title"
# The shim must import engenho even when the agent runs from a source tree.
_PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(engenho.__file__)))


def _converter() -> cattrs.Converter:
    converter = cattrs.Converter()
    converter.register_unstructure_hook(Path, str)
    converter.register_structure_hook(Path, lambda value, _: Path(value))
    return converter


_CONVERTER = _converter()


@frozen
class _Module:
    """Which module a container runs, how it is called, and what it may see."""

    path: Path
    digest: str
    argv: tuple[str, ...]
    entry: str
    rootfs: Path | None


class _Container:
    """The runtime's memory of one container; ``meta()`` is what it keeps on disk."""

    def __init__(
        self,
        container_id: str,
        sandbox_id: str,
        directory: Path,
        config: ContainerConfig,
        image_ref: str,
    ) -> None:
        self.id = container_id
        self.sandbox_id = sandbox_id
        self.directory = directory
        self.config = config
        self.image_ref = image_ref
        self.created_at = now()
        self.state = ContainerState.CREATED
        self.started_at: datetime | None = None
        self.finished_at: datetime | None = None
        self.exit_code: int | None = None
        self.reason = ""
        self.message = ""
        self.pid: int | None = None
        self.start_ticks: int | None = None
        self.stop_signal = int(signal.SIGTERM)
        self.unenforced: tuple[str, ...] = ()
        self.killed = False
        """This runtime sent SIGKILL: an exit the shim could not record is that kill."""
        self.exited = asyncio.Event()
        self.watch: Callable[[], None] | None = None

    def meta(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "sandbox_id": self.sandbox_id,
            "config": _CONVERTER.unstructure(self.config),
            "image_ref": self.image_ref,
            "created_at": self.created_at.isoformat(),
            "stop_signal": self.stop_signal,
            "unenforced": list(self.unenforced),
        }

    @classmethod
    def load(cls, directory: Path, data: dict[str, Any]) -> _Container:
        container = cls(
            data["id"],
            data["sandbox_id"],
            directory,
            _CONVERTER.structure(data["config"], ContainerConfig),
            data["image_ref"],
        )
        container.created_at = datetime.fromisoformat(data["created_at"])
        container.stop_signal = int(data.get("stop_signal", signal.SIGTERM))
        container.unenforced = tuple(data.get("unenforced") or ())
        return container

    def apply_exit(self, data: dict[str, Any]) -> None:
        code = int(data.get("exit_code", _KILLED_EXIT))
        self.state = ContainerState.EXITED
        self.exit_code = code
        self.reason = str(data.get("reason") or "") or exit_reason(code)
        self.message = str(data.get("message") or "")
        self.finished_at = from_ns(data.get("finished_at")) or now()
        self.pid = None
        self.exited.set()

    def status(self) -> ContainerStatus:
        return ContainerStatus(
            id=self.id,
            sandbox_id=self.sandbox_id,
            runtime="wasm",
            name=self.config.name,
            attempt=self.config.attempt,
            state=self.state,
            image=self.config.image,
            image_ref=self.image_ref,
            created_at=self.created_at,
            log_path=self.config.log_path,
            started_at=self.started_at,
            finished_at=self.finished_at,
            exit_code=self.exit_code,
            reason=self.reason,
            message=self.message,
            pid=self.pid,
            labels=self.config.labels,
            annotations=self.config.annotations,
            unenforced=self.unenforced,
        )


class WasmRuntime:
    """WASI modules run by wasmtime. ``data_dir`` is engenho's data directory (images are
    read from ``DATA_DIR/images``, state kept in ``DATA_DIR/node/wasm``); ``store`` replaces
    the data directory's image store (tests share one); ``python`` runs the shims."""

    def __init__(
        self,
        data_dir: Path,
        *,
        log_max_bytes: int = 10 * 1024 * 1024,
        log_max_files: int = 5,
        store: ImageStore | None = None,
        python: str = sys.executable,
    ) -> None:
        self.store = store if store is not None else ImageStore(data_dir / "images")
        self.root = data_dir / "node" / "wasm"
        self._log_max_bytes = log_max_bytes
        self._log_max_files = log_max_files
        self._python = python
        self._engine: wasmtime.Engine | None = None
        self._version = ""
        self._compiling: dict[Path, asyncio.Lock] = {}
        self._sandboxes: dict[str, SandboxRecord] = {}
        self._containers: dict[str, _Container] = {}
        self._hub = EventHub()
        self._monitors = MonitorWatcher()

    @property
    def name(self) -> str:
        return "wasm"

    @property
    def cache(self) -> Path:
        """Where compiled modules are kept."""
        return self.root / "cache"

    # -- opening --------------------------------------------------------------------------

    async def open(self) -> None:
        for name in ("sandboxes", "containers", "cache"):
            (self.root / name).mkdir(parents=True, exist_ok=True)
        try:
            self._engine = new_engine()
            self._version = wasmtime_version()
        except (wasmtime.WasmtimeError, OSError) as exc:
            raise RuntimeUnavailableError(f"wasmtime cannot run here: {exc}") from exc
        await self._recover()

    async def _recover(self) -> None:
        """Pick up what a previous agent left: sandboxes, containers, running shims."""
        for directory in sorted((self.root / "sandboxes").iterdir()):
            data = read_json(directory / "meta.json")
            if data is not None:
                sandbox = SandboxRecord.load(directory, data)
                self._sandboxes[sandbox.id] = sandbox
        for directory in sorted((self.root / "containers").iterdir()):
            data = read_json(directory / "meta.json")
            if data is None:
                continue
            container = _Container.load(directory, data)
            self._containers[container.id] = container
            owner = self._sandboxes.get(container.sandbox_id)
            if owner is not None:
                owner.containers.add(container.id)
            self._refresh(container)

    def _refresh(self, container: _Container) -> None:
        """Bring a recovered container's state up to date from the shim's files."""
        outcome = read_json(container.directory / "exit.json")
        state = read_json(container.directory / "state.json")
        if state is not None:
            container.started_at = from_ns(state.get("started_at"))
            container.pid = state.get("pid")
            container.start_ticks = state.get("shim_start_ticks")
        if outcome is not None:
            container.apply_exit(outcome)
            return
        if state is None:
            return  # created, never started
        if container.pid is not None and process_start_ticks(container.pid) == (
            container.start_ticks
        ):
            container.state = ContainerState.RUNNING
            self._watch(container)
            return
        self._record_exit(
            container,
            {
                "exit_code": _KILLED_EXIT,
                "reason": "ContainerStatusUnknown",
                "message": "The container could not be located when the agent restarted",
            },
        )

    async def close(self) -> None:
        for container in self._containers.values():
            if container.watch is not None:
                container.watch()
                container.watch = None
        await self._monitors.close()
        self._hub.close()

    async def info(self) -> RuntimeInfo:
        if self._engine is None:
            raise RuntimeUnavailableError("the wasm runtime is not open")
        return RuntimeInfo(
            name="wasm",
            version=self._version,
            cgroups=False,
            pod_network=False,
            notes=(
                "WebAssembly (WASI preview 1) modules run by wasmtime, one process per container",
                "memory limits cap each module's linear memory; CPU limits are not enforced",
                "WASI preview 1 has no sockets: pods get an IP but nothing in them can listen",
                "exec is not supported (as in runwasi)",
            ),
        )

    # -- images ---------------------------------------------------------------------------

    async def ensure_image(self, reference: str, policy: PullPolicy) -> ImageInfo:
        image = await self._find_image(reference, policy)
        return ImageInfo(
            reference=str(image.reference) if image.reference else image.manifest_digest,
            image_id=image.image_id,
            repo_digest=image.repo_digest,
            config=image.config,
            size=image.size,
            is_wasm=image.is_wasm,
        )

    async def _find_image(self, reference: str, policy: PullPolicy) -> StoredImage:
        try:
            if not reference.startswith("sha256:"):
                parse_reference(reference)
            image = await asyncio.to_thread(self.store.find, reference)
        except InvalidReferenceError as exc:
            raise invalid_image_name(reference, str(exc)) from exc
        except ImageStoreError as exc:
            raise missing_image(reference, policy, f"the image store is damaged: {exc}") from exc
        if image is None:
            normalised = (
                reference if reference.startswith("sha256:") else str(parse_reference(reference))
            )
            raise missing_image(
                reference,
                policy,
                f'image "{normalised}" is not in the node\'s image store, and engenho does not '
                'pull from registries: import it with "engenho image import" (a WebAssembly '
                'module with "engenho image import --wasm FILE --tag REF")',
            )
        return image

    # -- sandboxes ------------------------------------------------------------------------

    async def create_sandbox(self, config: SandboxConfig) -> SandboxStatus:
        sandbox_id = uuid.uuid4().hex
        directory = self.root / "sandboxes" / sandbox_id
        directory.mkdir(parents=True)
        if config.directory is not None:
            config.directory.mkdir(parents=True, exist_ok=True)
        sandbox = SandboxRecord(sandbox_id, directory, config)
        if config.network is not None:
            # Nothing to set up (no sockets in WASI preview 1); the pod keeps its own IP.
            sandbox.network_mode = NetworkMode.POD
            sandbox.ip = str(config.network.ip)
        write_json(directory / "meta.json", sandbox.meta())
        self._sandboxes[sandbox_id] = sandbox
        return sandbox.status()

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
        if sandbox.config.directory is not None:
            await asyncio.to_thread(shutil.rmtree, sandbox.config.directory, True)
        await asyncio.to_thread(shutil.rmtree, sandbox.directory, True)
        del self._sandboxes[sandbox_id]

    def _sandbox(self, sandbox_id: str) -> SandboxRecord:
        sandbox = self._sandboxes.get(sandbox_id)
        if sandbox is None:
            raise SandboxNotFoundError(f"sandbox {sandbox_id!r} not found")
        return sandbox

    # -- containers -----------------------------------------------------------------------

    async def create_container(self, sandbox_id: str, config: ContainerConfig) -> ContainerStatus:
        sandbox = self._sandbox(sandbox_id)
        image = await self._find_image(config.image, PullPolicy.IF_NOT_PRESENT)
        module = await self._module(image, config)
        cache = await self._compile(module, config.image)
        working_dir = config.working_dir or image.config.working_dir or "/"
        preopens = _preopens(config, module.rootfs, working_dir)
        container_id = uuid.uuid4().hex
        directory = self.root / "containers" / container_id
        directory.mkdir(parents=True)
        container = _Container(container_id, sandbox_id, directory, config, image.repo_digest)
        container.stop_signal = _signal_number(
            config.stop_signal or image.config.stop_signal or "SIGTERM"
        )
        if config.resources.cpu_limit_millis is not None:
            container.unenforced = ("cpu",)
        shim = {
            "id": container_id,
            "module": str(module.path),
            "cache": str(cache),
            "entry": module.entry,
            "argv": list(module.argv),
            "env": list(merge_env(image.config.env, config.env, hostname=sandbox.config.hostname)),
            "preopens": preopens,
            "memory_limit": config.resources.memory_limit_bytes,
            "log_path": str(config.log_path),
            "log_max_bytes": self._log_max_bytes,
            "log_max_files": self._log_max_files,
        }
        write_json(directory / "shim.json", shim)
        write_json(directory / "meta.json", container.meta())
        self._containers[container_id] = container
        sandbox.containers.add(container_id)
        self._publish(container)
        return container.status()

    async def _module(self, image: StoredImage, config: ContainerConfig) -> _Module:
        """The module the container runs, with its argv and entry function."""
        argv = list(resolve_argv(image.config, config.command, config.args))
        layers = image.manifest.layers
        modules = [layer for layer in layers if layer.media_type in WASM_LAYER_MEDIA_TYPES]
        rootfs: Path | None = None
        if len(modules) < len(layers):  # filesystem layers too: the module sees their tree
            try:
                rootfs = await asyncio.to_thread(ensure_rootfs, self.store, image)
            except (UnpackError, ImageStoreError) as exc:
                raise CreateContainerError(
                    f"failed to unpack image {config.image!r}: {exc}"
                ) from exc
        name, _, entry = (argv[0] if argv else "").partition("#")
        if modules:
            layer = _choose_layer(modules, name, config.image)
            path = self.store.blob_path(layer.digest)
            digest = layer.digest
            name = name or layer.annotations.get(_TITLE) or "module.wasm"
        else:
            assert rootfs is not None
            if not name:
                name = await asyncio.to_thread(_only_wasm_file, rootfs, config.image)
            working_dir = config.working_dir or image.config.working_dir or "/"
            path = resolve_in_root(rootfs, str(PurePosixPath(working_dir) / name))
            digest = ""
        header = await asyncio.to_thread(_header, path)
        _check_header(header, name, config.image)
        if not digest:
            digest = await asyncio.to_thread(_sha256, path)
        return _Module(
            path=path,
            digest=digest,
            argv=(name, *argv[1:]),
            entry=entry or "_start",
            rootfs=rootfs,
        )

    async def _compile(self, module: _Module, image: str) -> Path:
        """The compiled module's cache file, compiling it on first use."""
        engine = self._engine
        if engine is None:
            raise RuntimeUnavailableError("the wasm runtime is not open")
        cache = self.cache / f"{module.digest.partition(':')[2]}-{self._version}.cwasm"
        lock = self._compiling.setdefault(cache, asyncio.Lock())
        async with lock:
            if cache.exists():
                return cache
            try:
                data = await asyncio.to_thread(module.path.read_bytes)
                await asyncio.to_thread(compile_module, engine, data, cache)
            except wasmtime.WasmtimeError as exc:
                raise CreateContainerError(
                    f"{module.argv[0]} in image {image!r} is not a valid WebAssembly module: "
                    f"{trap_message(exc)}"
                ) from exc
            except OSError as exc:
                raise CreateContainerError(f"could not compile {module.argv[0]}: {exc}") from exc
        return cache

    async def start_container(self, container_id: str) -> ContainerStatus:
        container = self._container(container_id)
        if container.state is not ContainerState.CREATED:
            raise ContainerStateError(
                f"container {container_id} is {container.state.value}, not created"
            )
        container.config.log_path.parent.mkdir(parents=True, exist_ok=True)
        report = await self._spawn(container.directory)
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
        container.start_ticks = state.get("shim_start_ticks")
        self._watch(container)
        self._publish(container)
        return container.status()

    async def _spawn(self, directory: Path) -> dict[str, Any]:
        """Start the shim for the container in ``directory``; its one-line report."""
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (_PACKAGE_ROOT, env.get("PYTHONPATH", "")) if p
        )
        with _open_append(directory / "shim.log") as shim_log:
            process = await asyncio.create_subprocess_exec(
                self._python,
                "-m",
                SHIM_MODULE,
                str(directory),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=shim_log,
                start_new_session=True,
                env=env,
            )
        line = await process.stdout.readline() if process.stdout is not None else b""
        await process.wait()
        if not line:
            tail = _tail(directory / "shim.log")
            return {"error": "the wasm shim died: " + (tail or "no output")}
        try:
            report: dict[str, Any] = json.loads(line)
        except json.JSONDecodeError:
            return {"error": f"the wasm shim said {line!r}"}
        return report

    def _watch(self, container: _Container) -> None:
        """Learn of the container's exit from its shim's."""
        if container.pid is None:
            self._on_exit(container)
            return

        def exited() -> None:
            container.watch = None
            self._on_exit(container)

        container.watch = self._monitors.watch(container.pid, exited)

    def _on_exit(self, container: _Container) -> None:
        if container.state is ContainerState.EXITED:
            return
        outcome = read_json(container.directory / "exit.json")
        if outcome is None:
            # Killed before it could write its exit: by our SIGKILL, or from outside.
            message = "" if container.killed else "the wasm process was killed"
            outcome = {"exit_code": _KILLED_EXIT, "reason": "", "message": message}
            self._record_exit(container, outcome)
        else:
            container.apply_exit(outcome)
        self._publish(container)

    def _record_exit(self, container: _Container, outcome: dict[str, Any]) -> None:
        """An exit the shim could not record itself, kept for the next agent."""
        outcome = {"finished_at": int(now().timestamp() * 1e9), **outcome}
        write_json(container.directory / "exit.json", outcome)
        container.apply_exit(outcome)

    async def stop_container(self, container_id: str, grace_period: float) -> ContainerStatus:
        container = self._container(container_id)
        if container.state is ContainerState.CREATED:
            self._record_exit(
                container, {"exit_code": 0, "reason": "", "message": "stopped before it started"}
            )
            self._publish(container)
            return container.status()
        if container.state is not ContainerState.RUNNING:
            return container.status()
        container.killed = container.stop_signal == signal.SIGKILL
        self._signal(container, container.stop_signal)
        if not await _wait_event(container.exited, max(grace_period, 0.0)):
            container.killed = True
            self._signal(container, int(signal.SIGKILL))
            if not await _wait_event(container.exited, _KILL_WAIT):
                raise ContainerRuntimeError(
                    f"container {container_id} did not exit {_KILL_WAIT:.0f} s after SIGKILL"
                )
        return container.status()

    def _signal(self, container: _Container, number: int) -> None:
        pid = container.pid
        # The pid is the shim's only while its start time matches: never signal a stranger.
        if pid is None or process_start_ticks(pid) != container.start_ticks:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, number)

    async def remove_container(self, container_id: str) -> None:
        container = self._containers.get(container_id)
        if container is None:
            return
        if container.state is ContainerState.RUNNING:
            await self.stop_container(container_id, 0)
        if container.watch is not None:
            container.watch()
            container.watch = None
        await asyncio.to_thread(shutil.rmtree, container.directory, True)
        self._containers.pop(container_id, None)
        sandbox = self._sandboxes.get(container.sandbox_id)
        if sandbox is not None:
            sandbox.containers.discard(container_id)

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
        await container.exited.wait()
        return container.status()

    def events(self) -> AsyncIterator[ContainerEvent]:
        return self._hub.subscribe()

    def _container(self, container_id: str) -> _Container:
        container = self._containers.get(container_id)
        if container is None:
            raise ContainerNotFoundError(f"container {container_id!r} not found")
        return container

    def _publish(self, container: _Container) -> None:
        self._hub.publish(
            ContainerEvent(container.id, container.sandbox_id, container.state, now())
        )

    # -- exec -----------------------------------------------------------------------------

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
        self._container(container_id)
        raise ExecError(EXEC_UNSUPPORTED)


# -- helpers ------------------------------------------------------------------------------


def _choose_layer(modules: list[Descriptor], name: str, image: str) -> Descriptor:
    """The module layer the command names (by its title), or the only one."""
    if name:
        wanted = PurePosixPath(name).name
        for layer in modules:
            if layer.annotations.get(_TITLE) in (name, wanted):
                return layer
    if len(modules) == 1:
        return modules[0]
    titles = ", ".join(layer.annotations.get(_TITLE) or layer.digest for layer in modules)
    raise CreateContainerError(
        f"image {image!r} holds several WebAssembly modules ({titles}) and the command "
        f"{'names none of them' if name else 'names none'}: set the container's command"
    )


def _only_wasm_file(rootfs: Path, image: str) -> str:
    found = sorted(
        "/" + str(path.relative_to(rootfs))
        for path in rootfs.rglob("*.wasm")
        if path.is_file() and not path.is_symlink()
    )
    if len(found) == 1:
        return found[0]
    if not found:
        raise CreateContainerError(
            f"image {image!r} has no WebAssembly module to run: no command, and no .wasm file "
            "in its layers (the wasm runtime runs WASI modules only)"
        )
    raise CreateContainerError(
        f"image {image!r} has no command and several .wasm files ({', '.join(found)}): set "
        "the container's command to the module to run"
    )


def _header(path: Path) -> bytes:
    try:
        with path.open("rb") as stream:
            return stream.read(8)
    except OSError:
        return b""


def _check_header(header: bytes, name: str, image: str) -> None:
    if header[:4] != _WASM_MAGIC:
        raise CreateContainerError(
            f"{name!r} in image {image!r} is not a WebAssembly module: the wasm runtime runs "
            "WASI modules only (run other images on a node with the oci runtime)"
        )
    if header[4:8] == _COMPONENT_VERSION:
        raise CreateContainerError(
            f"{name!r} in image {image!r} is a WebAssembly component (WASI preview 2): the "
            "wasm runtime runs WASI preview 1 modules (build for wasm32-wasip1)"
        )
    if header[4:8] != _MODULE_VERSION:
        raise CreateContainerError(
            f"{name!r} in image {image!r} has an unknown WebAssembly version {header[4:8]!r}"
        )


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
    return f"sha256:{digest.hexdigest()}"


def _preopens(
    config: ContainerConfig, rootfs: Path | None, working_dir: str
) -> list[tuple[str, str, bool]]:
    """(host directory, guest path, writable) for each directory the module may open."""
    preopens: list[tuple[str, str, bool]] = []
    if rootfs is not None:
        # The image's tree is shared by every container of the image: read-only.
        preopens.append((str(rootfs), "/", False))
    for mount in config.mounts:
        if not mount.host_path.exists():
            raise CreateContainerError(
                f"failed to mount {mount.host_path} at {mount.container_path}: "
                "no such file or directory"
            )
        if mount.host_path.is_dir():
            preopens.append((str(mount.host_path), mount.container_path, not mount.read_only))
        else:
            log.debug("a file mount (%s) cannot be preopened in WASI", mount.container_path)
    here = _host_directory(config, rootfs, working_dir)
    if here is not None:
        preopens.append((str(here[0]), ".", here[1]))
    return preopens


def _host_directory(
    config: ContainerConfig, rootfs: Path | None, working_dir: str
) -> tuple[Path, bool] | None:
    """The host directory behind the guest's ``working_dir`` and whether it is writable: in
    the mount that holds it (the deepest), else in the image's tree."""
    target = PurePosixPath("/") / working_dir
    best: tuple[int, Path, bool] | None = None
    for mount in config.mounts:
        base = PurePosixPath("/") / mount.container_path
        if (target == base or base in target.parents) and mount.host_path.is_dir():
            depth = len(base.parts)
            if best is None or depth > best[0]:
                best = (depth, mount.host_path / target.relative_to(base), not mount.read_only)
    if best is not None:
        return (best[1], best[2]) if best[1].is_dir() else None
    if rootfs is not None and target != PurePosixPath("/"):
        inside = resolve_in_root(rootfs, str(target))
        return (inside, False) if inside.is_dir() else None
    return None


def _signal_number(name: str) -> int:
    text = name.strip().upper()
    if text.isdigit():
        return int(text)
    if not text.startswith("SIG"):
        text = "SIG" + text
    try:
        return int(signal.Signals[text])
    except KeyError:
        return int(signal.SIGTERM)


def _open_append(path: Path) -> IO[bytes]:
    return path.open("ab")


def _tail(path: Path, lines: int = 5) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return " / ".join(text.strip().splitlines()[-lines:])


async def _wait_event(event: asyncio.Event, seconds: float) -> bool:
    try:
        async with asyncio.timeout(seconds):
            await event.wait()
    except TimeoutError:
        return False
    return True
