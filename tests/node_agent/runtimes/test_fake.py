"""The fake runtime: the shared runtime contract, timetables chosen per container and by
annotations, start errors, OOM kills, the fake registry, event overflow, and 10,000 pods in
one process."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import pytest
from attrs import evolve

from engenho.node_agent.logs import read_log
from engenho.node_agent.runtime import (
    ContainerConfig,
    ContainerEvent,
    ContainerState,
    EventHub,
    NetworkMode,
    PodNetwork,
    PullPolicy,
    StartContainerError,
)
from engenho.node_agent.runtimes.fake import FakeRuntime, Timetable, parse_duration
from tests.node_agent.runtimes.contract import (
    Harness,
    RuntimeContract,
    log_path,
    sandbox_config,
)


class FakeHarness(Harness):
    graceful_exit_code = 143
    exec_ok = (("echo", "ok"), 0, b"ok\n")

    def exiting(self, name: str, log_path: Path, code: int) -> ContainerConfig:
        return ContainerConfig(
            name,
            self.image,
            log_path,
            annotations={
                "fake.engenho.io/run-for": "20ms",
                "fake.engenho.io/exit-code": str(code),
                "fake.engenho.io/log-line": "hello",
            },
        )

    def forever(self, name: str, log_path: Path) -> ContainerConfig:
        return ContainerConfig(
            name,
            self.image,
            log_path,
            annotations={"fake.engenho.io/exec-output": "ok\n"},
        )

    def ignoring_stop(self, name: str, log_path: Path) -> ContainerConfig:
        return ContainerConfig(
            name, self.image, log_path, annotations={"fake.engenho.io/ignore-stop-signal": "true"}
        )


class TestFakeContract(RuntimeContract):
    @pytest.fixture
    async def runtime(self) -> AsyncIterator[FakeRuntime]:
        runtime = FakeRuntime(has_image=lambda ref: ref.path != "library/no-such-image")
        await runtime.open()
        yield runtime
        await runtime.close()

    @pytest.fixture
    def harness(self) -> Harness:
        return FakeHarness()


async def test_timetables_chosen_per_container(tmp_path: Path) -> None:
    def choose(sandbox: object, container: ContainerConfig) -> Timetable:
        return Timetable(run_for=0.01, exit_code=7) if container.name == "short" else Timetable()

    runtime = FakeRuntime(timetable=choose)
    sandbox = await runtime.create_sandbox(sandbox_config(tmp_path))
    short = await runtime.create_container(
        sandbox.id, ContainerConfig("short", "busybox", log_path(tmp_path, "short"))
    )
    long = await runtime.create_container(
        sandbox.id, ContainerConfig("long", "busybox", log_path(tmp_path, "long"))
    )
    for container in (short, long):
        await runtime.start_container(container.id)
    assert (await runtime.wait_container(short.id)).exit_code == 7
    assert (await runtime.container_status(long.id)).state is ContainerState.RUNNING
    await runtime.close()


async def test_annotations_on_the_pod_and_on_one_container(tmp_path: Path) -> None:
    runtime = FakeRuntime(timetable=Timetable(run_for=None))
    config = sandbox_config(tmp_path)
    annotations = {
        "fake.engenho.io/run-for": "10ms",
        "fake.engenho.io/exit-code": "1",
        "fake.engenho.io/b.exit-code": "2",
        "fake.engenho.io/exit-code.bad": "ignored",
        "fake.engenho.io/start-delay": "not a duration",
    }
    pod = await runtime.create_sandbox(evolve(config, annotations=annotations))
    a = await runtime.create_container(
        pod.id, ContainerConfig("a", "busybox", log_path(tmp_path, "a"))
    )
    b = await runtime.create_container(
        pod.id, ContainerConfig("b", "busybox", log_path(tmp_path, "b"))
    )
    for container in (a, b):
        await runtime.start_container(container.id)
    assert (await runtime.wait_container(a.id)).exit_code == 1
    assert (await runtime.wait_container(b.id)).exit_code == 2
    await runtime.close()


async def test_start_errors_and_oom_kills(tmp_path: Path) -> None:
    runtime = FakeRuntime()
    sandbox = await runtime.create_sandbox(sandbox_config(tmp_path))
    broken = await runtime.create_container(
        sandbox.id,
        ContainerConfig(
            "broken",
            "busybox",
            log_path(tmp_path, "broken"),
            annotations={"fake.engenho.io/start-error": 'exec: "nope": executable file not found'},
        ),
    )
    with pytest.raises(StartContainerError, match="executable file not found"):
        await runtime.start_container(broken.id)
    status = await runtime.container_status(broken.id)
    assert (status.state, status.exit_code, status.reason) == (
        ContainerState.EXITED,
        128,
        "StartError",
    )
    hungry = await runtime.create_container(
        sandbox.id,
        ContainerConfig(
            "hungry",
            "busybox",
            log_path(tmp_path, "hungry"),
            annotations={"fake.engenho.io/oom": "true", "fake.engenho.io/run-for": "5ms"},
        ),
    )
    await runtime.start_container(hungry.id)
    done = await runtime.wait_container(hungry.id)
    assert (done.exit_code, done.reason) == (137, "OOMKilled")
    await runtime.close()


async def test_pods_get_their_ip_and_logs_their_line(tmp_path: Path) -> None:
    runtime = FakeRuntime(timetable=Timetable(log_line="started", run_for=0.0))
    network = PodNetwork(IPv4Network("10.244.3.0/24"), IPv4Address("10.244.3.17"))
    config = sandbox_config(tmp_path)
    pod = await runtime.create_sandbox(evolve(config, network=network))
    assert (pod.network_mode, pod.ip) == (NetworkMode.POD, "10.244.3.17")
    host = await runtime.create_sandbox(sandbox_config(tmp_path, "host"))
    assert (host.network_mode, host.ip) == (NetworkMode.HOST, None)
    container = await runtime.create_container(
        pod.id, ContainerConfig("c", "busybox", log_path(tmp_path, "c"))
    )
    await runtime.start_container(container.id)
    await runtime.wait_container(container.id)
    assert b"".join([c async for c in read_log(log_path(tmp_path, "c"))]) == b"started\n"
    await runtime.close()


async def test_pull_delay_applies_once_per_image() -> None:
    runtime = FakeRuntime(timetable=Timetable(pull_delay=0.05))
    first = asyncio.create_task(runtime.ensure_image("busybox", PullPolicy.ALWAYS), name="pull")
    await asyncio.sleep(0)
    assert not first.done()  # pulling
    await first
    # The second time the image is present: served without waiting.
    second = asyncio.create_task(
        runtime.ensure_image("docker.io/library/busybox:latest", PullPolicy.IF_NOT_PRESENT),
        name="present",
    )
    await asyncio.sleep(0)
    assert second.done()
    assert second.result().reference == "docker.io/library/busybox:latest"


def test_durations() -> None:
    assert parse_duration("150ms") == pytest.approx(0.15)
    assert parse_duration("2s") == 2.0
    assert parse_duration("1.5m") == 90.0
    assert parse_duration("3") == 3.0
    assert parse_duration("forever") is None
    with pytest.raises(ValueError, match="duration"):
        parse_duration("soon")


async def test_a_slow_subscriber_is_told_to_relist() -> None:
    hub = EventHub(capacity=4)
    events = hub.subscribe()
    now = datetime.now(UTC)
    for n in range(10):
        hub.publish(ContainerEvent(f"c{n}", "s", ContainerState.RUNNING, now))
    hub.publish(ContainerEvent("after", "s", ContainerState.EXITED, now))
    received = [await anext(events) for _ in range(3)]  # type: ignore[call-overload]
    # What overflowed is replaced by one relist marker; the latest events follow it.
    assert [e.relist for e in received] == [True, False, False]
    assert [e.container_id for e in received[1:]] == ["c9", "after"]
    hub.close()
    with pytest.raises(StopAsyncIteration):
        await anext(events)  # type: ignore[call-overload]


async def test_ten_thousand_pods_in_one_process(tmp_path: Path) -> None:
    runtime = FakeRuntime(timetable=Timetable(start_delay=0.0))
    count = 10_000
    sandboxes = [
        await runtime.create_sandbox(evolve(sandbox_config(tmp_path, f"p{n}"), directory=None))
        for n in range(count)
    ]
    for sandbox in sandboxes:
        container = await runtime.create_container(
            sandbox.id, ContainerConfig("c", "busybox", tmp_path / "unused.log")
        )
        await runtime.start_container(container.id)
    running = await runtime.list_containers()
    assert len(running) == count
    assert all(c.state is ContainerState.RUNNING for c in running)
    for sandbox in sandboxes:
        await runtime.remove_sandbox(sandbox.id)
    assert await runtime.list_containers() == []
    await runtime.close()
