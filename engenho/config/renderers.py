"""The renderers by name, as ``engenho cluster-config render --renderer`` offers them."""

from __future__ import annotations

from collections.abc import Mapping

from engenho.config.k3s_rendering import K3sRenderer
from engenho.config.native_rendering import EngenhoRenderer
from engenho.config.rendering import ClusterRenderer

__all__ = ["RENDERERS"]

RENDERERS: Mapping[str, ClusterRenderer] = {
    renderer.name: renderer for renderer in (K3sRenderer(), EngenhoRenderer())
}
