"""The wasm runtime through the ContainerRuntime protocol, with WASI modules written in WAT
and imported with ``engenho image import --wasm``: the shared runtime contract (exec refused
instead of run), output in the CRI log as it is written, exit codes from ``proc_exit``, traps
as errors with their message, argv and environment, volumes as preopened directories
(read-only ones refuse writes), the working directory, memory limits, stops that interrupt a
spinning module or one blocked in a host call, and containers that outlive the agent."""

from __future__ import annotations

import asyncio
import importlib.metadata
import json
import signal
import time
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import pytest
from attrs import evolve

from engenho.node_agent.images import ImageStore
from engenho.node_agent.logs import LogRecord, parse_record
from engenho.node_agent.runtime import (
    ContainerConfig,
    ContainerRuntime,
    ContainerState,
    EnvVar,
    ExecError,
    Mount,
    NetworkMode,
    PodNetwork,
    PullPolicy,
    Resources,
    SandboxStatus,
    StartContainerError,
    exec_capture,
)
from engenho.node_agent.runtimes.wasm import EXEC_UNSUPPORTED, WasmRuntime
from tests.node_agent.runtimes.contract import (
    Harness,
    RuntimeContract,
    log_path,
    sandbox_config,
)

_DEADLINE = 30.0


class WasmHarness(Harness):
    image = "hello:1"
    log_line = b"hello\n"
    graceful_exit_code = 143
    """A module cannot handle SIGTERM (WASI has no signals): it ends as a process would."""

    def exiting(self, name: str, log_path: Path, code: int) -> ContainerConfig:
        return ContainerConfig(name, "hello:1", log_path, args=(str(code),))

    def forever(self, name: str, log_path: Path) -> ContainerConfig:
        return ContainerConfig(name, "ticker:1", log_path)

    def ignoring_stop(self, name: str, log_path: Path) -> ContainerConfig:
        # SIGWINCH is ignored by default, by a module as by any process: only SIGKILL helps.
        return ContainerConfig(name, "ticker:1", log_path, stop_signal="SIGWINCH")


@pytest.fixture
def harness() -> Harness:
    return WasmHarness()


class TestWasmContract(RuntimeContract):
    async def test_exec_runs_in_a_running_container(
        self, runtime: ContainerRuntime, harness: Harness, sandbox: SandboxStatus, tmp_path: Path
    ) -> None:
        """Not here: exec is refused with a clear error, running or not (runwasi's rule)."""
        container = await runtime.create_container(
            sandbox.id, harness.forever("main", log_path(tmp_path))
        )
        await runtime.start_container(container.id)
        with pytest.raises(ExecError) as refused:
            await exec_capture(runtime, container.id, ["sh"])
        assert refused.value.message == EXEC_UNSUPPORTED
        assert "not supported by the wasm runtime" in EXEC_UNSUPPORTED


def records(path: Path) -> list[LogRecord]:
    return [parse_record(line) for line in path.read_bytes().splitlines()]


def lines(path: Path, stream: str = "stdout") -> list[str]:
    return [r.content.decode() for r in records(path) if r.stream == stream]


async def run(
    runtime: WasmRuntime, sandbox: SandboxStatus, config: ContainerConfig
) -> tuple[str, list[str]]:
    """Create, start and wait for a container: its id and its stdout lines."""
    created = await runtime.create_container(sandbox.id, config)
    await runtime.start_container(created.id)
    await runtime.wait_container(created.id)
    return created.id, lines(config.log_path)


async def wait_for_log(path: Path, content: bytes) -> None:
    async with asyncio.timeout(_DEADLINE):
        while not (path.exists() and content in path.read_bytes()):
            await asyncio.sleep(0.02)


