"""Properties of the Job lifecycle machine and its arithmetic
(:mod:`engenho.reconcilers.machines.jobs`): deterministic, every state reachable, no
transition outside the table, conditions that read back as the state they were written for;
completed-index text round trips; pending indexes; active targets; the pod-failure back-off;
pod failure policy matching."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engenho.reconcilers.machines import InvalidTransitionError
from engenho.reconcilers.machines.jobs import (
    TRANSITIONS,
    BackoffRecord,
    Complete,
    Event,
    Fail,
    JobPhase,
    JobState,
    Resume,
    SetCondition,
    Suspend,
    Target,
    first_pending_indexes,
    format_indexes,
    match_pod_failure_policy,
    next_backoff,
    parse_indexes,
    remaining_backoff,
    step,
    wanted_active,
)

events = st.one_of(
    st.just(Suspend()),
    st.just(Resume()),
    st.just(Complete()),
    st.builds(Target, st.just("PodFailurePolicy"), st.text(max_size=5)),
    st.builds(Fail, st.sampled_from(["BackoffLimitExceeded", "DeadlineExceeded"]), st.just("m")),
)


def _conditions_after(conditions: list[dict[str, Any]], effects: Any) -> list[dict[str, Any]]:
    result = [dict(c) for c in conditions]
    for effect in effects:
        if isinstance(effect, SetCondition):
            result = [c for c in result if c["type"] != effect.type]
            result.append(
                {
                    "type": effect.type,
                    "status": effect.status,
                    "reason": effect.reason,
                    "message": effect.message,
                }
            )
    return result


@given(st.lists(events, max_size=8))
def test_transitions_follow_the_table_and_read_back(sequence: list[Event]) -> None:
    state = JobState(JobPhase.RUNNING)
    conditions: list[dict[str, Any]] = []
    for event in sequence:
        target = TRANSITIONS.get((state.phase, type(event)))
        if target is None:
            with pytest.raises(InvalidTransitionError):
                step(state, event)
            continue
        new, effects = step(state, event)
        assert new.phase is target
        assert step(state, event) == (new, effects), "deterministic"
        conditions = _conditions_after(conditions, effects)
        assert JobState.of(conditions).phase is new.phase, (conditions, new)
        state = new


def test_every_state_is_reachable_and_final_states_accept_nothing() -> None:
    reached = {JobPhase.RUNNING}
    frontier = [JobPhase.RUNNING]
    while frontier:
        phase = frontier.pop()
        for (source, _event), target in TRANSITIONS.items():
            if source is phase and target not in reached:
                reached.add(target)
                frontier.append(target)
    assert reached == set(JobPhase)
    for final in (JobPhase.COMPLETE, JobPhase.FAILED):
        assert not [pair for pair in TRANSITIONS if pair[0] is final]
        for event in (Suspend(), Resume(), Complete(), Fail("x", "y"), Target("x", "y")):
            with pytest.raises(InvalidTransitionError):
                step(JobState(final), event)


def test_failure_target_carries_its_reason_into_failed() -> None:
    failing, effects = step(JobState(JobPhase.RUNNING), Target("PodFailurePolicy", "boom"))
    assert effects == (SetCondition("FailureTarget", "True", "PodFailurePolicy", "boom"),)
    read = JobState.of(
        [
            {
                "type": "FailureTarget",
                "status": "True",
                "reason": "PodFailurePolicy",
                "message": "boom",
            }
        ]
    )
    assert read == failing
    failed, _ = step(read, Fail(read.reason, read.message))
    assert (failed.phase, failed.reason, failed.message) == (
        JobPhase.FAILED,
        "PodFailurePolicy",
        "boom",
    )


@given(st.sets(st.integers(0, 60)), st.integers(1, 70))
def test_completed_indexes_round_trip(indexes: set[int], completions: int) -> None:
    text = format_indexes(indexes)
    assert parse_indexes(text, completions) == {i for i in indexes if i < completions}
    assert parse_indexes(text, 100) == indexes


def test_completed_indexes_text_is_upstreams() -> None:
    assert format_indexes([0, 1, 2, 5, 7, 8, 10, 11, 12, 13]) == "0-2,5,7,8,10-13"
    assert format_indexes([]) == ""
    assert parse_indexes("1,3-5,x,9", 5) == {1, 3, 4}


@given(
    st.sets(st.integers(0, 30)),
    st.sets(st.integers(0, 30)),
    st.integers(0, 10),
    st.integers(0, 30),
)
def test_first_pending_indexes(succeeded: set[int], active: set[int], count: int, n: int) -> None:
    chosen = first_pending_indexes(succeeded, active, count, n)
    assert chosen == sorted(set(chosen))
    assert not set(chosen) & (succeeded | active)
    assert all(0 <= i < n for i in chosen)
    free = [i for i in range(n) if i not in succeeded | active]
    assert chosen == free[:count]


@given(
    st.one_of(st.none(), st.integers(0, 20)),
    st.integers(0, 10),
    st.integers(0, 20),
    st.integers(0, 10),
)
def test_wanted_active_within_bounds(
    completions: int | None, parallelism: int, succeeded: int, active: int
) -> None:
    want = wanted_active(completions, parallelism, succeeded, active)
    assert want >= 0
    if completions is not None:
        assert want <= parallelism
        assert want <= max(completions - succeeded, 0)
    elif succeeded == 0:
        assert want == parallelism


T0 = datetime(2024, 1, 1, tzinfo=UTC)


@given(st.integers(1, 12), st.floats(0, 1000))
def test_back_off_doubles_and_caps(failures: int, elapsed: float) -> None:
    record = BackoffRecord(failures, T0)
    delay = min(10.0 * 2 ** (failures - 1), 360.0)
    left = remaining_backoff(record, T0 + timedelta(seconds=elapsed))
    assert left == pytest.approx(max(0.0, delay - elapsed))
    more = BackoffRecord(failures + 1, T0)
    assert remaining_backoff(more, T0 + timedelta(seconds=elapsed)) >= left


def test_back_off_record_follows_successes_and_failures() -> None:
    empty = BackoffRecord()
    assert remaining_backoff(empty, T0) == 0
    t = [T0 + timedelta(seconds=s) for s in range(5)]
    two = next_backoff(empty, [], [t[2], t[1]])
    assert two == BackoffRecord(2, t[2])
    assert next_backoff(two, [], []) == two
    # A success resets the count; only failures after it count.
    assert next_backoff(two, [t[3]], [t[1], t[4]]) == BackoffRecord(1, t[4])
    assert next_backoff(two, [t[3]], []) == BackoffRecord()
    assert remaining_backoff(BackoffRecord(1, T0), T0, base=0.5) == 0.5


def _failed_pod(code: int, conditions: list[dict[str, str]] | None = None) -> dict[str, Any]:
    return {
        "metadata": {"name": "p", "namespace": "ns"},
        "status": {
            "phase": "Failed",
            "conditions": conditions or [],
            "containerStatuses": [
                {"name": "main", "state": {"terminated": {"exitCode": code}}},
            ],
        },
    }


def test_pod_failure_policy_rules() -> None:
    policy = {
        "rules": [
            {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]},
            {
                "action": "FailJob",
                "onExitCodes": {"containerName": "main", "operator": "In", "values": [42]},
            },
            {"action": "Count", "onExitCodes": {"operator": "NotIn", "values": [1, 2]}},
        ]
    }
    assert match_pod_failure_policy(None, _failed_pod(42)) == (None, True, None)
    disrupted = _failed_pod(42, [{"type": "DisruptionTarget", "status": "True"}])
    assert match_pod_failure_policy(policy, disrupted) == (None, False, "Ignore")
    message, counts, action = match_pod_failure_policy(policy, _failed_pod(42))
    assert (counts, action) == (True, "FailJob")
    assert (
        message
        == "Container main for pod ns/p failed with exit code 42 matching FailJob rule at index 1"
    )
    assert match_pod_failure_policy(policy, _failed_pod(7)) == (None, True, "Count")
    assert match_pod_failure_policy(policy, _failed_pod(1)) == (None, True, None)
