"""Errors raised by :mod:`engenho.schema`.

Validation findings are not exceptions: :func:`engenho.schema.validate` returns them as
:class:`~engenho.schema.Cause` records. Exceptions are for misuse and for bad generator input::

    SchemaError                    base of everything below
    ├── QuantityError              a string is not a Kubernetes quantity (also a ValueError)
    ├── UnknownResourceError       no resource or kind matches a catalogue lookup (also a KeyError)
    └── CodegenError               the generator cannot produce trustworthy output
        ├── AttestationError       an input's BLAKE3 digest or size differs from SOURCES.blake3
        ├── SpecError              an input document is malformed or uses an unsupported construct
        └── DriftError             ``--check`` found generated files that differ from a fresh run
"""

from __future__ import annotations

__all__ = [
    "AttestationError",
    "CodegenError",
    "DriftError",
    "QuantityError",
    "SchemaError",
    "SpecError",
    "UnknownResourceError",
]


class SchemaError(Exception):
    """Base class of every error raised by engenho.schema."""


class QuantityError(SchemaError, ValueError):
    """Raised by :meth:`Quantity.parse` for text that is not a well-formed quantity."""


class UnknownResourceError(SchemaError, KeyError):
    """Raised by catalogue and definition lookups that match nothing."""

    def __str__(self) -> str:
        # KeyError quotes its argument; these messages are sentences.
        return str(self.args[0]) if self.args else ""


class CodegenError(SchemaError):
    """Base class of generator failures; the CLI prints the message and exits 1."""


class AttestationError(CodegenError):
    """Raised when an input file's digest or size does not match the committed manifest."""

    def __init__(self, path: str, expected: str, actual: str) -> None:
        super().__init__(f"{path}: BLAKE3 digest mismatch: expected {expected}, actual {actual}")
        self.path = path
        self.expected = expected
        self.actual = actual


class SpecError(CodegenError):
    """Raised when an input document is malformed or uses a construct the generator lacks."""


class DriftError(CodegenError):
    """Raised by ``engenho codegen --check`` when committed output differs from a fresh run."""

    def __init__(self, diff: str) -> None:
        super().__init__("generated files differ from a fresh generator run:\n" + diff)
        self.diff = diff
