"""Field paths built lazily: a path is ``(parent, segment)`` pairs, rendered only on error.

Validation runs on every write; building ``spec.containers[0].image`` strings for fields
that turn out valid would cost more than checking them. A segment is a field name (``str``),
a list index (``int``) or a map key (:class:`Key`).
"""

from __future__ import annotations

from typing import TypeAlias

__all__ = ["Key", "Path", "render"]

Path: TypeAlias = "tuple[Path, str | int] | None"


class Key(str):
    """A map key segment, rendered ``[key]`` (``metadata.labels[app]``)."""

    __slots__ = ()


def render(path: Path) -> str:
    segments: list[str | int] = []
    while path is not None:
        path, segment = path
        segments.append(segment)
    out: list[str] = []
    for segment in reversed(segments):
        if isinstance(segment, int | Key):
            out.append(f"[{segment}]")
        elif segment:  # the root object's key is empty
            out.append(f".{segment}" if out else segment)
    return "".join(out)
