"""The pod machine: upstream's phases, reasons, ordering and back-off, and its invariants."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engenho.node_agent.backoff import BackOff, BackOffPolicy
from engenho.node_agent.lifecycle import (
    ContainerKind,
    CreateFailed,
    DeletionRequested,
    Effect,
    Emit,
    Event,
    Exited,
    Kill,
    Launch,
    PodRecord,
    ProbeKill,
    PullFailed,
    ReadinessChanged,
    Running,
    Started,
    StartupSucceeded,
    Stopped,
    Terminated,
    Tick,
    Vanished,
    Waiting,
    WakeAt,
    conditions,
    container_statuses,
    new_pod,
    phase,
    step,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def container(name: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "image": "busybox", **extra}


def pod(
    *containers: dict[str, Any], init: tuple[dict[str, Any], ...] = (), **spec: Any
) -> PodRecord:
    body = {"containers": list(containers), "initContainers": list(init), **spec}
    return new_pod("web_default(uid-1)", body)


class Driver:
    """Feeds events and keeps the effects, as the agent does."""

    def __init__(self, record: PodRecord) -> None:
        self.pod = record
        self.effects: list[Effect] = []

    def __call__(self, event: Event) -> list[Effect]:
        self.pod, effects = step(self.pod, event)
        self.effects += effects
        return effects

    def launches(self, effects: list[Effect]) -> list[str]:
        return [e.container for e in effects if isinstance(e, Launch)]


def test_a_pod_runs_and_completes_under_never() -> None:
    d = Driver(pod(container("app"), restartPolicy="Never"))
    assert phase(d.pod) == "Pending"
    assert d.launches(d(Tick(at(0)))) == ["app"]
    assert d.launches(d(Tick(at(1)))) == [], "a launch in flight is not asked twice"
    d(Started("app", at(1), "c1"))
    assert phase(d.pod) == "Running"
    assert conditions(d.pod)["Ready"] == ("True", "", "")
    effects = d(Exited("app", at(5), 0))
    assert not d.launches(effects)
    assert phase(d.pod) == "Succeeded"
    assert conditions(d.pod)["Ready"] == ("False", "PodCompleted", "")
    state = d.pod.container("app").state
    assert isinstance(state, Terminated) and state.reason == "Completed"


def test_waiting_reasons_before_start() -> None:
    p = pod(container("app"), init=(container("setup"),))
    statuses = container_statuses(p, runtime="fake")
    assert statuses["initContainerStatuses"][0]["state"] == {
        "waiting": {"reason": "ContainerCreating"}
    }
    assert statuses["containerStatuses"][0]["state"] == {"waiting": {"reason": "PodInitializing"}}
    assert conditions(p)["Initialized"] == (
        "False",
        "ContainersNotInitialized",
        "containers with incomplete status: [setup]",
    )


def test_crash_loop_back_off_follows_upstreams_curve() -> None:
    d = Driver(pod(container("app")))
    d(Tick(at(0)))
    clock = 0.0
    waits = []
    for run in range(9):
        d(Started("app", at(clock), f"c{run}"))
        clock += 1
        effects = d(Exited("app", at(clock), 1))
        if d.launches(effects):
            waits.append(0)
            continue
        state = d.pod.container("app").state
        assert isinstance(state, Waiting) and state.reason == "CrashLoopBackOff"
        wake = next(e.at for e in effects if isinstance(e, WakeAt))
        waits.append(int((wake - at(clock)).total_seconds()))
        assert "restarting failed container=app pod=web_default(uid-1)" in state.message
        assert not d.launches(d(Tick(wake - timedelta(seconds=1)))), (
            "no restart inside the back-off"
        )
        clock = (wake - T0).total_seconds()
        assert d.launches(d(Tick(wake))) == ["app"]
    assert waits == [0, 10, 20, 40, 80, 160, 300, 300, 300]
    record = d.pod.container("app")
    assert record.restart_count == 8
    assert phase(d.pod) == "Pending" or phase(d.pod) == "Running"
    backoffs = [e for e in d.effects if isinstance(e, Emit) and e.reason == "BackOff"]
    assert backoffs and backoffs[0].kind == "Warning"


def test_back_off_message_uses_go_durations() -> None:
    d = Driver(pod(container("app")))
    d(Tick(at(0)))
    clock = 0.0
    for run in range(8):
        d(Started("app", at(clock), f"c{run}"))
        clock += 1
        effects = d(Exited("app", at(clock), 2))
        wake = next((e.at for e in effects if isinstance(e, WakeAt)), at(clock))
        clock = (wake - T0).total_seconds()
        d(Tick(wake))
    # the sixth wait is 300 s: Go prints it as 5m0s
    d(Started("app", at(clock), "last"))
    d(Exited("app", at(clock + 1), 2))
    state = d.pod.container("app").state
    assert isinstance(state, Waiting) and state.message.startswith("back-off 5m0s ")


def test_a_long_run_resets_the_back_off() -> None:
    d = Driver(pod(container("app")))
    d(Tick(at(0)))
    d(Started("app", at(0), "a"))
    assert d.launches(d(Exited("app", at(1), 1))) == ["app"]
    d(Started("app", at(1), "b"))
    assert not d.launches(d(Exited("app", at(2), 1)))  # backing off 10 s
    d(Tick(at(12)))
    d(Started("app", at(12), "c"))
    effects = d(Exited("app", at(12 + 601), 1))
    assert d.launches(effects) == ["app"], "ran more than 10 minutes: restarted at once"


@pytest.mark.parametrize(
    ("policy", "code", "restarts"),
    [
        ("Always", 0, True),
        ("Always", 1, True),
        ("OnFailure", 0, False),
        ("OnFailure", 1, True),
        ("Never", 0, False),
        ("Never", 1, False),
    ],
)
def test_restart_policy(policy: str, code: int, restarts: bool) -> None:
    d = Driver(pod(container("app"), restartPolicy=policy))
    d(Tick(at(0)))
    d(Started("app", at(0), "a"))
    effects = d(Exited("app", at(1), code))
    assert bool(d.launches(effects)) is restarts
    expected = {("Never", 1): "Failed", ("Never", 0): "Succeeded", ("OnFailure", 0): "Succeeded"}
    assert phase(d.pod) == expected.get((policy, code), "Running")


def test_image_pull_failure_then_back_off() -> None:
    d = Driver(pod(container("app")))
    d(Tick(at(0)))
    effects = d(PullFailed("app", at(0), "ErrImagePull", 'image "nope" not found'))
    state = d.pod.container("app").state
    assert isinstance(state, Waiting) and state.reason == "ErrImagePull"
    assert any(isinstance(e, Emit) and e.reason == "Failed" for e in effects)
    wake = next(e.at for e in effects if isinstance(e, WakeAt))
    assert wake == at(10), "a failed pull waits from the first failure"
    d(Tick(at(5)))
    state = d.pod.container("app").state
    assert state == Waiting("ImagePullBackOff", 'Back-off pulling image "busybox"')
    assert d.launches(d(Tick(at(10)))) == ["app"]
    d(PullFailed("app", at(10), "ErrImagePull", "again"))
    assert next(e.at for e in d.effects[-3:] if isinstance(e, WakeAt)) == at(30)
    assert phase(d.pod) == "Pending"


def test_never_pull_keeps_its_reason() -> None:
    d = Driver(pod(container("app", imagePullPolicy="Never")))
    d(Tick(at(0)))
    d(PullFailed("app", at(0), "ErrImageNeverPull", "not present"))
    d(Tick(at(3)))
    state = d.pod.container("app").state
    assert isinstance(state, Waiting) and state.reason == "ErrImageNeverPull"


def test_create_config_error_is_retried_with_back_off() -> None:
    d = Driver(pod(container("app")))
    d(Tick(at(0)))
    effects = d(CreateFailed("app", at(0), "CreateContainerConfigError", 'configmap "x" not found'))
    assert not d.launches(effects)
    state = d.pod.container("app").state
    assert state == Waiting("CreateContainerConfigError", 'configmap "x" not found')
    assert d.launches(d(Tick(at(10)))) == ["app"]


def test_init_containers_run_one_at_a_time_in_order() -> None:
    d = Driver(pod(container("app"), init=(container("one"), container("two"))))
    assert d.launches(d(Tick(at(0)))) == ["one"]
    d(Started("one", at(0), "1"))
    assert d.launches(d(Tick(at(1)))) == []
    assert d.launches(d(Exited("one", at(1), 0))) == ["two"]
    d(Started("two", at(1), "2"))
    assert phase(d.pod) == "Pending"
    assert d.launches(d(Exited("two", at(2), 0))) == ["app"]
    assert conditions(d.pod)["Initialized"] == ("True", "", "")
    state = d.pod.container("app").state
    assert state == Waiting("ContainerCreating")


def test_a_failed_init_container_fails_a_never_pod() -> None:
    d = Driver(pod(container("app"), init=(container("one"),), restartPolicy="Never"))
    d(Tick(at(0)))
    d(Started("one", at(0), "1"))
    assert not d.launches(d(Exited("one", at(1), 3)))
    assert phase(d.pod) == "Failed"
    assert not d.launches(d(Tick(at(100))))


def test_a_failed_init_container_is_retried_under_always() -> None:
    d = Driver(pod(container("app"), init=(container("one"),)))
    d(Tick(at(0)))
    d(Started("one", at(0), "1"))
    assert d.launches(d(Exited("one", at(1), 3))) == ["one"]
    d(Started("one", at(1), "2"))
    assert not d.launches(d(Exited("one", at(2), 3)))
    state = d.pod.container("one").state
    assert isinstance(state, Waiting) and state.reason == "CrashLoopBackOff"
    assert phase(d.pod) == "Pending"


def test_native_sidecar_runs_beside_the_app_and_stops_after_it() -> None:
    sidecar = container("proxy", restartPolicy="Always")
    d = Driver(pod(container("job"), init=(sidecar,), restartPolicy="Never"))
    assert d.launches(d(Tick(at(0)))) == ["proxy"]
    assert d.launches(d(Started("proxy", at(0), "p"))) == ["job"]
    d(Started("job", at(1), "j"))
    assert phase(d.pod) == "Running"
    effects = d(Exited("job", at(2), 0))
    assert [e.container for e in effects if isinstance(e, Kill)] == ["proxy"]
    d(Exited("proxy", at(3), 143))
    assert phase(d.pod) == "Succeeded"


def test_readiness_and_startup_probes_gate_ready() -> None:
    d = Driver(pod(container("app", readinessProbe={"exec": {}}, startupProbe={"exec": {}})))
    d(Tick(at(0)))
    d(Started("app", at(0), "a"))
    assert conditions(d.pod)["Ready"][1] == "ContainersNotReady"
    d(ReadinessChanged("app", at(1), True))
    assert not d.pod.container("app").ready, "not ready before the startup probe passed"
    d(StartupSucceeded("app", at(2)))
    d(ReadinessChanged("app", at(3), True))
    assert conditions(d.pod)["ContainersReady"] == ("True", "", "")
    statuses = container_statuses(d.pod, runtime="fake")["containerStatuses"]
    assert statuses[0]["started"] is True and statuses[0]["containerID"] == "fake://a"


def test_liveness_failure_kills_and_restarts() -> None:
    d = Driver(pod(container("app")))
    d(Tick(at(0)))
    d(Started("app", at(0), "a"))
    effects = d(ProbeKill("app", at(30), "liveness"))
    kills = [e for e in effects if isinstance(e, Kill)]
    assert [k.container for k in kills] == ["app"]
    assert any(
        isinstance(e, Emit)
        and e.message == "Container app failed liveness probe, will be restarted"
        for e in effects
    )
    assert not [e for e in d(ProbeKill("app", at(31), "liveness")) if isinstance(e, Kill)]
    assert d.launches(d(Exited("app", at(31), 137, signal=9))) == ["app"]
    d(Started("app", at(31), "b"))
    record = d.pod.container("app")
    assert record.restart_count == 1
    assert record.last is not None and record.last.exit_code == 137


def test_deletion_kills_everything_and_reports_once() -> None:
    d = Driver(pod(container("a"), container("b"), terminationGracePeriodSeconds=5))
    d(Tick(at(0)))
    d(Started("a", at(0), "1"))
    d(Started("b", at(0), "2"))
    effects = d(DeletionRequested(at(1)))
    assert sorted(e.container for e in effects if isinstance(e, Kill)) == ["a", "b"]
    assert all(e.grace == timedelta(seconds=5) for e in effects if isinstance(e, Kill))
    assert not any(isinstance(e, Stopped) for e in effects)
    assert not any(isinstance(e, Stopped) for e in d(Exited("a", at(2), 143)))
    effects = d(Exited("b", at(2), 143))
    assert any(isinstance(e, Stopped) for e in effects)
    assert not d(Tick(at(3))), "Stopped is reported once, and nothing restarts"
    assert phase(d.pod) == "Failed"


def test_deleting_a_pod_that_never_started_stops_at_once() -> None:
    d = Driver(pod(container("a")))
    effects = d(DeletionRequested(at(0), grace=timedelta(0)))
    assert any(isinstance(e, Stopped) for e in effects)


def test_a_vanished_container_is_unknown_and_restarted() -> None:
    d = Driver(pod(container("app")))
    d(Tick(at(0)))
    d(Started("app", at(0), "a"))
    assert d.launches(d(Vanished("app", at(4)))) == ["app"]
    exited = d.pod.container("app").exited
    assert exited is not None and exited.reason == "ContainerStatusUnknown"
    assert exited.exit_code == 137


def test_backoff_value() -> None:
    policy = BackOffPolicy()
    first = BackOff().failed(at(0), policy)
    assert first.until is None and first.delay == timedelta(seconds=10)
    second = first.failed(at(5), policy)
    assert second.until == at(15) and second.wait == timedelta(seconds=10)
    assert second.waiting(at(14)) and not second.waiting(at(15))
    pulled = BackOff().failed(at(0), policy, first_immediate=False)
    assert pulled.until == at(10)


# ---------------------------------------------------------------------------- properties

_SPECS = st.sampled_from(
    [
        {"containers": [container("a")]},
        {"containers": [container("a"), container("b")], "restartPolicy": "OnFailure"},
        {
            "containers": [container("a")],
            "initContainers": [container("i")],
            "restartPolicy": "Never",
        },
        {
            "containers": [container("a", readinessProbe={"exec": {}})],
            "initContainers": [container("i"), container("s", restartPolicy="Always")],
        },
    ]
)

_ACTIONS = st.lists(
    st.tuples(
        st.sampled_from(
            [
                "tick",
                "start",
                "pull-fail",
                "create-fail",
                "exit",
                "vanish",
                "ready",
                "kill",
                "delete",
            ]
        ),
        st.integers(0, 2),  # which container
        st.integers(0, 400),  # seconds to advance
        st.integers(0, 2),  # exit code
    ),
    max_size=60,
)


def _run(
    spec: dict[str, Any], actions: list[tuple[str, int, int, int]]
) -> list[tuple[PodRecord, list[Effect]]]:
    record = new_pod("p_ns(u)", spec)
    names = [c.name for c in record.containers]
    trace: list[tuple[PodRecord, list[Effect]]] = []
    clock = 0
    launched: set[str] = set()
    for kind, which, advance, code in actions:
        clock += advance
        now = at(clock)
        name = names[which % len(names)]
        event: Event
        if kind == "start" and name in launched:
            event = Started(name, now, f"{name}-{clock}")
        elif kind == "pull-fail" and name in launched:
            event = PullFailed(name, now, "ErrImagePull", "no")
        elif kind == "create-fail" and name in launched:
            event = CreateFailed(name, now, "CreateContainerError", "no")
        elif kind == "exit":
            event = Exited(name, now, code)
        elif kind == "vanish":
            event = Vanished(name, now)
        elif kind == "ready":
            event = ReadinessChanged(name, now, bool(code))
        elif kind == "kill":
            event = ProbeKill(name, now, "liveness")
        elif kind == "delete":
            event = DeletionRequested(now)
        else:
            event = Tick(now)
        before = record
        record, effects = step(record, event)
        for effect in effects:
            if isinstance(effect, Launch):
                launched.add(effect.container)
        if isinstance(event, Started | PullFailed | CreateFailed):
            launched.discard(event.container)
        trace.append((before, effects))
        trace.append((record, []))
    return trace


@given(_SPECS, _ACTIONS)
def test_invariants(spec: dict[str, Any], actions: list[tuple[str, int, int, int]]) -> None:
    trace = _run(spec, actions)
    stopped = 0
    terminal_seen: str | None = None
    running: set[str] = set()  # what the runtime would be running
    in_flight: set[str] = set()
    for (before, effects), (after, _) in zip(trace[::2], trace[1::2], strict=True):
        for old, new in zip(before.containers, after.containers, strict=True):
            if new.running and new.state != old.state:
                running.add(new.name)
                in_flight.discard(new.name)
            if old.running and not new.running:
                running.discard(new.name)
            if old.launching and not new.launching and not new.running:
                in_flight.discard(new.name)
        for effect in effects:
            if isinstance(effect, Launch):
                assert effect.container not in running, "launched while running"
                assert effect.container not in in_flight, "launched twice"
                in_flight.add(effect.container)
                assert not after.deleting, "nothing starts on a deleted pod"
                record = after.container(effect.container)
                if record.spec.kind is ContainerKind.REGULAR:
                    inits = after.of_kind(ContainerKind.INIT)
                    assert all(c.succeeded for c in inits), "an app container before init finished"
            if isinstance(effect, Stopped):
                stopped += 1
                assert not running and not in_flight, "reported stopped while something runs"
        for old, new in zip(before.containers, after.containers, strict=True):
            assert new.restart_count >= old.restart_count
        current_phase = phase(after)
        assert current_phase in ("Pending", "Running", "Succeeded", "Failed")
        if after.policy.value != "Always" and terminal_seen and not after.deleting:
            assert current_phase == terminal_seen, "a finished pod does not come back"
        if current_phase in ("Succeeded", "Failed"):
            terminal_seen = terminal_seen or current_phase
    assert stopped <= 1


@given(_SPECS, _ACTIONS)
def test_deterministic(spec: dict[str, Any], actions: list[tuple[str, int, int, int]]) -> None:
    assert _run(spec, actions) == _run(spec, actions)


@given(_SPECS, _ACTIONS)
def test_never_policy_never_relaunches_an_exited_container(
    spec: dict[str, Any], actions: list[tuple[str, int, int, int]]
) -> None:
    spec = {**spec, "restartPolicy": "Never"}
    for before, effects in _run(spec, actions)[::2]:
        for effect in effects:
            if isinstance(effect, Launch):
                record = before.container(effect.container)
                if record.spec.kind.value != "sidecar":
                    assert not isinstance(record.state, Terminated)
                    assert record.last is None


def test_running_state_shape() -> None:
    d = Driver(pod(container("app")))
    d(Tick(at(0)))
    d(Started("app", at(0), "abc", image_id="sha256:1"))
    status = container_statuses(d.pod, runtime="crun")["containerStatuses"][0]
    assert status["state"] == {"running": {"startedAt": "2026-01-01T00:00:00Z"}}
    assert status["imageID"] == "sha256:1" and status["lastState"] == {}
    assert isinstance(d.pod.container("app").state, Running)
