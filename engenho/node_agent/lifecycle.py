"""A pod on its node, as a pure state machine: ``step(pod, event) -> (pod, effects)``.

The agent feeds it what happened (a container started, exited, failed to pull; a probe
tripped; the pod was deleted; the clock moved) and carries out what it returns (launch a
container, kill one, wake up at a time, record an Event, report the pod stopped). Everything a
kubelet decides about a pod is decided here, so that it can be tested exhaustively without
processes: which container starts next (init containers one at a time and in order, native
sidecars without waiting for them to exit, then the app containers together), whether an
exited container restarts (``restartPolicy``, with upstream's back-off), the waiting reasons
(``ContainerCreating``, ``PodInitializing``, ``ErrImagePull``, ``ImagePullBackOff``,
``CrashLoopBackOff``, ...), the pod phase (upstream's ``getPhase``) and the conditions.

After every event the machine plans (:func:`_plan`), level-triggered like upstream's
``computePodActions``: the actions follow from the state, not from the event, so a repeated or
missed event does no harm.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from attrs import evolve, field, frozen

from engenho.node_agent.backoff import BackOff, BackOffPolicy

__all__ = [
    "ContainerKind",
    "ContainerRecord",
    "ContainerSpecView",
    "CreateFailed",
    "DeletionRequested",
    "Effect",
    "Emit",
    "Event",
    "Exited",
    "Kill",
    "Launch",
    "PodRecord",
    "ProbeKill",
    "PullFailed",
    "ReadinessChanged",
    "RestartPolicy",
    "Running",
    "Started",
    "StartupSucceeded",
    "Stopped",
    "Terminated",
    "Tick",
    "Vanished",
    "Waiting",
    "WakeAt",
    "conditions",
    "container_statuses",
    "new_pod",
    "phase",
    "step",
]


class RestartPolicy(enum.Enum):
    ALWAYS = "Always"
    ON_FAILURE = "OnFailure"
    NEVER = "Never"

    @classmethod
    def parse(cls, value: object) -> RestartPolicy:
        """Upstream treats a missing or unknown policy as Always."""
        for policy in cls:
            if policy.value == value:
                return policy
        return cls.ALWAYS

    def restarts(self, exit_code: int) -> bool:
        return self is RestartPolicy.ALWAYS or (self is RestartPolicy.ON_FAILURE and exit_code != 0)


class ContainerKind(enum.Enum):
    INIT = "init"
    SIDECAR = "sidecar"  # an init container with restartPolicy Always (native sidecar)
    REGULAR = "regular"


@frozen
class ContainerSpecView:
    """What the machine needs to know of a container's spec."""

    name: str
    image: str
    kind: ContainerKind = ContainerKind.REGULAR
    readiness_probe: bool = False
    startup_probe: bool = False

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any], kind: ContainerKind) -> ContainerSpecView:
        if kind is ContainerKind.INIT and spec.get("restartPolicy") == "Always":
            kind = ContainerKind.SIDECAR
        return cls(
            name=str(spec["name"]),
            image=str(spec.get("image", "")),
            kind=kind,
            readiness_probe=bool(spec.get("readinessProbe")),
            startup_probe=bool(spec.get("startupProbe")),
        )


# ---------------------------------------------------------------------------- states


@frozen
class Waiting:
    reason: str
    message: str = ""


@frozen
class Running:
    started_at: datetime
    container_id: str


@frozen
class Terminated:
    exit_code: int
    reason: str
    started_at: datetime | None
    finished_at: datetime
    container_id: str = ""
    message: str = ""
    signal: int | None = None


ContainerState = Waiting | Running | Terminated


