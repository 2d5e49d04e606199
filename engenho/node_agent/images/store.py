"""The local image store: an OCI image layout in ``DATA_DIR/images/``.

::

    images/oci-layout            {"imageLayoutVersion": "1.0.0"}
    images/index.json            one manifest descriptor per name, annotated with the name
    images/blobs/sha256/<hex>    content, named by its sha256 (read-only files)
    images/rootfs/<hex>/         root filesystems unpacked per manifest (a cache; see unpacking)
    images/tmp/                  staging for imports and unpacks, on the same filesystem
    images/.lock                 flock held by writers (``engenho image import`` and the agent)

``skopeo copy oci:DATA_DIR/images:busybox ...`` can read it, because it is a plain layout.
Every blob is verified against its digest before it is linked into ``blobs/``, so a name in
``index.json`` always leads to complete, verified content. Readers re-read ``index.json``
when it changes, so images imported by the command line while an agent runs are seen at once.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from engenho.node_agent.images.errors import (
    DigestMismatchError,
    ImageNotFoundError,
    ImageStoreError,
)
from engenho.node_agent.images.model import (
    ANNOTATION_IMAGE_NAME,
    ANNOTATION_REF_NAME,
    MEDIA_OCI_INDEX,
    Descriptor,
    ImageConfig,
    Manifest,
    StoredImage,
)
from engenho.node_agent.images.reference import Reference, parse_reference

__all__ = ["ImageStore", "sha256_file"]

_CHUNK = 1 << 20


def sha256_file(path: Path) -> tuple[str, int]:
    """``("sha256:<hex>", size)`` of a file."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as stream:
        while chunk := stream.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return f"sha256:{digest.hexdigest()}", size


