"""ResourceCommand records: invariants, canonical bytes, round trips and decoding errors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from engenho.log import (
    Actor,
    EncodingError,
    Precondition,
    ResourceCommand,
    ResourceKey,
    Verb,
    decode_command,
    encode_command,
)
from engenho.log.command import CANONICAL, GENERATED, format_time, parse_time

from .helpers import EPOCH, command
from .test_canonical import json_values

names = st.text(st.characters(exclude_categories=["Cs"]), max_size=20)
keys = st.builds(ResourceKey, names, names, names, names, names)
actors = st.builds(Actor, names, st.lists(names, max_size=3).map(tuple))
times = st.datetimes(
    min_value=datetime(1970, 1, 1), max_value=datetime(9999, 1, 1), timezones=st.just(UTC)
)
objects = st.none() | st.dictionaries(names, json_values, max_size=4)
versions = st.none() | st.integers(min_value=0, max_value=2**63 - 1)


@st.composite
def commands(draw: st.DrawFn) -> ResourceCommand:
    verb = draw(st.sampled_from(Verb))
    if verb is Verb.CREATE:
        precondition = Precondition(must_not_exist=True)
    else:
        precondition = Precondition(resource_version=draw(versions), uid=draw(st.none() | names))
    obj = draw(objects)
    if verb in (Verb.CREATE, Verb.UPDATE, Verb.PATCH_RESULT) and obj is None:
        obj = {}
    if verb is Verb.FINALIZE:
        obj = None
    return ResourceCommand(
        verb=verb,
        key=None if verb is Verb.SYSTEM else draw(keys),
        uid=draw(names),
        object=obj,
        precondition=precondition,
        actor=draw(actors),
        request_id=draw(names),
        time=draw(times),
        claims=draw(st.lists(names, max_size=3, unique=True)),
    )


@given(commands())
def test_round_trip(cmd: ResourceCommand) -> None:
    assert decode_command(encode_command(cmd)) == cmd


@given(commands())
def test_canonical_bytes_are_stable(cmd: ResourceCommand) -> None:
    data = encode_command(cmd)
    assert encode_command(decode_command(data)) == data


@given(commands())
def test_flat_hook_equals_cattrs_generated(cmd: ResourceCommand) -> None:
    assert CANONICAL.unstructure(cmd) == GENERATED.unstructure(cmd)


def test_every_member_is_present_and_sorted() -> None:
    data = encode_command(command(1))
    members = list(orjson.loads(data))
    assert members == sorted(
        ["actor", "claims", "key", "object", "precondition", "request_id", "time", "uid", "verb"]
    )
    delete = ResourceCommand(
        verb=Verb.DELETE,
        key=ResourceKey("apps", "v1", "deployments", "ns", "web"),
        uid="u",
        object=None,
        precondition=Precondition(),
        actor=Actor("admin"),
        request_id="r",
        time=EPOCH,
    )
    decoded = orjson.loads(encode_command(delete))
    assert decoded["object"] is None
    assert decoded["precondition"] == {
        "must_not_exist": False,
        "resource_version": None,
        "uid": None,
    }


def _base(**changes: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "verb": Verb.UPDATE,
        "key": ResourceKey("", "v1", "configmaps", "default", "a"),
        "uid": "u",
        "object": {},
        "precondition": Precondition(),
        "actor": Actor("admin"),
        "request_id": "r",
        "time": EPOCH,
    }
    fields.update(changes)
    return fields


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"verb": Verb.SYSTEM}, "system commands have no key"),
        ({"key": None}, "system commands have no key"),
        ({"object": None}, "carries the resulting object"),
        ({"verb": Verb.CREATE}, "must_not_exist"),
        ({"verb": Verb.FINALIZE}, "carries none"),
        ({"time": datetime(2026, 1, 1)}, "UTC"),
        ({"time": datetime(2026, 1, 1, tzinfo=timezone(timedelta(hours=1)))}, "UTC"),
    ],
)
def test_invariants_are_enforced(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ResourceCommand(**_base(**changes))


def test_precondition_must_not_exist_is_exclusive() -> None:
    with pytest.raises(ValueError, match="excludes"):
        Precondition(must_not_exist=True, resource_version=3)
    with pytest.raises(ValueError, match="negative"):
        Precondition(resource_version=-1)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.update(extra=1), "not a command"),
        (lambda d: d.update(verb="upsert"), "not a command"),
        (lambda d: d.update(time="2026-11-27T10:00:00Z"), "not a command"),
        (lambda d: d.update(object=[1]), "not a command"),
        (lambda d: d.pop("uid"), "not a command"),
        (lambda d: d["precondition"].update(resource_version="7"), "not a command"),
    ],
)
def test_decoding_refuses_malformed_commands(mutate: Any, message: str) -> None:
    data = orjson.loads(encode_command(command(1)))
    mutate(data)
    with pytest.raises(EncodingError, match=message):
        decode_command(orjson.dumps(data))


def test_unknown_schema_version_is_refused() -> None:
    with pytest.raises(EncodingError, match="schema version 9"):
        decode_command(encode_command(command(1)), schema_version=9)


@given(times)
def test_time_form(moment: datetime) -> None:
    text = format_time(moment)
    assert len(text) == 27 and text.endswith("Z")
    assert parse_time(text) == moment


@pytest.mark.parametrize(
    "text",
    ["2026-11-27T10:00:00Z", "2026-11-27T10:00:00.123456+00:00", "2026-11-27 10:00:00.000000Z"],
)
def test_other_time_spellings_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="not in the form"):
        parse_time(text)


def test_key_display() -> None:
    assert str(ResourceKey("", "v1", "pods", "ns", "p")) == "v1/namespaces/ns/pods/p"
    assert str(ResourceKey("apps", "v1", "deployments", "", "d")) == "apps/v1/deployments/d"


def test_schema_version_1_commands_read_without_claims() -> None:
    """Version 1 had no claims member; its bytes stay as written and decode with none."""
    current = orjson.loads(encode_command(command(1)))
    assert current.pop("claims") == []
    version_1 = orjson.dumps(current, option=orjson.OPT_SORT_KEYS)
    decoded = decode_command(version_1, schema_version=1)
    assert decoded == command(1) and decoded.claims == ()
    with pytest.raises(EncodingError, match="not a command"):
        decode_command(version_1, schema_version=2)


def test_claims_are_distinct() -> None:
    with pytest.raises(ValueError, match="distinct"):
        ResourceCommand(**_base(claims=("a", "a")))