@frozen
class ContainerRecord:
    spec: ContainerSpecView
    state: ContainerState
    last: Terminated | None = None
    restart_count: int = 0
    ever_started: bool = False
    ready: bool = False
    started: bool = False
    """The startup probe passed (or there is none) in the current run."""
    image_id: str = ""
    launching: bool = False
    """A launch was asked and its outcome has not come back."""
    stopping: bool = False
    """A kill was asked and the exit has not come back."""
    backoff: BackOff = field(factory=BackOff)
    pull_backoff: BackOff = field(factory=BackOff)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def running(self) -> bool:
        return isinstance(self.state, Running)

    @property
    def succeeded(self) -> bool:
        return isinstance(self.state, Terminated) and self.state.exit_code == 0

    @property
    def exited(self) -> Terminated | None:
        """The run that ended, whether still shown (terminated) or behind a back-off."""
        return self.state if isinstance(self.state, Terminated) else self.last


@frozen
class PodRecord:
    ref: str
    """``name_namespace(uid)``, as upstream's messages name a pod."""
    policy: RestartPolicy
    containers: tuple[ContainerRecord, ...]
    deleting: bool = False
    grace: timedelta = timedelta(seconds=30)
    stopped: bool = False
    """:class:`Stopped` was returned: every container is down for good."""
    back_off_policy: BackOffPolicy = field(factory=BackOffPolicy)

    def container(self, name: str) -> ContainerRecord:
        for record in self.containers:
            if record.name == name:
                return record
        raise KeyError(name)

    def of_kind(self, *kinds: ContainerKind) -> list[ContainerRecord]:
        return [c for c in self.containers if c.spec.kind in kinds]

    def replace(self, record: ContainerRecord) -> PodRecord:
        return evolve(
            self,
            containers=tuple(record if c.name == record.name else c for c in self.containers),
        )


def new_pod(
    ref: str,
    spec: Mapping[str, Any],
    back_off: BackOffPolicy | None = None,
) -> PodRecord:
    """The record of a pod the agent has just taken on (nothing started yet)."""
    init = [
        ContainerSpecView.from_spec(c, ContainerKind.INIT) for c in spec.get("initContainers") or []
    ]
    regular = [
        ContainerSpecView.from_spec(c, ContainerKind.REGULAR) for c in spec.get("containers") or []
    ]
    records = [ContainerRecord(view, Waiting("PodInitializing")) for view in init]
    first_reason = "PodInitializing" if init else "ContainerCreating"
    records += [ContainerRecord(view, Waiting(first_reason)) for view in regular]
    if records and init:
        records[0] = evolve(records[0], state=Waiting("ContainerCreating"))
    grace = spec.get("terminationGracePeriodSeconds")
    return PodRecord(
        ref=ref,
        policy=RestartPolicy.parse(spec.get("restartPolicy")),
        containers=tuple(records),
        grace=timedelta(seconds=30 if grace is None else max(0, int(grace))),
        back_off_policy=back_off or BackOffPolicy(),
    )


# ---------------------------------------------------------------------------- events


@frozen
class Tick:
    """The clock reads ``at`` (a wake-up the machine asked for, or a periodic sync)."""

    at: datetime


@frozen
class Started:
    container: str
    at: datetime
    container_id: str
    image_id: str = ""


@frozen
class PullFailed:
    """``reason``: ErrImagePull, ErrImageNeverPull or InvalidImageName."""

    container: str
    at: datetime
    reason: str
    message: str


@frozen
class CreateFailed:
    """``reason``: CreateContainerConfigError (a missing ConfigMap key, say) or
    CreateContainerError (the runtime refused)."""

    container: str
    at: datetime
    reason: str
    message: str


@frozen
class Exited:
    container: str
    at: datetime
    exit_code: int
    reason: str | None = None
    """Overrides Completed/Error (OOMKilled)."""
    message: str = ""
    signal: int | None = None


@frozen
class Vanished:
    """The runtime no longer knows the container (removed behind the agent's back)."""

    container: str
    at: datetime


@frozen
class ReadinessChanged:
    container: str
    at: datetime
    ready: bool


@frozen
class StartupSucceeded:
    container: str
    at: datetime


@frozen
class ProbeKill:
    """A liveness or startup probe reached its failure threshold: ``probe`` names it."""

    container: str
    at: datetime
    probe: str


