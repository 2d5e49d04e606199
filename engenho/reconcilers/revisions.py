"""A Deployment's revisions: ReplicaSet names, template hashes, and the annotations that carry
revisions and sizes (upstream's deployment util, the parts ``kubectl rollout`` depends on).

- Each pod template gets a ReplicaSet ``<deployment>-<hash>``; the hash (``pod-template-hash``,
  also a label on that ReplicaSet's selector, template and pods) is FNV-1a (32 bits) over the
  template's canonical JSON and the collision count, spelled in upstream's safe alphabet. It is
  stable for a given stored template, but not bit-for-bit upstream's (which hashes Go structs).
- Which ReplicaSet is the *new* one is decided by comparing templates with the hash label
  removed, never by the hash: the oldest ReplicaSet with an equal template wins.
- ``deployment.kubernetes.io/revision`` numbers ReplicaSets; a ReplicaSet that becomes new again
  (a rollback) gets the next number and keeps its earlier ones in ``revision-history``.
- ``desired-replicas`` and ``max-replicas`` record the Deployment's size (and size plus surge)
  a ReplicaSet was last scaled for, which proportional scaling reads back.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any

import orjson

from engenho.projections import StoredObject
from engenho.registry.naming import SUFFIX_ALPHABET

__all__ = [
    "DESIRED_REPLICAS",
    "MAX_HISTORY_CHARS",
    "MAX_REPLICAS",
    "REVISION",
    "REVISION_HISTORY",
    "SKIPPED_ANNOTATIONS",
    "TEMPLATE_HASH",
    "annotations_of",
    "equal_ignoring_hash",
    "max_revision",
    "replica_set_annotations",
    "replicas_annotations",
    "revision_of",
    "template_hash",
]

TEMPLATE_HASH = "pod-template-hash"
REVISION = "deployment.kubernetes.io/revision"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
DESIRED_REPLICAS = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
SKIPPED_ANNOTATIONS = frozenset(
    {
        "kubectl.kubernetes.io/last-applied-configuration",
        REVISION,
        REVISION_HISTORY,
        DESIRED_REPLICAS,
        MAX_REPLICAS,
        "deprecated.deployment.rollback.to",
    }
)
"""Deployment annotations never copied to its ReplicaSets (and kept by ``rollout undo``)."""
MAX_HISTORY_CHARS = 2000

_FNV_OFFSET = 0x811C9DC5
_FNV_PRIME = 0x01000193


def _fnv32a(data: bytes, value: int = _FNV_OFFSET) -> int:
    for byte in data:
        value = ((value ^ byte) * _FNV_PRIME) & 0xFFFFFFFF
    return value


def template_hash(template: Mapping[str, Any], collision_count: int | None = None) -> str:
    """The ``pod-template-hash`` of a Deployment's template (upstream's ComputeHash shape:
    FNV-1a, then the collision count as 8 little-endian bytes, then SafeEncodeString of the
    decimal value)."""
    value = _fnv32a(orjson.dumps(template, option=orjson.OPT_SORT_KEYS))
    if collision_count is not None:
        value = _fnv32a((collision_count & 0xFFFFFFFF).to_bytes(8, "little"), value)
    return "".join(SUFFIX_ALPHABET[ord(c) % len(SUFFIX_ALPHABET)] for c in str(value))


def _pruned(value: Any) -> Any:
    """Empty maps and lists are the same as absent ones (apimachinery's Semantic.DeepEqual)."""
    if isinstance(value, dict):
        kept = {k: _pruned(v) for k, v in value.items()}
        return {k: v for k, v in kept.items() if v not in ({}, [], None)}
    if isinstance(value, list):
        return [_pruned(item) for item in value]
    return value


def _without_hash(template: Mapping[str, Any]) -> Any:
    template = copy.deepcopy(dict(template))
    labels = (template.get("metadata") or {}).get("labels")
    if isinstance(labels, dict):
        labels.pop(TEMPLATE_HASH, None)
    return _pruned(template)


def equal_ignoring_hash(first: Mapping[str, Any], second: Mapping[str, Any]) -> bool:
    """Whether two pod templates are the same apart from ``pod-template-hash``."""
    return bool(_without_hash(first) == _without_hash(second))


def annotations_of(obj: Mapping[str, Any]) -> dict[str, str]:
    annotations = (obj.get("metadata") or {}).get("annotations")
    return dict(annotations) if isinstance(annotations, dict) else {}


def revision_of(obj: Mapping[str, Any]) -> int | None:
    """The object's revision annotation as a number (None when absent or not a number)."""
    value = annotations_of(obj).get(REVISION)
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def max_revision(replica_sets: Iterable[StoredObject]) -> int:
    return max((revision_of(rs.object) or 0 for rs in replica_sets), default=0)


def replicas_annotations(annotations: dict[str, str], desired: int, maximum: int) -> bool:
    """Record the size a ReplicaSet was scaled for; whether anything changed."""
    wanted = {DESIRED_REPLICAS: str(desired), MAX_REPLICAS: str(maximum)}
    changed = any(annotations.get(k) != v for k, v in wanted.items())
    annotations.update(wanted)
    return changed


def replica_set_annotations(
    deployment: Mapping[str, Any],
    annotations: dict[str, str],
    new_revision: int,
    *,
    exists: bool,
    desired: int,
    maximum: int,
) -> bool:
    """Upstream's SetNewReplicaSetAnnotations on ``annotations`` (the new ReplicaSet's, changed
    in place): copy the Deployment's own annotations, raise the revision to ``new_revision``
    (remembering the previous one in the history when it had one), and for a ReplicaSet about
    to be created, its size. Returns whether anything changed."""
    changed = False
    for key, value in annotations_of(deployment).items():
        if key in SKIPPED_ANNOTATIONS or annotations.get(key) == value:
            continue
        annotations[key] = value
        changed = True
    old_text = annotations.get(REVISION)
    try:
        old = int(old_text) if old_text is not None else 0
    except ValueError:
        return changed  # a revision we cannot read is left alone, as upstream does
    if old < new_revision:
        annotations[REVISION] = str(new_revision)
        changed = True
        if old_text is not None:
            annotations[REVISION_HISTORY] = _history(annotations.get(REVISION_HISTORY), old_text)
    if not exists and replicas_annotations(annotations, desired, maximum):
        changed = True
    return changed


def _history(history: str | None, previous: str) -> str:
    """Append ``previous`` to a comma-separated history, dropping the oldest entries so that
    it stays within :data:`MAX_HISTORY_CHARS`."""
    if not history:
        return previous
    entries = history.split(",")
    total = len(history) + len(previous) + 1
    start = 0
    while total > MAX_HISTORY_CHARS and start < len(entries):
        total -= len(entries[start]) + 1
        start += 1
    if total > MAX_HISTORY_CHARS:
        return history
    return ",".join([*entries[start:], previous])
