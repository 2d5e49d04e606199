"""Builders of commands and logs for projection tests."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs

from engenho.log import Actor, Entry, LogStore, Precondition, ResourceCommand, ResourceKey, Verb

EPOCH = datetime(2026, 11, 27, 10, 0, 0, tzinfo=UTC)
ACTOR = Actor("admin", ("system:masters",))
_requests = itertools.count(1)


def configmap(name: str, namespace: str = "default", **data: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace, "uid": f"uid-{namespace}-{name}"},
        "data": dict(data),
    }


def key(name: str, namespace: str = "default", resource: str = "configmaps") -> ResourceKey:
    return ResourceKey("", "v1", resource, namespace, name)


def _command(
    verb: Verb,
    k: ResourceKey | None,
    obj: dict[str, Any] | None,
    precondition: Precondition,
    uid: str,
) -> ResourceCommand:
    n = next(_requests)
    return ResourceCommand(
        verb=verb,
        key=k,
        uid=uid,
        object=obj,
        precondition=precondition,
        actor=ACTOR,
        request_id=f"req-{n}",
        time=EPOCH + timedelta(microseconds=n),
    )


def uid_of(name: str, namespace: str = "default") -> str:
    return f"uid-{namespace}-{name}"


def create(name: str, namespace: str = "default", *, uid: str | None = None, **data: str):
    obj = configmap(name, namespace, **data)
    u = uid or uid_of(name, namespace)
    obj["metadata"]["uid"] = u
    return _command(Verb.CREATE, key(name, namespace), obj, Precondition(must_not_exist=True), u)


def secret(name: str, namespace: str = "default") -> ResourceCommand:
    """A create in another resource of the core group (secrets)."""
    command = create(name, namespace)
    assert command.object is not None
    command.object["kind"] = "Secret"
    return attrs.evolve(command, key=key(name, namespace, resource="secrets"))


def update(
    name: str,
    namespace: str = "default",
    *,
    rv: int | None = None,
    uid: str | None = None,
    verb: Verb = Verb.UPDATE,
    **data: str,
) -> ResourceCommand:
    obj = configmap(name, namespace, **data)
    u = uid_of(name, namespace)
    obj["metadata"]["uid"] = u
    return _command(verb, key(name, namespace), obj, Precondition(resource_version=rv, uid=uid), u)


def delete(
    name: str,
    namespace: str = "default",
    *,
    rv: int | None = None,
    uid: str | None = None,
    lingering: bool = False,
) -> ResourceCommand:
    obj = None
    if lingering:
        obj = configmap(name, namespace)
        obj["metadata"]["deletionTimestamp"] = "2026-11-27T10:00:00Z"
        obj["metadata"]["finalizers"] = ["example.com/hold"]
    return _command(
        Verb.DELETE,
        key(name, namespace),
        obj,
        Precondition(resource_version=rv, uid=uid),
        uid_of(name, namespace),
    )


def finalize(name: str, namespace: str = "default", *, rv: int | None = None) -> ResourceCommand:
    return _command(
        Verb.FINALIZE,
        key(name, namespace),
        None,
        Precondition(resource_version=rv),
        uid_of(name, namespace),
    )


def system() -> ResourceCommand:
    return _command(Verb.SYSTEM, None, {"checkpoint": True}, Precondition(), "")


async def propose(log: LogStore, commands: Sequence[ResourceCommand]) -> list[Entry]:
    """Append and commit (a single voter: durable means committed)."""
    entries = await log.append(list(commands), term=1)
    log.commit_to(entries[-1].index)
    return entries
