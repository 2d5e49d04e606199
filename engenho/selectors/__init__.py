"""Label and field selectors, as apimachinery parses, prints and matches them (contract §18).

Nothing here imports any other part of engenho.
"""

from engenho.selectors.errors import (
    InvalidFieldSelectorError,
    InvalidLabelSelectorError,
    SelectorError,
    UnsupportedFieldError,
)
from engenho.selectors.fields import (
    FieldRequirement,
    FieldSelector,
    escape_field_value,
    parse_field_selector,
)
from engenho.selectors.labels import (
    LabelSelector,
    label_selector_from_object,
    label_selector_from_set,
)
from engenho.selectors.parsing import parse_label_selector
from engenho.selectors.requirements import Operator, Requirement, new_requirement
from engenho.selectors.selectable import (
    FieldGetter,
    check_supported,
    field_getter,
    supported_fields,
)

__all__ = [
    "FieldGetter",
    "FieldRequirement",
    "FieldSelector",
    "InvalidFieldSelectorError",
    "InvalidLabelSelectorError",
    "LabelSelector",
    "Operator",
    "Requirement",
    "SelectorError",
    "UnsupportedFieldError",
    "check_supported",
    "escape_field_value",
    "field_getter",
    "label_selector_from_object",
    "label_selector_from_set",
    "new_requirement",
    "parse_field_selector",
    "parse_label_selector",
    "supported_fields",
]
