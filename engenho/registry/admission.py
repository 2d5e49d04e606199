"""Mutating admission the write path applies to every object it admits.

Only what upstream's default admission chain does to objects that clients and controllers
rely on lives here. Today that is ``DefaultTolerationSeconds``: every pod tolerates the
``node.kubernetes.io/not-ready`` and ``node.kubernetes.io/unreachable`` NoExecute taints for a
bounded time (300 s unless configured, kube-apiserver's ``--default-not-ready-toleration-seconds``
and ``--default-unreachable-toleration-seconds``), so a node that goes away takes its pods with
it five minutes later instead of at once or never.
"""

from __future__ import annotations

from typing import Any

from attrs import frozen

__all__ = ["NOT_READY_TAINT", "UNREACHABLE_TAINT", "AdmissionSettings", "admit_pod"]

NOT_READY_TAINT = "node.kubernetes.io/not-ready"
UNREACHABLE_TAINT = "node.kubernetes.io/unreachable"

_Json = dict[str, Any]


@frozen
class AdmissionSettings:
    default_not_ready_toleration_seconds: int = 300
    default_unreachable_toleration_seconds: int = 300


def _tolerates_no_execute(toleration: Any, key: str) -> bool:
    """Whether a toleration already covers ``key``'s NoExecute taint as the plugin judges it:
    by key (or an empty key) and effect (or an empty effect), whatever its operator."""
    if not isinstance(toleration, dict):
        return False
    return toleration.get("key") in (key, "", None) and toleration.get("effect") in (
        "NoExecute",
        "",
        None,
    )


def admit_pod(pod: _Json, settings: AdmissionSettings) -> None:
    """Add the default not-ready and unreachable tolerations a pod lacks (in place)."""
    spec = pod.get("spec")
    if not isinstance(spec, dict):
        return
    tolerations = spec.get("tolerations")
    if tolerations is not None and not isinstance(tolerations, list):
        return  # not a list: validation refuses it, there is nothing to add to
    current = list(tolerations or [])
    added = [
        {
            "key": key,
            "operator": "Exists",
            "effect": "NoExecute",
            "tolerationSeconds": seconds,
        }
        for key, seconds in (
            (NOT_READY_TAINT, settings.default_not_ready_toleration_seconds),
            (UNREACHABLE_TAINT, settings.default_unreachable_toleration_seconds),
        )
        if not any(_tolerates_no_execute(t, key) for t in current)
    ]
    if added:
        spec["tolerations"] = current + added
