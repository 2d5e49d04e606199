"""The node readiness machine: deterministic, every state reachable from the start, every
step inside its transition table, and, over random sequences of reports, renewals and clock
readings, in agreement with a model of upstream's rules (Unknown exactly when not heard from
for longer than the grace period, the readiness taint that goes with each state, pods marked
not ready only when a ready node goes silent). Also the taint-eviction deadline against
upstream's matching rules, and zone disruption states."""

from __future__ import annotations

from collections import deque
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from engenho.reconcilers.machines.nodes import (
    NOT_READY_TAINT,
    TRANSITIONS,
    UNREACHABLE_TAINT,
    Checked,
    ConditionReported,
    Event,
    LeaseRenewed,
    MarkPodsNotReady,
    NodeHealth,
    Readiness,
    RecheckAfter,
    RecordStatusChange,
    SetConditionsUnknown,
    SetTaints,
    Taint,
    Toleration,
    ZoneState,
    eviction_time,
    parse_taints,
    parse_tolerations,
    start,
    step,
    zone_key,
    zone_state,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)
GRACE, STARTUP = 40.0, 60.0
times = st.integers(min_value=0, max_value=600).map(lambda s: T0 + timedelta(seconds=s))
statuses = st.sampled_from(["True", "False", "Unknown"])
events: st.SearchStrategy[Event] = st.one_of(
    st.builds(ConditionReported, statuses, st.none() | times),
    st.builds(LeaseRenewed, times),
    st.builds(Checked, times, st.just(GRACE), st.just(STARTUP)),
)
states = st.builds(NodeHealth, st.sampled_from(Readiness), times)


@given(states, events)
def test_step_is_deterministic(state: NodeHealth, event: Event) -> None:
    assert step(state, event) == step(state, event)


@given(states, events)
def test_every_step_stays_in_the_table(state: NodeHealth, event: Event) -> None:
    new, effects = step(state, event)
    assert new.readiness in TRANSITIONS[(state.readiness, type(event))]
    assert new.heard_at >= state.heard_at, "hearing from a node never goes back in time"
    assert all(e.seconds >= 0 for e in effects if isinstance(e, RecheckAfter))


def test_the_table_covers_every_pair() -> None:
    assert set(TRANSITIONS) == {
        (state, kind) for state in Readiness for kind in (ConditionReported, LeaseRenewed, Checked)
    }
    assert not any(
        Readiness.PENDING in targets
        for (state, _), targets in TRANSITIONS.items()
        if state is not Readiness.PENDING
    ), "nothing leads back to PENDING"


def test_a_status_must_be_a_condition_status() -> None:
    with pytest.raises(ValueError, match="True, False or Unknown"):
        ConditionReported("Maybe")


def test_every_state_is_reachable_from_the_start() -> None:
    exemplars: list[Event] = [
        ConditionReported("True", T0),
        ConditionReported("False", T0),
        ConditionReported("Unknown", None),
        LeaseRenewed(T0 + timedelta(seconds=1)),
        Checked(T0 + timedelta(seconds=100), GRACE, STARTUP),
    ]
    seen = {start(T0)}
    frontier = deque(seen)
    while frontier:
        state = frontier.popleft()
        for event in exemplars:
            new, _ = step(state, event)
            if new not in seen:
                seen.add(new)
                frontier.append(new)
    assert {state.readiness for state in seen} == set(Readiness)


def test_grace_period_is_strict_and_startup_grace_applies_before_the_first_report() -> None:
    ready = NodeHealth(Readiness.READY, T0)
    at_due = T0 + timedelta(seconds=GRACE)
    assert step(ready, Checked(at_due, GRACE, STARTUP)) == (
        ready,
        (SetTaints(None), RecheckAfter(0.0)),
    )
    late = at_due + timedelta(seconds=1)
    assert step(ready, Checked(late, GRACE, STARTUP)) == (
        NodeHealth(Readiness.UNKNOWN, T0),
        (
            SetConditionsUnknown(),
            MarkPodsNotReady(),
            RecordStatusChange("NodeNotReady"),
            SetTaints(UNREACHABLE_TAINT),
        ),
    )
    pending = start(T0)
    assert step(pending, Checked(late, GRACE, STARTUP)) == (
        pending,
        (RecheckAfter(STARTUP - GRACE - 1),),
    )
    gone, effects = step(pending, Checked(T0 + timedelta(seconds=61), GRACE, STARTUP))
    assert gone.readiness is Readiness.UNKNOWN
    assert MarkPodsNotReady() not in effects and SetConditionsUnknown() in effects


