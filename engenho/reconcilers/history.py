"""ControllerRevisions: the history of pod templates a StatefulSet or DaemonSet keeps
(upstream's ``controller/history`` package, and the DaemonSet's history code).

- A revision's ``data`` is the patch that puts its template back on the owner,
  ``{"spec": {"template": {..., "$patch": "replace"}}}`` (upstream's getPatch); ``revision``
  numbers it (a rollback to an earlier template re-numbers that revision rather than making a
  new one). Two revisions are equal when their data are.
- A StatefulSet's revisions are named ``<set>-<hash>``: upstream's HashControllerRevision,
  FNV-1 (32 bits) over the data's JSON bytes and then the collision count in decimal, spelled
  in the safe alphabet, also in the ``controller.kubernetes.io/hash`` label. The bytes are
  those Go's ``json.Marshal`` writes for the stored template (keys sorted, ``<``, ``>``, ``&``
  escaped), so the name is upstream's whenever our stored template serialises as Go's does.
- When a name is taken by a revision with other data (a hash collision), the owner's
  ``status.collisionCount`` goes up by one and the name is computed again.
- A DaemonSet's revisions are named ``<ds>-<hash>`` with the hash of its pod template (the
  same function as a Deployment's ``pod-template-hash``, upstream's ComputeHash), in the
  ``controller-revision-hash`` label.
- Pods carry the revision they were made from in ``controller-revision-hash``.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import orjson

from engenho.projections import StoredObject
from engenho.reconcilers.ownership import Claimant, controller_ref
from engenho.reconcilers.revisions import template_hash
from engenho.registry import AlreadyExistsError, ConflictError, DeleteOptions, NotFoundError
from engenho.registry.naming import SUFFIX_ALPHABET
from engenho.schema import CATALOGUE

__all__ = [
    "CONTROLLER_REVISIONS",
    "POD_REVISION_LABEL",
    "REVISION_HASH_LABEL",
    "create_revision",
    "daemon_revision",
    "data_bytes",
    "delete_revisions",
    "hash_revision",
    "next_revision",
    "revision_data",
    "revision_name",
    "revision_number",
    "safe_encode",
    "sort_revisions",
    "template_from",
]

CONTROLLER_REVISIONS = CATALOGUE.get("apps", "v1", "controllerrevisions")
REVISION_HASH_LABEL = "controller.kubernetes.io/hash"
"""The hash of a StatefulSet revision (upstream's ControllerRevisionHashLabel)."""
POD_REVISION_LABEL = "controller-revision-hash"
"""On pods (and DaemonSet revisions): the revision a pod was made from."""

_FNV_OFFSET = 0x811C9DC5
_FNV_PRIME = 0x01000193
_MAX_PREFIX = 223
"""Revision names are ``<prefix>-<hash>``; the prefix is cut so a name stays a valid
subdomain with room for the hash (upstream's ControllerRevisionName)."""
# What Go's json.Marshal escapes besides what JSON requires (HTML-safe output).
_GO_ESCAPES = (
    (b"&", b"\\u0026"),
    (b"<", b"\\u003c"),
    (b">", b"\\u003e"),
    ("\u2028".encode(), b"\\u2028"),
    ("\u2029".encode(), b"\\u2029"),
)


def safe_encode(text: str) -> str:
    """apimachinery's ``rand.SafeEncodeString``: every character mapped into an alphabet
    without vowels or look-alike digits, so a hash never spells a word."""
    return "".join(SUFFIX_ALPHABET[ord(char) % len(SUFFIX_ALPHABET)] for char in text)


def _fnv32(data: bytes, value: int = _FNV_OFFSET) -> int:
    """FNV-1 (multiply, then xor), Go's ``hash/fnv.New32``."""
    for byte in data:
        value = ((value * _FNV_PRIME) & 0xFFFFFFFF) ^ byte
    return value


def revision_data(template: Mapping[str, Any]) -> dict[str, Any]:
    """The data of a revision of ``template``: the patch that restores it."""
    return {"spec": {"template": {**copy.deepcopy(dict(template)), "$patch": "replace"}}}


def template_from(revision: Mapping[str, Any]) -> dict[str, Any]:
    """The pod template a revision holds."""
    data = revision.get("data")
    spec = data.get("spec") if isinstance(data, dict) else None
    template = spec.get("template") if isinstance(spec, dict) else None
    if not isinstance(template, dict):
        return {}
    return {k: copy.deepcopy(v) for k, v in template.items() if k != "$patch"}


def data_bytes(data: Any) -> bytes:
    """The JSON bytes Go's ``json.Marshal`` writes for ``data``."""
    encoded = orjson.dumps(data, option=orjson.OPT_SORT_KEYS)
    for raw, escaped in _GO_ESCAPES:
        encoded = encoded.replace(raw, escaped)
    return encoded


def hash_revision(data: Any, probe: int | None = None) -> str:
    """upstream's HashControllerRevision over a revision's data and collision count."""
    value = _fnv32(data_bytes(data))
    if probe is not None:
        value = _fnv32(str(probe).encode(), value)
    return safe_encode(str(value))


def revision_name(prefix: str, hash_: str) -> str:
    return f"{prefix[:_MAX_PREFIX]}-{hash_}"


def revision_number(revision: StoredObject) -> int:
    value = revision.object.get("revision")
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def sort_revisions(revisions: Iterable[StoredObject]) -> list[StoredObject]:
    """Oldest first: by revision number, then creation time, then name."""
    return sorted(
        revisions,
        key=lambda r: (
            revision_number(r),
            str(r.object.get("metadata", {}).get("creationTimestamp") or ""),
            r.name,
        ),
    )


def next_revision(revisions: Sequence[StoredObject]) -> int:
    """One more than the highest revision number (1 for the first revision)."""
    return max((revision_number(r) for r in revisions), default=0) + 1


async def create_revision(
    controller: Claimant,
    owner: StoredObject,
    data: dict[str, Any],
    number: int,
    labels: Mapping[str, str],
    annotations: Mapping[str, str],
    collision_count: int,
) -> tuple[StoredObject, int]:
    """Create the StatefulSet revision of ``data`` (upstream's NewControllerRevision and
    CreateControllerRevision); returns it and the collision count it took. A name held by a
    revision with the same data is that revision."""
    while True:
        hash_ = hash_revision(data, collision_count)
        body: dict[str, Any] = {
            "apiVersion": "apps/v1",
            "kind": "ControllerRevision",
            "metadata": {
                "name": revision_name(owner.name, hash_),
                "namespace": owner.namespace,
                "labels": {**labels, REVISION_HASH_LABEL: hash_},
                "ownerReferences": [controller_ref(owner)],
                **({"annotations": dict(annotations)} if annotations else {}),
            },
            "data": data,
            "revision": number,
        }
        try:
            created = await controller.registry.create(
                controller.context(), CONTROLLER_REVISIONS, owner.namespace, body
            )
        except AlreadyExistsError:
            existing = await controller.registry.get(
                CONTROLLER_REVISIONS, owner.namespace, body["metadata"]["name"]
            )
            if existing.object.get("data") == data:
                return existing, collision_count
            collision_count += 1
            continue
        return created, collision_count


def daemon_revision(ds: StoredObject, data: dict[str, Any], number: int) -> dict[str, Any]:
    """The revision of a DaemonSet's template (the DaemonSet controller's snapshot)."""
    collisions = (ds.object.get("status") or {}).get("collisionCount")
    template = (ds.object.get("spec") or {}).get("template") or {}
    hash_ = template_hash(template, collisions if isinstance(collisions, int) else None)
    annotations = (ds.object.get("metadata") or {}).get("annotations") or {}
    return {
        "apiVersion": "apps/v1",
        "kind": "ControllerRevision",
        "metadata": {
            "name": f"{ds.name}-{hash_}",
            "namespace": ds.namespace,
            "labels": {
                **((template.get("metadata") or {}).get("labels") or {}),
                POD_REVISION_LABEL: hash_,
            },
            "ownerReferences": [controller_ref(ds)],
            **({"annotations": dict(annotations)} if annotations else {}),
        },
        "data": data,
        "revision": number,
    }


async def delete_revisions(controller: Claimant, revisions: Iterable[StoredObject]) -> None:
    """Delete these revisions (each by its uid: a newer one of the same name is kept)."""
    for revision in revisions:
        try:
            await controller.registry.delete(
                controller.context(),
                CONTROLLER_REVISIONS,
                revision.namespace,
                revision.name,
                DeleteOptions(precondition_uid=revision.uid),
            )
        except (NotFoundError, ConflictError):
            continue