@frozen
class DeletionRequested:
    at: datetime
    grace: timedelta | None = None


Event = (
    Tick
    | Started
    | PullFailed
    | CreateFailed
    | Exited
    | Vanished
    | ReadinessChanged
    | StartupSucceeded
    | ProbeKill
    | DeletionRequested
)


# ---------------------------------------------------------------------------- effects


@frozen
class Launch:
    """Ensure the image, create and start the container; answer with Started, PullFailed
    or CreateFailed."""

    container: str


@frozen
class Kill:
    """Stop the container (its stop signal, then SIGKILL after ``grace``); answer Exited."""

    container: str
    grace: timedelta
    reason: str


@frozen
class WakeAt:
    at: datetime


@frozen
class Emit:
    """An Event about the pod (``kind``: Normal or Warning), with upstream's reason."""

    kind: str
    reason: str
    message: str
    container: str | None = None


@frozen
class Stopped:
    """Every container is down for good: a deleted pod's object may be removed now."""


Effect = Launch | Kill | WakeAt | Emit | Stopped


# ---------------------------------------------------------------------------- stepping


def step(pod: PodRecord, event: Event) -> tuple[PodRecord, list[Effect]]:
    effects: list[Effect] = []
    pod = _apply(pod, event, effects)
    pod, planned = _plan(pod, event.at)
    return pod, effects + planned


def _apply(pod: PodRecord, event: Event, effects: list[Effect]) -> PodRecord:
    match event:
        case Tick():
            return pod
        case DeletionRequested(at=_, grace=grace):
            return evolve(pod, deleting=True, grace=pod.grace if grace is None else grace)
        case _:
            pass
    try:
        record = pod.container(event.container)
    except KeyError:
        return pod  # a container the spec no longer has: nothing to record
    policy = pod.back_off_policy
    match event:
        case Started(at=at, container_id=cid, image_id=image_id):
            restarted = record.ever_started
            started = not record.spec.startup_probe
            record = evolve(
                record,
                state=Running(at, cid),
                last=record.exited if restarted else record.last,
                restart_count=record.restart_count + (1 if restarted else 0),
                ever_started=True,
                started=started,
                ready=started and not record.spec.readiness_probe,
                image_id=image_id or record.image_id,
                launching=False,
                backoff=record.backoff.cleared(),
                pull_backoff=BackOff(),
            )
        case PullFailed(at=at, reason=reason, message=message):
            record = evolve(
                record,
                state=Waiting(reason, message),
                launching=False,
                pull_backoff=record.pull_backoff.failed(at, policy, first_immediate=False),
            )
            # Upstream's startContainer records "Error: <reason>"; the image manager's own
            # "Failed to pull image ..." event is the agent's to post (it knows the policy).
            effects.append(Emit("Warning", "Failed", f"Error: {reason}", record.name))
        case CreateFailed(at=at, reason=reason, message=message):
            record = evolve(
                record,
                state=Waiting(reason, message),
                launching=False,
                backoff=record.backoff.failed(at, policy, first_immediate=False),
            )
            effects.append(Emit("Warning", "Failed", f"Error: {message}", record.name))
        case Exited(at=at, exit_code=code, reason=reason, message=message, signal=sig):
            if not isinstance(record.state, Running):
                return pod
            ran = at - record.state.started_at
            record = evolve(
                record,
                state=Terminated(
                    exit_code=code,
                    reason=reason or ("Completed" if code == 0 else "Error"),
                    started_at=record.state.started_at,
                    finished_at=at,
                    container_id=record.state.container_id,
                    message=message,
                    signal=sig,
                ),
                ready=False,
                started=False,
                stopping=False,
                backoff=record.backoff.failed(at, policy, ran=ran),
            )
        case Vanished(at=at):
            if not isinstance(record.state, Running):
                return pod
            record = evolve(
                record,
                state=Terminated(
                    exit_code=137,
                    reason="ContainerStatusUnknown",
                    started_at=record.state.started_at,
                    finished_at=at,
                    container_id=record.state.container_id,
                    message="The container could not be located when the pod was terminated",
                ),
                ready=False,
                started=False,
                stopping=False,
                backoff=record.backoff.failed(at, policy, ran=at - record.state.started_at),
            )
        case ReadinessChanged(ready=ready):
            if record.running and record.started:
                record = evolve(record, ready=ready)
        case StartupSucceeded():
            if record.running:
                record = evolve(record, started=True, ready=not record.spec.readiness_probe)
        case ProbeKill(probe=probe):
            if record.running and not record.stopping:
                record = evolve(record, stopping=True, ready=False)
                effects.append(
                    Emit(
                        "Normal",
                        "Killing",
                        f"Container {record.name} failed {probe} probe, will be restarted",
                        record.name,
                    )
                )
                effects.append(Kill(record.name, pod.grace, f"{probe} probe failed"))
    return pod.replace(record)


