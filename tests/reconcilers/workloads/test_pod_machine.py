"""The pod machine (controllers' view of a pod): deterministic, every state reachable from the
start, every (state, event) pair outside its transition table refused, and ``observe`` total
over arbitrary pod objects and in agreement with upstream's IsPodActive / IsPodReady /
IsPodAvailable on the pods a node agent can produce."""

from __future__ import annotations

from collections import deque
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from engenho.reconcilers.machines import InvalidTransitionError
from engenho.reconcilers.machines.pods import (
    START,
    TRANSITIONS,
    BecameReady,
    Bound,
    Checked,
    DeletionRequested,
    Event,
    Exited,
    PodPhase,
    PodView,
    RecheckAfter,
    Started,
    observe,
    step,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)
times = st.integers(min_value=0, max_value=10_000).map(lambda s: T0 + timedelta(seconds=s))
EVENT_TYPES = (Bound, Started, BecameReady, Checked, DeletionRequested, Exited)

events: st.SearchStrategy[Event] = st.one_of(
    st.just(Bound()),
    st.just(Started()),
    st.builds(BecameReady, st.none() | times),
    st.builds(Checked, times, st.integers(min_value=0, max_value=300)),
    st.just(DeletionRequested()),
    st.builds(Exited, st.booleans()),
)
states = st.builds(PodView, st.sampled_from(PodPhase), st.none() | times)


@given(states, events)
def test_step_is_deterministic(state: PodView, event: Event) -> None:
    try:
        first = step(state, event)
    except InvalidTransitionError:
        with pytest.raises(InvalidTransitionError):
            step(state, event)
        return
    assert step(state, event) == first


@given(states, events)
def test_only_the_table_is_accepted(state: PodView, event: Event) -> None:
    allowed = TRANSITIONS.get((state.phase, type(event)))
    if allowed is None:
        with pytest.raises(InvalidTransitionError):
            step(state, event)
    else:
        new, _effects = step(state, event)
        assert new.phase in allowed


def test_every_state_is_reachable_from_the_start() -> None:
    exemplars: list[Event] = [
        Bound(),
        Started(),
        BecameReady(T0),
        Checked(T0 + timedelta(seconds=1), 0),
        Checked(T0, 5),
        DeletionRequested(),
        Exited(True),
        Exited(False),
    ]
    seen = {START}
    frontier = deque([START])
    while frontier:
        state = frontier.popleft()
        for event in exemplars:
            try:
                new, _ = step(state, event)
            except InvalidTransitionError:
                continue
            if new not in seen:
                seen.add(new)
                frontier.append(new)
    assert {state.phase for state in seen} == set(PodPhase)


def test_every_table_entry_is_a_handled_pair() -> None:
    for (phase, event_type), targets in TRANSITIONS.items():
        assert event_type in EVENT_TYPES and targets <= set(PodPhase), (phase, event_type)


def test_availability_waits_for_min_ready_seconds() -> None:
    ready = PodView(PodPhase.READY, T0)
    assert step(ready, Checked(T0 + timedelta(seconds=3), 5)) == (ready, (RecheckAfter(2.0),))
    # Upstream's Before is strict: exactly minReadySeconds later is not yet available.
    assert step(ready, Checked(T0 + timedelta(seconds=5), 5))[0].phase is PodPhase.READY
    assert step(ready, Checked(T0 + timedelta(seconds=6), 5))[0].phase is PodPhase.AVAILABLE
    assert step(ready, Checked(T0, 0))[0].phase is PodPhase.AVAILABLE
    # With no transition time it can never be shown to have been ready long enough.
    unknown = PodView(PodPhase.READY, None)
    assert step(unknown, Checked(T0 + timedelta(days=1), 1)) == (unknown, ())


class PodLifecycle(RuleBasedStateMachine):
    """Random event sequences: finished states absorb, readiness time is kept while ready."""

    def __init__(self) -> None:
        super().__init__()
        self.state = START
        self.finished = False

    @rule(event=events)
    def feed(self, event: Event) -> None:
        try:
            new, effects = step(self.state, event)
        except InvalidTransitionError:
            assert (self.state.phase, type(event)) not in TRANSITIONS
            return
        if self.state.phase is PodPhase.READY and new.phase is PodPhase.AVAILABLE:
            assert new.ready_since == self.state.ready_since
        assert all(effect.seconds > 0 for effect in effects)
        self.state = new

    @invariant()
    def finished_is_final(self) -> None:
        if self.finished:
            assert self.state.finished
        self.finished = self.state.finished

    @invariant()
    def predicates_agree(self) -> None:
        state = self.state
        assert state.available <= state.ready <= state.active
        assert sum((state.active, state.terminating, state.finished)) == 1


TestPodLifecycle = PodLifecycle.TestCase

# ---------------------------------------------------------------------------- observe


def _pod(
    node: str | None,
    phase: str | None,
    ready: str | None,
    since: datetime | None,
    deleting: bool,
) -> dict[str, Any]:
    conditions = []
    if ready is not None:
        condition: dict[str, Any] = {"type": "Ready", "status": ready}
        if since is not None:
            condition["lastTransitionTime"] = since.strftime("%Y-%m-%dT%H:%M:%SZ")
        conditions.append(condition)
    return {
        "metadata": {"deletionTimestamp": "2026-01-01T00:00:00Z"} if deleting else {},
        "spec": {"nodeName": node} if node else {},
        "status": {"phase": phase, "conditions": conditions} if phase else {},
    }


pods = st.builds(
    _pod,
    st.none() | st.just("node-1"),
    st.none() | st.sampled_from(["Pending", "Running", "Succeeded", "Failed", "Unknown"]),
    st.none() | st.sampled_from(["True", "False", "Unknown"]),
    st.none() | times,
    st.booleans(),
)


@settings(max_examples=1000)  # the pod space is small but has many corners
@given(pods, times, st.integers(min_value=0, max_value=300))
def test_observe_agrees_with_upstream(pod: dict[str, Any], now: datetime, min_ready: int) -> None:
    view, effects = observe(pod, now, min_ready)
    phase = pod["status"].get("phase")
    deleting = bool(pod["metadata"])
    active = phase not in ("Succeeded", "Failed") and not deleting
    assert view.active == active
    assert view.finished == (phase in ("Succeeded", "Failed"))
    condition: dict[str, Any] = next(iter(pod["status"].get("conditions", [])), {})
    ready = (
        active and bool(pod["spec"]) and phase == "Running" and condition.get("status") == "True"
    )
    assert view.ready == ready
    since = view.ready_since
    available = ready and (
        min_ready == 0 or (since is not None and since + timedelta(seconds=min_ready) < now)
    )
    assert view.available == available
    assert bool(effects) == (ready and not available and since is not None)


@given(st.dictionaries(st.sampled_from(["metadata", "spec", "status"]), st.none() | st.integers()))
def test_observe_is_total(junk: dict[str, Any]) -> None:
    view, _ = observe(junk, T0, 1)
    assert view.phase is PodPhase.UNSCHEDULED
