"""The rollout machine (a Deployment's Progressing condition): deterministic, every state
reachable from the start, every pair outside its table refused, lastTransitionTime moving only
with the condition's status, conditions surviving a round trip through JSON, and upstream's
scenarios (deadline measured from the last progress, pausing never hides a timeout)."""

from __future__ import annotations

from collections import deque
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from engenho.reconcilers.machines import InvalidTransitionError
from engenho.reconcilers.machines.rollout import (
    START,
    TRANSITIONS,
    DeadlineRemoved,
    Event,
    Observed,
    Paused,
    Progress,
    RecheckAfter,
    RemoveCondition,
    ReplicaSetCreated,
    ReplicaSetCreateFailed,
    ReplicaSetFound,
    Resumed,
    RolloutPhase,
    SetCondition,
    step,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)
times = st.integers(min_value=0, max_value=100_000).map(lambda s: T0 + timedelta(seconds=s))
names = st.sampled_from(["web-abc", "web-def"])

events: st.SearchStrategy[Event] = st.one_of(
    st.builds(ReplicaSetCreated, names, times),
    st.builds(ReplicaSetFound, names, times),
    st.builds(ReplicaSetCreateFailed, st.just("quota exceeded"), times),
    st.builds(Paused, times),
    st.builds(Resumed, times),
    st.builds(
        Observed,
        now=times,
        deployment=st.just("web"),
        replica_set=st.none() | names,
        deadline_seconds=st.integers(min_value=1, max_value=600),
        complete=st.booleans(),
        progressed=st.booleans(),
        all_updated=st.booleans(),
    ),
    st.just(DeadlineRemoved()),
)

_REASONS = {
    RolloutPhase.PROGRESSING: [
        ("True", "NewReplicaSetCreated"),
        ("True", "FoundNewReplicaSet"),
        ("True", "ReplicaSetUpdated"),
        ("Unknown", "DeploymentResumed"),
    ],
    RolloutPhase.COMPLETE: [("True", "NewReplicaSetAvailable")],
    RolloutPhase.FAILING: [("False", "ReplicaSetCreateError")],
    RolloutPhase.STALLED: [("False", "ProgressDeadlineExceeded")],
    RolloutPhase.PAUSED: [("Unknown", "DeploymentPaused")],
}


@st.composite
def states(draw: st.DrawFn) -> Progress:
    phase = draw(st.sampled_from(RolloutPhase))
    if phase is RolloutPhase.NEW:
        return START
    status, reason = draw(st.sampled_from(_REASONS[phase]))
    updated = draw(times)
    return Progress(phase, status, reason, "some message", updated, updated)


@given(states(), events)
def test_step_is_deterministic(state: Progress, event: Event) -> None:
    try:
        first = step(state, event)
    except InvalidTransitionError:
        with pytest.raises(InvalidTransitionError):
            step(state, event)
        return
    assert step(state, event) == first


@given(states(), events)
def test_only_the_table_is_accepted(state: Progress, event: Event) -> None:
    allowed = TRANSITIONS.get((state.phase, type(event)))
    if allowed is None:
        with pytest.raises(InvalidTransitionError):
            step(state, event)
        return
    new, effects = step(state, event)
    assert new.phase in allowed
    # The condition written is the new state; nothing is written when nothing changed.
    written = [e.progress for e in effects if isinstance(e, SetCondition)]
    if isinstance(event, DeadlineRemoved):
        assert RemoveCondition() in effects and new == START
    else:
        assert written == ([new] if new != state else [])


