"""The behaviour every ContainerRuntime shares, as a test suite each runtime subclasses
(CONVENTIONS.md: contracts with a shared suite). A subclass provides the ``runtime`` fixture
(opened, closed after) and a ``Harness`` that knows how to make, in that runtime, a container
that exits with a code, one that runs until stopped, one that ignores the stop signal, and
what exec and the log then show."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from attrs import evolve

from engenho.node_agent.runtime import (
    ContainerConfig,
    ContainerNotFoundError,
    ContainerRuntime,
    ContainerState,
    ContainerStateError,
    ExecError,
    ImageNeverPullError,
    ImagePullError,
    InvalidImageNameError,
    PullPolicy,
    SandboxConfig,
    SandboxNotFoundError,
    SandboxStatus,
    exec_capture,
)

__all__ = ["Harness", "RuntimeContract", "log_path", "sandbox_config"]


class Harness:
    """How to make containers that behave a given way in one runtime."""

    image = "busybox"
    missing_image = "no-such-image:1"
    log_line = b"hello\n"
    """What an ``exiting`` container writes to its log."""
    graceful_exit_code = 0
    """The exit code of a ``forever`` container stopped by its stop signal."""
    exec_ok: tuple[tuple[str, ...], int, bytes] = (("echo", "ok"), 0, b"ok\n")
    """A command, its exit code and its stdout, in a ``forever`` container."""

    def exiting(self, name: str, log_path: Path, code: int) -> ContainerConfig:
        raise NotImplementedError

    def forever(self, name: str, log_path: Path) -> ContainerConfig:
        raise NotImplementedError

    def ignoring_stop(self, name: str, log_path: Path) -> ContainerConfig:
        raise NotImplementedError


def log_path(tmp_path: Path, name: str = "main") -> Path:
    return tmp_path / "logs" / name / "0.log"


def sandbox_config(tmp_path: Path, name: str = "pod") -> SandboxConfig:
    return SandboxConfig(
        name=name,
        namespace="default",
        uid=f"uid-{name}",
        hostname=name,
        directory=tmp_path / "pods" / name,
        labels={"io.kubernetes.pod.name": name},
    )


class RuntimeContract:
    """Subclass and provide the ``runtime`` and ``harness`` fixtures."""

    @pytest.fixture
    async def sandbox(
        self, runtime: ContainerRuntime, tmp_path: Path
    ) -> AsyncIterator[SandboxStatus]:
        status = await runtime.create_sandbox(sandbox_config(tmp_path))
        yield status
        await runtime.remove_sandbox(status.id)

    async def test_a_container_runs_to_its_exit_code(
        self,
        runtime: ContainerRuntime,
        harness: Harness,
        sandbox: SandboxStatus,
        tmp_path: Path,
    ) -> None:
        await runtime.ensure_image(harness.image, PullPolicy.IF_NOT_PRESENT)
        for code, reason in ((0, "Completed"), (3, "Error")):
            name = f"exit{code}"
            config = harness.exiting(name, log_path(tmp_path, name), code)
            config = evolve(config, labels={"container": name}, attempt=2)
            created = await runtime.create_container(sandbox.id, config)
            assert (created.state, created.attempt, created.name) == (
                ContainerState.CREATED,
                2,
                name,
            )
            started = await runtime.start_container(created.id)
            assert started.started_at is not None
            done = await runtime.wait_container(created.id)
            assert (done.state, done.exit_code, done.reason) == (
                ContainerState.EXITED,
                code,
                reason,
            )
            assert done.finished_at is not None and done.finished_at >= started.started_at
            assert done.container_id == f"{runtime.name}://{created.id}"
            assert harness.log_line in config.log_path.read_bytes()

    async def test_stop_sends_the_stop_signal_first(
        self, runtime: ContainerRuntime, harness: Harness, sandbox: SandboxStatus, tmp_path: Path
    ) -> None:
        config = harness.forever("main", log_path(tmp_path))
        container = await runtime.create_container(sandbox.id, config)
        await runtime.start_container(container.id)
        assert (await runtime.container_status(container.id)).state is ContainerState.RUNNING
        stopped = await runtime.stop_container(container.id, grace_period=30)
        assert stopped.state is ContainerState.EXITED
        assert stopped.exit_code == harness.graceful_exit_code
        # Stopping again reports the same exit.
        assert (await runtime.stop_container(container.id, 30)).exit_code == stopped.exit_code

    async def test_stop_kills_after_the_grace_period(
        self, runtime: ContainerRuntime, harness: Harness, sandbox: SandboxStatus, tmp_path: Path
    ) -> None:
        config = harness.ignoring_stop("main", log_path(tmp_path))
        container = await runtime.create_container(sandbox.id, config)
        await runtime.start_container(container.id)
        stopped = await runtime.stop_container(container.id, grace_period=0.3)
        assert (stopped.exit_code, stopped.reason) == (137, "Error")

    async def test_exec_runs_in_a_running_container(
        self, runtime: ContainerRuntime, harness: Harness, sandbox: SandboxStatus, tmp_path: Path
    ) -> None:
        container = await runtime.create_container(
            sandbox.id, harness.forever("main", log_path(tmp_path))
        )
        await runtime.start_container(container.id)
        argv, code, output = harness.exec_ok
        result = await exec_capture(runtime, container.id, argv)
        assert (result.exit_code, result.stdout) == (code, output)
        await runtime.stop_container(container.id, 0)
        with pytest.raises(ExecError, match="not running"):
            await exec_capture(runtime, container.id, argv)

    async def test_list_remove_and_not_found(
        self, runtime: ContainerRuntime, harness: Harness, sandbox: SandboxStatus, tmp_path: Path
    ) -> None:
        config = evolve(harness.forever("main", log_path(tmp_path)), labels={"k": "v"})
        container = await runtime.create_container(sandbox.id, config)
        await runtime.start_container(container.id)
        with pytest.raises(ContainerStateError):
            await runtime.start_container(container.id)
        listed = await runtime.list_containers(sandbox.id)
        assert [(c.id, dict(c.labels)) for c in listed] == [(container.id, {"k": "v"})]
        assert [s.id for s in await runtime.list_sandboxes()] == [sandbox.id]
        await runtime.remove_container(container.id)  # running: killed, then removed
        assert await runtime.list_containers(sandbox.id) == []
        with pytest.raises(ContainerNotFoundError):
            await runtime.container_status(container.id)
        await runtime.remove_container(container.id)  # unknown: not an error
        with pytest.raises(SandboxNotFoundError):
            await runtime.sandbox_status("no-such-sandbox")

    async def test_removing_a_sandbox_removes_its_containers(
        self, runtime: ContainerRuntime, harness: Harness, tmp_path: Path
    ) -> None:
        sandbox = await runtime.create_sandbox(sandbox_config(tmp_path, "doomed"))
        assert sandbox.config.directory.is_dir()
        container = await runtime.create_container(
            sandbox.id, harness.forever("main", log_path(tmp_path))
        )
        await runtime.start_container(container.id)
        await runtime.remove_sandbox(sandbox.id)
        assert await runtime.list_containers() == []
        assert await runtime.list_sandboxes() == []
        await runtime.remove_sandbox(sandbox.id)

    async def test_events_follow_the_lifecycle(
        self, runtime: ContainerRuntime, harness: Harness, sandbox: SandboxStatus, tmp_path: Path
    ) -> None:
        events = runtime.events()
        container = await runtime.create_container(
            sandbox.id, harness.forever("main", log_path(tmp_path))
        )
        await runtime.start_container(container.id)
        await runtime.stop_container(container.id, 0)
        seen: list[ContainerState] = []
        async with asyncio.timeout(10):
            async for event in events:
                assert (event.container_id, event.sandbox_id) == (container.id, sandbox.id)
                seen.append(event.state)
                if event.state is ContainerState.EXITED:
                    break
        await events.aclose()  # type: ignore[attr-defined]
        assert seen == [ContainerState.CREATED, ContainerState.RUNNING, ContainerState.EXITED]

    async def test_image_errors_carry_upstream_reasons(
        self, runtime: ContainerRuntime, harness: Harness
    ) -> None:
        with pytest.raises(ImagePullError) as pull:
            await runtime.ensure_image(harness.missing_image, PullPolicy.IF_NOT_PRESENT)
        assert pull.value.reason == "ErrImagePull"
        assert pull.value.message.startswith(f'Failed to pull image "{harness.missing_image}": ')
        with pytest.raises(ImageNeverPullError) as never:
            await runtime.ensure_image(harness.missing_image, PullPolicy.NEVER)
        assert never.value.reason == "ErrImageNeverPull"
        assert never.value.message == (
            f'Container image "{harness.missing_image}" is not present with pull policy of Never'
        )
        with pytest.raises(InvalidImageNameError) as invalid:
            await runtime.ensure_image("Busybox", PullPolicy.IF_NOT_PRESENT)
        assert invalid.value.reason == "InvalidImageName"
        assert invalid.value.message == (
            'Failed to apply default image tag "Busybox": couldn\'t parse image reference '
            '"Busybox": invalid reference format: repository name (library/Busybox) must be '
            "lowercase"
        )
        info = await runtime.ensure_image(harness.image, PullPolicy.NEVER)
        assert info.repo_digest.startswith("docker.io/library/")
