"""engenho.selectors exports exactly its public surface."""

from __future__ import annotations

import engenho.selectors


def test_selectors_surface() -> None:
    assert set(engenho.selectors.__all__) == {
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
    }
