"""Deep copies of JSON values, fast.

Writes copy objects several times (the stored version, the patched one, the one shown to
admission), and ``copy.deepcopy`` walks them in Python with a memo: for a pod it cost more
than the rest of a status update. Objects here are JSON, so an orjson round trip copies them
an order of magnitude faster; anything orjson would not give back unchanged (a datetime, a
big integer, a non-string key) falls back to ``copy.deepcopy``.
"""

from __future__ import annotations

import copy
from typing import TypeVar

import orjson

__all__ = ["deep_copy"]

T = TypeVar("T")

_STRICT = (
    orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_DATACLASS
    | orjson.OPT_PASSTHROUGH_SUBCLASS
)


def deep_copy(value: T) -> T:
    try:
        copied: T = orjson.loads(orjson.dumps(value, option=_STRICT))
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        return copy.deepcopy(value)
    return copied
