"""Label sets and selectors as upstream prints them: the ordering rules, every operator, and
what absent, empty and invalid selectors print as."""

from __future__ import annotations

from typing import Any

import pytest

from engenho.api.printing.labels import format_label_selector, format_labels, selector_string


@pytest.mark.parametrize(
    ("labels", "shown"),
    [
        (None, "<none>"),
        ({}, "<none>"),
        ({"app": "web"}, "app=web"),
        ({"tier": "frontend", "app": "web"}, "app=web,tier=frontend"),
        # Sorted as whole "key=value" strings, so "a.b=..." precedes "a=..." ('.' < '=').
        ({"a": "2", "a.b": "1"}, "a.b=1,a=2"),
        ({"kubernetes.io/os": "linux", "empty": ""}, "empty=,kubernetes.io/os=linux"),
    ],
)
def test_format_labels(labels: Any, shown: str) -> None:
    assert format_labels(labels) == shown


@pytest.mark.parametrize(
    ("selector", "text"),
    [
        (None, ""),
        ({}, ""),
        ({"matchLabels": {}, "matchExpressions": []}, ""),
        ({"matchLabels": {"app": "web"}}, "app=web"),
        ({"matchLabels": {"b": "2", "a": "1"}}, "a=1,b=2"),
        (
            {"matchExpressions": [{"key": "env", "operator": "In", "values": ["prod", "dev"]}]},
            "env in (dev,prod)",
        ),
        (
            {"matchExpressions": [{"key": "env", "operator": "NotIn", "values": ["qa"]}]},
            "env notin (qa)",
        ),
        ({"matchExpressions": [{"key": "gpu", "operator": "Exists"}]}, "gpu"),
        ({"matchExpressions": [{"key": "spot", "operator": "DoesNotExist"}]}, "!spot"),
        (
            {
                "matchLabels": {"team": "a", "app": "web"},
                "matchExpressions": [
                    {"key": "zone", "operator": "Exists"},
                    {"key": "canary", "operator": "DoesNotExist"},
                ],
            },
            "app=web,!canary,team=a,zone",
        ),
        # Invalid: unknown operator, values where none belong, none where some must be,
        # malformed keys and values.
        ({"matchExpressions": [{"key": "a", "operator": "Gt", "values": ["1"]}]}, None),
        ({"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]}, None),
        ({"matchExpressions": [{"key": "a", "operator": "In", "values": []}]}, None),
        ({"matchExpressions": [{"key": "a", "operator": "In", "values": ["no spaces"]}]}, None),
        ({"matchLabels": {"-bad": "x"}}, None),
        ({"matchLabels": {"Example.com/a": "x"}}, None),
        ({"matchLabels": {"a/b/c": "x"}}, None),
        ({"matchLabels": {"/a": "x"}}, None),
        ({"matchLabels": {"a": "x" * 64}}, None),
        ({"matchLabels": {"example.com/" + "k" * 63: "v"}}, "example.com/" + "k" * 63 + "=v"),
    ],
)
def test_selector_string(selector: Any, text: str | None) -> None:
    assert selector_string(selector) == text


@pytest.mark.parametrize(
    ("selector", "shown"),
    [
        (None, "<none>"),
        ({}, "<none>"),
        ({"matchLabels": {"app": "web"}}, "app=web"),
        ({"matchExpressions": [{"key": "a", "operator": "Nope"}]}, "<error>"),
    ],
)
def test_format_label_selector(selector: Any, shown: str) -> None:
    assert format_label_selector(selector) == shown
