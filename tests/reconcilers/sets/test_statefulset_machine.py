"""Properties of the StatefulSet rollout planner (:mod:`engenho.reconcilers.machines.statefulsets`):
every plan obeys upstream's ordering rules whatever the pods look like; with a kubelet that
only ever makes pods ready and finishes deletions, OrderedReady never has two pods unhealthy at
once through scale-ups, scale-downs and updates in any interleaving; and from any state a
cooperative kubelet brings the set to its spec."""

from __future__ import annotations

from typing import Any

from attrs import evolve
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from engenho.reconcilers.machines.statefulsets import (
    Create,
    Delete,
    DeleteReason,
    EnsureClaims,
    Outcome,
    SetSpec,
    Slot,
    counts,
    plan,
)

REVISIONS = ("r1", "r2", "r3")

slots_strategy = st.dictionaries(
    st.integers(0, 6),
    st.builds(
        Slot,
        revision=st.sampled_from(REVISIONS),
        ready=st.booleans(),
        available=st.booleans(),
        terminating=st.booleans(),
        outcome=st.one_of(st.none(), st.sampled_from(Outcome)),
    ).map(lambda s: evolve(s, available=s.available and s.ready)),
    max_size=6,
)

specs = st.builds(
    SetSpec,
    replicas=st.integers(0, 5),
    current_revision=st.sampled_from(REVISIONS),
    update_revision=st.sampled_from(REVISIONS),
    start=st.integers(0, 1),
    parallel=st.booleans(),
    on_delete=st.booleans(),
    partition=st.integers(0, 5),
    deleting=st.booleans(),
)


def _healthy_and_available(slot: Slot | None) -> bool:
    return slot is not None and slot.healthy and slot.available


@given(specs, slots_strategy)
def test_every_plan_keeps_upstreams_rules(spec: SetSpec, slots: dict[int, Slot]) -> None:
    decided = plan(spec, slots)
    if spec.deleting:
        assert decided.effects == ()
        return
    wanted = spec.ordinals
    creates = [e for e in decided.effects if isinstance(e, Create)]
    deletes = [e for e in decided.effects if isinstance(e, Delete)]
    for create in creates:
        assert create.ordinal in wanted, "pods are only created at the set's ordinals"
        assert create.revision == spec.revision_for(create.ordinal)
        slot = slots.get(create.ordinal)
        assert slot is None or (slot.outcome is not None and not slot.terminating)
    for effect in deletes:
        slot = slots[effect.ordinal]
        assert not slot.terminating, "a pod being deleted is not deleted again"
        if effect.reason is DeleteReason.SCALE_DOWN:
            assert effect.ordinal not in wanted
        elif effect.reason is DeleteReason.UPDATE:
            assert effect.ordinal in wanted
            assert effect.ordinal >= spec.start + spec.partition, "the partition is kept"
            assert slot.revision != spec.update_revision
            assert not spec.on_delete
        else:
            assert slot.outcome is not None
    if spec.parallel:
        missing = [o for o in wanted if o not in slots or slots[o].outcome is not None]
        missing = [o for o in missing if o not in slots or not slots[o].terminating]
        assert sorted(e.ordinal for e in creates) == missing
        return
    # OrderedReady: one step at a time, and only over healthy predecessors.
    assert len(creates) <= 1
    assert len([d for d in deletes if d.reason in (DeleteReason.SCALE_DOWN,)]) <= 1
    assert len([d for d in deletes if d.reason is DeleteReason.UPDATE]) <= 1
    for create in creates:
        for ordinal in wanted:
            if ordinal < create.ordinal:
                assert _healthy_and_available(slots.get(ordinal))
    for effect in deletes:
        if effect.reason is DeleteReason.SCALE_DOWN:
            assert all(_healthy_and_available(slots.get(o)) for o in wanted)
            condemned = [o for o in slots if o not in wanted and not slots[o].terminating]
            assert effect.ordinal == max(condemned), "the highest ordinal goes first"
        if effect.reason is DeleteReason.UPDATE:
            assert all(_healthy_and_available(slots.get(o)) for o in wanted)
            assert all(o in wanted for o in slots), "scaling down comes before updating"
            for ordinal in wanted:
                if ordinal > effect.ordinal:
                    assert slots[ordinal].revision == spec.update_revision
                    assert slots[ordinal].healthy


