"""The layout of a data directory (DESIGN.md, "Data directory"): one place names every path."""

from __future__ import annotations

import os
from pathlib import Path

from attrs import frozen

__all__ = ["DataDir", "default_data_dir"]


def default_data_dir() -> Path:
    """``$XDG_DATA_HOME/engenho``, which is ``~/.local/share/engenho`` by default."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "engenho"


@frozen
class DataDir:
    root: Path

    @property
    def log(self) -> Path:
        return self.root / "log"

    @property
    def projections_db(self) -> Path:
        return self.root / "projections.db"

    @property
    def pki(self) -> Path:
        return self.root / "pki"

    @property
    def kubeconfig(self) -> Path:
        return self.root / "kubeconfig"

    @property
    def images(self) -> Path:
        return self.root / "images"

    @property
    def node(self) -> Path:
        return self.root / "node"
