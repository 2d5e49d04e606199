"""Problems: one refused value each, named by its field path.

Paths are written as the user writes the document: ``network.cluster-cidr`` for a ClusterConfig,
``networking.service_cidr`` for an EngenhoConfig, ``network.tls-sans[2]`` for a list item and
``controllers.garbage-collector.workers`` for a map entry.
"""

from __future__ import annotations

from attrs import evolve, frozen

__all__ = ["Problem", "join_path"]


@frozen
class Problem:
    path: str
    """Dotted field path; empty for the document as a whole."""
    message: str
    source: str | None = None
    """Where the refused value came from (a layered config only): ``env ENGENHO_...``."""

    def under(self, prefix: str) -> Problem:
        """The same problem for a record nested at ``prefix``."""
        return evolve(self, path=join_path(prefix, self.path))

    def __str__(self) -> str:
        text = f"{self.path or '(document)'}: {self.message}"
        return f"{text} (from {self.source})" if self.source else text


def join_path(prefix: str, path: str) -> str:
    if not prefix:
        return path
    if not path:
        return prefix
    return prefix + path if path.startswith("[") else f"{prefix}.{path}"
