"""Typed requests the registry serves: who asks, and the options of each verb."""

from __future__ import annotations

from datetime import datetime

from attrs import field, frozen

from engenho.log import Actor

__all__ = ["DeleteOptions", "ListQuery", "RequestContext", "WatchQuery"]


@frozen
class RequestContext:
    """The caller and the per-request options shared by every write."""

    actor: Actor
    request_id: str
    now: datetime
    """Decided once when the request arrives; every timestamp the write sets comes from it."""
    dry_run: bool = False
    field_manager: str | None = None
    field_validation: str = "Warn"
    warnings: list[str] = field(factory=list, eq=False)
    """Collected for ``Warning`` response headers (fieldValidation=Warn findings)."""
    duplicate_fields: list[str] = field(factory=list, eq=False)
    """Paths of fields the request body repeated (found when fieldValidation asks)."""


@frozen
class ListQuery:
    label_selector: str = ""
    field_selector: str = ""
    limit: int | None = None
    continue_token: str = ""
    resource_version: str | None = None
    resource_version_match: str | None = None


@frozen
class WatchQuery:
    label_selector: str = ""
    field_selector: str = ""
    resource_version: str | None = None
    resource_version_match: str | None = None
    allow_bookmarks: bool = False
    send_initial_events: bool | None = None
    timeout_seconds: float | None = None
    name: str | None = None
    """A single-object watch (``/namespaces/ns/pods/name?watch=1``)."""


@frozen
class DeleteOptions:
    grace_period_seconds: int | None = None
    propagation_policy: str | None = None
    orphan_dependents: bool | None = None
    precondition_uid: str | None = None
    precondition_resource_version: str | None = None
