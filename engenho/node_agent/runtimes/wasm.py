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
each later start only loads the compiled code. The bookkeeping of sandboxes, container
records, shims and their exits is ``shim_runtime.ShimRuntime``'s, shared with the OCI runtime;
this module is what is wasmtime's.

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
import logging
import os
import signal
import sys
from collections.abc import AsyncIterable, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

import wasmtime
from attrs import frozen

from engenho.node_agent.images.model import WASM_LAYER_MEDIA_TYPES, Descriptor, StoredImage
from engenho.node_agent.images.store import ImageStore
from engenho.node_agent.images.unpacking import resolve_in_root
from engenho.node_agent.runtime import (
    ByteSink,
    ContainerConfig,
    ContainerStatus,
    CreateContainerError,
    ExecError,
    NetworkMode,
    PullPolicy,
    RuntimeInfo,
    RuntimeUnavailableError,
    TerminalSize,
    merge_env,
    resolve_argv,
)
from engenho.node_agent.runtimes.shim_process import process_start_ticks
from engenho.node_agent.runtimes.shim_runtime import (
    ShimRuntime,
    require_mount_sources,
    stop_signal_number,
)
from engenho.node_agent.runtimes.shim_supervision import spawn_shim
from engenho.node_agent.runtimes.stored_records import SandboxRecord, StoredContainer, write_json
from engenho.node_agent.runtimes.wasm_shim import MODULE as SHIM_MODULE
from engenho.node_agent.runtimes.wasm_shim import (
    compile_module,
    new_engine,
    trap_message,
    wasmtime_version,
)

__all__ = ["EXEC_UNSUPPORTED", "SHIM_MODULE", "WasmRuntime"]

log = logging.getLogger(__name__)

EXEC_UNSUPPORTED = (
    "exec is not supported by the wasm runtime: a WebAssembly module runs alone, with no "
    "shell or other program beside it to run (containerd's runwasi shims do not support exec "
    "either)"
)
_KILLED_EXIT = 137
_WASM_MAGIC = b"\0asm"
_MODULE_VERSION = b"\x01\0\0\0"
_COMPONENT_VERSION = b"\x0d\0\x01\0"
_TITLE = "org.opencontainers.image.title"


@frozen
class _Module:
    """Which module a container runs, how it is called, and what it may see."""

    path: Path
    digest: str
    argv: tuple[str, ...]
    entry: str
    rootfs: Path | None


class WasmContainer(StoredContainer):
    """What the wasm runtime keeps of a container besides what every shim runtime keeps (the
    default is the class's until ``_signal`` sets it)."""

    runtime = "wasm"
    killed: bool = False
    """This runtime sent SIGKILL: an exit the shim could not record is that kill."""


class WasmRuntime(ShimRuntime[WasmContainer]):
    """WASI modules run by wasmtime. ``data_dir`` is engenho's data directory (images are
    read from ``DATA_DIR/images``, state kept in ``DATA_DIR/node/wasm``); ``store`` replaces
    the data directory's image store (tests share one); ``python`` runs the shims."""

    import_example = 'a WebAssembly module with "engenho image import --wasm FILE --tag REF"'

    def __init__(
        self,
        data_dir: Path,
        *,
        log_max_bytes: int = 10 * 1024 * 1024,
        log_max_files: int = 5,
        store: ImageStore | None = None,
        python: str = sys.executable,
    ) -> None:
        super().__init__(
            data_dir, WasmContainer, store, log_max_bytes=log_max_bytes, log_max_files=log_max_files
        )
        self._python = python
        self._engine: wasmtime.Engine | None = None
        self._version = ""
        self._compiling: dict[Path, asyncio.Lock] = {}

    @property
    def cache(self) -> Path:
        """Where compiled modules are kept."""
        return self.root / "cache"

    # -- opening --------------------------------------------------------------------------

    async def open(self) -> None:
        self._make_directories("cache")
        try:
            self._engine = new_engine()
            self._version = wasmtime_version()
        except (wasmtime.WasmtimeError, OSError) as exc:
            raise RuntimeUnavailableError(f"wasmtime cannot run here: {exc}") from exc
        await self._recover()

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

    # -- sandboxes ------------------------------------------------------------------------

    async def _prepare_sandbox(self, sandbox: SandboxRecord) -> None:
        if sandbox.config.network is not None:
            # Nothing to set up (no sockets in WASI preview 1); the pod keeps its own IP.
            sandbox.network_mode = NetworkMode.POD
            sandbox.ip = str(sandbox.config.network.ip)

    # -- containers -----------------------------------------------------------------------

    async def create_container(self, sandbox_id: str, config: ContainerConfig) -> ContainerStatus:
        sandbox = self._sandbox(sandbox_id)
        image = await self._find_image(config.image, PullPolicy.IF_NOT_PRESENT)
        module = await self._module(image, config)
        cache = await self._compile(module, config.image)
        working_dir = config.working_dir or image.config.working_dir or "/"
        require_mount_sources(config)
        preopens = _preopens(config, module.rootfs, working_dir)
        container_id, directory = self._new_container_directory()
        container = WasmContainer(container_id, sandbox_id, directory, config, image.repo_digest)
        container.stop_signal = stop_signal_number(config, image.config)
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
        return self._add_container(sandbox, container)

    async def _module(self, image: StoredImage, config: ContainerConfig) -> _Module:
        """The module the container runs, with its argv and entry function."""
        argv = list(resolve_argv(image.config, config.command, config.args))
        layers = image.manifest.layers
        modules = [layer for layer in layers if layer.media_type in WASM_LAYER_MEDIA_TYPES]
        rootfs: Path | None = None
        if len(modules) < len(layers):  # filesystem layers too: the module sees their tree
            rootfs = await self.unpacker.rootfs(image, config.image)
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

    async def _spawn(self, container: WasmContainer) -> dict[str, Any]:
        return await spawn_shim(
            container.directory, SHIM_MODULE, who="the wasm shim", python=self._python
        )

    def _exit_lost(self, container: WasmContainer) -> None:
        # Killed before it could write its exit: by our SIGKILL, or from outside.
        message = "" if container.killed else "the wasm process was killed"
        container.record_exit({"exit_code": _KILLED_EXIT, "reason": "", "message": message})

    async def _signal(self, container: WasmContainer, number: int) -> None:
        if number == signal.SIGKILL:
            container.killed = True
        pid = container.pid
        # The pid is the shim's only while its start time matches: never signal a stranger.
        if pid is None or process_start_ticks(pid) != container.shim_start_ticks:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, number)

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
