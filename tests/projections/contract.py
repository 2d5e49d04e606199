"""The behaviour every projection backend must have, as a test class each backend subclasses
(the SQLite suite in ``test_sqlite.py``, the PostgreSQL one in ``test_postgres.py``).

Covers the apply semantics case by case, resourceVersion stamping, outcomes, read-your-writes,
lists (current, paged, at an exact index while writes continue), subscriptions (replay from
the ring and from history, the replay/live boundary under concurrent writes, overflow and
resume, future indices, close), compaction and the history floor, restart and rebuild
equivalence, and refusing a database that belongs to another log.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from engenho.log import Entry, LogStore, ResourceCommand, Verb
from engenho.projections import (
    Change,
    EventType,
    HistoryExpired,
    NotYetApplied,
    OutcomeExpired,
    ProjectionClosed,
    ProjectionMismatch,
    ProjectionOptions,
    Projections,
    Rejection,
    StoredObject,
    SubscriptionOverflow,
    rebuild,
)
from tests.projections.helpers import (
    create,
    delete,
    finalize,
    propose,
    secret,
    system,
    uid_of,
    update,
)
from tests.projections.model import Model, ModelEvent

CM = ("", "configmaps")


async def apply(projections: Projections, log: LogStore, commands: Sequence[ResourceCommand]):
    entries = await propose(log, commands)
    await projections.wait_for(entries[-1].index, timeout=10)
    return entries


async def collect(subscription: Any, until: int, timeout: float = 10) -> list[Change]:
    """Changes from ``subscription`` up to and including index ``until``."""
    changes: list[Change] = []
    async with asyncio.timeout(timeout):
        async for change in subscription:
            changes.append(change)
            if change.index >= until:
                break
    return changes


async def model_of(log: LogStore, upto: int | None = None) -> tuple[Model, list[ModelEvent]]:
    """The reference model folded over the committed log (up to ``upto``)."""
    model = Model.empty()
    events: list[ModelEvent] = []
    end = log.commit_index if upto is None else upto
    index = 1
    while index <= end:
        for entry in await log.read(index, end):
            _, event = model.apply(entry.index, entry.command)
            if event is not None:
                events.append(event)
            index = entry.index + 1
    return model, events


def as_events(changes: Sequence[Change]) -> list[ModelEvent]:
    return [
        ModelEvent(
            c.index, str(c.type), (c.group, c.resource, c.namespace, c.name), c.object.object
        )
        for c in changes
    ]


def state_of(items: Sequence[StoredObject]) -> dict[tuple[str, str, str, str], Any]:
    return {
        (i.group, i.resource, i.namespace, i.name): (i.uid, i.resource_version, i.object)
        for i in items
    }


def model_state(model: Model, resource: str = "configmaps") -> dict[tuple[str, str, str, str], Any]:
    return {k: (v.uid, v.rv, v.obj) for k, v in model.objects("", resource).items()}


# Each case: commands applied first (all must apply), the command under test, and what it must
# do: (applied, reason, event).
def _cases() -> dict[str, tuple[list[ResourceCommand], ResourceCommand, tuple[Any, ...]]]:
    a = uid_of("a")
    return {
        "create": ([], create("a"), (True, None, EventType.ADDED)),
        "create existing": ([create("a")], create("a"), (False, "AlreadyExists", None)),
        "update": ([create("a")], update("a", v="2"), (True, None, EventType.MODIFIED)),
        "update missing": ([], update("a"), (False, "NotFound", None)),
        "patch-result": (
            [create("a")],
            update("a", verb=Verb.PATCH_RESULT, v="2"),
            (True, None, EventType.MODIFIED),
        ),
        "patch-result missing": (
            [],
            update("a", verb=Verb.PATCH_RESULT),
            (False, "NotFound", None),
        ),
        "update at current rv": ([create("a")], update("a", rv=1), (True, None, "MODIFIED")),
        "update at stale rv": (
            [create("a"), update("a", v="2")],
            update("a", rv=1),
            (False, "Conflict", None),
        ),
        "rv precondition, missing": ([], update("a", rv=1), (False, "NotFound", None)),
        "uid precondition holds": ([create("a")], update("a", uid=a), (True, None, "MODIFIED")),
        "uid precondition differs": (
            [create("a")],
            update("a", uid="another"),
            (False, "UIDMismatch", None),
        ),
        "uid precondition, missing": ([], delete("a", uid=a), (False, "NotFound", None)),
        "rv checked before uid": (
            [create("a"), update("a", v="2")],
            delete("a", rv=1, uid="another"),
            (False, "Conflict", None),
        ),
        "delete removes": ([create("a")], delete("a"), (True, None, EventType.DELETED)),
        "delete missing": ([], delete("a"), (False, "NotFound", None)),
        "delete lingering": ([create("a")], delete("a", lingering=True), (True, None, "MODIFIED")),
        "lingering delete missing": ([], delete("a", lingering=True), (False, "NotFound", None)),
        "finalize removes": (
            [create("a"), delete("a", lingering=True)],
            finalize("a"),
            (True, None, EventType.DELETED),
        ),
        "finalize missing": ([], finalize("a"), (False, "NotFound", None)),
        "finalize at stale rv": (
            [create("a"), delete("a", lingering=True)],
            finalize("a", rv=1),
            (False, "Conflict", None),
        ),
        "system": ([create("a")], system(), (True, None, None)),
        "recreate after delete": ([create("a"), delete("a")], create("a"), (True, None, "ADDED")),
    }


CASES = _cases()


class ProjectionContract:
    """Tests every backend must pass; subclasses provide the ``database_url`` fixture."""

    # ------------------------------------------------------------------ apply semantics

    @pytest.mark.parametrize("case", sorted(CASES))
    async def test_apply_semantics(
        self, case: str, projections: Projections, log: LogStore
    ) -> None:
        setup, command, (applied, reason, event) = CASES[case]
        for entry in await apply(projections, log, setup) if setup else []:
            assert (await projections.wait_outcome(entry.index)).applied, case
        before = await projections.get("", "configmaps", "default", "a")
        [entry] = await apply(projections, log, [command])
        outcome = await projections.wait_outcome(entry.index, timeout=5)
        assert (outcome.applied, outcome.reason, outcome.event) == (applied, reason, event)
        after = await projections.get("", "configmaps", "default", "a")
        model, _ = await model_of(log)
        expected = model.state.get(("", "configmaps", "default", "a"))
        if not applied:
            assert after == before  # a rejected entry changes nothing
        if expected is None:
            assert after is None
        else:
            assert after is not None
            assert (after.uid, after.resource_version, after.object) == (
                expected.uid,
                expected.rv,
                expected.obj,
            )
        if event is None:
            assert outcome.object is None
        else:
            assert outcome.object is not None
            assert outcome.object.resource_version == entry.index
            assert outcome.object.object["metadata"]["resourceVersion"] == str(entry.index)

    async def test_rejected_entries_consume_an_index_but_change_nothing(
        self, projections: Projections, log: LogStore
    ) -> None:
        await apply(projections, log, [create("a"), create("b")])
        subscription = projections.subscribe(*CM, None, projections.applied_index)
        page = await projections.list(*CM, None)
        entries = await apply(
            projections,
            log,
            [create("a"), update("b", rv=1), delete("missing"), update("a", uid="x"), system()],
        )
        assert projections.applied_index == entries[-1].index == 7
        outcomes = [await projections.wait_outcome(e.index) for e in entries]
        assert [o.reason for o in outcomes] == [
            Rejection.ALREADY_EXISTS,
            Rejection.CONFLICT,
            Rejection.NOT_FOUND,
            Rejection.UID_MISMATCH,
            None,
        ]
        after = await projections.list(*CM, None)
        assert after.items == page.items
        assert after.index == 7
        # No event was emitted for any of them: the next change is the next real one.
        [entry] = await apply(projections, log, [update("a", v="x")])
        [change] = await collect(subscription, entry.index)
        assert (change.index, change.type) == (8, EventType.MODIFIED)
        await subscription.aclose()

    async def test_resource_version_is_the_index_of_the_last_change(
        self, projections: Projections, log: LogStore
    ) -> None:
        await apply(projections, log, [create("a", v="1"), create("b"), system()])
        await apply(projections, log, [update("a", v="2")])
        a = await projections.get("", "configmaps", "default", "a")
        b = await projections.get("", "configmaps", "default", "b")
        assert a is not None and b is not None
        assert (a.resource_version, b.resource_version) == (4, 2)
        assert a.object["metadata"]["resourceVersion"] == "4"
        assert a.object["data"] == {"v": "2"}
        # Stored bytes are canonical (sorted keys) whatever order the proposer used.
        assert a.data == a.data.__class__(
            __import__("orjson").dumps(a.object, option=__import__("orjson").OPT_SORT_KEYS)
        )

    async def test_a_batch_touching_a_key_twice_sees_its_own_writes(
        self, projections: Projections, log: LogStore
    ) -> None:
        entries = await apply(
            projections,
            log,
            [create("a"), update("a", rv=1, v="2"), delete("a", rv=2), create("a", v="3")],
        )
        outcomes = [await projections.wait_outcome(e.index) for e in entries]
        assert [o.event for o in outcomes] == ["ADDED", "MODIFIED", "DELETED", "ADDED"]
        a = await projections.get("", "configmaps", "default", "a")
        assert a is not None and a.resource_version == 4 and a.object["data"] == {"v": "3"}
        for at, expected in [(1, {}), (2, {"v": "2"}), (3, None), (4, {"v": "3"})]:
            page = await projections.list(*CM, "default", at=at)
            assert [i.object["data"] for i in page.items] == (
                [] if expected is None else [expected]
            )

    # ------------------------------------------------------------------ waiting

    async def test_read_your_writes(self, projections: Projections, log: LogStore) -> None:
        for i in range(20):
            [entry] = await propose(log, [create(f"cm-{i}", v=str(i))])
            await projections.wait_for(entry.index, timeout=5)
            got = await projections.get("", "configmaps", "default", f"cm-{i}")
            assert got is not None and got.resource_version == entry.index
            page = await projections.list(*CM, "default")
            assert page.index >= entry.index and len(page.items) == i + 1

    async def test_wait_for_times_out_and_waits_for_later_entries(
        self, projections: Projections, log: LogStore
    ) -> None:
        with pytest.raises(TimeoutError):
            await projections.wait_for(1, timeout=0.05)
        waiter = asyncio.create_task(projections.wait_outcome(2, timeout=5), name="outcome-waiter")
        await asyncio.sleep(0)
        await propose(log, [create("a"), create("a")])
        outcome = await waiter
        assert (outcome.index, outcome.reason) == (2, Rejection.ALREADY_EXISTS)
        await projections.wait_for(0)  # already there

    async def test_outcomes_held_in_a_bounded_ring(self, database_url: str, log: LogStore) -> None:
        options = ProjectionOptions(recent_outcomes=4, max_batch_entries=2)
        async with await Projections.open(database_url, log, options=options) as projections:
            await apply(projections, log, [create(f"cm-{i}") for i in range(10)])
            assert (await projections.wait_outcome(10)).event == "ADDED"
            assert (await projections.wait_outcome(7)).applied
            with pytest.raises(OutcomeExpired):
                await projections.wait_outcome(2)

    # ------------------------------------------------------------------ lists

    async def test_lists_in_namespace_name_order_with_paging(
        self, projections: Projections, log: LogStore
    ) -> None:
        names = [(ns, f"cm-{i:02d}") for ns in ("b", "a-b", "a", "default") for i in range(7)]
        random.Random(7).shuffle(names)
        await apply(projections, log, [create(n, ns) for ns, n in names])
        whole = await projections.list(*CM, None)
        assert [(i.namespace, i.name) for i in whole.items] == sorted(names)
        assert not whole.more and whole.index == len(names)
        await apply(projections, log, [system()])  # so that `at=whole.index` reads the tables
        for namespace in (None, "a", "a-b", "zzz"):
            expected = sorted(n for n in names if namespace is None or n[0] == namespace)
            for at in (None, whole.index):  # the current state (memory) and an index (tables)
                pages: list[StoredObject] = []
                after = None
                while True:
                    page = await projections.list(*CM, namespace, at=at, after=after, limit=3)
                    pages.extend(page.items)
                    assert len(page.items) <= 3
                    assert page.remaining == len(expected) - len(pages)
                    if not page.more:
                        break
                    after = (page.items[-1].namespace, page.items[-1].name)
                assert [(i.namespace, i.name) for i in pages] == expected
        # A position in another namespace than the one listed.
        page = await projections.list(*CM, "b", after=("a", "zzz"))
        assert len(page.items) == 7
        assert (await projections.list(*CM, "a", after=("b", ""))).items == []
        assert (await projections.list("", "secrets", None)).items == []
        with pytest.raises(ValueError, match="limit"):
            await projections.list(*CM, None, limit=0)

    async def test_exact_index_pages_are_a_snapshot_while_writes_continue(
        self, projections: Projections, log: LogStore
    ) -> None:
        await apply(projections, log, [create(f"cm-{i:03d}", v="0") for i in range(120)])
        first = await projections.list(*CM, "default", limit=25)
        snapshot_index = first.index
        stop = asyncio.Event()

        async def writer() -> None:
            rng = random.Random(3)
            n = 0
            while not stop.is_set():
                i = rng.randrange(150)
                n += 1
                kind = rng.random()
                command = (
                    update(f"cm-{i:03d}", v=str(n))
                    if kind < 0.5
                    else delete(f"cm-{i:03d}")
                    if kind < 0.8
                    else create(f"cm-{i:03d}", v=str(n))
                )
                await propose(log, [command])
                await asyncio.sleep(0)

        items = list(first.items)
        async with asyncio.TaskGroup() as group:
            group.create_task(writer(), name="snapshot-writer")
            page = first
            while page.more:
                await projections.wait_for(projections.applied_index + 3, timeout=5)
                after = (page.items[-1].namespace, page.items[-1].name)
                page = await projections.list(
                    *CM, "default", at=snapshot_index, after=after, limit=25
                )
                assert page.index == snapshot_index
                items.extend(page.items)
            stop.set()
        assert projections.applied_index > snapshot_index + 10  # writes really went on
        model, _ = await model_of(log, snapshot_index)
        assert state_of(items) == model_state(model)
        now = await projections.list(*CM, "default")
        model, _ = await model_of(log, now.index)
        assert state_of(now.items) == model_state(model)

    async def test_exact_index_ahead_of_the_projection_is_refused(
        self, projections: Projections, log: LogStore
    ) -> None:
        await apply(projections, log, [create("a")])
        with pytest.raises(NotYetApplied):
            await projections.list(*CM, None, at=5)

    # ------------------------------------------------------------------ subscriptions

    async def test_subscribe_at_the_applied_index_yields_exactly_the_later_changes(
        self, projections: Projections, log: LogStore
    ) -> None:
        await apply(projections, log, [create("a"), create("b")])
        subscription = projections.subscribe(*CM, "default", projections.applied_index)
        entries = await apply(projections, log, [update("a", v="1"), delete("b"), create("c")])
        changes = await collect(subscription, entries[-1].index)
        assert [(c.index, c.type, c.name) for c in changes] == [
            (3, "MODIFIED", "a"),
            (4, "DELETED", "b"),
            (5, "ADDED", "c"),
        ]
        deleted = changes[1]
        assert deleted.object.resource_version == 4
        assert deleted.object.object["metadata"]["resourceVersion"] == "4"
        assert deleted.prior is not None and deleted.prior.resource_version == 2
        assert changes[0].prior is not None and changes[0].prior.resource_version == 1
        # Caught up, a subscription vouches for every index applied so far (for bookmarks),
        # including entries that changed nothing it watches.
        await apply(projections, log, [system(), create("x", "elsewhere")])
        assert subscription.position == projections.applied_index == 7
        await subscription.aclose()
        assert [c async for c in subscription] == []

    @pytest.mark.parametrize("ring", [10_000, 5])
    async def test_replay_and_live_meet_without_gap_or_duplicate(
        self, ring: int, database_url: str, log: LogStore
    ) -> None:
        """Subscriptions opened at many points while writes go on (the ring holds everything,
        or so little that replays come from the database) see exactly the committed changes."""
        options = ProjectionOptions(recent_changes=ring, history_window=7, max_batch_entries=8)
        total = 240
        async with await Projections.open(database_url, log, options=options) as projections:
            rng = random.Random(ring)

            async def writer() -> None:
                for n in range(total):
                    i = rng.randrange(30)
                    kind = rng.random()
                    command = (
                        create(f"cm-{i}", f"ns-{i % 3}", v=str(n))
                        if kind < 0.4
                        else update(f"cm-{i}", f"ns-{i % 3}", v=str(n))
                        if kind < 0.75
                        else delete(f"cm-{i}", f"ns-{i % 3}")
                    )
                    await propose(log, [command])
                    if n % 5 == 0:
                        await asyncio.sleep(0.001)

            seen: list[tuple[int, str | None, list[Change]]] = []

            async def watcher(after: int, namespace: str | None) -> None:
                async with projections.subscribe(*CM, namespace, after) as subscription:
                    seen.append((after, namespace, await collect(subscription, total, 20)))

            async with asyncio.TaskGroup() as group:
                group.create_task(writer(), name="boundary-writer")
                for k in range(12):
                    await asyncio.sleep(0.003)
                    after = rng.randrange(projections.applied_index + 1)
                    group.create_task(
                        watcher(after, None if k % 2 else f"ns-{k % 3}"), name=f"watcher-{k}"
                    )
                    # The last index may be a rejected or change-less entry: add a marker.
                await projections.wait_for(total, timeout=20)
                await apply(projections, log, [create("end", "ns-0"), create("end", "ns-1")])
                await apply(projections, log, [create("end", "ns-2")])
            _, events = await model_of(log)
            for after, namespace, changes in seen:
                expected = [e for e in events if e.index > after and namespace in (None, e.key[2])]
                assert as_events(changes) == expected[: len(changes)]
                assert changes[-1].index >= total

    @pytest.mark.parametrize("ring", [10_000, 1])
    async def test_subscriptions_see_only_their_resource(
        self, ring: int, database_url: str, log: LogStore
    ) -> None:
        options = ProjectionOptions(recent_changes=ring)
        async with await Projections.open(database_url, log, options=options) as projections:
            live = projections.subscribe(*CM, None, 0)
            secrets = projections.subscribe("", "secrets", "default", 0)
            commands: list[ResourceCommand] = []
            for i in range(6):
                commands += [create(f"cm-{i}"), secret(f"s-{i}"), secret(f"s-{i}", "other")]
            entries = await apply(projections, log, commands)
            last = entries[-1].index  # each round: a configmap, a secret, another secret
            for subscription, resource, count, until in [
                (live, "configmaps", 6, last - 2),
                (projections.subscribe(*CM, None, 0), "configmaps", 6, last - 2),  # replayed
                (secrets, "secrets", 6, last - 1),
                (projections.subscribe("", "secrets", None, 0), "secrets", 12, last),
            ]:
                changes = await collect(subscription, until)
                assert {c.resource for c in changes} == {resource}
                assert len(changes) == count
            page = await projections.list("", "secrets", None)
            assert [(i.namespace, i.name) for i in page.items][:2] == [
                ("default", "s-0"),
                ("default", "s-1"),
            ]

    async def test_overflow_ends_with_the_resume_index(
        self, projections: Projections, log: LogStore
    ) -> None:
        subscription = projections.subscribe(*CM, None, 0, buffer=8)
        entries = await apply(projections, log, [create(f"cm-{i}") for i in range(3)])
        first = await collect(subscription, 2)
        entries += await apply(projections, log, [create(f"cm-{i}") for i in range(3, 40)])
        with pytest.raises(SubscriptionOverflow) as raised:
            first.extend(await collect(subscription, entries[-1].index))
        resume = raised.value.last_index
        assert resume == first[-1].index
        rest = await collect(projections.subscribe(*CM, None, resume), entries[-1].index)
        _, events = await model_of(log)
        assert as_events(first + rest) == events

    async def test_a_slow_subscriber_does_not_stall_others(
        self, projections: Projections, log: LogStore
    ) -> None:
        slow = projections.subscribe(*CM, None, 0, buffer=2)
        fast = projections.subscribe(*CM, None, 0, buffer=1000)
        entries = await apply(projections, log, [create(f"cm-{i}") for i in range(50)])
        assert len(await collect(fast, entries[-1].index)) == 50
        with pytest.raises(SubscriptionOverflow) as raised:
            await collect(slow, 50)
        assert raised.value.last_index == 0

    async def test_watch_from_a_future_index_waits(
        self, projections: Projections, log: LogStore
    ) -> None:
        await apply(projections, log, [create("a")])
        subscription = projections.subscribe(*CM, None, 5)
        entries = await apply(projections, log, [update("a", v=str(i)) for i in range(6)])
        changes = await collect(subscription, entries[-1].index)
        assert [c.index for c in changes] == [6, 7]

    async def test_close_ends_subscriptions_cleanly(self, database_url: str, log: LogStore) -> None:
        projections = await Projections.open(database_url, log)
        subscription = projections.subscribe(*CM, None, 0)
        waiter = asyncio.create_task(collect(subscription, 100), name="closing-watcher")
        await asyncio.sleep(0.01)
        await projections.close()
        assert await waiter == []
        with pytest.raises(ProjectionClosed):
            await projections.get("", "configmaps", "default", "a")
        with pytest.raises(ProjectionClosed):
            await projections.wait_for(1)
        with pytest.raises(ProjectionClosed):
            await collect(projections.subscribe(*CM, None, 0), 1)
        await projections.close()  # closing twice is harmless

    # ------------------------------------------------------------------ history

    async def test_compaction_raises_the_floor(
        self, projections: Projections, log: LogStore
    ) -> None:
        await apply(projections, log, [create("a"), create("b"), update("a", v="1")])
        await apply(projections, log, [delete("b"), update("a", v="2"), create("c")])
        digest = await projections.digest()
        await projections.compact(4)
        assert projections.floor == 4
        assert await projections.digest() == digest
        with pytest.raises(HistoryExpired) as raised:
            await projections.list(*CM, None, at=3)
        assert (raised.value.requested, raised.value.floor) == (3, 4)
        with pytest.raises(HistoryExpired):
            await collect(projections.subscribe(*CM, None, 3), 6)
        for at in (4, 5, 6):
            model, _ = await model_of(log, at)
            page = await projections.list(*CM, None, at=at)
            assert state_of(page.items) == model_state(model)
        # A watch from the floor still sees the delete at floor + 0 .. later (contract §21.9).
        changes = await collect(projections.subscribe(*CM, None, 4), 6)
        assert [(c.index, c.type) for c in changes] == [(5, "MODIFIED"), (6, "ADDED")]
        await projections.compact(2)  # never lowers the floor
        assert projections.floor == 4
        with pytest.raises(NotYetApplied):
            await projections.compact(100)

    async def test_a_delete_compacted_right_away_is_never_silently_lost(
        self, database_url: str, log: LogStore
    ) -> None:
        options = ProjectionOptions(recent_changes=1)
        async with await Projections.open(database_url, log, options=options) as projections:
            await apply(projections, log, [create(f"cm-{i}") for i in range(6)])
            before = projections.applied_index
            await apply(projections, log, [delete("cm-0")])
            await projections.compact(projections.applied_index)
            with pytest.raises(HistoryExpired):
                await collect(projections.subscribe(*CM, None, before), before + 1)

    async def test_history_replay_matches_the_log(self, database_url: str, log: LogStore) -> None:
        options = ProjectionOptions(recent_changes=1, history_window=3)
        async with await Projections.open(database_url, log, options=options) as projections:
            rng = random.Random(11)
            commands = []
            for n in range(80):
                name, kind = f"cm-{rng.randrange(8)}", rng.randrange(3)
                commands.append(
                    create(name)
                    if kind == 0
                    else update(name, v=str(n))
                    if kind == 1
                    else delete(name)
                )
            commands.append(delete("cm-0", lingering=True))
            entries = await apply(projections, log, commands)
            _, events = await model_of(log)
            for after in (0, 1, 17, 40, 79):
                changes = [c async for c in _until_idle(projections.subscribe(*CM, None, after))]
                assert as_events(changes) == [e for e in events if e.index > after]
            assert entries[-1].index == 81

    # ------------------------------------------------------------------ durability

    async def test_reopen_resumes_after_the_applied_index(
        self, database_url: str, log: LogStore
    ) -> None:
        async with await Projections.open(database_url, log) as projections:
            await apply(projections, log, [create(f"cm-{i}") for i in range(10)])
        await propose(log, [update(f"cm-{i}", v="x") for i in range(5)])
        async with await Projections.open(database_url, log) as projections:
            await projections.wait_for(15, timeout=5)
            digest = await projections.digest()
            model, _ = await model_of(log)
            assert state_of((await projections.list(*CM, None)).items) == model_state(model)
            assert (await projections.wait_outcome(15)).event == "MODIFIED"
            with pytest.raises(OutcomeExpired):
                await projections.wait_outcome(10)  # applied before this open
        async with await Projections.open(database_url, log) as projections:
            assert projections.applied_index == 15
            assert await projections.digest() == digest

    async def test_close_while_applying_finishes_the_batch_in_flight(
        self, database_url: str, log: LogStore, tmp_path: Path
    ) -> None:
        options = ProjectionOptions(max_batch_entries=40)
        projections = await Projections.open(database_url, log, options=options)
        await propose(log, [create(f"cm-{i}") for i in range(1500)])
        await projections.wait_for(40, timeout=5)
        await projections.close()
        stopped = projections.applied_index
        async with await Projections.open(database_url, log) as reopened:
            # What was published is exactly what had committed: nothing lost, nothing redone.
            assert reopened.applied_index == stopped
            await reopened.wait_for(1500, timeout=10)
            digest = await reopened.digest()
        assert (await rebuild(database_url, log)).digest == digest

    async def test_rebuild_gives_the_same_digest_whatever_the_batch_size(
        self, database_url: str, log: LogStore, tmp_path: Path
    ) -> None:
        rng = random.Random(5)
        commands: list[ResourceCommand] = []
        for n in range(150):
            i = rng.randrange(20)
            commands.append(
                [create(f"cm-{i}", v=str(n)), update(f"cm-{i}", v=str(n)), delete(f"cm-{i}")][
                    rng.randrange(3)
                ]
            )
        options = ProjectionOptions(max_batch_entries=3)
        async with await Projections.open(database_url, log, options=options) as projections:
            for start in range(0, len(commands), 40):
                await apply(projections, log, commands[start : start + 40])
            live = await projections.digest()
        progress: list[tuple[int, int]] = []
        summary = await rebuild(
            database_url, log, progress=lambda a, b: progress.append((a, b)), batch_entries=64
        )
        assert summary.digest == live
        assert summary.entries == 150
        assert progress[-1] == (150, 150) and len(progress) == 3
        model, _ = await model_of(log)
        assert summary.objects == len(model.state)
        for batch in (1, 7, 1000):
            assert (await rebuild(database_url, log, batch_entries=batch)).digest == live
        async with await Projections.open(database_url, log) as projections:
            assert await projections.digest() == live

    async def test_a_database_of_another_log_is_refused(
        self, database_url: str, log: LogStore, tmp_path: Path
    ) -> None:
        async with await Projections.open(database_url, log) as projections:
            await apply(projections, log, [create("a"), create("b")])
        async with await LogStore.open(tmp_path / "other-log") as other:
            await propose(other, [create("x"), create("y")])
            with pytest.raises(ProjectionMismatch, match="hash"):
                await Projections.open(database_url, other)
        async with await LogStore.open(tmp_path / "short-log") as short:
            await propose(short, [create("a")])
            with pytest.raises(ProjectionMismatch, match="ends at 1"):
                await Projections.open(database_url, short)


async def _until_idle(subscription: Any, idle: float = 0.2):
    """Yield changes until none arrives for ``idle`` seconds, then close."""
    async with subscription:
        while True:
            try:
                async with asyncio.timeout(idle):
                    change = await anext(subscription)
            except TimeoutError:
                return
            yield change


def entries_indices(entries: Sequence[Entry]) -> list[int]:
    return [e.index for e in entries]
