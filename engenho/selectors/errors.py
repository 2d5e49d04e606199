"""Errors raised by :mod:`engenho.selectors`; the API answers each with 400 ``BadRequest``
and the exception's text as the Status message (contract §10.2, §18).

::

    SelectorError                  base of every error here (also a ValueError)
    ├── InvalidLabelSelectorError  label selector text or a metav1.LabelSelector is invalid
    ├── InvalidFieldSelectorError  field selector text does not parse
    └── UnsupportedFieldError      a field selector names a field the resource does not offer

Messages reproduce apimachinery's text (``unable to parse requirement: ...``,
``field label not supported: spec.foo``) because users and tests recognise it.
"""

from __future__ import annotations

__all__ = [
    "InvalidFieldSelectorError",
    "InvalidLabelSelectorError",
    "SelectorError",
    "UnsupportedFieldError",
]


class SelectorError(ValueError):
    """Base class of every error raised by :mod:`engenho.selectors`."""


class InvalidLabelSelectorError(SelectorError):
    """Raised by ``parse_label_selector`` for text that does not parse or names an invalid
    key or value, and by ``label_selector_from_object`` for an invalid metav1.LabelSelector."""


class InvalidFieldSelectorError(SelectorError):
    """Raised by ``parse_field_selector`` for a term without an operator or a value with an
    unescaped ``=``/``,`` or a bad ``\\`` escape."""


class UnsupportedFieldError(SelectorError):
    """Raised by ``check_supported`` for a field the resource cannot be selected by."""

    def __init__(self, field: str, *, metadata_only: bool = False) -> None:
        self.field = field
        if metadata_only:
            message = (
                f'"{field}" is not a known field selector: only "metadata.name", '
                '"metadata.namespace"'
            )
        else:
            message = f"field label not supported: {field}"
        super().__init__(message)