# ---------------------------------------------------------------------------- planning


def _plan(pod: PodRecord, now: datetime) -> tuple[PodRecord, list[Effect]]:
    """What to do next, from the state alone."""
    effects: list[Effect] = []
    if pod.deleting or _terminal(pod):
        return _wind_down(pod, effects)

    for record in pod.of_kind(ContainerKind.INIT, ContainerKind.SIDECAR):
        if record.spec.kind is ContainerKind.SIDECAR:
            pod = _keep_up(pod, record, now, effects, restart=True)
            current = pod.container(record.name)
            if not (current.running and current.started):
                return pod, effects  # later containers wait for the sidecar to have started
            continue
        if record.succeeded:
            continue
        if record.running or record.launching:
            return pod, effects
        exited = record.state if isinstance(record.state, Terminated) else None
        if exited is not None and pod.policy is RestartPolicy.NEVER:
            return pod, effects  # a failed init container fails the pod (see phase)
        # An init container that failed is retried under Always and OnFailure alike.
        pod = _keep_up(pod, record, now, effects, restart=True)
        return pod, effects

    for regular in pod.of_kind(ContainerKind.REGULAR):
        record = regular
        if isinstance(record.state, Waiting) and record.state.reason == "PodInitializing":
            record = evolve(record, state=Waiting("ContainerCreating"))
            pod = pod.replace(record)
        exited = record.state if isinstance(record.state, Terminated) else record.last
        restart = exited is None or pod.policy.restarts(exited.exit_code)
        pod = _keep_up(pod, record, now, effects, restart=restart)

    if _regulars_done(pod):
        # Upstream (1.29) stops native sidecars once the regular containers have exited.
        for record in pod.of_kind(ContainerKind.SIDECAR):
            if record.running and not record.stopping:
                pod = pod.replace(evolve(record, stopping=True))
                effects.append(Kill(record.name, pod.grace, "pod completed"))
    return pod, effects


def _keep_up(
    pod: PodRecord,
    record: ContainerRecord,
    now: datetime,
    effects: list[Effect],
    *,
    restart: bool,
) -> PodRecord:
    """Start a container that is not running, unless it is backing off or must stay down."""
    if record.running or record.launching:
        return pod
    if isinstance(record.state, Terminated) and not restart:
        return pod
    state = record.state
    if isinstance(state, Waiting) and state.reason in _PULL_FAILURES:
        until = record.pull_backoff.until
        if until is not None and record.pull_backoff.waiting(now):
            message = f'Back-off pulling image "{record.spec.image}"'
            failed_at = until - record.pull_backoff.wait
            # The failure itself stays visible (ErrImagePull) until the next look at the pod.
            if state.reason in ("ErrImagePull", "ImagePullBackOff") and now > failed_at:
                if state.reason != "ImagePullBackOff":
                    effects.append(Emit("Normal", "BackOff", message, record.name))
                record = evolve(record, state=Waiting("ImagePullBackOff", message))
            effects.append(WakeAt(until))
            return pod.replace(record)
    elif record.backoff.until is not None and record.backoff.waiting(now):
        until = record.backoff.until
        if isinstance(state, Terminated):
            seconds = int(record.backoff.wait.total_seconds())
            message = (
                f"back-off {_duration(seconds)} restarting failed container={record.name} "
                f"pod={pod.ref}"
            )
            record = evolve(record, state=Waiting("CrashLoopBackOff", message), last=state)
            effects.append(
                Emit(
                    "Warning",
                    "BackOff",
                    f"Back-off restarting failed container {record.name} in pod {pod.ref}",
                    record.name,
                )
            )
        effects.append(WakeAt(until))
        return pod.replace(record)
    effects.append(Launch(record.name))
    return pod.replace(evolve(record, launching=True))


