"""ResourceCommand: the one kind of record the log holds.

A command is decided completely before it is proposed (DESIGN.md rule 2): it carries the
full resulting object, the acting identity, the precondition and the wall-clock time, so that
applying it is a pure function of the command and the state before it.

Commands are turned into canonical bytes by :data:`CANONICAL`, an explicit cattrs converter
whose output is fixed by ``docs/log-format.md``; it is never the global converter.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import cattrs
from attrs import field, frozen, validators
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

from engenho.log.canonical import canonical_json, decode_json
from engenho.log.errors import EncodingError

__all__ = [
    "CANONICAL",
    "COMMAND_SCHEMA_VERSION",
    "Actor",
    "Precondition",
    "ResourceCommand",
    "ResourceKey",
    "Verb",
    "decode_command",
    "encode_command",
    "format_time",
    "parse_time",
]

COMMAND_SCHEMA_VERSION = 2
"""Schema version written with every new entry; older versions are upcast on read.

Version 2 added ``claims``; a version 1 command reads as one with no claims."""


class Verb(enum.Enum):
    """What a command does to the object at its key."""

    CREATE = "create"
    """The object must not exist; ``object`` is the whole new object."""
    UPDATE = "update"
    """A full replacement; ``object`` is the whole new object."""
    PATCH_RESULT = "patch-result"
    """The outcome of a patch or apply, computed before proposing; ``object`` is the result."""
    DELETE = "delete"
    """Deletion. With ``object`` the object lingers as given (deletionTimestamp set, finalizers
    or grace pending); without it the object is removed."""
    FINALIZE = "finalize"
    """The removal of an object whose finalizers and grace period are done."""
    SYSTEM = "system"
    """Log housekeeping (membership, checkpoints); has no resource key."""


_WRITES = frozenset({Verb.CREATE, Verb.UPDATE, Verb.PATCH_RESULT})


def _non_negative(_instance: object, attribute: Any, value: int | None) -> None:
    if value is not None and value < 0:
        raise ValueError(f"{attribute.name} must not be negative")


@frozen
class ResourceKey:
    """Where an object lives. ``namespace`` is empty for cluster-scoped resources."""

    group: str
    version: str
    resource: str
    namespace: str
    name: str

    def __str__(self) -> str:
        gv = f"{self.group}/{self.version}" if self.group else self.version
        ns = f"/namespaces/{self.namespace}" if self.namespace else ""
        return f"{gv}{ns}/{self.resource}/{self.name}"


def _strings(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(items)


@frozen
class Actor:
    """The authenticated identity a command acts for."""

    user: str
    groups: tuple[str, ...] = field(default=(), converter=_strings)


@frozen
class Precondition:
    """What must hold when the command is applied, or it is refused as a conflict.

    ``must_not_exist`` excludes the other two. ``resource_version`` is the log index that last
    changed the object; ``uid`` guards against a deleted-and-recreated object.
    """

    must_not_exist: bool = False
    resource_version: int | None = field(default=None, validator=_non_negative)
    uid: str | None = None

    def __attrs_post_init__(self) -> None:
        if self.must_not_exist and (self.resource_version is not None or self.uid is not None):
            raise ValueError("must_not_exist excludes resource_version and uid preconditions")


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() != UTC.utcoffset(None):
        raise ValueError("time must be timezone-aware UTC")
    return value


@frozen
class ResourceCommand:
    """A fully decided change to one object, or a system record."""

    verb: Verb = field(validator=validators.instance_of(Verb))
    key: ResourceKey | None
    uid: str
    object: dict[str, Any] | None
    precondition: Precondition
    actor: Actor
    request_id: str
    time: datetime = field(validator=lambda _i, _a, v: _utc(v))
    claims: tuple[str, ...] = field(default=(), converter=_strings)
    """Unique names the object holds while it exists (an allocated ClusterIP, a NodePort, a
    node's pod CIDR). They are decided before proposing; applying refuses a command whose
    claim another object holds, so two concurrent allocations cannot both win."""

    def __attrs_post_init__(self) -> None:
        if len(set(self.claims)) != len(self.claims):
            raise ValueError("claims must be distinct")
        if (self.verb is Verb.SYSTEM) != (self.key is None):
            raise ValueError("system commands have no key; every other command has one")
        if self.verb in _WRITES and self.object is None:
            raise ValueError(f"a {self.verb.value} command carries the resulting object")
        if self.verb is Verb.CREATE and not self.precondition.must_not_exist:
            raise ValueError("a create command has the must_not_exist precondition")
        if self.verb is Verb.FINALIZE and self.object is not None:
            raise ValueError("a finalize command removes the object and carries none")


_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z\Z")


def format_time(value: datetime) -> str:
    """The canonical time form: RFC 3339, UTC, exactly six fractional digits, ``Z``."""
    # On the append path: %-formatting is several times faster than strftime or isoformat.
    # Commands check their time is UTC when built, so this does not check again.
    return "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ" % (  # noqa: UP031
        value.year,
        value.month,
        value.day,
        value.hour,
        value.minute,
        value.second,
        value.microsecond,
    )


def parse_time(text: str) -> datetime:
    """Parse the canonical time form; any other spelling is refused."""
    if not _TIME.match(text):
        raise ValueError(f"time {text!r} is not in the form YYYY-MM-DDTHH:MM:SS.ffffffZ")
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def _object(value: Any, _type: Any) -> dict[str, Any] | None:
    if value is not None and not isinstance(value, dict):
        raise TypeError("object must be a JSON object or null")
    return value


def _unstructure_command(command: ResourceCommand) -> dict[str, Any]:
    """The canonical dict of a command, written out flat because it is on the append path.

    It must equal what cattrs would generate (a property test checks it against
    :data:`GENERATED`): every key present, ``null`` when unset, so the byte layout never
    depends on defaults.
    """
    key = command.key
    pre = command.precondition
    actor = command.actor
    return {
        "verb": command.verb._value_,  # the plain attribute: ``.value`` is a property
        "key": None
        if key is None
        else {
            "group": key.group,
            "version": key.version,
            "resource": key.resource,
            "namespace": key.namespace,
            "name": key.name,
        },
        "uid": command.uid,
        "object": command.object,
        "precondition": {
            "must_not_exist": pre.must_not_exist,
            "resource_version": pre.resource_version,
            "uid": pre.uid,
        },
        "actor": {"user": actor.user, "groups": list(actor.groups)},
        "request_id": command.request_id,
        "time": format_time(command.time),
        "claims": list(command.claims),
    }


def _base_converter() -> cattrs.Converter:
    conv = cattrs.Converter(forbid_extra_keys=True)
    conv.register_unstructure_hook(datetime, format_time)
    conv.register_structure_hook(datetime, lambda v, _t: parse_time(v))
    return conv


def _generated_converter() -> cattrs.Converter:
    conv = _base_converter()
    conv.register_unstructure_hook(
        ResourceCommand,
        make_dict_unstructure_fn(ResourceCommand, conv, object=override(unstruct_hook=lambda v: v)),
    )
    return conv


GENERATED = _generated_converter()
"""cattrs' own generated unstructuring: the reference the flat hook is tested against."""


def _make_converter() -> cattrs.Converter:
    conv = _base_converter()
    conv.register_unstructure_hook(ResourceCommand, _unstructure_command)
    conv.register_structure_hook(
        ResourceCommand,
        make_dict_structure_fn(
            ResourceCommand,
            conv,
            _cattrs_forbid_extra_keys=True,
            object=override(struct_hook=_object),
        ),
    )
    return conv


CANONICAL = _make_converter()
"""The converter that defines a command's canonical dict (and so its canonical bytes)."""


def encode_command(command: ResourceCommand) -> bytes:
    """The canonical bytes of a command: what the entry hash covers."""
    # The hook CANONICAL dispatches to, called directly: this runs once per append.
    return canonical_json(_unstructure_command(command))


def _upcast(schema_version: int, data: Any) -> Any:
    """Bring a decoded command dict of an older schema version to the current one.

    The stored bytes are never rewritten (the hash covers them); only the decoded value is
    brought forward.
    """
    if schema_version == 1 and isinstance(data, dict):
        data = {**data, "claims": []}
        schema_version = 2
    if schema_version == COMMAND_SCHEMA_VERSION:
        if isinstance(data, dict) and "claims" not in data:
            # Every member is present in the canonical form; claims has a default only so
            # that proposers can leave it out.
            raise EncodingError("not a command: the claims member is missing")
        return data
    raise EncodingError(f"unknown command schema version {schema_version}")


def decode_command(data: bytes, schema_version: int = COMMAND_SCHEMA_VERSION) -> ResourceCommand:
    """Decode canonical command bytes written under ``schema_version``."""
    raw = _upcast(schema_version, decode_json(data))
    try:
        return CANONICAL.structure(raw, ResourceCommand)
    except (cattrs.BaseValidationError, ValueError, TypeError) as exc:
        raise EncodingError(f"not a command: {exc}") from exc
