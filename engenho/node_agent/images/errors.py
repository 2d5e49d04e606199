"""Errors of the local image store.

::

    ImageStoreError                 anything the store refuses or cannot do
    ├── InvalidReferenceError       a reference that does not parse (upstream's message)
    ├── ImageNotFoundError          no image in the store answers to a reference
    ├── ArchiveError                an archive that is not an OCI layout or docker-archive
    │   └── DigestMismatchError     content whose digest or size is not the one named
    └── UnpackError                 a layer that cannot be unpacked into a root filesystem
"""

from __future__ import annotations

__all__ = [
    "ArchiveError",
    "DigestMismatchError",
    "ImageNotFoundError",
    "ImageStoreError",
    "InvalidReferenceError",
    "UnpackError",
]


class ImageStoreError(Exception):
    """Base class: the store refused an operation or found its content damaged."""


class InvalidReferenceError(ImageStoreError, ValueError):
    """Raised by ``parse_reference`` with distribution/reference's message."""


class ImageNotFoundError(ImageStoreError, LookupError):
    """Raised when no stored image answers to a reference or digest."""

    def __init__(self, reference: str) -> None:
        super().__init__(f"image {reference!r} is not in the local image store")
        self.reference = reference


class ArchiveError(ImageStoreError):
    """Raised by an import when the archive's structure is wrong (missing files, bad JSON,
    an index entry naming a blob the archive does not hold)."""


class DigestMismatchError(ArchiveError):
    """Raised when a blob's sha256 or size differs from the digest that names it."""


class UnpackError(ImageStoreError):
    """Raised when a layer cannot be unpacked (unsupported compression, a path that
    escapes the root filesystem, a broken tar)."""
