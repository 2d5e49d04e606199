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

A container's life: ``create_container`` unpacks the image (once per image, into the store's
rootfs cache), mounts the overlay and writes ``config.json``; ``start_container`` starts its
monitor (``oci_shim``), which runs ``crun create``/``crun start``, copies stdout and stderr to
the CRI log and records the exit; the runtime watches the monitor with a pidfd and publishes
the exit. Monitors outlive the agent, so ``open()`` after a restart finds running containers
again and watches their monitors.

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
import shutil
import signal
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Coroutine, Sequence
from pathlib import Path
from typing import IO, Any

from engenho.node_agent.images.errors import ImageStoreError, InvalidReferenceError, UnpackError
from engenho.node_agent.images.model import StoredImage
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
    PullPolicy,
    RuntimeInfo,
    RuntimeUnavailableError,
    SandboxConfig,
    SandboxNotFoundError,
    SandboxStatus,
    StartContainerError,
    TerminalSize,
    invalid_image_name,
    merge_env,
    missing_image,
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
    MonitorWatcher,
    crun_argv,
    probe_host,
    spawn_monitor,
)
from engenho.node_agent.runtimes.oci_records import (
    STATUS_UNKNOWN_EXIT,
    ContainerRecord,
    SandboxRecord,
    from_ns,
    now,
    read_json,
    write_json,
)
from engenho.node_agent.runtimes.oci_sandboxes import (
    make_namespaces,
    release_sandbox,
    write_sandbox_files,
)
from engenho.node_agent.runtimes.oci_shim import process_start_ticks
from engenho.node_agent.runtimes.oci_spec import BindMount, build_config, resolve_user

__all__ = ["OciRuntime"]

log = logging.getLogger(__name__)

_KILL_WAIT = 10.0


