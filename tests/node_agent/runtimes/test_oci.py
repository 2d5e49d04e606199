"""The OCI runtime with real crun containers of the busybox image: the shared runtime
contract, plus what only real processes show: PID 1 and SIGTERM, a process killed from
outside, a missing executable, exec with stdin and with a terminal, a pod's shared network,
IPC and hostname, users, environment, working directory and read-only mounts, memory limits
(OOMKilled where cgroups are enforced, reported unenforced where not), and containers that
outlive the agent and are found again."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
from collections.abc import AsyncIterator
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import pytest
from attrs import evolve

from engenho.node_agent.images import ImageStore, import_wasm
from engenho.node_agent.logs import read_log
from engenho.node_agent.runtime import (
    ContainerConfig,
    ContainerState,
    CreateContainerError,
    EnvVar,
    Mount,
    NetworkMode,
    PodNetwork,
    Resources,
    RuntimeUnavailableError,
    SandboxState,
    SandboxStatus,
    StartContainerError,
    TerminalSize,
    exec_capture,
)
from engenho.node_agent.runtimes import oci_network
from engenho.node_agent.runtimes.oci import OciRuntime
from engenho.node_agent.runtimes.oci_host import HostCapabilities, unmount
from tests.node_agent.runtimes.conftest import CGROUP_PARENT
from tests.node_agent.runtimes.contract import (
    Harness,
    RuntimeContract,
    log_path,
    sandbox_config,
)

BRIDGE = f"engtest{os.getpid() % 10000}"


def sh(name: str, log: Path, script: str, **fields: object) -> ContainerConfig:
    return ContainerConfig(name, "busybox", log, command=("sh", "-c", script), **fields)  # type: ignore[arg-type]


class OciHarness(Harness):
    graceful_exit_code = 0

    def exiting(self, name: str, log_path: Path, code: int) -> ContainerConfig:
        return sh(name, log_path, f"echo hello; exit {code}")

    def forever(self, name: str, log_path: Path) -> ContainerConfig:
        # PID 1 gets no default signal handling: the shell must trap SIGTERM to stop on it.
        return sh(name, log_path, "trap 'exit 0' TERM; sleep 1000 & wait")

    def ignoring_stop(self, name: str, log_path: Path) -> ContainerConfig:
        return sh(name, log_path, "trap '' TERM; sleep 1000")


async def open_runtime(
    data_dir: Path, store: ImageStore, capabilities: HostCapabilities
) -> OciRuntime:
    runtime = OciRuntime(
        data_dir,
        store=store,
        capabilities=capabilities,
        bridge=BRIDGE,
        cgroup_parent=CGROUP_PARENT,
    )
    await runtime.open()
    return runtime


async def clean_up(runtime: OciRuntime) -> None:
    for sandbox in await runtime.list_sandboxes():
        await runtime.remove_sandbox(sandbox.id)
    for container in await runtime.list_containers():
        await runtime.remove_container(container.id)
    await runtime.close()


@pytest.fixture
async def runtime(
    tmp_path: Path, busybox_store: ImageStore, host_capabilities: HostCapabilities
) -> AsyncIterator[OciRuntime]:
    runtime = await open_runtime(tmp_path / "data", busybox_store, host_capabilities)
    yield runtime
    await clean_up(runtime)


@pytest.fixture(scope="module", autouse=True)
def _remove_test_bridge() -> object:
    yield
    asyncio.run(oci_network.remove_bridge(BRIDGE))


class TestOciContract(RuntimeContract):
    @pytest.fixture
    def harness(self) -> Harness:
        return OciHarness()


@pytest.fixture
async def pod(runtime: OciRuntime, tmp_path: Path) -> AsyncIterator[SandboxStatus]:
    status = await runtime.create_sandbox(sandbox_config(tmp_path))
    yield status
    await runtime.remove_sandbox(status.id)


async def log_text(path: Path) -> str:
    return b"".join([chunk async for chunk in read_log(path)]).decode()


async def test_pid_one_ignores_sigterm_so_plain_sleep_waits_out_the_grace(
    runtime: OciRuntime, pod: SandboxStatus, tmp_path: Path
) -> None:
    # As under containerd: the kernel drops signals PID 1 has no handler for.
    container = await runtime.create_container(
        pod.id, ContainerConfig("sleep", "busybox", log_path(tmp_path), command=("sleep", "1000"))
    )
    await runtime.start_container(container.id)
    stopped = await runtime.stop_container(container.id, grace_period=0.3)
    assert (stopped.exit_code, stopped.reason) == (137, "Error")


async def test_a_process_killed_from_outside_is_reported_exited(
    runtime: OciRuntime, pod: SandboxStatus, tmp_path: Path
) -> None:
    container = await runtime.create_container(
        pod.id, OciHarness().forever("victim", log_path(tmp_path))
    )
    running = await runtime.start_container(container.id)
    assert running.pid is not None
    events = runtime.events()
    os.kill(running.pid, signal.SIGKILL)
    async with asyncio.timeout(10):
        async for event in events:
            if event.container_id == container.id and event.state is ContainerState.EXITED:
                break
    await events.aclose()  # type: ignore[attr-defined]
    status = await runtime.container_status(container.id)
    assert (status.state, status.exit_code, status.reason) == (ContainerState.EXITED, 137, "Error")


async def test_a_missing_executable_is_a_start_error(
    runtime: OciRuntime, pod: SandboxStatus, tmp_path: Path
) -> None:
    container = await runtime.create_container(
        pod.id, ContainerConfig("bad", "busybox", log_path(tmp_path), command=("no-such-tool",))
    )
    with pytest.raises(StartContainerError, match="no-such-tool"):
        await runtime.start_container(container.id)
    status = await runtime.container_status(container.id)
    assert (status.state, status.exit_code, status.reason) == (
        ContainerState.EXITED,
        128,
        "StartError",
    )
    assert "no-such-tool" in status.message


async def test_create_refuses_what_cannot_run(
    runtime: OciRuntime, pod: SandboxStatus, tmp_path: Path
) -> None:
    with pytest.raises(CreateContainerError, match="no such file or directory"):
        await runtime.create_container(
            pod.id,
            ContainerConfig(
                "m", "busybox", log_path(tmp_path), mounts=(Mount(tmp_path / "absent", "/x"),)
            ),
        )
    module = tmp_path / "m.wasm"
    module.write_bytes(b"\0asm\x01\0\0\0")
    import_wasm(runtime.store, module, tag="oci-test-wasm:1")
    with pytest.raises(CreateContainerError, match="wasm runtime"):
        await runtime.create_container(
            pod.id, ContainerConfig("w", "oci-test-wasm:1", log_path(tmp_path))
        )
    assert await runtime.list_containers(pod.id) == []


async def test_exec_with_stdin_and_with_a_terminal(
    runtime: OciRuntime, pod: SandboxStatus, tmp_path: Path
) -> None:
    container = await runtime.create_container(
        pod.id, OciHarness().forever("shell", log_path(tmp_path))
    )
    await runtime.start_container(container.id)

    async def lines() -> AsyncIterator[bytes]:
        yield b"one\n"
        yield b"two\n"

    out = bytearray()

    async def sink(data: bytes) -> None:
        out.extend(data)

    assert await runtime.exec(container.id, ["cat"], stdin=lines(), stdout=sink) == 0
    assert bytes(out) == b"one\ntwo\n"
    assert (await exec_capture(runtime, container.id, ["sh", "-c", "exit 5"])).exit_code == 5
    failed = await exec_capture(runtime, container.id, ["sh", "-c", "echo oops >&2; exit 1"])
    assert (failed.exit_code, failed.stderr) == (1, b"oops\n")

    out.clear()

    async def sizes() -> AsyncIterator[TerminalSize]:
        yield TerminalSize(width=100, height=40)

    code = await runtime.exec(
        container.id,
        ["sh", "-c", "sleep 0.2; tty; stty size; echo done"],
        stdout=sink,
        tty=True,
        resize=sizes(),
    )
    text = bytes(out).decode()
    assert code == 0
    assert "/dev/pts/" in text
    assert "40 100" in text
    assert "done" in text


async def test_a_cancelled_exec_kills_its_command(
    runtime: OciRuntime, pod: SandboxStatus, tmp_path: Path
) -> None:
    container = await runtime.create_container(
        pod.id, OciHarness().forever("shell", log_path(tmp_path))
    )
    await runtime.start_container(container.id)
    started = asyncio.Event()

    async def sink(data: bytes) -> None:
        if b"started" in data:
            started.set()

    command = ["sh", "-c", "echo started; exec sleep 999"]
    task = asyncio.create_task(runtime.exec(container.id, command, stdout=sink), name="exec")
    async with asyncio.timeout(10):
        await started.wait()
    task.cancel()  # what a probe's timeout or a closed kubectl exec does
    with pytest.raises(asyncio.CancelledError):
        await task
    # Killed (what is left is at most a zombie of PID 1, which shows as "[sleep]").
    left = await exec_capture(runtime, container.id, ["ps"])
    assert b"sleep 999" not in left.stdout
    assert b"sleep 1000" in left.stdout


async def test_user_environment_workdir_and_mounts(
    runtime: OciRuntime, pod: SandboxStatus, tmp_path: Path
) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "file").write_text("from the host\n")
    log = log_path(tmp_path)
    script = (
        "id -u; id -g; pwd; echo $FOO; echo $HOSTNAME; cat /etc/hostname; cat /data/file; "
        "touch /data/new 2>/dev/null && echo writable || echo read-only"
    )
    container = await runtime.create_container(
        pod.id,
        sh(
            "env",
            log,
            script,
            env=(EnvVar("FOO", "bar"),),
            run_as_user=65534,
            run_as_group=65534,
            working_dir="/work/dir",
            mounts=(Mount(shared, "/data", read_only=True),),
        ),
    )
    await runtime.start_container(container.id)
    done = await runtime.wait_container(container.id)
    assert done.exit_code == 0
    assert (await log_text(log)).splitlines() == [
        "65534",
        "65534",
        "/work/dir",
        "bar",
        "pod",
        "pod",
        "from the host",
        "read-only",
    ]


async def test_memory_limits_are_enforced_or_reported(
    runtime: OciRuntime, pod: SandboxStatus, tmp_path: Path, host_capabilities: HostCapabilities
) -> None:
    hog = sh(
        "hog",
        log_path(tmp_path),
        "x=$(head -c 100000000 /dev/zero | tr '\\0' a); echo survived",
        resources=Resources(memory_limit_bytes=32 * 1024 * 1024, cpu_limit_millis=500),
    )
    container = await runtime.create_container(pod.id, hog)
    if not host_capabilities.cgroups:
        assert container.unenforced == ("cpu", "memory")
        return
    assert container.unenforced == ()
    await runtime.start_container(container.id)
    done = await runtime.wait_container(container.id)
    assert (done.exit_code, done.reason) == (137, "OOMKilled")


async def test_a_pod_shares_its_network_ipc_and_hostname(
    runtime: OciRuntime, tmp_path: Path
) -> None:
    network = PodNetwork(IPv4Network("10.251.7.0/24"), IPv4Address("10.251.7.9"))
    config = evolve(sandbox_config(tmp_path, "web"), network=network)
    sandbox = await runtime.create_sandbox(config)
    if sandbox.network_mode is NetworkMode.HOST:
        # This host cannot make pod networks: the sandbox says why and shares the host's.
        assert sandbox.network_message
        pytest.skip(f"pod networks are unavailable here: {sandbox.network_message}")
    assert sandbox.ip == "10.251.7.9"
    server = await runtime.create_container(
        sandbox.id,
        sh(
            "server",
            log_path(tmp_path, "server"),
            "readlink /proc/self/ns/ipc; while true; do nc -l -p 8080 -e hostname; done",
        ),
    )
    await runtime.start_container(server.id)

    def fetch() -> bytes:
        with socket.create_connection(("10.251.7.9", 8080), timeout=2) as connection:
            return connection.recv(100)

    async with asyncio.timeout(10):
        while True:
            try:
                answer = await asyncio.to_thread(fetch)
                break
            except OSError:
                await asyncio.sleep(0.05)
    assert answer == b"web\n"
    # A second container of the pod sees the same IPC namespace and network.
    side = await runtime.create_container(
        sandbox.id,
        sh(
            "side",
            log_path(tmp_path, "side"),
            "readlink /proc/self/ns/ipc; hostname; grep web /etc/hosts",
        ),
    )
    await runtime.start_container(side.id)
    assert (await runtime.wait_container(side.id)).exit_code == 0
    side_log = (await log_text(log_path(tmp_path, "side"))).splitlines()
    assert len(side_log) == 3, side_log
    ipc, hostname, hosts = side_log
    assert ipc == (await log_text(log_path(tmp_path, "server"))).splitlines()[0]
    assert ipc != os.readlink("/proc/self/ns/ipc")
    assert (hostname, hosts) == ("web", "10.251.7.9\tweb")
    await runtime.remove_sandbox(sandbox.id)


async def test_containers_outlive_the_agent_and_are_found_again(
    tmp_path: Path, busybox_store: ImageStore, host_capabilities: HostCapabilities
) -> None:
    data = tmp_path / "data"
    first = await open_runtime(data, busybox_store, host_capabilities)
    sandbox = await first.create_sandbox(sandbox_config(tmp_path))
    harness = OciHarness()
    long = await first.create_container(
        sandbox.id, evolve(harness.forever("long", log_path(tmp_path, "long")), labels={"a": "1"})
    )
    short = await first.create_container(
        sandbox.id, sh("short", log_path(tmp_path, "short"), "read line < /dev/stdin; exit 4")
    )
    running = await first.start_container(long.id)
    await first.start_container(short.id)
    await first.close()  # the agent goes away; its containers do not

    # While no agent runs, the short one exits (it reads end of input at once).
    second = await open_runtime(data, busybox_store, host_capabilities)
    try:
        found = {c.name: c for c in await second.list_containers()}
        assert found["long"].state is ContainerState.RUNNING
        assert (found["long"].pid, dict(found["long"].labels)) == (running.pid, {"a": "1"})
        short_done = await second.wait_container(short.id)
        assert short_done.exit_code == 4
        assert [s.id for s in await second.list_sandboxes()] == [sandbox.id]
        stopped = await second.stop_container(long.id, 10)
        assert stopped.exit_code == 0
    finally:
        await clean_up(second)


async def test_a_lost_monitor_is_reported_and_its_container_killed(
    runtime: OciRuntime, pod: SandboxStatus, tmp_path: Path
) -> None:
    container = await runtime.create_container(
        pod.id, ContainerConfig("c", "busybox", log_path(tmp_path), command=("sleep", "1000"))
    )
    running = await runtime.start_container(container.id)
    state = json.loads((runtime.root / "containers" / container.id / "state.json").read_text())
    os.kill(state["shim_pid"], signal.SIGKILL)
    lost = await runtime.wait_container(container.id)
    assert (lost.exit_code, lost.reason) == (137, "ContainerStatusUnknown")
    assert running.pid is not None
    async with asyncio.timeout(10):
        while _alive(running.pid):
            await asyncio.sleep(0.02)


def _alive(pid: int) -> bool:
    """Running, not a zombie waiting for init to reap it."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in status


