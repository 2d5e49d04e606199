"""Response bodies: objects, lists, Tables and watch events.

Stored objects are already JSON; lists and watch events are assembled from those bytes
without parsing them again, which keeps large lists cheap. Tables need the parsed objects.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import orjson

from engenho.api.printing import table
from engenho.projections import StoredObject
from engenho.registry import WatchEvent
from engenho.schema import ResourceType

__all__ = [
    "INITIAL_EVENTS_END",
    "bookmark_object",
    "list_body",
    "list_metadata",
    "table_body",
    "table_event_object",
    "watch_line",
]

INITIAL_EVENTS_END = "k8s.io/initial-events-end"


def list_metadata(
    resource_version: int, continue_token: str, remaining: int | None = None
) -> dict[str, Any]:
    meta: dict[str, Any] = {"resourceVersion": str(resource_version)}
    if continue_token:
        meta["continue"] = continue_token
        if remaining is not None:
            meta["remainingItemCount"] = remaining
    return meta


def list_body(
    rt: ResourceType,
    items: Sequence[StoredObject],
    resource_version: int,
    continue_token: str,
    remaining: int | None = None,
) -> bytes:
    """``{"kind": "<Kind>List", ..., "items": [...]}`` from the stored bytes; ``[]`` when empty."""
    head = orjson.dumps(
        {
            "kind": rt.list_kind or f"{rt.kind}List",
            "apiVersion": rt.api_version,
            "metadata": list_metadata(resource_version, continue_token, remaining),
        }
    )
    return head[:-1] + b',"items":[' + b",".join(item.data for item in items) + b"]}"


def table_body(
    rt: ResourceType,
    items: Sequence[StoredObject],
    resource_version: int,
    continue_token: str,
    include_object: str,
    now: datetime,
    remaining: int | None = None,
) -> bytes:
    return orjson.dumps(
        table(
            rt.plural,
            rt.group,
            [item.object for item in items],
            list_meta=list_metadata(resource_version, continue_token, remaining),
            include_object=include_object,
            now=now,
        )
    )


def table_event_object(
    rt: ResourceType, stored: StoredObject, include_object: str, now: datetime, *, first: bool
) -> dict[str, Any]:
    """A one-row Table for a watch event; column definitions go with the first event only."""
    row_table = table(
        rt.plural,
        rt.group,
        [stored.object],
        list_meta={"resourceVersion": str(stored.resource_version)},
        include_object=include_object,
        now=now,
    )
    if not first:
        row_table["columnDefinitions"] = []
    return row_table


def bookmark_object(rt: ResourceType, index: int, *, initial_events_end: bool) -> dict[str, Any]:
    metadata: dict[str, Any] = {"resourceVersion": str(index)}
    if initial_events_end:
        metadata["annotations"] = {INITIAL_EVENTS_END: "true"}
    return {"kind": rt.kind, "apiVersion": rt.api_version, "metadata": metadata}


def watch_line(
    rt: ResourceType,
    event: WatchEvent,
    *,
    table_format: bool = False,
    include_object: str = "Metadata",
    now: datetime | None = None,
    first: bool = False,
) -> bytes:
    """One newline-terminated watch event."""
    if event.type == "ERROR":
        assert event.error is not None
        body = orjson.dumps(event.error.status())
    elif event.type == "BOOKMARK":
        body = orjson.dumps(
            bookmark_object(rt, event.index, initial_events_end=event.initial_events_end)
        )
    else:
        assert event.object is not None
        if table_format:
            assert now is not None
            body = orjson.dumps(
                table_event_object(rt, event.object, include_object, now, first=first)
            )
        else:
            body = event.object.data
    return b'{"type":"' + event.type.encode() + b'","object":' + body + b"}\n"
