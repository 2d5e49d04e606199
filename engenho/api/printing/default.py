"""The table for resources without a printer: Name and Created At.

Created At is a ``date`` column holding the creation time in RFC 3339 (UTC, whole seconds);
kubectl prints it as it is. A missing timestamp is Go's zero time, as upstream sends it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from engenho.api.printing.age import ZERO_TIME, parse_time
from engenho.api.printing.columns import CREATION_TIMESTAMP_DOC, NAME, ColumnDefinition
from engenho.api.printing.fields import mapping, string
from engenho.api.printing.printer import Row

__all__ = [
    "DEFAULT_COLUMNS",
    "default_row",
]

DEFAULT_COLUMNS = (
    NAME,
    ColumnDefinition(name="Created At", type="date", description=CREATION_TIMESTAMP_DOC),
)


def default_row(obj: Mapping[str, Any], now: datetime) -> Row:
    del now  # the default table shows a date, not an age
    metadata = mapping(obj.get("metadata"))
    created = (parse_time(metadata.get("creationTimestamp")) or ZERO_TIME).astimezone(UTC)
    # Formatted by hand: strftime drops the zero padding of years before 1000 on Linux.
    stamp = (
        f"{created.year:04d}-{created.month:02d}-{created.day:02d}"
        f"T{created.hour:02d}:{created.minute:02d}:{created.second:02d}Z"
    )
    return Row(cells=(string(metadata.get("name")), stamp))