async def test_a_terminal_container_logs_its_terminal_output(
    runtime: OciRuntime, pod: SandboxStatus, tmp_path: Path
) -> None:
    log = log_path(tmp_path)
    container = await runtime.create_container(
        pod.id, sh("tty", log, "tty; echo $TERM; exit 2", tty=True)
    )
    await runtime.start_container(container.id)
    assert (await runtime.wait_container(container.id)).exit_code == 2
    assert (await log_text(log)).splitlines() == ["/dev/pts/0", "xterm"]


async def test_one_agent_per_data_directory(
    runtime: OciRuntime, busybox_store: ImageStore, host_capabilities: HostCapabilities
) -> None:
    second = OciRuntime(
        runtime.root.parent.parent, store=busybox_store, capabilities=host_capabilities
    )
    with pytest.raises(RuntimeUnavailableError, match="another node agent"):
        await second.open()


async def test_a_sandbox_whose_namespaces_are_gone_is_not_ready(
    runtime: OciRuntime, pod: SandboxStatus
) -> None:
    assert pod.state is SandboxState.READY
    # What a reboot does: the namespace files are plain files again.
    await unmount(runtime.root / "sandboxes" / pod.id / "ns" / "uts")
    assert (await runtime.sandbox_status(pod.id)).state is SandboxState.NOT_READY


