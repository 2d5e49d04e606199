"""Folding tiers into one document, value by value, remembering which tier supplied each.

A layer is a partial document (nested mappings). Layers apply lowest first; a value in a
higher layer replaces the one below it, mappings merge key by key, and a list is one value
(replaced whole, never appended to).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from attrs import field, frozen

from engenho.config.tiers import Source, Tier

__all__ = ["Layer", "leaves", "merge_layers", "source_for"]


@frozen
class Layer:
    tier: Tier
    values: Mapping[str, Any]
    origin: str
    """Where the values came from, e.g. the file's path."""
    origins: Mapping[str, str] = field(factory=dict)
    """Per-value origins by dotted path (one environment variable or flag each)."""

    def source(self, path: str) -> Source:
        return Source(self.tier, self.origins.get(path, self.origin))


def leaves(values: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Every value that is not a mapping, by dotted path."""
    for key, value in values.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping):
            yield from leaves(value, path)
        else:
            yield path, value


def merge_layers(layers: Sequence[Layer]) -> tuple[dict[str, Any], dict[str, Source]]:
    merged: dict[str, Any] = {}
    sources: dict[str, Source] = {}
    for layer in layers:
        _merge_into(merged, layer.values, "", layer, sources)
    return merged, sources


def _merge_into(
    target: dict[str, Any],
    values: Mapping[str, Any],
    prefix: str,
    layer: Layer,
    sources: dict[str, Source],
) -> None:
    for key, value in values.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        below = target.get(key)
        if isinstance(value, Mapping) and isinstance(below, dict):
            _merge_into(below, value, path, layer, sources)
            continue
        for stale in [p for p in sources if p == path or p.startswith(path + ".")]:
            del sources[stale]
        if isinstance(value, Mapping):
            target[key] = {}
            _merge_into(target[key], value, path, layer, sources)
            if not value:
                sources[path] = layer.source(path)
        else:
            target[key] = copy.deepcopy(value)
            sources[path] = layer.source(path)


def source_for(sources: Mapping[str, Source], path: str) -> Source | None:
    """The source of the value at ``path``, or of the nearest value under or above it."""
    if path in sources:
        return sources[path]
    under = sorted(p for p in sources if p.startswith(path + ".") or p.startswith(path + "["))
    if under:
        return sources[under[0]]
    while "." in path or "[" in path:
        path = path[: max(path.rfind("."), path.rfind("["))]
        if path in sources:
            return sources[path]
    return None
