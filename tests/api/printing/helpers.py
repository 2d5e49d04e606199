"""Shared test helpers: the fixed response time, fixture loading and what kubectl would show."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from engenho.api.printing import table

NOW = datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)
"""Every fixture's timestamps are written relative to this moment."""

FIXTURES = Path(__file__).parent / "fixtures"
FAMILIES = [
    "pods.yaml",
    "workloads.yaml",
    "jobs.yaml",
    "services.yaml",
    "cluster.yaml",
    "config.yaml",
    "rbac.yaml",
    "default.yaml",
]
"""The fixture files of test_cells, one per family of kinds."""


class _Loader(yaml.SafeLoader):
    """YAML as Kubernetes objects need it: timestamps stay strings, and only lower-case
    true/false are booleans, so a condition's ``status: True`` cannot silently turn into one."""


_Loader.yaml_implicit_resolvers = {
    first: [
        (tag, pattern)
        for tag, pattern in resolvers
        if tag not in {"tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:bool"}
    ]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:true|false)$"), list("tf"))


def load(name: str) -> Any:
    with (FIXTURES / name).open() as stream:
        return yaml.load(stream, Loader=_Loader)  # safe: _Loader is a SafeLoader


def cases(name: str) -> list[Any]:
    """The cases of a fixture file as pytest params, each with an id naming its resource."""
    return [pytest.param(case, id=f"{case['resource']}: {case['case']}") for case in load(name)]


def printed(resource: str, group: str, obj: Mapping[str, Any], **options: Any) -> dict[str, Any]:
    return table(resource, group, [obj], list_meta={}, now=NOW, **options)


def shown(printed_table: Mapping[str, Any], *, wide: bool = False) -> list[list[Any]]:
    """The cells kubectl shows: priority 0 columns, plus the rest with ``-o wide``."""
    keep = [wide or c["priority"] == 0 for c in printed_table["columnDefinitions"]]
    return [
        [cell for cell, kept in zip(row["cells"], keep, strict=True) if kept]
        for row in printed_table["rows"]
    ]


def headers(printed_table: Mapping[str, Any], *, wide: bool = False) -> list[str]:
    return [c["name"] for c in printed_table["columnDefinitions"] if wide or c["priority"] == 0]
