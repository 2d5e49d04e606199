"""Unpack an image's layers into a root filesystem, applying whiteouts.

The tree for a manifest is built once into ``images/rootfs/<hex>`` (a cache that containers
use read-only, as an overlay lower directory or as the source of a copy). Layers are applied
in order; each one first removes what its whiteouts name (image-spec ``layer.md``:
``.wh.<name>`` removes ``<name>`` from the layers below, ``.wh..wh..opq`` empties its
directory of the layers below), then extracts its entries.

Paths are resolved inside the tree the way ``filepath-securejoin`` does: a symlink in a
layer (``/lib -> /usr/lib``, or a malicious ``/etc -> /host/etc``) is followed relative to
the tree's root and can never lead outside it, and ``..`` stops at the root.
"""

from __future__ import annotations

import contextlib
import fcntl
import gzip
import os
import shutil
import stat
import tarfile
import tempfile
import zlib
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import IO, cast

from engenho.node_agent.images.errors import UnpackError
from engenho.node_agent.images.model import (
    MEDIA_OCI_LAYER_ZSTD,
    WASM_LAYER_MEDIA_TYPES,
    Descriptor,
    StoredImage,
)
from engenho.node_agent.images.store import ImageStore

__all__ = ["apply_layer", "ensure_rootfs", "resolve_in_root"]

_WHITEOUT = ".wh."
_OPAQUE = ".wh..wh..opq"
_MAX_LINKS = 255
_COMPLETE = ".engenho-complete"


