"""Errors raised while building tables.

::

    PrintingError                 base of every error in this package
    └── InvalidIncludeObjectError the includeObject parameter names no known mode
"""

from __future__ import annotations

__all__ = [
    "InvalidIncludeObjectError",
    "PrintingError",
]


class PrintingError(Exception):
    """Base class of every error raised by :mod:`engenho.api.printing`."""


class InvalidIncludeObjectError(PrintingError, ValueError):
    """Raised when ``includeObject`` is not ``None``, ``Metadata``, ``Object`` or empty.

    Upstream rejects the request with 400 BadRequest and this message.
    """

    def __init__(self, value: str) -> None:
        self.value = value
        super().__init__(
            f"includeObject: Invalid value: \"{value}\": must be 'Metadata', 'Object', "
            "'None', or empty"
        )