def test_every_state_is_reachable_from_the_start() -> None:
    exemplars: list[Event] = [
        ReplicaSetCreated("web-1", T0),
        ReplicaSetFound("web-1", T0),
        ReplicaSetCreateFailed("no", T0),
        Paused(T0),
        Resumed(T0),
        Observed(T0, "web", "web-1", 10, complete=True, progressed=False, all_updated=True),
        Observed(T0, "web", "web-1", 10, complete=False, progressed=True, all_updated=False),
        Observed(
            T0 + timedelta(minutes=1),
            "web",
            "web-1",
            10,
            complete=False,
            progressed=False,
            all_updated=False,
        ),
        DeadlineRemoved(),
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
    assert {state.phase for state in seen} == set(RolloutPhase)


@given(states())
def test_conditions_round_trip(state: Progress) -> None:
    assert Progress.from_condition(state.to_condition() if state != START else None) == state


class RolloutSequences(RuleBasedStateMachine):
    """Random event sequences through the table."""

    def __init__(self) -> None:
        super().__init__()
        self.state = START

    @rule(event=events)
    def feed(self, event: Event) -> None:
        old = self.state
        try:
            new, effects = step(old, event)
        except InvalidTransitionError:
            assert (old.phase, type(event)) not in TRANSITIONS
            return
        if old.phase is not RolloutPhase.NEW and new.phase is not RolloutPhase.NEW:
            # lastTransitionTime moves exactly when the status flips.
            moved = new.last_transition != old.last_transition
            assert moved <= (new.status != old.status)
            if new.status != old.status:
                assert new.last_transition == getattr(event, "now", None)
        assert all(e.seconds >= 1 for e in effects if isinstance(e, RecheckAfter))
        self.state = new

    @invariant()
    def condition_is_consistent(self) -> None:
        state = self.state
        if state.phase is RolloutPhase.NEW:
            assert state == START
        else:
            assert (state.status, state.reason) in _REASONS[state.phase]
            assert state.last_update is not None and state.last_transition is not None


TestRolloutSequences = RolloutSequences.TestCase

# ---------------------------------------------------------------------------- scenarios


def _observed(at: int, *, complete: bool = False, progressed: bool = False) -> Observed:
    return Observed(
        T0 + timedelta(seconds=at),
        "web",
        "web-1",
        10,
        complete=complete,
        progressed=progressed,
        all_updated=complete,
    )


def test_deadline_counts_from_the_last_progress() -> None:
    state, _ = step(START, ReplicaSetCreated("web-1", T0))
    assert state.reason == "NewReplicaSetCreated"
    state, effects = step(state, _observed(8, progressed=True))
    assert state.reason == "ReplicaSetUpdated" and state.last_update == T0 + timedelta(seconds=8)
    assert state.last_transition == T0
    assert RecheckAfter(11.0) in effects
    state, effects = step(state, _observed(17))
    assert state.phase is RolloutPhase.PROGRESSING and effects == (RecheckAfter(2.0),)
    state, _ = step(state, _observed(19))
    assert state.phase is RolloutPhase.STALLED
    assert state.message == 'ReplicaSet "web-1" has timed out progressing.'
    state, _ = step(state, _observed(30, complete=True))
    assert state.phase is RolloutPhase.COMPLETE
    assert state.message == 'ReplicaSet "web-1" has successfully progressed.'


def test_pausing_keeps_a_timeout_and_resuming_restarts_the_clock() -> None:
    stalled = Progress(RolloutPhase.STALLED, "False", "ProgressDeadlineExceeded", "x", T0, T0)
    assert step(stalled, Paused(T0 + timedelta(seconds=5))) == (stalled, ())
    paused, _ = step(START, Paused(T0))
    assert (paused.status, paused.reason, paused.message) == (
        "Unknown",
        "DeploymentPaused",
        "Deployment is paused",
    )
    with pytest.raises(InvalidTransitionError):
        step(paused, _observed(1))
    resumed, _ = step(paused, Resumed(T0 + timedelta(seconds=100)))
    assert resumed.last_update == T0 + timedelta(seconds=100)
    assert resumed.last_transition == T0  # Unknown -> Unknown: no transition
    assert step(resumed, _observed(105))[0].phase is RolloutPhase.PROGRESSING


def test_a_finished_rollout_is_not_estimated_again() -> None:
    complete, _ = step(START, _observed(1, complete=True))
    assert step(complete, _observed(1000)) == (complete, ())
    scaled = Observed(T0, "web", "web-1", 10, complete=False, progressed=False, all_updated=True)
    assert step(complete, scaled) == (complete, ())
