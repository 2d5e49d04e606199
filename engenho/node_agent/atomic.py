"""Upstream's ``AtomicWriter``: a directory of files replaced all at once.

ConfigMap, Secret, downward API and projected volumes are written so that a container never
sees half an update::

    <dir>/..2024_01_02_03_04_05.123456789/   the payload, one timestamped directory per version
    <dir>/..data -> ..2024_01_02_...        the current version (swapped with one rename)
    <dir>/<key>  -> ..data/<key>            what the container reads (stable symlinks)

A new payload is written into a new timestamped directory, ``..data_tmp`` is pointed at it
and renamed over ``..data`` (atomic), the user-visible links are added or removed, and the
old version is deleted. Writing the payload already there changes nothing.
"""

from __future__ import annotations

import os
import posixpath
import shutil
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

from attrs import frozen

__all__ = ["AtomicWriter", "FileProjection", "PayloadError"]

_DATA = "..data"
_DATA_TMP = "..data_tmp"


class PayloadError(ValueError):
    """A payload path that would escape the volume (absolute, ``..``) or is empty."""


@frozen
class FileProjection:
    data: bytes
    mode: int = 0o644


def _validate(path: str) -> str:
    if not path:
        raise PayloadError("invalid path: must not be empty")
    if posixpath.isabs(path):
        raise PayloadError(f"invalid path: must be relative path: {path}")
    parts = path.split("/")
    if ".." in parts:
        raise PayloadError(f"invalid path: must not contain '..': {path}")
    if path.startswith(".."):
        raise PayloadError(f"invalid path: must not start with '..': {path}")
    return posixpath.normpath(path)


class AtomicWriter:
    """Writes payloads into ``target`` (created if missing)."""

    def __init__(self, target: Path) -> None:
        self.target = target

    def current(self) -> dict[str, FileProjection] | None:
        """The payload in place, or None when nothing was written yet."""
        data = self.target / _DATA
        if not data.is_symlink():
            return None
        root = self.target / os.readlink(data)
        payload: dict[str, FileProjection] = {}
        for directory, _dirs, files in os.walk(root):
            for name in files:
                path = Path(directory) / name
                relative = path.relative_to(root).as_posix()
                payload[relative] = FileProjection(path.read_bytes(), path.stat().st_mode & 0o7777)
        return payload

    def write(self, payload: Mapping[str, FileProjection]) -> bool:
        """Make ``payload`` the volume's content; whether anything changed."""
        clean = {_validate(path): projection for path, projection in payload.items()}
        self.target.mkdir(parents=True, exist_ok=True)
        old = self.current()
        if old == clean:
            self._link_visible(clean)
            return False
        stamp = time.strftime("..%Y_%m_%d_%H_%M_%S.", time.gmtime())
        version = Path(tempfile.mkdtemp(prefix=stamp, dir=self.target))
        for path, projection in clean.items():
            file = version / path
            file.parent.mkdir(parents=True, exist_ok=True)
            file.write_bytes(projection.data)
            os.chmod(file, projection.mode)
        os.chmod(version, 0o755)  # noqa: S103 - upstream's mode; containers read it
        previous = os.readlink(self.target / _DATA) if (self.target / _DATA).is_symlink() else None
        tmp = self.target / _DATA_TMP
        if tmp.is_symlink() or tmp.exists():
            tmp.unlink()
        os.symlink(version.name, tmp)
        os.replace(tmp, self.target / _DATA)
        self._link_visible(clean)
        self._remove_stale(clean, old or {})
        if previous and previous != version.name:
            shutil.rmtree(self.target / previous, ignore_errors=True)
        return True

    def _link_visible(self, payload: Mapping[str, FileProjection]) -> None:
        for top in {path.split("/")[0] for path in payload}:
            link = self.target / top
            if not link.is_symlink():
                if link.exists():
                    shutil.rmtree(link) if link.is_dir() else link.unlink()
                os.symlink(posixpath.join(_DATA, top), link)

    def _remove_stale(
        self, payload: Mapping[str, FileProjection], old: Mapping[str, FileProjection]
    ) -> None:
        wanted = {path.split("/")[0] for path in payload}
        for top in {path.split("/")[0] for path in old} - wanted:
            link = self.target / top
            if link.is_symlink():
                link.unlink()