class OrderedRollout(RuleBasedStateMachine):
    """A set managed OrderedReady by a controller that syncs at arbitrary moments, a kubelet
    that only ever helps, and a user who scales and updates."""

    def __init__(self) -> None:
        super().__init__()
        self.spec = SetSpec(replicas=2, current_revision="r1", update_revision="r1")
        self.slots: dict[int, Slot] = {}
        self.next_revision = 2

    @rule()
    def sync(self) -> None:
        decided = plan(self.spec, self.slots)
        for effect in decided.effects:
            if isinstance(effect, Create):
                self.slots[effect.ordinal] = Slot(effect.revision)
            elif isinstance(effect, Delete):
                self.slots[effect.ordinal] = evolve(self.slots[effect.ordinal], terminating=True)
            else:
                assert isinstance(effect, EnsureClaims)
        tally = counts(self.spec, self.slots)
        replicas = self.spec.replicas
        if tally.updated == replicas and tally.ready == replicas and tally.replicas == replicas:
            self.spec = evolve(self.spec, current_revision=self.spec.update_revision)

    @rule(data=st.data())
    def kubelet_starts_a_pod(self, data: Any) -> None:
        pending = sorted(o for o, s in self.slots.items() if not s.ready and not s.terminating)
        if pending:
            ordinal = data.draw(st.sampled_from(pending))
            self.slots[ordinal] = evolve(self.slots[ordinal], ready=True)

    @rule(data=st.data())
    def pod_becomes_available(self, data: Any) -> None:
        ready = sorted(o for o, s in self.slots.items() if s.ready and not s.available)
        if ready:
            ordinal = data.draw(st.sampled_from(ready))
            self.slots[ordinal] = evolve(self.slots[ordinal], available=True)

    @rule(data=st.data())
    def kubelet_finishes_a_deletion(self, data: Any) -> None:
        going = sorted(o for o, s in self.slots.items() if s.terminating)
        if going:
            del self.slots[data.draw(st.sampled_from(going))]

    @rule(replicas=st.integers(0, 4))
    def scale(self, replicas: int) -> None:
        self.spec = evolve(self.spec, replicas=replicas)

    @rule()
    def update_template(self) -> None:
        self.spec = evolve(self.spec, update_revision=f"r{self.next_revision}")
        self.next_revision += 1

    @rule(partition=st.integers(0, 4))
    def set_partition(self, partition: int) -> None:
        self.spec = evolve(self.spec, partition=partition)

    @invariant()
    def never_two_pods_unhealthy(self) -> None:
        unhealthy = [o for o, s in self.slots.items() if not (s.healthy and s.available)]
        assert len(unhealthy) <= 1, f"unhealthy at once: {unhealthy} in {self.slots}"


TestOrderedRollout = OrderedRollout.TestCase
TestOrderedRollout.settings = settings(max_examples=100, stateful_step_count=40, deadline=None)


def _cooperate(slots: dict[int, Slot]) -> dict[int, Slot]:
    """A kubelet's turn: every deletion finishes, every pending pod becomes available."""
    return {
        o: evolve(s, ready=True, available=True) if s.outcome is None else s
        for o, s in slots.items()
        if not s.terminating
    }


@given(specs, slots_strategy)
@settings(max_examples=200)
def test_a_cooperative_kubelet_brings_the_set_to_its_spec(
    spec: SetSpec, slots: dict[int, Slot]
) -> None:
    spec = evolve(spec, deleting=False)
    state = dict(slots)
    for _step in range(4 * (len(slots) + spec.replicas) + 4):
        for effect in plan(spec, state).effects:
            if isinstance(effect, Create):
                state[effect.ordinal] = Slot(effect.revision)
            elif isinstance(effect, Delete):
                state[effect.ordinal] = evolve(state[effect.ordinal], terminating=True)
        state = _cooperate(state)
        tally = counts(spec, state)
        if tally.updated == spec.replicas == tally.ready == tally.replicas:
            spec = evolve(spec, current_revision=spec.update_revision)
    assert sorted(state) == list(spec.ordinals)
    assert all(s.healthy and s.available for s in state.values())
    if not spec.on_delete:
        for ordinal, slot in state.items():
            if ordinal >= spec.start + spec.partition:
                assert slot.revision == spec.update_revision
    assert plan(spec, state).effects == ()