_PULL_FAILURES = ("ErrImagePull", "ImagePullBackOff", "ErrImageNeverPull", "InvalidImageName")


def _duration(seconds: int) -> str:
    """Go's time.Duration formatting of whole seconds (``10s``, ``2m40s``, ``5m0s``)."""
    minutes, rest = divmod(seconds, 60)
    return f"{minutes}m{rest}s" if minutes else f"{rest}s"


def _wind_down(pod: PodRecord, effects: list[Effect]) -> tuple[PodRecord, list[Effect]]:
    """A deleted or finished pod: stop what runs, start nothing, report once all is down."""
    for record in pod.containers:
        if record.running and not record.stopping:
            if pod.deleting:
                effects.append(
                    Emit("Normal", "Killing", f"Stopping container {record.name}", record.name)
                )
            pod = pod.replace(evolve(record, stopping=True))
            effects.append(
                Kill(record.name, pod.grace, "pod deleted" if pod.deleting else "pod completed")
            )
    down = not any(c.running or c.launching for c in pod.containers)
    if down and not pod.stopped and pod.deleting:
        pod = evolve(pod, stopped=True)
        effects.append(Stopped())
    return pod, effects


def _regulars_done(pod: PodRecord) -> bool:
    """Every regular container has exited and will not be restarted."""
    regulars = pod.of_kind(ContainerKind.REGULAR)
    return bool(regulars) and all(
        isinstance(c.state, Terminated) and not pod.policy.restarts(c.state.exit_code)
        for c in regulars
    )


def _terminal(pod: PodRecord) -> bool:
    return phase(pod) in ("Succeeded", "Failed")


# ---------------------------------------------------------------------------- reading


def phase(pod: PodRecord) -> str:
    """The pod phase from its containers, following upstream's ``getPhase``."""
    pending_init = failed_init = 0
    for record in pod.of_kind(ContainerKind.INIT):
        state = record.state
        if isinstance(state, Running):
            pending_init += 1
        elif isinstance(state, Terminated):
            failed_init += state.exit_code != 0
        elif record.last is not None:
            failed_init += record.last.exit_code != 0
        else:
            pending_init += 1
    running = waiting = stopped = succeeded = 0
    for record in pod.of_kind(ContainerKind.SIDECAR):
        state = record.state
        if isinstance(state, Running):
            pending_init += not record.started
            running += 1
        elif isinstance(state, Waiting) and record.last is None:
            pending_init += 1
            waiting += 1
    any_regular_started = False
    for record in pod.of_kind(ContainerKind.REGULAR):
        state = record.state
        any_regular_started |= record.ever_started
        if isinstance(state, Running):
            running += 1
        elif isinstance(state, Terminated):
            stopped += 1
            succeeded += state.exit_code == 0
        elif record.last is not None:
            stopped += 1
        else:
            waiting += 1
    if failed_init and pod.policy is RestartPolicy.NEVER:
        return "Failed"
    if pod.stopped and not running:
        # A deleted pod whose containers are all down is terminal whatever its policy
        # (upstream's podIsTerminal): Succeeded only if every regular container succeeded.
        return "Succeeded" if stopped == succeeded and not waiting else "Failed"
    if (pending_init and not any_regular_started) or waiting:
        return "Pending"
    if running:
        return "Running"
    if stopped:
        if pod.policy is RestartPolicy.ALWAYS:
            return "Running"
        if stopped == succeeded:
            return "Succeeded"
        if pod.policy is RestartPolicy.NEVER:
            return "Failed"
        return "Running"
    return "Pending"