def test_a_renewal_does_not_make_an_unknown_node_ready() -> None:
    """Upstream keeps a node Unknown (and tainted) until its kubelet posts Ready again."""
    unknown = NodeHealth(Readiness.UNKNOWN, T0)
    later = T0 + timedelta(seconds=100)
    renewed, effects = step(unknown, LeaseRenewed(later))
    assert renewed == NodeHealth(Readiness.UNKNOWN, later)
    assert effects == (SetTaints(UNREACHABLE_TAINT),)
    ready, effects = step(renewed, ConditionReported("True", later))
    assert ready.readiness is Readiness.READY and effects == (SetTaints(None),)


def _readiness(status: str) -> Readiness:
    return {"True": Readiness.READY, "False": Readiness.NOT_READY}.get(status, Readiness.UNKNOWN)


class NodeLifecycle(RuleBasedStateMachine):
    """Random reports, renewals and clock readings against a model of upstream's rules."""

    def __init__(self) -> None:
        super().__init__()
        self.now = T0
        self.state = start(T0)
        self.heard = T0
        self.reported: str | None = None
        self.expired = False

    def _feed(self, event: Event) -> tuple[NodeHealth, tuple[object, ...]]:
        before = self.state
        self.state, effects = step(self.state, event)
        taint_effects = [e for e in effects if isinstance(e, SetTaints)]
        if self.state.readiness is Readiness.PENDING:
            assert not taint_effects
        else:
            wanted = {
                Readiness.READY: None,
                Readiness.NOT_READY: NOT_READY_TAINT,
                Readiness.UNKNOWN: UNREACHABLE_TAINT,
            }[self.state.readiness]
            assert taint_effects[-1] == SetTaints(wanted)
        marked = MarkPodsNotReady() in effects
        assert marked == (RecordStatusChange("NodeNotReady") in effects)
        if marked:
            assert before.readiness is Readiness.READY
            assert self.state.readiness is Readiness.UNKNOWN
        return self.state, effects

    @rule(seconds=st.integers(min_value=0, max_value=30))
    def time_passes(self, seconds: int) -> None:
        self.now += timedelta(seconds=seconds)

    @rule(status=statuses, fresh=st.booleans())
    def kubelet_reports(self, status: str, fresh: bool) -> None:
        self._feed(ConditionReported(status, self.now if fresh else None))
        if fresh:
            self.heard = self.now
        self.reported = status
        self.expired = False

    @rule()
    def lease_renewed(self) -> None:
        self._feed(LeaseRenewed(self.now))
        self.heard = self.now

    @rule()
    def clock_checked(self) -> None:
        _, effects = self._feed(Checked(self.now, GRACE, STARTUP))
        grace = STARTUP if self.reported is None and not self.expired else GRACE
        if self.now > self.heard + timedelta(seconds=grace):
            self.expired = True
            assert SetConditionsUnknown() in effects
        else:
            assert SetConditionsUnknown() not in effects
            due = self.heard + timedelta(seconds=grace)
            assert RecheckAfter((due - self.now).total_seconds()) in effects

    @invariant()
    def agrees_with_the_model(self) -> None:
        assert self.state.heard_at == self.heard
        if self.expired:
            assert self.state.readiness is Readiness.UNKNOWN
        elif self.reported is None:
            assert self.state.readiness is Readiness.PENDING
        else:
            assert self.state.readiness is _readiness(self.reported)

    @precondition(lambda self: self.state.readiness is Readiness.PENDING)
    @invariant()
    def pending_only_before_any_report(self) -> None:
        assert self.reported is None


TestNodeLifecycle = NodeLifecycle.TestCase

# ---------------------------------------------------------------------------- eviction