def _ended(pid: int) -> bool:
    """Gone, or a zombie its new parent (init) has not reaped yet."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat[stat.rfind(")") + 2] in "ZX"


@pytest.fixture
async def sandbox(runtime: WasmRuntime, tmp_path: Path) -> SandboxStatus:
    return await runtime.create_sandbox(sandbox_config(tmp_path))


async def test_hello_writes_the_cri_log_and_completes(
    runtime: WasmRuntime, sandbox: SandboxStatus, tmp_path: Path
) -> None:
    info = await runtime.info()
    assert (info.name, info.version) == ("wasm", importlib.metadata.version("wasmtime"))
    image = await runtime.ensure_image("hello:1", PullPolicy.NEVER)
    assert image.is_wasm and image.config.entrypoint == ("hello.wasm",)
    config = ContainerConfig("hello", "hello:1", log_path(tmp_path, "hello"))
    container_id, out = await run(runtime, sandbox, config)
    assert out == ["hello"]
    (record,) = records(config.log_path)
    assert (record.stream, record.partial) == ("stdout", False)
    assert abs(record.timestamp_ns - time.time_ns()) < 3600 * 10**9
    status = await runtime.container_status(container_id)
    assert (status.state, status.exit_code, status.reason) == (
        ContainerState.EXITED,
        0,
        "Completed",
    )
    assert status.container_id == f"wasm://{container_id}"
    assert status.image_ref == image.repo_digest
    assert status.started_at is not None and status.finished_at is not None


async def test_proc_exit_gives_the_exit_code(
    runtime: WasmRuntime, sandbox: SandboxStatus, tmp_path: Path
) -> None:
    config = ContainerConfig("three", "hello:1", log_path(tmp_path), args=("3",))
    container_id, out = await run(runtime, sandbox, config)
    status = await runtime.container_status(container_id)
    assert (status.exit_code, status.reason, status.message) == (3, "Error", "")
    assert out == ["hello"]


async def test_arguments_and_environment(
    runtime: WasmRuntime, sandbox: SandboxStatus, tmp_path: Path
) -> None:
    config = ContainerConfig(
        "echo",
        "echo:1",
        log_path(tmp_path, "echo"),
        command=("echo.wasm", "one"),
        args=("two words",),
        env=(EnvVar("GREETING", "hello there"), EnvVar("EMPTY", "")),
    )
    _, out = await run(runtime, sandbox, config)
    assert out == [
        "echo.wasm",
        "one",
        "two words",
        "HOSTNAME=pod",
        "GREETING=hello there",
        "EMPTY=",
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    ]
    # args alone follow the image's Entrypoint, which names the module.
    config = ContainerConfig("args", "echo:1", log_path(tmp_path, "args"), args=("x",))
    _, out = await run(runtime, sandbox, config)
    assert out[:2] == ["echo.wasm", "x"]


async def test_volumes_are_preopened_directories(
    runtime: WasmRuntime, sandbox: SandboxStatus, tmp_path: Path
) -> None:
    volume = tmp_path / "volume"
    volume.mkdir()
    (volume / "greeting.txt").write_text("hello from a file\n")

    def reader(name: str, *, read_only: bool) -> ContainerConfig:
        return ContainerConfig(
            name,
            "reader:1",
            log_path(tmp_path, name),
            args=("/data", "greeting.txt"),
            mounts=(Mount(volume, "/data", read_only=read_only),),
        )

    _, out = await run(runtime, sandbox, reader("ro", read_only=True))
    assert out == ["hello from a file", "write refused"]
    assert not (volume / "written.txt").exists()
    _, out = await run(runtime, sandbox, reader("rw", read_only=False))
    assert out == ["hello from a file", "write allowed"]
    assert (volume / "written.txt").read_text() == "hello"


async def test_the_working_directory_is_preopened_as_dot(
    runtime: WasmRuntime, sandbox: SandboxStatus, tmp_path: Path
) -> None:
    volume = tmp_path / "volume"
    (volume / "sub").mkdir(parents=True)
    (volume / "sub" / "note.txt").write_text("in the working directory\n")
    config = ContainerConfig(
        "cwd",
        "reader:1",
        log_path(tmp_path),
        args=(".", "note.txt"),
        working_dir="/data/sub",
        mounts=(Mount(volume, "/data"),),
    )
    _, out = await run(runtime, sandbox, config)
    assert out == ["in the working directory", "write allowed"]
    assert (volume / "sub" / "written.txt").read_text() == "hello"


async def test_a_trap_is_an_error_with_its_message(
    runtime: WasmRuntime, sandbox: SandboxStatus, tmp_path: Path
) -> None:
    config = ContainerConfig("trap", "trap:1", log_path(tmp_path))
    container_id, out = await run(runtime, sandbox, config)
    status = await runtime.container_status(container_id)
    assert (status.exit_code, status.reason) == (134, "Error")
    assert status.message == "wasm trap: wasm `unreachable` instruction executed"
    assert out == ["hello"]
    errors = "\n".join(lines(config.log_path, "stderr"))
    assert "Error: failed to run main module `trap.wasm`" in errors
    assert "wasm backtrace" in errors and "unreachable" in errors


async def test_a_spinning_module_stops_on_sigterm_and_its_log_is_live(
    runtime: WasmRuntime, sandbox: SandboxStatus, tmp_path: Path
) -> None:
    config = ContainerConfig("spin", "ticker:1", log_path(tmp_path))
    created = await runtime.create_container(sandbox.id, config)
    started = await runtime.start_container(created.id)
    assert started.pid is not None
    # The line is in the log while the module still runs (what `kubectl logs -f` reads).
    await wait_for_log(config.log_path, b"stdout F tick\n")
    assert (await runtime.container_status(created.id)).state is ContainerState.RUNNING
    stopped = await runtime.stop_container(created.id, grace_period=60)
    # 143, not 137: SIGTERM ended it (epoch interruption), the grace period never ran out.
    assert (stopped.exit_code, stopped.reason) == (143, "Error")
    assert _ended(started.pid)


async def test_a_module_blocked_in_a_host_call_stops_on_sigterm(
    runtime: WasmRuntime, sandbox: SandboxStatus, tmp_path: Path
) -> None:
    config = ContainerConfig("sleep", "sleeper:1", log_path(tmp_path))
    created = await runtime.create_container(sandbox.id, config)
    await runtime.start_container(created.id)
    await wait_for_log(config.log_path, b"tick")
    stopped = await runtime.stop_container(created.id, grace_period=60)
    assert (stopped.exit_code, stopped.reason) == (143, "Error")


async def test_a_stop_signal_from_the_config(
    runtime: WasmRuntime, sandbox: SandboxStatus, tmp_path: Path
) -> None:
    config = ContainerConfig("int", "ticker:1", log_path(tmp_path), stop_signal="SIGINT")
    created = await runtime.create_container(sandbox.id, config)
    await runtime.start_container(created.id)
    stopped = await runtime.stop_container(created.id, grace_period=60)
    assert stopped.exit_code == 128 + signal.SIGINT


async def test_memory_limits_cap_linear_memory(
    runtime: WasmRuntime, sandbox: SandboxStatus, tmp_path: Path
) -> None:
    limited = ContainerConfig(
        "small",
        "grower:1",
        log_path(tmp_path, "small"),
        resources=Resources(memory_limit_bytes=512 * 1024, cpu_limit_millis=100),
    )
    container_id, out = await run(runtime, sandbox, limited)
    status = await runtime.container_status(container_id)
    assert (out, status.exit_code) == (["refused"], 1)
    assert status.unenforced == ("cpu",)
    roomy = evolve(limited, name="big", log_path=log_path(tmp_path, "big"), resources=Resources())
    container_id, out = await run(runtime, sandbox, roomy)
    assert (out, (await runtime.container_status(container_id)).exit_code) == (["grew"], 0)


async def test_an_unknown_import_fails_the_start(
    runtime: WasmRuntime, sandbox: SandboxStatus, tmp_path: Path
) -> None:
    config = ContainerConfig("missing", "missing-import:1", log_path(tmp_path))
    created = await runtime.create_container(sandbox.id, config)
    with pytest.raises(StartContainerError) as failed:
        await runtime.start_container(created.id)
    assert "env::missing" in failed.value.message
    status = await runtime.container_status(created.id)
    assert (status.state, status.exit_code, status.reason) == (
        ContainerState.EXITED,
        128,
        "StartError",
    )
    assert "env::missing" in status.message
    assert any("env::missing" in line for line in lines(config.log_path, "stderr"))


async def test_a_pod_keeps_its_ip(runtime: WasmRuntime, tmp_path: Path) -> None:
    network = PodNetwork(IPv4Network("10.42.0.0/24"), IPv4Address("10.42.0.7"))
    sandbox = await runtime.create_sandbox(evolve(sandbox_config(tmp_path), network=network))
    assert (sandbox.network_mode, sandbox.ip) == (NetworkMode.POD, "10.42.0.7")


async def test_containers_outlive_the_agent(tmp_path: Path, wasm_store: ImageStore) -> None:
    first = WasmRuntime(tmp_path / "data", store=wasm_store)
    await first.open()
    sandbox = await first.create_sandbox(sandbox_config(tmp_path))
    spinning = await first.create_container(
        sandbox.id,
        evolve(
            ContainerConfig("spin", "ticker:1", log_path(tmp_path, "spin")),
            labels={"pod": "p"},
        ),
    )
    await first.start_container(spinning.id)
    quick = await first.create_container(
        sandbox.id, ContainerConfig("quick", "hello:1", log_path(tmp_path, "quick"), args=("5",))
    )
    await first.start_container(quick.id)
    await first.close()
    # The agent is gone; the quick one exits meanwhile (its shim records the exit).
    exit_file = first.root / "containers" / quick.id / "exit.json"
    async with asyncio.timeout(_DEADLINE):
        while not exit_file.exists():
            await asyncio.sleep(0.02)
    assert json.loads(exit_file.read_text())["exit_code"] == 5

    again = WasmRuntime(tmp_path / "data", store=wasm_store)
    await again.open()
    try:
        found = {c.id: c for c in await again.list_containers(sandbox.id)}
        assert found[spinning.id].state is ContainerState.RUNNING
        assert dict(found[spinning.id].labels) == {"pod": "p"}
        assert (found[quick.id].state, found[quick.id].exit_code) == (ContainerState.EXITED, 5)
        assert [s.id for s in await again.list_sandboxes()] == [sandbox.id]
        stopped = await again.stop_container(spinning.id, 60)
        assert stopped.exit_code == 143
    finally:
        await again.remove_sandbox(sandbox.id)
        await again.close()