def conditions(pod: PodRecord) -> dict[str, tuple[str, str, str]]:
    """Initialized, ContainersReady and Ready: ``type -> (status, reason, message)``."""
    current = phase(pod)
    if current == "Succeeded":
        done = ("False", "PodCompleted", "")
        return {"Initialized": ("True", "PodCompleted", ""), "ContainersReady": done, "Ready": done}
    waiting_init = [
        c.name
        for c in pod.of_kind(ContainerKind.INIT, ContainerKind.SIDECAR)
        if not (c.succeeded if c.spec.kind is ContainerKind.INIT else c.ever_started)
    ]
    initialized = ("True", "", "")
    if waiting_init:
        message = f"containers with incomplete status: {_names(waiting_init)}"
        initialized = ("False", "ContainersNotInitialized", message)
    unready = [
        c.name for c in pod.of_kind(ContainerKind.SIDECAR, ContainerKind.REGULAR) if not c.ready
    ]
    if current == "Failed":
        failed = ("False", "PodFailed", "")
        return {"Initialized": initialized, "ContainersReady": failed, "Ready": failed}
    if unready:
        message = f"containers with unready status: {_names(unready)}"
        not_ready = ("False", "ContainersNotReady", message)
        return {"Initialized": initialized, "ContainersReady": not_ready, "Ready": not_ready}
    ready = ("True", "", "")
    return {"Initialized": initialized, "ContainersReady": ready, "Ready": ready}


def _names(names: Iterable[str]) -> str:
    return "[" + " ".join(names) + "]"


def container_statuses(pod: PodRecord, *, runtime: str) -> dict[str, list[dict[str, Any]]]:
    """``status.initContainerStatuses`` and ``status.containerStatuses``, upstream's shape;
    ``runtime`` prefixes container IDs (``crun://...``)."""
    init = [
        _container_status(c, runtime)
        for c in pod.of_kind(ContainerKind.INIT, ContainerKind.SIDECAR)
    ]
    regular = [_container_status(c, runtime) for c in pod.of_kind(ContainerKind.REGULAR)]
    return {"initContainerStatuses": init, "containerStatuses": regular}


def _container_status(record: ContainerRecord, runtime: str) -> dict[str, Any]:
    status: dict[str, Any] = {
        "name": record.name,
        "image": record.spec.image,
        "imageID": record.image_id,
        "ready": record.ready,
        "restartCount": record.restart_count,
        "started": record.running and record.started,
        "state": _state(record.state, runtime),
        "lastState": _state(record.last, runtime) if record.last is not None else {},
    }
    current_id = record.state.container_id if isinstance(record.state, Running | Terminated) else ""
    if current_id:
        status["containerID"] = f"{runtime}://{current_id}"
    return status


def _state(state: ContainerState, runtime: str) -> dict[str, Any]:
    match state:
        case Waiting(reason=reason, message=message):
            waiting = {"reason": reason}
            if message:
                waiting["message"] = message
            return {"waiting": waiting}
        case Running(started_at=started_at):
            return {"running": {"startedAt": _time(started_at)}}
        case Terminated():
            terminated: dict[str, Any] = {
                "exitCode": state.exit_code,
                "reason": state.reason,
                "finishedAt": _time(state.finished_at),
            }
            if state.started_at is not None:
                terminated["startedAt"] = _time(state.started_at)
            if state.container_id:
                terminated["containerID"] = f"{runtime}://{state.container_id}"
            if state.message:
                terminated["message"] = state.message
            if state.signal is not None:
                terminated["signal"] = state.signal
            return {"terminated": terminated}
    raise AssertionError(state)


def _time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