def ensure_rootfs(store: ImageStore, image: StoredImage) -> Path:
    """The unpacked root filesystem of ``image``, building it on first use. Safe to call
    from several threads and processes at once: the build is staged and renamed into place
    under a lock file."""
    target = store.rootfs_cache / image.manifest_digest.partition(":")[2]
    if (target / _COMPLETE).exists():
        return target / "rootfs"
    store.rootfs_cache.mkdir(parents=True, exist_ok=True)
    with _file_lock(store.rootfs_cache / f".{target.name}.lock"):
        if (target / _COMPLETE).exists():
            return target / "rootfs"
        store.staging.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=store.staging, prefix="rootfs-"))
        try:
            rootfs = staging / "rootfs"
            rootfs.mkdir(mode=0o755)
            for layer in image.manifest.layers:
                if layer.media_type in WASM_LAYER_MEDIA_TYPES:
                    continue  # a module, not a filesystem layer: the wasm runtime reads it
                apply_layer(rootfs, store.blob_path(layer.digest), layer)
            (staging / _COMPLETE).touch()
            if target.exists():  # a build that died before completing
                shutil.rmtree(target)
            os.replace(staging, target)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    return target / "rootfs"


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    with path.open("a+b") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def apply_layer(root: Path, blob: Path, layer: Descriptor) -> None:
    """Apply one layer (tar, optionally gzip-compressed) onto the tree at ``root``."""
    if layer.media_type == MEDIA_OCI_LAYER_ZSTD or layer.media_type.endswith("+zstd"):
        raise UnpackError(
            f"layer {layer.digest} is zstd-compressed, which engenho cannot unpack; "
            "re-export the image with gzip layers (skopeo copy --dest-compress-format gzip)"
        )
    try:
        with _open_layer(blob) as stream, tarfile.open(fileobj=stream, mode="r|") as tar:
            _remove_whiteouts(root, tar)
        with _open_layer(blob) as stream, tarfile.open(fileobj=stream, mode="r|") as tar:
            _extract(root, tar)
    except (tarfile.TarError, EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise UnpackError(f"layer {layer.digest} is not a readable tar archive: {exc}") from exc


@contextlib.contextmanager
def _open_layer(blob: Path) -> Iterator[IO[bytes]]:
    with blob.open("rb") as raw:
        magic = raw.read(2)
        raw.seek(0)
        if magic == b"\x1f\x8b":
            with gzip.GzipFile(fileobj=raw, mode="rb") as unzipped:
                yield cast(IO[bytes], unzipped)
        else:
            yield raw


def _member_path(name: str) -> PurePosixPath | None:
    """The member's path relative to the root, or None for the root itself."""
    parts = [p for p in PurePosixPath(name.lstrip("/")).parts if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise UnpackError(f"layer entry {name!r} climbs out of the root filesystem")
    return PurePosixPath(*parts) if parts else None


def _remove_whiteouts(root: Path, tar: tarfile.TarFile) -> None:
    """Pass one: delete what this layer's whiteouts hide in the layers below. All of it
    happens before the layer's own entries are written, so an opaque directory keeps the
    entries its own layer adds."""
    for member in tar:
        path = _member_path(member.name)
        if path is None or not path.name.startswith(_WHITEOUT):
            continue
        parent = resolve_in_root(root, str(path.parent))
        if path.name == _OPAQUE:
            if parent.is_dir() and not parent.is_symlink():
                for child in parent.iterdir():
                    _remove(child)
            continue
        victim = parent / path.name[len(_WHITEOUT) :]
        _remove(victim)


def _remove(path: Path) -> None:
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return
    if stat.S_ISDIR(mode):
        shutil.rmtree(path)
    else:
        path.unlink()


def _extract(root: Path, tar: tarfile.TarFile) -> None:
    """Pass two: write every entry (whiteouts excluded), as root would: owners, modes
    (setuid included), times, devices."""
    directories: list[tuple[Path, tarfile.TarInfo]] = []
    for member in tar:
        path = _member_path(member.name)
        if path is None or path.name.startswith(_WHITEOUT):
            continue
        parent = resolve_in_root(root, str(path.parent))
        parent.mkdir(parents=True, exist_ok=True)
        target = parent / path.name
        if member.isdir():
            if target.is_symlink() or (target.exists() and not target.is_dir()):
                _remove(target)
            target.mkdir(exist_ok=True)
            directories.append((target, member))
            continue
        _remove(target)
        if member.isreg():
            stream = tar.extractfile(member)
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            with os.fdopen(fd, "wb") as out:
                if stream is not None:
                    shutil.copyfileobj(stream, out, 1 << 20)
        elif member.issym():
            os.symlink(member.linkname, target)
        elif member.islnk():
            # The link's own last component is not followed: a hard link to a symlink
            # links the symlink.
            link_path = _member_path(member.linkname)
            if link_path is None:
                raise UnpackError(f"hard link {member.name} points at the root")
            source = resolve_in_root(root, str(link_path.parent)) / link_path.name
            try:
                os.link(source, target, follow_symlinks=False)
            except FileNotFoundError as exc:
                raise UnpackError(
                    f"hard link {member.name} -> {member.linkname}: no such entry"
                ) from exc
        elif member.ischr() or member.isblk():
            kind = stat.S_IFCHR if member.ischr() else stat.S_IFBLK
            os.mknod(target, kind | 0o600, os.makedev(member.devmajor, member.devminor))
        elif member.isfifo():
            os.mkfifo(target, 0o600)
        else:
            continue
        _set_attributes(target, member)
    # Directories last and deepest first, so that writing their contents does not change
    # their times and a read-only directory does not stop its own extraction.
    for target, member in reversed(directories):
        _set_attributes(target, member)


def _set_attributes(target: Path, member: tarfile.TarInfo) -> None:
    with contextlib.suppress(OSError):
        os.lchown(target, member.uid, member.gid)
    if not member.issym():
        # chown clears setuid/setgid bits; set the mode after it.
        os.chmod(target, member.mode & 0o7777)
    with contextlib.suppress(OSError):
        os.utime(target, (member.mtime, member.mtime), follow_symlinks=False)


def resolve_in_root(root: Path, path: str) -> Path:
    """``root/path`` with every symlink on the way followed *inside* ``root`` (absolute
    targets are relative to ``root``; ``..`` stops at ``root``). The last component is
    followed too; a missing component ends the walk (the rest is appended as is)."""
    remaining = [p for p in PurePosixPath(path).parts if p not in ("/", "", ".")]
    current: list[str] = []
    links = 0
    while remaining:
        part = remaining.pop(0)
        if part == "..":
            if current:
                current.pop()
            continue
        candidate = root.joinpath(*current, part)
        try:
            mode = candidate.lstat().st_mode
        except FileNotFoundError:
            return root.joinpath(*current, part, *remaining)
        except NotADirectoryError as exc:
            raise UnpackError(f"{path!r}: a component is not a directory") from exc
        if stat.S_ISLNK(mode):
            links += 1
            if links > _MAX_LINKS:
                raise UnpackError(f"{path!r}: too many levels of symbolic links")
            target = os.readlink(candidate)
            if target.startswith("/"):
                current = []
            remaining = [
                p for p in PurePosixPath(target).parts if p not in ("/", "", ".")
            ] + remaining
            continue
        current.append(part)
    return root.joinpath(*current)
