"""What a printer is: the columns of one resource and the function that fills a row."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from attrs import frozen

from engenho.api.printing.columns import ColumnDefinition

__all__ = [
    "Cell",
    "Printer",
    "Row",
    "RowCondition",
    "RowFunction",
]

Cell = str | int | bool
"""A cell as upstream puts it on the wire: kubectl prints strings as they are and the rest
with Go's ``fmt.Sprint``."""


@frozen
class RowCondition:
    """A ``rows[].conditions[]`` entry (upstream marks finished pods ``Completed``)."""

    type: str
    status: str
    reason: str
    message: str

    def to_json(self) -> dict[str, str]:
        return {
            "type": self.type,
            "status": self.status,
            "reason": self.reason,
            "message": self.message,
        }


@frozen
class Row:
    """The cells of one object, one per column definition, in the same order."""

    cells: tuple[Cell, ...]
    conditions: tuple[RowCondition, ...] = ()


RowFunction = Callable[[Mapping[str, Any], datetime], Row]
"""Fills a row from an object and the time the response is made (for Age cells)."""


@frozen
class Printer:
    """How one resource prints: its kind (to complete ``includeObject=Object`` rows), the
    version its objects are served at, its columns and its row function."""

    kind: str
    version: str
    columns: tuple[ColumnDefinition, ...]
    row: RowFunction