class ImageStore:
    """A content-addressed OCI image layout. Methods are synchronous (file I/O): call them
    from a worker thread in async code (``asyncio.to_thread``)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._index_stamp: tuple[int, int, int] | None = None
        self._entries: list[Descriptor] = []
        self._images: dict[str, StoredImage] = {}

    # -- layout ---------------------------------------------------------------------------

    @property
    def blobs(self) -> Path:
        return self.root / "blobs" / "sha256"

    @property
    def rootfs_cache(self) -> Path:
        return self.root / "rootfs"

    @property
    def staging(self) -> Path:
        return self.root / "tmp"

    def blob_path(self, digest: str) -> Path:
        algorithm, _, hex_part = digest.partition(":")
        if algorithm != "sha256" or len(hex_part) != 64:
            raise ImageStoreError(f"{digest!r} is not a sha256 digest")
        return self.blobs / hex_part

    def has_blob(self, digest: str) -> bool:
        return self.blob_path(digest).is_file()

    def _ensure_layout(self) -> None:
        self.blobs.mkdir(parents=True, exist_ok=True)
        self.staging.mkdir(parents=True, exist_ok=True)
        layout = self.root / "oci-layout"
        if not layout.exists():
            _write_atomic(layout, b'{"imageLayoutVersion":"1.0.0"}', self.staging)
        if not (self.root / "index.json").exists():
            self._write_index([])

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the store's writer lock (an flock, so it also excludes other processes)."""
        self.root.mkdir(parents=True, exist_ok=True)
        with (self.root / ".lock").open("a+b") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                self._ensure_layout()
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    # -- blobs ----------------------------------------------------------------------------

    def staging_file(self) -> tuple[IO[bytes], Path]:
        """A new file in ``tmp/`` (same filesystem as ``blobs/``, so linking is a rename)."""
        self.staging.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=self.staging, prefix="blob-")
        return os.fdopen(fd, "wb"), Path(name)

    def add_blob(self, staged: Path, digest: str, size: int | None = None) -> bool:
        """Link a staged, already hashed file into ``blobs/`` as ``digest``; True when it is
        new. The staged file is consumed either way."""
        target = self.blob_path(digest)
        if target.exists():
            staged.unlink(missing_ok=True)
            return False
        if size is not None and staged.stat().st_size != size:
            staged.unlink(missing_ok=True)
            raise DigestMismatchError(f"blob {digest} has the wrong size")
        staged.chmod(0o444)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staged, target)
        return True

    def add_bytes(self, data: bytes) -> str:
        """Store ``data`` as a blob; returns its digest."""
        digest = f"sha256:{hashlib.sha256(data).hexdigest()}"
        if not self.has_blob(digest):
            stream, staged = self.staging_file()
            with stream:
                stream.write(data)
                stream.flush()
                os.fsync(stream.fileno())
            self.add_blob(staged, digest)
        return digest

    def read_blob(self, digest: str) -> bytes:
        try:
            return self.blob_path(digest).read_bytes()
        except FileNotFoundError as exc:
            raise ImageStoreError(f"blob {digest} is missing from the store") from exc

    def read_json(self, digest: str) -> Any:
        try:
            return json.loads(self.read_blob(digest))
        except json.JSONDecodeError as exc:
            raise ImageStoreError(f"blob {digest} is not JSON") from exc

    # -- index ----------------------------------------------------------------------------

    def _load(self) -> None:
        index = self.root / "index.json"
        try:
            st = index.stat()
        except FileNotFoundError:
            self._index_stamp, self._entries, self._images = None, [], {}
            return
        stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
        if stamp == self._index_stamp:
            return
        try:
            data = json.loads(index.read_bytes())
        except json.JSONDecodeError as exc:
            raise ImageStoreError(f"{index} is not JSON") from exc
        entries = [
            Descriptor.from_json(item, f"index.json manifest {n}")
            for n, item in enumerate(data.get("manifests") or [])
        ]
        images: dict[str, StoredImage] = {}
        for entry in entries:
            image = self._image_for(entry)
            images[_entry_key(image.reference, entry.digest)] = image
        self._index_stamp, self._entries, self._images = stamp, entries, images

    def _image_for(self, entry: Descriptor) -> StoredImage:
        manifest = Manifest.from_json(self.read_json(entry.digest), f"manifest {entry.digest}")
        config = ImageConfig.from_json(
            self.read_json(manifest.config.digest), f"config {manifest.config.digest}"
        )
        name = entry.annotations.get(ANNOTATION_IMAGE_NAME)
        return StoredImage(
            reference=parse_reference(name) if name else None,
            manifest_digest=entry.digest,
            manifest=manifest,
            config=config,
        )

    def _write_index(self, entries: list[Descriptor]) -> None:
        document = {
            "schemaVersion": 2,
            "mediaType": MEDIA_OCI_INDEX,
            "manifests": [entry.to_json() for entry in entries],
        }
        _write_atomic(
            self.root / "index.json",
            json.dumps(document, indent=2, sort_keys=True).encode() + b"\n",
            self.staging,
        )

    def images(self) -> list[StoredImage]:
        """Every stored image, sorted by name (untagged ones last)."""
        self._load()
        return sorted(
            self._images.values(),
            key=lambda image: (
                image.reference is None,
                str(image.reference or ""),
                image.manifest_digest,
            ),
        )

    def find(self, reference: str | Reference) -> StoredImage | None:
        """The image a reference names, or None. ``busybox`` means
        ``docker.io/library/busybox:latest``; ``name@sha256:...`` matches by manifest digest
        (first under that name, then any name: the content is the same); ``sha256:<hex>``
        alone matches a manifest or config digest. Raises InvalidReferenceError."""
        self._load()
        if isinstance(reference, str) and reference.startswith("sha256:"):
            for image in self._images.values():
                if reference in (image.manifest_digest, image.image_id):
                    return image
            return None
        ref = reference if isinstance(reference, Reference) else parse_reference(reference)
        if ref.digest is not None:
            same_digest = [i for i in self._images.values() if i.manifest_digest == ref.digest]
            for image in same_digest:
                if image.reference and image.reference.repository == ref.repository:
                    return image
            return same_digest[0] if same_digest else None
        for image in self._images.values():
            if image.reference == ref:
                return image
        return None

    def resolve(self, reference: str | Reference) -> StoredImage:
        """Like ``find``, but raises ImageNotFoundError."""
        image = self.find(reference)
        if image is None:
            raise ImageNotFoundError(str(reference))
        return image

    def tag(self, reference: Reference | None, manifest: Descriptor) -> StoredImage:
        """Point ``reference`` at ``manifest`` (whose blobs must be stored); replaces what
        the name pointed at before. Call with the lock held."""
        if reference is not None and reference.tag is None:
            raise ImageStoreError(f"{reference} has no tag to store it under")
        self._load()
        annotations = {}
        if reference is not None:
            annotations = {
                ANNOTATION_IMAGE_NAME: str(reference),
                ANNOTATION_REF_NAME: reference.tag or "",
            }
        entry = Descriptor(
            manifest.media_type,
            manifest.digest,
            manifest.size,
            annotations,
            manifest.platform,
        )
        image = self._image_for(entry)
        kept = [
            e
            for e in self._entries
            if e.annotations.get(ANNOTATION_IMAGE_NAME) != annotations.get(ANNOTATION_IMAGE_NAME)
            or (reference is None and e.digest != manifest.digest)
        ]
        self._write_index([*kept, entry])
        self._index_stamp = None
        return image

    def untag(self, reference: str | Reference) -> StoredImage:
        """Remove a name from the index (blobs stay until ``collect_garbage``)."""
        with self.locked():
            image = self.resolve(reference)
            kept = [
                e
                for e in self._entries
                if not (
                    e.digest == image.manifest_digest
                    and e.annotations.get(ANNOTATION_IMAGE_NAME)
                    == (str(image.reference) if image.reference else None)
                )
            ]
            self._write_index(kept)
            self._index_stamp = None
            return image

    def collect_garbage(
        self, *, rootfs: bool = True, keep_rootfs: frozenset[str] = frozenset()
    ) -> int:
        """Delete blobs (and, with ``rootfs``, unpacked root filesystems) no stored image
        refers to; returns the number of blob bytes freed. ``keep_rootfs`` names manifest
        digests whose trees containers still use (an overlay's lower directory must stay)."""
        freed = 0
        with self.locked():
            self._load()
            live: set[str] = set()
            manifests: set[str] = set(keep_rootfs)
            for image in self._images.values():
                manifests.add(image.manifest_digest)
                live.add(image.manifest_digest.partition(":")[2])
                live.add(image.manifest.config.hex)
                live.update(layer.hex for layer in image.manifest.layers)
            for blob in self.blobs.iterdir():
                if blob.name not in live:
                    freed += blob.stat().st_size
                    blob.unlink()
            if rootfs and self.rootfs_cache.is_dir():
                live_rootfs = {digest.partition(":")[2] for digest in manifests}
                for tree in self.rootfs_cache.iterdir():
                    if tree.name not in live_rootfs:
                        shutil.rmtree(tree, ignore_errors=True)
        return freed


def _entry_key(reference: Reference | None, digest: str) -> str:
    return str(reference) if reference is not None else f"@{digest}"


def _write_atomic(path: Path, data: bytes, staging: Path) -> None:
    staging.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=staging, prefix=path.name + ".")
    try:
        with os.fdopen(fd, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(name, 0o644)
        os.replace(name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