async def test_the_fallbacks_copy_and_no_cgroups_still_run_containers(
    tmp_path: Path, busybox_store: ImageStore, host_capabilities: HostCapabilities
) -> None:
    # What a host without overlayfs or usable cgroups gets: a copied root filesystem, and
    # crun with --cgroup-manager=disabled, the limits reported as not enforced.
    degraded = evolve(host_capabilities, overlay=False, cgroups=False, oom_detection=False)
    runtime = await open_runtime(tmp_path / "data", busybox_store, degraded)
    try:
        sandbox = await runtime.create_sandbox(sandbox_config(tmp_path))
        log = log_path(tmp_path)
        container = await runtime.create_container(
            sandbox.id,
            sh(
                "c",
                log,
                "echo changed > /bin/sh-was-here; cat /sys/fs/cgroup/memory/memory.limit_in_bytes"
                " 2>/dev/null || echo no-cgroup-mount",
                resources=Resources(memory_limit_bytes=32 * 1024 * 1024),
            ),
        )
        assert container.unenforced == ("memory",)
        rootfs = runtime.root / "containers" / container.id / "rootfs"
        assert not os.path.ismount(rootfs)
        await runtime.start_container(container.id)
        assert (await runtime.wait_container(container.id)).exit_code == 0
        assert (await log_text(log)).splitlines() == ["no-cgroup-mount"]
        # The image's cached tree is untouched: the container wrote to its copy.
        image = busybox_store.resolve("busybox")
        cached = busybox_store.rootfs_cache / image.manifest_digest[7:] / "rootfs"
        assert not (cached / "bin/sh-was-here").exists()
        assert (rootfs / "bin/sh-was-here").exists()
    finally:
        await clean_up(runtime)


async def test_without_crun_the_runtime_says_so(tmp_path: Path) -> None:
    runtime = OciRuntime(tmp_path / "data", crun=str(tmp_path / "no-crun"))
    with pytest.raises(RuntimeUnavailableError, match="crun"):
        await runtime.open()
    # The failed open let go of the data directory.
    again = OciRuntime(tmp_path / "data", crun=str(tmp_path / "no-crun"))
    with pytest.raises(RuntimeUnavailableError, match="crun"):
        await again.open()
