"""Golden files: rendered output kept beside its input and compared byte for byte.

``UPDATE_GOLDEN=1 pytest tests/config`` rewrites them; review the diff before committing it.
"""

from __future__ import annotations

import os
from pathlib import Path

from engenho.config import ClusterConfig, RenderedFile, Rendering, load_cluster_config

__all__ = ["CASES", "GOLDEN", "check_golden", "load_case", "updating"]

GOLDEN = Path(__file__).parent / "golden"
CASES = sorted(p.name for p in GOLDEN.iterdir() if p.is_dir())


def load_case(case: str) -> ClusterConfig:
    """``golden/<case>/cluster.yaml``; the ``example`` case's is what ``cluster-config
    example`` prints (a test keeps the two equal)."""
    return load_cluster_config(GOLDEN / case / "cluster.yaml")


def check_golden(case: str, rendering: Rendering) -> None:
    directory = GOLDEN / case / rendering.renderer
    expected = _read(directory)
    actual = {str(f.path): f.content for f in rendering.files}
    if updating():
        _write(directory, rendering.files)
        return
    assert sorted(actual) == sorted(expected), f"{case}: files differ from {directory}"
    for path, content in actual.items():
        assert content == expected[path], f"{case}: {path} differs from the golden file"


def updating() -> bool:
    return bool(os.environ.get("UPDATE_GOLDEN"))


def _read(directory: Path) -> dict[str, bytes]:
    if not directory.exists():
        return {}
    return {
        str(p.relative_to(directory)): p.read_bytes()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


def _write(directory: Path, files: tuple[RenderedFile, ...]) -> None:
    for stale in directory.rglob("*") if directory.exists() else ():
        if stale.is_file():
            stale.unlink()
    for rendered in files:
        target = directory / Path(rendered.path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(rendered.content)