class OciRuntime:
    """Containers run by crun. ``data_dir`` is engenho's data directory (images are read
    from ``DATA_DIR/images``, state kept in ``DATA_DIR/node/oci``). ``open()`` probes the
    host unless ``capabilities`` (from ``oci_monitors.probe_host``) are given; ``store``
    replaces the data directory's image store (tests share one)."""

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
        self.store = store if store is not None else ImageStore(data_dir / "images")
        self.root = data_dir / "node" / "oci"
        self._crun_path = crun
        self._log_max_bytes = log_max_bytes
        self._log_max_files = log_max_files
        self._cgroup_parent = cgroup_parent.rstrip("/")
        self._pod_network_wanted = pod_network
        self._bridge = bridge
        self._network_failure: str | None = None
        self._caps = capabilities
        self._sandboxes: dict[str, SandboxRecord] = {}
        self._containers: dict[str, ContainerRecord] = {}
        self._hub = EventHub()
        self._monitors = MonitorWatcher()
        self._tasks: set[asyncio.Task[object]] = set()
        self._lock: IO[bytes] | None = None

    @property
    def name(self) -> str:
        return "oci"

    @property
    def capabilities(self) -> HostCapabilities:
        if self._caps is None:
            raise RuntimeUnavailableError("the oci runtime is not open")
        return self._caps

    # -- opening --------------------------------------------------------------------------

    async def open(self) -> None:
        for name in ("crun", "sandboxes", "containers", "tmp"):
            (self.root / name).mkdir(parents=True, exist_ok=True)
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
        except BaseException:
            self._unlock()
            raise

    def _unlock(self) -> None:
        if self._lock is not None:
            fcntl.flock(self._lock, fcntl.LOCK_UN)
            self._lock.close()
            self._lock = None

    async def _recover(self) -> None:
        """Pick up what a previous agent left: sandboxes, containers, running monitors."""
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
            container = ContainerRecord.load(directory, data)
            self._containers[container.id] = container
            owner = self._sandboxes.get(container.sandbox_id)
            if owner is not None:
                owner.containers.add(container.id)
            self._refresh(container)

    def _refresh(self, container: ContainerRecord) -> None:
        """Bring a recovered container's state up to date from the monitor's files."""
        outcome = read_json(container.directory / "exit.json")
        state = read_json(container.directory / "state.json")
        if state is not None:
            container.started_at = from_ns(state.get("started_at"))
            container.pid = state.get("pid")
            container.shim_pid = state.get("shim_pid")
        if outcome is not None:
            container.apply_exit(outcome)
            return
        if state is None:
            return  # created, never started
        shim_pid = container.shim_pid
        if shim_pid is not None and process_start_ticks(shim_pid) == state.get("shim_start_ticks"):
            container.state = ContainerState.RUNNING
            self._watch(container)
            return
        # The monitor is gone without recording an exit: upstream's ContainerStatusUnknown.
        container.apply_exit(
            {
                "exit_code": STATUS_UNKNOWN_EXIT,
                "reason": "ContainerStatusUnknown",
                "message": "The container could not be located when the agent restarted",
            }
        )
        write_json(
            container.directory / "exit.json",
            {
                "exit_code": STATUS_UNKNOWN_EXIT,
                "reason": "ContainerStatusUnknown",
                "message": container.message,
            },
        )

    async def close(self) -> None:
        for container in self._containers.values():
            if container.watch is not None:
                container.watch()
                container.watch = None
        await self._monitors.close()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        self._hub.close()
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

    # -- images ---------------------------------------------------------------------------

    async def ensure_image(self, reference: str, policy: PullPolicy) -> ImageInfo:
        image = await self._find_image(reference, policy)
        return _image_info(image)

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
                'pull from registries: import it with "engenho image import" (for example an '
                'archive written by "skopeo copy docker://IMAGE oci-archive:FILE")',
            )
        return image

    # -- sandboxes ------------------------------------------------------------------------

    async def create_sandbox(self, config: SandboxConfig) -> SandboxStatus:
        sandbox_id = uuid.uuid4().hex
        directory = self.root / "sandboxes" / sandbox_id
        (directory / "ns").mkdir(parents=True)
        sandbox = SandboxRecord(sandbox_id, directory, config)
        if config.directory is not None:
            config.directory.mkdir(parents=True, exist_ok=True)
        self._sandboxes[sandbox_id] = sandbox
        try:
            failure = await make_namespaces(
                sandbox,
                pod_network=self._pod_network_wanted,
                network_failure=self._network_failure,
                bridge=self._bridge,
            )
            if failure is not None:
                self._network_failure = failure
            await write_sandbox_files(sandbox)
            write_json(directory / "meta.json", sandbox.meta())
        except BaseException:
            await self.remove_sandbox(sandbox_id)
            raise
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
        await release_sandbox(sandbox)
        del self._sandboxes[sandbox_id]

    def _sandbox(self, sandbox_id: str) -> SandboxRecord:
        sandbox = self._sandboxes.get(sandbox_id)
        if sandbox is None:
            raise SandboxNotFoundError(f"sandbox {sandbox_id!r} not found")
        return sandbox

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
        for mount in config.mounts:
            if not mount.host_path.exists():
                raise CreateContainerError(
                    f"failed to mount {mount.host_path} at {mount.container_path}: "
                    "no such file or directory"
                )
        try:
            lower = await asyncio.to_thread(ensure_rootfs, self.store, image)
        except (UnpackError, ImageStoreError) as exc:
            raise CreateContainerError(f"failed to unpack image {config.image!r}: {exc}") from exc
        container_id = uuid.uuid4().hex
        directory = self.root / "containers" / container_id
        directory.mkdir(parents=True)
        container = ContainerRecord(container_id, sandbox_id, directory, config, image.repo_digest)
        try:
            await self._prepare_rootfs(container, lower)
            self._write_bundle(container, sandbox, image, argv, caps)
        except BaseException:
            await self._discard(container)
            raise
        write_json(directory / "meta.json", container.meta())
        self._containers[container_id] = container
        sandbox.containers.add(container_id)
        self._publish(container)
        return container.status()

    async def _prepare_rootfs(self, container: ContainerRecord, lower: Path) -> None:
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
        container: ContainerRecord,
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
        signal_name = config.stop_signal or image.config.stop_signal or "SIGTERM"
        container.stop_signal = _signal_number(signal_name)
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

    async def start_container(self, container_id: str) -> ContainerStatus:
        container = self._container(container_id)
        if container.state is not ContainerState.CREATED:
            raise ContainerStateError(
                f"container {container_id} is {container.state.value}, not created"
            )
        caps = self.capabilities
        config = container.config
        config.log_path.parent.mkdir(parents=True, exist_ok=True)
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
        report = await spawn_monitor(container.directory)
        if "error" in report:
            # Whatever crun left (a monitor that gave up waiting may have left a container).
            await self._crun("delete", "--force", container.id)
            outcome = read_json(container.directory / "exit.json") or {
                "exit_code": 128,
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
        self._watch(container)
        self._publish(container)
        return container.status()

    def _watch(self, container: ContainerRecord) -> None:
        """Learn of the container's exit from its monitor's."""
        if container.shim_pid is None:
            self._on_monitor_exit(container)
            return

        def exited() -> None:
            container.watch = None
            self._on_monitor_exit(container)

        container.watch = self._monitors.watch(container.shim_pid, exited)

    def _on_monitor_exit(self, container: ContainerRecord) -> None:
        if container.state is ContainerState.EXITED:
            return
        outcome = read_json(container.directory / "exit.json")
        if outcome is None:
            outcome = {
                "exit_code": STATUS_UNKNOWN_EXIT,
                "reason": "ContainerStatusUnknown",
                "message": "the container's monitor exited without recording its exit",
            }
            # Nothing copies its output or will record its exit any more: make the reported
            # state true by killing whatever is left of it.
            self._background(self._crun("delete", "--force", container.id), container.id)
        container.apply_exit(outcome)
        self._publish(container)

    def _background(self, work: Coroutine[Any, Any, object], container_id: str) -> None:
        task = asyncio.get_running_loop().create_task(work, name=f"oci-cleanup-{container_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def stop_container(self, container_id: str, grace_period: float) -> ContainerStatus:
        container = self._container(container_id)
        if container.state is ContainerState.CREATED:
            outcome = {"exit_code": 0, "reason": "", "message": "stopped before it started"}
            write_json(container.directory / "exit.json", outcome)
            container.apply_exit(outcome)
            self._publish(container)
            return container.status()
        if container.state is not ContainerState.RUNNING:
            return container.status()
        await self._kill(container, container.stop_signal)
        if not await _wait_event(container.exited, max(grace_period, 0.0)):
            await self._kill(container, int(signal.SIGKILL))
            if not await _wait_event(container.exited, _KILL_WAIT):
                raise ContainerRuntimeError(
                    f"container {container_id} did not exit {_KILL_WAIT:.0f} s after SIGKILL"
                )
        return container.status()

    async def _kill(self, container: ContainerRecord, number: int) -> None:
        code, _, err = await self._crun("kill", container.id, str(number))
        if code != 0 and container.pid is not None and container.state is ContainerState.RUNNING:
            # crun lost track (state removed): signal the process directly.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(container.pid, number)
            log.debug("crun kill %s: %s", container.id, err)

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

    async def _discard(self, container: ContainerRecord) -> None:
        if container.watch is not None:
            container.watch()
            container.watch = None
        await self._crun("delete", "--force", container.id)
        await unmount(container.directory / "rootfs")
        await asyncio.to_thread(shutil.rmtree, container.directory, True)

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

    def _container(self, container_id: str) -> ContainerRecord:
        container = self._containers.get(container_id)
        if container is None:
            raise ContainerNotFoundError(f"container {container_id!r} not found")
        return container

    def _publish(self, container: ContainerRecord) -> None:
        self._hub.publish(
            ContainerEvent(container.id, container.sandbox_id, container.state, now())
        )

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


def _image_info(image: StoredImage) -> ImageInfo:
    return ImageInfo(
        reference=str(image.reference) if image.reference else image.manifest_digest,
        image_id=image.image_id,
        repo_digest=image.repo_digest,
        config=image.config,
        size=image.size,
        is_wasm=image.is_wasm,
    )


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


async def _wait_event(event: asyncio.Event, seconds: float) -> bool:
    try:
        async with asyncio.timeout(seconds):
            await event.wait()
    except TimeoutError:
        return False
    return True
