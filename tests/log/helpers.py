"""Builders of commands for log tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from engenho.log import Actor, Precondition, ResourceCommand, ResourceKey, Verb

EPOCH = datetime(2026, 11, 27, 10, 0, 0, tzinfo=UTC)


def command(i: int, *, size: int = 64, namespace: str = "default") -> ResourceCommand:
    """A ConfigMap create whose payload is about ``size`` bytes; distinct per ``i``."""
    name = f"cm-{i}"
    return ResourceCommand(
        verb=Verb.CREATE,
        key=ResourceKey("", "v1", "configmaps", namespace, name),
        uid=f"uid-{i}",
        object={
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": namespace, "uid": f"uid-{i}"},
            "data": {"value": "x" * size},
        },
        precondition=Precondition(must_not_exist=True),
        actor=Actor("admin", ("system:masters",)),
        request_id=f"req-{i}",
        time=EPOCH + timedelta(microseconds=i),
    )
