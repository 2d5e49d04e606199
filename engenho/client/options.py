"""The options of the client's verbs: patch types, deletion policies and preconditions,
selectors given as text or as a label map, and the namespace wildcard."""

from __future__ import annotations

import enum
from collections.abc import Mapping

from attrs import frozen

from engenho.client.objects import Obj

__all__ = [
    "ALL_NAMESPACES",
    "DEFAULT_FIELD_MANAGER",
    "PatchType",
    "Preconditions",
    "Propagation",
    "Selector",
    "delete_options",
    "selector_text",
]

ALL_NAMESPACES = "*"
"""Pass as ``namespace`` to list, watch or delete across every namespace."""
DEFAULT_FIELD_MANAGER = "engenho-client"
"""The field manager of server-side apply when neither the call nor the client names one."""

Selector = str | Mapping[str, str] | None
"""A label or field selector: text (``app=web,tier!=db``) or a map of required values."""


class PatchType(enum.StrEnum):
    """The four patch formats, by their Content-Type."""

    JSON = "application/json-patch+json"
    MERGE = "application/merge-patch+json"
    STRATEGIC = "application/strategic-merge-patch+json"
    APPLY = "application/apply-patch+yaml"


class Propagation(enum.StrEnum):
    """``propagationPolicy`` of a delete: what happens to the object's dependents."""

    ORPHAN = "Orphan"
    BACKGROUND = "Background"
    FOREGROUND = "Foreground"


@frozen
class Preconditions:
    """A delete happens only if the object still has this uid and/or resourceVersion
    (else :class:`~engenho.client.errors.ConflictError`)."""

    uid: str | None = None
    resource_version: str | None = None


def selector_text(value: Selector) -> str | None:
    """The query-parameter form of a selector (None when it selects everything)."""
    if value is None or isinstance(value, str):
        return value or None
    return ",".join(f"{key}={text}" for key, text in value.items())


def delete_options(
    grace_period_seconds: int | None,
    propagation_policy: Propagation | str | None,
    preconditions: Preconditions | None,
    dry_run: bool,
) -> Obj:
    """A ``DeleteOptions`` body; unset options are left out."""
    options: Obj = {"apiVersion": "v1", "kind": "DeleteOptions"}
    if grace_period_seconds is not None:
        options["gracePeriodSeconds"] = grace_period_seconds
    if propagation_policy is not None:
        options["propagationPolicy"] = str(propagation_policy)
    if preconditions is not None:
        options["preconditions"] = {
            key: value
            for key, value in (
                ("uid", preconditions.uid),
                ("resourceVersion", preconditions.resource_version),
            )
            if value is not None
        }
    if dry_run:
        options["dryRun"] = ["All"]
    return options
