"""Status conditions as upstream keeps them (contract §15): one per type, and
``lastTransitionTime`` changes only when ``status`` flips."""

from __future__ import annotations

import copy
from typing import Any

__all__ = ["condition", "set_condition"]

_Json = dict[str, Any]


def condition(conditions: Any, type_: str) -> _Json | None:
    """The condition of ``type_`` in a conditions list, or None."""
    for item in conditions if isinstance(conditions, list) else []:
        if isinstance(item, dict) and item.get("type") == type_:
            return item
    return None


def set_condition(
    conditions: Any,
    type_: str,
    status: str,
    *,
    reason: str = "",
    message: str = "",
    now: str,
    update_time: bool = False,
    probe_time: bool = False,
) -> list[_Json]:
    """A new conditions list with ``type_`` set. ``update_time`` keeps ``lastUpdateTime``
    (Deployments), ``probe_time`` keeps ``lastProbeTime`` (Pods)."""
    result = (
        [copy.deepcopy(c) for c in conditions if isinstance(c, dict)]
        if isinstance(conditions, list)
        else []
    )
    existing = condition(result, type_)
    if existing is None:
        existing = {"type": type_}
        result.append(existing)
        existing["lastTransitionTime"] = now
    elif existing.get("status") != status:
        existing["lastTransitionTime"] = now
    changed = (existing.get("status"), existing.get("reason"), existing.get("message")) != (
        status,
        reason or None,
        message or None,
    )
    existing["status"] = status
    for key, value in (("reason", reason), ("message", message)):
        if value:
            existing[key] = value
        else:
            existing.pop(key, None)
    if update_time and (changed or "lastUpdateTime" not in existing):
        existing["lastUpdateTime"] = now
    if probe_time:
        existing.setdefault("lastProbeTime", None)
    return result
