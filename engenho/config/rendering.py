"""The renderer interface: a ClusterConfig in, a set of files out, byte for byte the same for
the same input (nothing here reads the clock, the host or the environment)."""

from __future__ import annotations

import abc
import hashlib
import os
import tempfile
from pathlib import Path, PurePosixPath
from typing import Any

from attrs import frozen

from engenho.config.cluster_schema import ClusterConfig

__all__ = ["ClusterRenderer", "RenderedFile", "Rendering", "write_rendering"]


@frozen
class RenderedFile:
    path: PurePosixPath
    """Relative to the output directory."""
    content: bytes
    mode: int = 0o644
    """0o600 for a file holding a Secret, even a placeholder: the real value replaces it in
    place."""

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()


@frozen
class Rendering:
    renderer: str
    files: tuple[RenderedFile, ...]
    """Sorted by path."""
    owned: tuple[str, ...] = ()
    """Globs (relative to the output directory) of files this renderer owns: ones left from an
    earlier rendering and not written again are removed, so a choice taken back (a CNI, a
    bootstrap) does not linger for k3s to keep applying."""
    notes: tuple[str, ...] = ()
    """Settings the target cannot express, said out loud rather than dropped silently."""

    def summary(self, config: ClusterConfig) -> dict[str, Any]:
        return {
            "renderer": self.renderer,
            "cluster-name": config.cluster_name,
            "node-ip": str(config.node_ip),
            "files": [
                {"path": str(f.path), "bytes": len(f.content), "sha256": f.sha256}
                for f in self.files
            ],
            "notes": list(self.notes),
        }


class ClusterRenderer(abc.ABC):
    """Turns a ClusterConfig into the files some target consumes."""

    name: str

    @abc.abstractmethod
    def render(self, config: ClusterConfig) -> Rendering: ...


def write_rendering(rendering: Rendering, out_dir: Path) -> list[Path]:
    """Write every file (atomically, each replaced by rename) and remove owned leftovers.
    Returns the paths written."""
    written: list[Path] = []
    keep = {out_dir / Path(f.path) for f in rendering.files}
    for pattern in rendering.owned:
        for stale in sorted(out_dir.glob(pattern)):
            if stale not in keep and stale.is_file():
                stale.unlink()
    for rendered in rendering.files:
        target = out_dir / Path(rendered.path)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(rendered.content)
            os.chmod(temporary, rendered.mode)
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        written.append(target)
    return written
