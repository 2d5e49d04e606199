"""``validate(obj, old=None)``: structural checks from the schema, then the per-kind rules."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from attrs import frozen

from engenho.schema.catalogue import ResourceType
from engenho.schema.causes import Cause
from engenho.schema.errors import UnknownResourceError
from engenho.schema.registry import CATALOGUE, definition_for
from engenho.schema.rules import RULES, Rule, name_check
from engenho.schema.rules.meta import validate_object_meta, validate_object_meta_update
from engenho.schema.rules.names import NameCheck
from engenho.schema.structural import check_structure
from engenho.schema.structural import unknown_fields as _unknown_fields

__all__ = ["unknown_fields", "validate"]


@frozen
class _Plan:
    definition: str
    resource: ResourceType | None
    name_check: NameCheck
    rule: Rule | None


_PLANS: dict[tuple[str, str], _Plan] = {}


def _plan(obj: Mapping[str, Any]) -> _Plan:
    api_version, kind = obj.get("apiVersion"), obj.get("kind")
    if not isinstance(api_version, str) or not isinstance(kind, str) or not kind:
        raise UnknownResourceError("Object 'Kind' is missing or apiVersion is not a string")
    plan = _PLANS.get((api_version, kind))
    if plan is None:
        definition = definition_for(api_version, kind)
        group = api_version.rpartition("/")[0]
        try:
            resource: ResourceType | None = CATALOGUE.for_kind(api_version, kind)
        except UnknownResourceError:
            resource = None  # a kind that is only a request body (Scale, Eviction, ...)
        plan = _Plan(definition.name, resource, name_check(group, kind), RULES.get((group, kind)))
        _PLANS[(api_version, kind)] = plan
    return plan


def validate(obj: dict[str, Any], old: Mapping[str, Any] | None = None) -> list[Cause]:
    """Every validation failure of ``obj`` (a dict as parsed from JSON), in a stable order.

    Pass ``old`` (the stored object) on update to enforce immutable fields. Unknown fields
    are not causes here; ask :func:`unknown_fields` (their handling depends on the request's
    ``fieldValidation``). Raises :class:`~engenho.schema.UnknownResourceError` when
    ``apiVersion``/``kind`` name no known kind.
    """
    plan = _plan(obj)
    causes = check_structure(obj, plan.definition)
    if plan.resource is not None:
        metadata = obj.get("metadata")
        validate_object_meta(
            metadata, namespaced=plan.resource.namespaced, name_check=plan.name_check, causes=causes
        )
        if old is not None:
            validate_object_meta_update(metadata, old.get("metadata"), causes)
    if plan.rule is not None:
        plan.rule(obj, old, causes)
    if len(causes) > 1:
        # Structural and semantic checks can both see a missing field; report it once.
        causes = list(dict.fromkeys(causes))
    return causes


def unknown_fields(obj: dict[str, Any], *, prune: bool = False) -> list[str]:
    """Paths of fields ``obj``'s schema does not define (``spec.foo``), for fieldValidation.

    ``Strict`` rejects them (400 ``strict decoding error: unknown field "spec.foo"``),
    ``Warn`` reports each in a Warning header, ``Ignore`` drops them silently; with
    ``prune=True`` they are removed from ``obj`` as upstream's decoder would.
    """
    return _unknown_fields(obj, _plan(obj).definition, prune=prune)
