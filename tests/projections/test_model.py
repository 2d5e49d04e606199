"""Property test: for random command sequences (every verb, every precondition outcome, keys
touched repeatedly within one batch), the SQL projection equals a plain model fold of the apply
semantics: the outcome of every entry, the current state, the state at past indices, the
change feed, and the digest after a rebuild."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from pathlib import Path

import attrs
from hypothesis import given, settings
from hypothesis import strategies as st

from engenho.log import LogStore, ResourceCommand, Verb
from engenho.projections import ProjectionOptions, Projections, rebuild, sqlite_url
from tests.projections.contract import as_events, collect, model_state, state_of
from tests.projections.helpers import create, delete, finalize, key, propose, system, update
from tests.projections.model import Model

# The same name in several namespaces and resources: identity is (group, resource, namespace,
# name). Namespaces are cluster-scoped (namespace "").
NAMES = [
    ("a", "default", "configmaps"),
    ("b", "default", "configmaps"),
    ("a", "other", "configmaps"),
    ("a", "default", "secrets"),
    ("a", "", "namespaces"),
]
RESOURCES = sorted({resource for _, _, resource in NAMES})
VERBS = ["create", "update", "patch", "delete", "linger", "finalize", "system"]
PRECONDITIONS = [
    "none",
    "current rv",
    "stale rv",
    "right uid",
    "wrong uid",
    "current rv, wrong uid",
]


def build(data: st.DataObject, model: Model, index: int) -> ResourceCommand:
    verb = data.draw(st.sampled_from(VERBS), label="verb")
    if verb == "system":
        return system()
    name, namespace, resource = data.draw(st.sampled_from(NAMES), label="key")
    command = _command(data, model, index, verb, name, namespace, resource)
    return attrs.evolve(command, key=key(name, namespace, resource))


def _command(
    data: st.DataObject,
    model: Model,
    index: int,
    verb: str,
    name: str,
    namespace: str,
    resource: str,
) -> ResourceCommand:
    if verb == "create":
        return create(name, namespace, v=str(index))
    current = model.state.get(("", resource, namespace, name))
    mode = data.draw(st.sampled_from(PRECONDITIONS), label="precondition")
    rv = uid = None
    if mode == "current rv":
        rv = current.rv if current else index
    elif mode == "stale rv":
        rv = max(1, current.rv - 1) if current else 1
    elif mode == "right uid":
        uid = current.uid if current else f"uid-{namespace}-{name}"
    elif mode == "wrong uid":
        uid = "someone-else"
    elif mode == "current rv, wrong uid":
        rv, uid = (current.rv if current else index), "someone-else"
    if verb in ("update", "patch"):
        chosen = Verb.UPDATE if verb == "update" else Verb.PATCH_RESULT
        return update(name, namespace, rv=rv, uid=uid, verb=chosen, v=str(index))
    if verb == "finalize":
        return finalize(name, namespace, rv=rv)
    return delete(name, namespace, rv=rv, uid=uid, lingering=verb == "linger")


@settings(max_examples=35)
@given(data=st.data(), batch=st.integers(1, 6), length=st.integers(1, 30))
def test_projection_equals_the_model(data: st.DataObject, batch: int, length: int) -> None:
    model = Model.empty()
    commands: list[ResourceCommand] = []
    expected = []
    for index in range(1, length + 1):
        command = build(data, model, index)
        commands.append(command)
        expected.append(model.apply(index, command))
    cut = data.draw(st.integers(1, length), label="proposal split")
    directory = Path(tempfile.mkdtemp(prefix="engenho-model-"))
    try:
        asyncio.run(check(directory, commands, expected, batch, cut))
    finally:
        shutil.rmtree(directory, ignore_errors=True)


async def check(directory: Path, commands, expected, batch: int, cut: int) -> None:
    url = sqlite_url(directory / "projections.db")
    options = ProjectionOptions(max_batch_entries=batch, recent_changes=4)
    async with await LogStore.open(directory / "log") as log:
        async with await Projections.open(url, log, options=options) as projections:
            live = projections.subscribe("", "configmaps", None, 0)
            await propose(log, commands[:cut])
            if cut < len(commands):
                await propose(log, commands[cut:])
            last = len(commands)
            await projections.wait_for(last, timeout=10)
            for index, (outcome, _) in enumerate(expected, start=1):
                got = await projections.wait_outcome(index)
                assert (got.applied, got.reason, got.event) == (
                    outcome.applied,
                    outcome.reason,
                    outcome.event,
                ), index
                assert (got.object.object if got.object else None) == outcome.obj
            # The current state and the state at every past index.
            for at in range(0, last + 1):
                reference = Model.empty()
                for index, command in enumerate(commands[:at], start=1):
                    reference.apply(index, command)
                for resource in RESOURCES:
                    page = await projections.list("", resource, None, at=at)
                    assert state_of(page.items) == model_state(reference, resource), at
            events = [e for _, e in expected if e is not None and e.key[1] == "configmaps"]
            if events:
                assert as_events(await collect(live, events[-1].index)) == events
                # Replay from history (the ring is tiny) agrees too.
                replayed = projections.subscribe("", "configmaps", None, 0)
                assert as_events(await collect(replayed, events[-1].index)) == events
            await live.aclose()
            digest = await projections.digest()
        summary = await rebuild(url, log, batch_entries=5)
        assert summary.digest == digest
