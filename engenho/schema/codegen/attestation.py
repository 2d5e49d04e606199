"""The committed manifest of generator inputs (``engenho/schema/SOURCES.blake3``).

One line per input: ``<BLAKE3 hex digest>  <byte size>  <path>``, path relative to the
``--specs`` directory; ``#`` starts a comment. The generator reads nothing that is not
listed, and refuses a listed file whose digest or size differs.
"""

from __future__ import annotations

from pathlib import Path

import blake3
from attrs import frozen

from engenho.schema.errors import AttestationError, SpecError

__all__ = ["Source", "load_manifest", "read_verified"]


@frozen
class Source:
    path: str  # relative to the specs directory, ``/``-separated
    digest: str  # 64 lowercase hex characters
    size: int


def load_manifest(manifest: Path) -> list[Source]:
    """Parse ``SOURCES.blake3``; the result is sorted by path."""
    sources: list[Source] = []
    for number, raw in enumerate(manifest.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        if len(parts) != 3 or len(parts[0]) != 64 or not parts[1].isdigit():
            raise SpecError(f"{manifest}:{number}: expected '<blake3 hex>  <bytes>  <path>'")
        sources.append(Source(path=parts[2], digest=parts[0].lower(), size=int(parts[1])))
    if not sources:
        raise SpecError(f"{manifest}: lists no inputs")
    return sorted(sources, key=lambda s: s.path)


def read_verified(specs_dir: Path, source: Source) -> bytes:
    """Read one input and check it against the manifest; raise on any mismatch."""
    path = specs_dir / source.path
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise SpecError(
            f"{source.path}: listed in SOURCES.blake3 but missing from {specs_dir}"
        ) from None
    actual = blake3.blake3(data).hexdigest()
    if actual != source.digest:
        raise AttestationError(source.path, source.digest, actual)
    if len(data) != source.size:
        raise AttestationError(source.path, f"{source.size} bytes", f"{len(data)} bytes")
    return data
