"""The ``oci`` runtime: real containers run by ``crun`` from the local image store.

Layout under ``DATA_DIR/node/oci/``::

    crun/                         crun's state root (``crun --root``)
    sandboxes/<id>/meta.json      the SandboxConfig and what the sandbox got (network, ...)
    sandboxes/<id>/ns/{ipc,uts,net}   the pod's namespaces, bind-mounted to outlive processes
    sandboxes/<id>/{hosts,resolv.conf,hostname}   bound into every container of the pod
    containers/<id>/meta.json     the ContainerConfig, image, limits left unenforced
    containers/<id>/config.json   the OCI bundle's runtime spec (the bundle is this directory)
    containers/<id>/rootfs/       an overlay of the image's unpacked tree (or a copy of it)
    containers/<id>/{state,exit}.json, shim.log, crun.log   written by the monitor
    launcher.log                  the monitor launcher's own errors

A container's life: ``create_container`` unpacks the image (once per image, into the store's
rootfs cache), mounts the overlay and writes ``config.json``; ``start_container`` starts its
monitor (``oci_shim``, forked by the runtime's launcher, ``shim_launcher``), which runs
``crun create``/``crun start``, copies stdout and stderr to the CRI log and records the exit;
the runtime watches the monitor with a pidfd and publishes the exit. Monitors outlive the
agent, so ``open()`` after a restart finds running containers again and watches their
monitors. That bookkeeping, which the wasm runtime shares, is
``shim_runtime.ShimRuntime``'s; this module is what is crun's.

The host decides what isolation is possible (``oci_host``): cgroup limits when crun can manage
cgroups (else recorded per container as unenforced), overlayfs (else a copy), a pod network
namespace on the ``engenho0`` bridge (else the host network, said in the sandbox status).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
from collections.abc import AsyncIterable, Coroutine, Sequence
from pathlib import Path
from typing import IO, Any, Self

from engenho.node_agent.images.errors import UnpackError
from engenho.node_agent.images.model import StoredImage
from engenho.node_agent.images.store import ImageStore
from engenho.node_agent.images.unpacking import resolve_in_root
from engenho.node_agent.runtime import (
    ByteSink,
    ContainerConfig,
    ContainerState,
    ContainerStatus,
    CreateContainerError,
    ExecError,
    PullPolicy,
    RuntimeInfo,
    RuntimeUnavailableError,
    TerminalSize,
    merge_env,
    resolve_argv,
)
from engenho.node_agent.runtimes import oci_network
from engenho.node_agent.runtimes.oci_exec import crun_exec
from engenho.node_agent.runtimes.oci_host import (
    CgroupMode,
    HostCapabilities,
    run_command,
    unmount,
)
from engenho.node_agent.runtimes.oci_monitors import (
    crun_argv,
    monitor_launcher,
    probe_host,
    spawn_monitor,
)
from engenho.node_agent.runtimes.oci_sandboxes import (
    make_namespaces,
    release_namespaces,
    write_sandbox_files,
)
from engenho.node_agent.runtimes.oci_spec import BindMount, build_config, resolve_user
from engenho.node_agent.runtimes.shim_runtime import (
    ShimRuntime,
    require_mount_sources,
    stop_signal_number,
)
from engenho.node_agent.runtimes.stored_records import (
    STATUS_UNKNOWN_EXIT,
    SandboxRecord,
    StoredContainer,
    write_json,
)

__all__ = ["OciRuntime"]

log = logging.getLogger(__name__)


class OciContainer(StoredContainer):
    """What the OCI runtime keeps of a container besides what every shim runtime keeps (the
    defaults are the class's until ``create_container`` or ``load`` sets them)."""

    runtime = "oci"
    overlay: bool = False
    """The root filesystem is an overlay mount (else a copy)."""
    oom_files: tuple[str, ...] = ()
    """The cgroup files whose ``oom_kill`` counter the monitor reads at the exit."""

    def meta(self) -> dict[str, Any]:
        return {**super().meta(), "overlay": self.overlay, "oom_files": list(self.oom_files)}

    @classmethod
    def load(cls, directory: Path, data: dict[str, Any]) -> Self:
        container = super().load(directory, data)
        container.overlay = bool(data.get("overlay"))
        container.oom_files = tuple(data.get("oom_files") or ())
        return container


class OciRuntime(ShimRuntime[OciContainer]):
    """Containers run by crun. ``data_dir`` is engenho's data directory (images are read
    from ``DATA_DIR/images``, state kept in ``DATA_DIR/node/oci``). ``open()`` probes the
    host unless ``capabilities`` (from ``oci_monitors.probe_host``) are given; ``store``
    replaces the data directory's image store (tests share one)."""

    import_example = (
        'for example an archive written by "skopeo copy docker://IMAGE oci-archive:FILE"'
    )

    def __init__(
        self,
        data_dir: Path,
        *,
        crun: str | None = None,
        log_max_bytes: int = 10 * 1024 * 1024,
        log_max_files: int = 5,
        cgroup_parent: str = "/engenho",
        pod_network: bool = True,
        bridge: str = oci_network.BRIDGE,
        store: ImageStore | None = None,
        capabilities: HostCapabilities | None = None,
    ) -> None:
        super().__init__(
            data_dir, OciContainer, store, log_max_bytes=log_max_bytes, log_max_files=log_max_files
        )
        self._crun_path = crun
        self._cgroup_parent = cgroup_parent.rstrip("/")
        self._pod_network_wanted = pod_network
        self._bridge = oci_network.Bridge(bridge)
        self._network_failure: str | None = None
        self._caps = capabilities
        self._tasks: set[asyncio.Task[object]] = set()
        self._lock: IO[bytes] | None = None
        self._launcher = monitor_launcher(self.root)

    @property
    def capabilities(self) -> HostCapabilities:
        if self._caps is None:
            raise RuntimeUnavailableError("the oci runtime is not open")
        return self._caps

    # -- opening --------------------------------------------------------------------------

    async def open(self) -> None:
        self._make_directories("crun", "tmp")
        # One agent per state directory: two would both think they own every container.
        lock = (self.root / "lock").open("a+b")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            raise RuntimeUnavailableError(
                f"another node agent is using {self.root}: one agent per data directory"
            ) from None
        self._lock = lock
        try:
            if self._caps is None:
                self._caps = await probe_host(self.root, self._crun_path, self._cgroup_parent)
            for note in self._caps.notes:
                log.info("oci runtime: %s", note)
            await self._recover()
            self._launcher.start()  # it imports the monitor while the agent starts up
        except BaseException:
            self._unlock()
            raise

    def _unlock(self) -> None:
        if self._lock is not None:
            fcntl.flock(self._lock, fcntl.LOCK_UN)
            self._lock.close()
            self._lock = None

    async def close(self) -> None:
        await super().close()
        await self._launcher.close()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        self._unlock()

    async def info(self) -> RuntimeInfo:
        caps = self.capabilities
        notes = list(caps.notes)
        if self._network_failure:
            notes.append(
                f"pod networks unavailable, pods use the host network: {self._network_failure}"
            )
        return RuntimeInfo(
            name="oci",
            version=f"crun {caps.crun_version}",
            cgroups=caps.cgroups,
            pod_network=self._pod_network_wanted and self._network_failure is None,
            notes=tuple(notes),
        )

    # -- sandboxes ------------------------------------------------------------------------

    async def _prepare_sandbox(self, sandbox: SandboxRecord) -> None:
        (sandbox.directory / "ns").mkdir()
        failure = await make_namespaces(
            sandbox,
            pod_network=self._pod_network_wanted,
            network_failure=self._network_failure,
            bridge=self._bridge,
        )
        if failure is not None:
            self._network_failure = failure
        await write_sandbox_files(sandbox)

    async def _release_sandbox(self, sandbox: SandboxRecord) -> None:
        await release_namespaces(sandbox)
        await super()._release_sandbox(sandbox)

    # -- containers -----------------------------------------------------------------------

    async def create_container(self, sandbox_id: str, config: ContainerConfig) -> ContainerStatus:
        sandbox = self._sandbox(sandbox_id)
        caps = self.capabilities
        image = await self._find_image(config.image, PullPolicy.IF_NOT_PRESENT)
        if image.is_wasm:
            raise CreateContainerError(
                f"image {config.image!r} is a WebAssembly module: it needs the wasm runtime"
            )
        argv = resolve_argv(image.config, config.command, config.args)
        if not argv:
            raise CreateContainerError(
                f"no command specified: image {config.image!r} has no Entrypoint or Cmd and the "
                "container sets no command"
            )
        require_mount_sources(config)
        lower = await self.unpacker.rootfs(image, config.image)
        container_id, directory = self._new_container_directory()
        container = OciContainer(container_id, sandbox_id, directory, config, image.repo_digest)
        try:
            await self._prepare_rootfs(container, lower)
            self._write_bundle(container, sandbox, image, argv, caps)
        except BaseException:
            await self._discard(container)
            raise
        return self._add_container(sandbox, container)

    async def _prepare_rootfs(self, container: OciContainer, lower: Path) -> None:
        rootfs = container.directory / "rootfs"
        rootfs.mkdir()
        if self.capabilities.overlay:
            upper, work = container.directory / "upper", container.directory / "work"
            upper.mkdir()
            work.mkdir()
            options = f"lowerdir={lower},upperdir={upper},workdir={work}"
            code, _, err = await run_command(
                ["mount", "-t", "overlay", "overlay", "-o", options, str(rootfs)]
            )
            if code == 0:
                container.overlay = True
                return
            log.warning("overlay mount failed (%s); copying the root filesystem", err)
        code, _, err = await run_command(["cp", "-a", f"{lower}/.", str(rootfs)])
        if code != 0:
            raise CreateContainerError(f"could not copy the image's root filesystem: {err}")

    def _write_bundle(
        self,
        container: OciContainer,
        sandbox: SandboxRecord,
        image: StoredImage,
        argv: Sequence[str],
        caps: HostCapabilities,
    ) -> None:
        config = container.config
        rootfs = container.directory / "rootfs"
        user = resolve_user(
            rootfs,
            image.config.user,
            run_as_user=config.run_as_user,
            run_as_group=config.run_as_group,
            supplemental_groups=config.supplemental_groups,
        )
        cwd = config.working_dir or image.config.working_dir or "/"
        with contextlib.suppress(OSError, UnpackError):
            resolve_in_root(rootfs, cwd).mkdir(parents=True, exist_ok=True)
        env = list(merge_env(image.config.env, config.env, hostname=sandbox.config.hostname))
        if config.tty and not any(item.startswith("TERM=") for item in env):
            env.append("TERM=xterm")
        binds = [
            BindMount(sandbox.directory / "hosts", "/etc/hosts"),
            BindMount(sandbox.directory / "resolv.conf", "/etc/resolv.conf"),
            BindMount(sandbox.directory / "hostname", "/etc/hostname"),
            *(BindMount.of(mount) for mount in config.mounts),
        ]
        namespaces: dict[str, str | None] = {
            "pid": None,
            "mount": None,
            "ipc": sandbox.namespaces.get("ipc"),
            "uts": sandbox.namespaces.get("uts"),
        }
        if "network" in sandbox.namespaces:
            namespaces["network"] = sandbox.namespaces["network"]
        wanted = [
            name
            for name, value in (
                ("cpu", config.resources.cpu_limit_millis),
                ("memory", config.resources.memory_limit_bytes),
            )
            if value is not None
        ]
        cgroups_path = f"{self._cgroup_parent}/{container.id}" if caps.cgroups else None
        if not caps.cgroups:
            container.unenforced = tuple(wanted)
        elif caps.cgroup_layout.mode is CgroupMode.UNIFIED:
            container.oom_files = (f"/sys/fs/cgroup{cgroups_path}/memory.events",)
        else:
            container.oom_files = (f"/sys/fs/cgroup/memory{cgroups_path}/memory.oom_control",)
        container.stop_signal = stop_signal_number(config, image.config)
        document = build_config(
            argv=argv,
            env=env,
            cwd=cwd,
            user=user,
            hostname=sandbox.config.hostname,
            rootfs=rootfs,
            tty=config.tty,
            mounts=binds,
            namespaces=namespaces,
            resources=config.resources if caps.cgroups else None,
            cgroups_path=cgroups_path,
            cgroup_mount=caps.cgroups,
            annotations={"io.kubernetes.pod.name": sandbox.config.name},
        )
        write_json(container.directory / "config.json", document)

    async def _spawn(self, container: OciContainer) -> dict[str, Any]:
        caps = self.capabilities
        config = container.config
        spec = {
            "id": container.id,
            "crun": crun_argv(
                caps.crun, self.root / "crun", caps.cgroup_manager, container.directory
            ),
            "hide_unified_cgroup": caps.hide_unified_cgroup,
            "log_path": str(config.log_path),
            "log_max_bytes": self._log_max_bytes,
            "log_max_files": self._log_max_files,
            "tty": config.tty,
            "stdin": config.stdin,
            "oom_files": list(container.oom_files),
        }
        write_json(container.directory / "shim.json", spec)
        report = await spawn_monitor(container.directory, self._launcher)
        if "error" in report:
            # Whatever crun left (a monitor that gave up waiting may have left a container).
            await self._crun("delete", "--force", container.id)
        return report

    def _exit_lost(self, container: OciContainer) -> None:
        container.apply_exit(
            {
                "exit_code": STATUS_UNKNOWN_EXIT,
                "reason": "ContainerStatusUnknown",
                "message": "the container's monitor exited without recording its exit",
            }
        )
        # Nothing copies its output or will record its exit any more: make the reported
        # state true by killing whatever is left of it.
        self._background(self._crun("delete", "--force", container.id), container.id)

    def _background(self, work: Coroutine[Any, Any, object], container_id: str) -> None:
        task = asyncio.get_running_loop().create_task(work, name=f"oci-cleanup-{container_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _signal(self, container: OciContainer, number: int) -> None:
        code, _, err = await self._crun("kill", container.id, str(number))
        if code != 0 and container.pid is not None and container.state is ContainerState.RUNNING:
            # crun lost track (state removed): signal the process directly.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(container.pid, number)
            log.debug("crun kill %s: %s", container.id, err)

    async def _release_container(self, container: OciContainer) -> None:
        await self._crun("delete", "--force", container.id)
        await unmount(container.directory / "rootfs")

    async def _crun(self, *argv: str) -> tuple[int, str, str]:
        caps = self.capabilities
        command = [caps.crun, "--root", str(self.root / "crun"), *argv]
        return await run_command(command)

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
        container = self._container(container_id)
        if container.state is not ContainerState.RUNNING:
            raise ExecError(f"container {container_id} is not running")
        return await crun_exec(
            [self.capabilities.crun, "--root", str(self.root / "crun")],
            container.id,
            argv,
            stdin=stdin,
            stdout=stdout,
            stderr=stderr,
            tty=tty,
            resize=resize,
            running=lambda: container.state is ContainerState.RUNNING,
        )
