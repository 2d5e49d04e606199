"""Which objects a list or watch selects: label selector, field selector, single name."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from engenho.projections import StoredObject
from engenho.registry.errors import BadRequestError
from engenho.schema import ResourceType
from engenho.selectors import (
    FieldSelector,
    LabelSelector,
    SelectorError,
    check_supported,
    field_getter,
    parse_field_selector,
    parse_label_selector,
)

__all__ = ["Matcher"]


class Matcher:
    """A compiled label and field selector (plus an optional name) for one resource."""

    def __init__(
        self,
        labels: LabelSelector,
        fields: FieldSelector,
        getter: Callable[[dict[str, Any]], dict[str, str]],
        name: str | None,
    ) -> None:
        self._labels = labels
        self._fields = fields
        self._getter = getter
        self._name = name
        self.everything = labels.empty and fields.empty and name is None

    @classmethod
    def build(
        cls, rt: ResourceType, label_selector: str, field_selector: str, name: str | None = None
    ) -> Matcher:
        """Parse both selectors; a syntax error or an unsupported field is a 400."""
        try:
            labels = parse_label_selector(label_selector or "")
            fields = parse_field_selector(field_selector or "")
            check_supported(fields, rt.group, rt.plural, rt.namespaced)
        except SelectorError as exc:
            raise BadRequestError(str(exc)) from exc
        return cls(labels, fields, field_getter(rt.group, rt.plural, rt.namespaced), name)

    def matches(self, stored: StoredObject) -> bool:
        if self._name is not None and stored.name != self._name:
            return False
        if self._labels.empty and self._fields.empty:
            return True
        obj = stored.object
        if not self._labels.empty:
            labels = obj.get("metadata", {}).get("labels") or {}
            if not self._labels.matches(labels):
                return False
        return self._fields.empty or self._fields.matches(self._getter(obj))
