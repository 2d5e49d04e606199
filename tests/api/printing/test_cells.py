"""The cells of every kind with a printer (and of the default table), case by case, from the
YAML fixtures next to this module: each case holds a realistic object and the exact row
``kubectl get`` shows for it against upstream Kubernetes, with and without ``-o wide``.

All fixture timestamps are relative to ``helpers.NOW``.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.printing.helpers import FAMILIES, cases, printed, shown


@pytest.mark.parametrize("case", [c for family in FAMILIES for c in cases(family)])
def test_cells(case: dict[str, Any]) -> None:
    result = printed(case["resource"], case["group"], case["object"])
    assert shown(result) == [case["shown"]]
    assert shown(result, wide=True) == [case.get("wide", case["shown"])]