taint_keys = st.sampled_from(["a", "b", NOT_READY_TAINT])
effects_ = st.sampled_from(["NoExecute", "NoSchedule", "PreferNoSchedule"])
taints = st.builds(Taint, taint_keys, effects_, st.sampled_from(["", "x"]), st.none() | times)
tolerations = st.builds(
    Toleration,
    st.sampled_from(["", "a", "b", NOT_READY_TAINT]),
    st.sampled_from(["Exists", "Equal"]),
    st.sampled_from(["", "x"]),
    st.sampled_from(["", "NoExecute", "NoSchedule"]),
    st.none() | st.integers(min_value=-5, max_value=600),
)


def _upstream(
    taints: list[Taint], tolerations: list[Toleration], default: datetime
) -> datetime | None:
    """Upstream's getMatchingTolerations + getMinTolerationTime, per taint added time."""
    deadlines = []
    for taint in (t for t in taints if t.effect == "NoExecute"):
        matches = [
            t
            for t in tolerations
            if (not t.effect or t.effect == taint.effect)
            and (not t.key or t.key == taint.key)
            and (t.operator == "Exists" or t.value == taint.value)
        ]
        added = taint.added or default
        if not matches:
            deadlines.append(added)
        elif matches[0].seconds is not None:
            deadlines.append(added + timedelta(seconds=max(matches[0].seconds, 0)))
    return min(deadlines, default=None)


@given(st.lists(taints, max_size=4), st.lists(tolerations, max_size=4), times)
def test_eviction_time_follows_upstreams_matching(
    taints: list[Taint], tolerations: list[Toleration], default: datetime
) -> None:
    assert eviction_time(taints, tolerations, default) == _upstream(taints, tolerations, default)


def test_eviction_examples() -> None:
    added = T0
    unreachable = Taint(UNREACHABLE_TAINT, "NoExecute", added=added)
    five = Toleration(UNREACHABLE_TAINT, "Exists", effect="NoExecute", seconds=5)
    for_ever = Toleration("", "Exists")
    assert eviction_time([unreachable], [], T0) == added, "no toleration: at once"
    assert eviction_time([unreachable], [five], T0) == added + timedelta(seconds=5)
    assert eviction_time([unreachable], [for_ever, five], T0) is None, "the first match counts"
    assert eviction_time([Taint("x", "NoSchedule")], [], T0) is None, "NoSchedule never evicts"
    assert eviction_time([Taint("x", "NoExecute")], [], T0 + timedelta(seconds=9)) == (
        T0 + timedelta(seconds=9)
    ), "no timeAdded: from the default"


def test_parsing_taints_and_tolerations() -> None:
    assert parse_taints(
        [
            {"key": "k", "value": "v", "effect": "NoExecute", "timeAdded": "2026-01-01T00:00:00Z"},
            "junk",
        ]
    ) == (Taint("k", "NoExecute", "v", T0),)
    assert parse_tolerations(
        [{"key": "k", "effect": "NoExecute", "tolerationSeconds": 30}, {"operator": "Exists"}, 7]
    ) == (
        Toleration("k", "Equal", "", "NoExecute", 30),
        Toleration("", "Exists"),
    )
    assert parse_taints(None) == () and parse_tolerations("x") == ()


def test_zone_states_follow_upstream() -> None:
    assert zone_state(0, 0) is ZoneState.NORMAL
    assert zone_state(0, 1) is ZoneState.FULL_DISRUPTION
    assert zone_state(1, 2) is ZoneState.NORMAL, "two not-ready nodes are never a disruption"
    assert zone_state(2, 3) is ZoneState.PARTIAL_DISRUPTION
    assert zone_state(3, 3) is ZoneState.NORMAL, "50 % is under the 55 % threshold"
    assert zone_state(3, 3, unhealthy_threshold=0.5) is ZoneState.PARTIAL_DISRUPTION


def test_zone_keys_follow_upstream() -> None:
    assert zone_key(None) == "" and zone_key({"a": "b"}) == ""
    assert zone_key({"topology.kubernetes.io/zone": "z1"}) == ":\x00:z1"
    assert (
        zone_key(
            {
                "failure-domain.beta.kubernetes.io/region": "r",
                "topology.kubernetes.io/zone": "z",
            }
        )
        == "r:\x00:z"
    )
