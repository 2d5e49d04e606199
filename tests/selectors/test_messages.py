"""The Go formatting that selector error messages reproduce: ``%q`` quoting, JSON of string
lists (nil as ``null``, HTML characters escaped), and error aggregation."""

from __future__ import annotations

import pytest

from engenho.selectors.validation import aggregate, go_quote, invalid


@pytest.mark.parametrize(
    ("text", "quoted"),
    [
        ("", '""'),
        ("plain", '"plain"'),
        ('say "hi"', '"say \\"hi\\""'),
        ("back\\slash", '"back\\\\slash"'),
        ("tab\tnew\nline\r", '"tab\\tnew\\nline\\r"'),
        ("\x00\x1f\x7f", '"\\x00\\x1f\\x7f"'),
        ("ação ✓", '"ação ✓"'),
        ("\u200b", '"\\u200b"'),
        ("\U000e0001", '"\\U000e0001"'),
    ],
)
def test_go_quote(text: str, quoted: str) -> None:
    assert go_quote(text) == quoted


def test_invalid_value_rendering() -> None:
    assert invalid("key", "x", "bad") == 'key: Invalid value: "x": bad'
    assert invalid("values", None, "bad") == "values: Invalid value: null: bad"
    assert invalid("values", [], "bad") == "values: Invalid value: []: bad"
    assert (
        invalid("values", ["<a>", "b&c", "é"], "bad")
        == 'values: Invalid value: ["\\u003ca\\u003e","b\\u0026c","é"]: bad'
    )


def test_aggregate() -> None:
    assert aggregate(["one"]) == "one"
    assert aggregate(["one", "two", "one"]) == "[one, two]"
    assert aggregate(["same", "same"]) == "same"
