"""Import images into the store: OCI image-layout archives, docker-archives, wasm modules.

- **oci-archive** (``skopeo copy ... oci-archive:FILE``, ``podman save --format oci-archive``,
  ``docker save`` since Docker 25): a tar of an OCI image layout. Names come from the index
  entries' ``io.containerd.image.name`` or ``org.opencontainers.image.ref.name`` annotations;
  an image index (multi-platform) resolves to this host's platform.
- **docker-archive** (``docker save``, ``podman save``): ``manifest.json`` naming a config
  and layer tars per image, with ``RepoTags``. It becomes an OCI manifest over the same
  blobs, and every layer's uncompressed digest is checked against the config's ``diff_ids``.
- **wasm** (``--wasm FILE --tag REF``): a WebAssembly module as a one-layer image, layer type
  ``application/wasm``, config ``os: wasip1, architecture: wasm`` (runwasi's wasi images).

The archive is read once, as a stream; every blob is hashed while it is staged in
``images/tmp`` and must match its name and its descriptor's size. Nothing is named in the
index until every blob of the image is verified, and a failed import leaves the store as
it was.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import shutil
import tarfile
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path, PurePosixPath
from typing import IO, Any

from attrs import frozen

from engenho.node_agent.images.errors import ArchiveError, DigestMismatchError
from engenho.node_agent.images.model import (
    ANNOTATION_IMAGE_NAME,
    ANNOTATION_REF_NAME,
    INDEX_TYPES,
    MEDIA_OCI_CONFIG,
    MEDIA_OCI_LAYER,
    MEDIA_OCI_LAYER_GZIP,
    MEDIA_OCI_MANIFEST,
    MEDIA_WASM_LAYER,
    Descriptor,
    Manifest,
    Platform,
    StoredImage,
    host_platform,
)
from engenho.node_agent.images.reference import Reference, parse_reference
from engenho.node_agent.images.store import ImageStore

__all__ = ["ImportResult", "import_archive", "import_wasm"]

_CHUNK = 1 << 20
_JSON_LIMIT = 16 << 20
_WASM_MAGIC = b"\0asm"

Progress = Callable[[int], None]


@frozen
class ImportResult:
    format: str
    """``oci-archive``, ``docker-archive`` or ``wasm``."""
    images: tuple[StoredImage, ...]
    blobs_added: int
    blobs_present: int
    bytes_added: int


@frozen
class _Staged:
    path: Path
    digest: str
    size: int


@frozen
class _BareTag:
    """An index entry named only by a tag (``org.opencontainers.image.ref.name: latest``)."""

    tag: str


@frozen
class _Candidate:
    manifest: Descriptor
    names: tuple[Reference | _BareTag | None, ...]


class _CountingReader:
    """A binary file wrapper that reports bytes read (the progress bar's feed)."""

    def __init__(self, raw: IO[bytes], progress: Progress | None) -> None:
        self._raw = raw
        self._progress = progress

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(size)
        if self._progress is not None and data:
            self._progress(len(data))
        return data


def import_archive(
    store: ImageStore,
    archive: Path,
    *,
    tag: str | None = None,
    progress: Progress | None = None,
) -> ImportResult:
    """Import an oci-archive or docker-archive (optionally gzip-compressed). ``tag`` names
    the image (the archive must hold exactly one); without it the archive's names are used.
    Raises ArchiveError (DigestMismatchError for damaged content) and InvalidReferenceError."""
    override = parse_reference(tag) if tag is not None else None
    store.staging.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(dir=store.staging, prefix="import-"))
    try:
        files, aliases = _stage(archive, workdir, progress)
        _check_blob_names(files)
        blobs = {staged.digest: staged for staged in files.values()}
        if "oci-layout" in files or "index.json" in files:
            fmt = "oci-archive"
            index = _load_json(files, "index.json")
            candidates = _oci_candidates(store, index, blobs)
        elif "manifest.json" in files:
            fmt = "docker-archive"
            candidates = _docker_candidates(store, files, aliases, blobs, workdir)
        else:
            raise ArchiveError(
                f"{archive} is neither an OCI image layout (oci-layout, index.json) "
                "nor a docker-archive (manifest.json)"
            )
        if not candidates:
            raise ArchiveError(f"{archive} holds no image")
        if override is not None:
            if len(candidates) != 1:
                raise ArchiveError(
                    f"{archive} holds {len(candidates)} images; --tag names exactly one"
                )
            candidates = [_Candidate(candidates[0].manifest, (override,))]
        for candidate in candidates:
            for name in candidate.names:
                if isinstance(name, _BareTag):
                    raise ArchiveError(
                        f"the archive names an image only by the tag {name.tag!r}; "
                        "give --tag REPOSITORY[:TAG]"
                    )
        return _commit(store, fmt, candidates, blobs)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def import_wasm(store: ImageStore, module: Path, *, tag: str) -> ImportResult:
    """Import a WebAssembly module as a one-layer image named ``tag``."""
    reference = parse_reference(tag)
    data = module.read_bytes()
    if not data.startswith(_WASM_MAGIC):
        raise ArchiveError(f"{module} is not a WebAssembly module (no \\0asm header)")
    with store.locked():
        before = store.has_blob(_digest_of(data))
        layer_digest = store.add_bytes(data)
        config = {
            "architecture": "wasm",
            "os": "wasip1",
            "config": {"Entrypoint": [module.name]},
            # Wasm layers are not filesystem layers: runwasi's wasi images list no diff_ids.
            "rootfs": {"type": "layers", "diff_ids": []},
        }
        config_bytes = _canonical(config)
        config_digest = store.add_bytes(config_bytes)
        manifest = {
            "schemaVersion": 2,
            "mediaType": MEDIA_OCI_MANIFEST,
            "config": {
                "mediaType": MEDIA_OCI_CONFIG,
                "digest": config_digest,
                "size": len(config_bytes),
            },
            "layers": [
                {
                    "mediaType": MEDIA_WASM_LAYER,
                    "digest": layer_digest,
                    "size": len(data),
                    "annotations": {"org.opencontainers.image.title": module.name},
                }
            ],
        }
        manifest_bytes = _canonical(manifest)
        manifest_digest = store.add_bytes(manifest_bytes)
        image = store.tag(
            reference,
            Descriptor(
                MEDIA_OCI_MANIFEST,
                manifest_digest,
                len(manifest_bytes),
                platform=Platform("wasip1", "wasm"),
            ),
        )
    return ImportResult(
        format="wasm",
        images=(image,),
        blobs_added=0 if before else 1,
        blobs_present=1 if before else 0,
        bytes_added=0 if before else len(data),
    )


# -- staging ------------------------------------------------------------------------------


def _stage(
    archive: Path, workdir: Path, progress: Progress | None
) -> tuple[dict[str, _Staged], dict[str, str]]:
    """Read the archive once: every regular file is hashed into ``workdir``; symlinks and
    hard links (docker-archive de-duplicates layers with them) are returned as aliases."""
    files: dict[str, _Staged] = {}
    aliases: dict[str, str] = {}
    try:
        with archive.open("rb") as raw:
            reader = _CountingReader(raw, progress)
            with tarfile.open(fileobj=reader, mode="r|*") as tar:  # type: ignore[call-overload]
                for number, member in enumerate(tar):
                    name = _member_name(member.name)
                    if not name:
                        continue
                    if member.issym() or member.islnk():
                        target = member.linkname
                        if member.issym():
                            target = str(PurePosixPath(name).parent / target)
                        aliases[name] = _normalise(target)
                    elif member.isfile():
                        stream = tar.extractfile(member)
                        if stream is None:
                            continue
                        files[name] = _hash_into(stream, workdir / f"{number:06d}")
    except (tarfile.TarError, EOFError, OSError, gzip.BadGzipFile) as exc:
        raise ArchiveError(f"{archive} is not a readable tar archive: {exc}") from exc
    return files, aliases


def _hash_into(stream: IO[bytes], target: Path) -> _Staged:
    digest = hashlib.sha256()
    size = 0
    with target.open("wb") as out:
        while chunk := stream.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
            out.write(chunk)
    return _Staged(target, f"sha256:{digest.hexdigest()}", size)


def _member_name(name: str) -> str:
    return _normalise(name)


def _normalise(name: str) -> str:
    parts: list[str] = []
    for part in PurePosixPath(name.lstrip("/")).parts:
        if part in ("", "."):
            continue
        if part == "..":
            if parts:
                parts.pop()
            continue
        parts.append(part)
    return "/".join(parts)


def _load_json(files: Mapping[str, _Staged], name: str) -> Any:
    staged = files.get(name)
    if staged is None:
        raise ArchiveError(f"the archive has no {name}")
    if staged.size > _JSON_LIMIT:
        raise ArchiveError(f"{name} is larger than {_JSON_LIMIT} bytes")
    try:
        return json.loads(staged.path.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ArchiveError(f"{name} is not JSON: {exc}") from exc


def _blob_json(store: ImageStore, blobs: Mapping[str, _Staged], descriptor: Descriptor) -> Any:
    staged = _blob(store, blobs, descriptor)
    path = staged.path if staged is not None else store.blob_path(descriptor.digest)
    try:
        return json.loads(path.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ArchiveError(f"blob {descriptor.digest} is not JSON: {exc}") from exc


def _blob(
    store: ImageStore, blobs: Mapping[str, _Staged], descriptor: Descriptor
) -> _Staged | None:
    """The staged blob a descriptor names (verified: digest and size), or None when the
    store already holds it. Raises when it is in neither."""
    staged = blobs.get(descriptor.digest)
    if staged is not None:
        if staged.size != descriptor.size:
            raise DigestMismatchError(
                f"blob {descriptor.digest} is {staged.size} bytes; its descriptor says "
                f"{descriptor.size}"
            )
        return staged
    if store.has_blob(descriptor.digest):
        if store.blob_path(descriptor.digest).stat().st_size != descriptor.size:
            raise DigestMismatchError(
                f"blob {descriptor.digest} in the store differs in size from its descriptor"
            )
        return None
    raise ArchiveError(f"blob {descriptor.digest} ({descriptor.media_type}) is not in the archive")


# -- oci-archive --------------------------------------------------------------------------


def _oci_candidates(
    store: ImageStore, index: Any, blobs: Mapping[str, _Staged]
) -> list[_Candidate]:
    if not isinstance(index, Mapping):
        raise ArchiveError("index.json must be an object")
    candidates: list[_Candidate] = []
    for number, item in enumerate(index.get("manifests") or []):
        descriptor = Descriptor.from_json(item, f"index.json manifest {number}")
        names = _names_from_annotations(descriptor.annotations)
        manifest = _platform_manifest(store, blobs, descriptor)
        _check_manifest(store, blobs, manifest)
        merged = next((c for c in candidates if c.manifest.digest == manifest.digest), None)
        if merged is not None:
            candidates.remove(merged)
            names = tuple(dict.fromkeys([*merged.names, *names]))
            if len(names) > 1:
                names = tuple(n for n in names if n is not None)
        candidates.append(_Candidate(manifest, names))
    return candidates


def _check_blob_names(files: Mapping[str, _Staged]) -> None:
    """A file stored as ``blobs/sha256/<hex>`` must hash to ``<hex>``."""
    for name, staged in files.items():
        parts = name.split("/")
        is_blob = len(parts) == 3 and parts[0] == "blobs" and parts[1] == "sha256"
        if is_blob and staged.digest != f"sha256:{parts[2]}":
            raise DigestMismatchError(f"{name} hashes to {staged.digest}")


def _names_from_annotations(
    annotations: Mapping[str, str],
) -> tuple[Reference | _BareTag | None, ...]:
    full = annotations.get(ANNOTATION_IMAGE_NAME)
    if full:
        return (parse_reference(full),)
    ref_name = annotations.get(ANNOTATION_REF_NAME)
    if not ref_name:
        return (None,)
    if "/" in ref_name or ":" in ref_name:
        return (parse_reference(ref_name),)
    # A bare tag ("latest"): the image-spec's usual ref.name, which names no repository.
    return (_BareTag(ref_name),)


def _platform_manifest(
    store: ImageStore, blobs: Mapping[str, _Staged], descriptor: Descriptor, depth: int = 0
) -> Descriptor:
    """Follow image indexes down to the manifest for this host's platform."""
    if descriptor.media_type not in INDEX_TYPES:
        return descriptor
    if depth > 4:
        raise ArchiveError("image indexes are nested too deeply")
    data = _blob_json(store, blobs, descriptor)
    entries = [
        Descriptor.from_json(item, f"index {descriptor.digest} manifest {n}")
        for n, item in enumerate(data.get("manifests") or [])
    ]
    here = host_platform()
    for wanted in (
        lambda p: p is not None and (p.os, p.architecture) == (here.os, here.architecture),
        lambda p: p is not None and p.architecture == "wasm",
    ):
        for entry in entries:
            if wanted(entry.platform) and (entry.digest in blobs or store.has_blob(entry.digest)):
                return _platform_manifest(store, blobs, entry, depth + 1)
    present = [e for e in entries if e.digest in blobs or store.has_blob(e.digest)]
    if len(present) == 1:
        return _platform_manifest(store, blobs, present[0], depth + 1)
    platforms = ", ".join(
        f"{e.platform.os}/{e.platform.architecture}" for e in entries if e.platform
    )
    raise ArchiveError(
        f"index {descriptor.digest} has no manifest for {here.os}/{here.architecture} "
        f"(it has: {platforms or 'no platforms'})"
    )


def _check_manifest(
    store: ImageStore, blobs: Mapping[str, _Staged], descriptor: Descriptor
) -> None:
    manifest = Manifest.from_json(
        _blob_json(store, blobs, descriptor), f"manifest {descriptor.digest}"
    )
    _blob_json(store, blobs, manifest.config)
    for layer in manifest.layers:
        _blob(store, blobs, layer)


# -- docker-archive -----------------------------------------------------------------------


def _docker_candidates(
    store: ImageStore,
    files: Mapping[str, _Staged],
    aliases: Mapping[str, str],
    blobs: dict[str, _Staged],
    workdir: Path,
) -> list[_Candidate]:
    entries = _load_json(files, "manifest.json")
    if not isinstance(entries, list):
        raise ArchiveError("manifest.json must be a list")

    def find(name: str) -> _Staged:
        seen = 0
        name = _normalise(name)
        while name in aliases and name not in files:
            name = aliases[name]
            seen += 1
            if seen > 16:
                raise ArchiveError(f"{name}: too many links")
        staged = files.get(name)
        if staged is None:
            raise ArchiveError(f"manifest.json names {name}, which is not in the archive")
        return staged

    candidates: list[_Candidate] = []
    for number, entry in enumerate(entries):
        if not isinstance(entry, Mapping) or "Config" not in entry:
            raise ArchiveError(f"manifest.json entry {number} has no Config")
        config_staged = find(str(entry["Config"]))
        config_name = PurePosixPath(str(entry["Config"])).name.removesuffix(".json")
        if len(config_name) == 64 and config_staged.digest != f"sha256:{config_name}":
            raise DigestMismatchError(
                f"config {entry['Config']} hashes to {config_staged.digest}, not its name"
            )
        try:
            config = json.loads(config_staged.path.read_bytes())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ArchiveError(f"config {entry['Config']} is not JSON: {exc}") from exc
        diff_ids = list((config.get("rootfs") or {}).get("diff_ids") or [])
        layer_names = list(entry.get("Layers") or [])
        if len(diff_ids) != len(layer_names):
            raise ArchiveError(
                f"manifest.json entry {number} lists {len(layer_names)} layers but its config "
                f"has {len(diff_ids)} diff_ids"
            )
        layers = []
        for layer_name, diff_id in zip(layer_names, diff_ids, strict=True):
            staged = find(str(layer_name))
            compressed = _is_gzip(staged.path)
            uncompressed = _gunzip_digest(staged.path) if compressed else staged.digest
            if uncompressed != diff_id:
                raise DigestMismatchError(
                    f"layer {layer_name} has diff_id {uncompressed}; the config says {diff_id}"
                )
            blobs[staged.digest] = staged
            layers.append(
                {
                    "mediaType": MEDIA_OCI_LAYER_GZIP if compressed else MEDIA_OCI_LAYER,
                    "digest": staged.digest,
                    "size": staged.size,
                }
            )
        blobs[config_staged.digest] = config_staged
        manifest = {
            "schemaVersion": 2,
            "mediaType": MEDIA_OCI_MANIFEST,
            "config": {
                "mediaType": MEDIA_OCI_CONFIG,
                "digest": config_staged.digest,
                "size": config_staged.size,
            },
            "layers": layers,
        }
        manifest_bytes = _canonical(manifest)
        manifest_path = workdir / f"manifest-{number}"
        manifest_path.write_bytes(manifest_bytes)
        manifest_staged = _Staged(manifest_path, _digest_of(manifest_bytes), len(manifest_bytes))
        blobs[manifest_staged.digest] = manifest_staged
        tags: tuple[Reference | _BareTag | None, ...] = tuple(
            parse_reference(str(t)) for t in entry.get("RepoTags") or []
        )
        candidates.append(
            _Candidate(
                Descriptor(MEDIA_OCI_MANIFEST, manifest_staged.digest, manifest_staged.size),
                tags or (None,),
            )
        )
    return candidates


def _is_gzip(path: Path) -> bool:
    with path.open("rb") as stream:
        return stream.read(2) == b"\x1f\x8b"


def _gunzip_digest(path: Path) -> str:
    digest = hashlib.sha256()
    try:
        with gzip.open(path, "rb") as stream:
            while chunk := stream.read(_CHUNK):
                digest.update(chunk)
    except (OSError, EOFError) as exc:
        raise ArchiveError(f"layer {path.name} is not valid gzip: {exc}") from exc
    return f"sha256:{digest.hexdigest()}"


# -- commit -------------------------------------------------------------------------------


def _commit(
    store: ImageStore,
    fmt: str,
    candidates: list[_Candidate],
    blobs: Mapping[str, _Staged],
) -> ImportResult:
    added = present = bytes_added = 0
    images: list[StoredImage] = []
    with store.locked():
        for candidate in candidates:
            for descriptor in _closure(store, blobs, candidate.manifest):
                staged = blobs.get(descriptor.digest)
                if staged is None or not staged.path.exists():
                    present += 1
                    continue
                if store.add_blob(staged.path, staged.digest, descriptor.size):
                    added += 1
                    bytes_added += staged.size
                else:
                    present += 1
            for name in candidate.names:
                assert not isinstance(name, _BareTag)  # refused before the commit
                images.append(store.tag(name, candidate.manifest))
    return ImportResult(
        format=fmt,
        images=tuple(images),
        blobs_added=added,
        blobs_present=present,
        bytes_added=bytes_added,
    )


def _closure(
    store: ImageStore, blobs: Mapping[str, _Staged], manifest: Descriptor
) -> list[Descriptor]:
    """The manifest, its config and its layers: config and layers first, so that the
    manifest is linked only once everything it names is in place."""
    parsed = Manifest.from_json(_blob_json(store, blobs, manifest), f"manifest {manifest.digest}")
    return [parsed.config, *parsed.layers, manifest]


def _canonical(document: Mapping[str, Any]) -> bytes:
    return json.dumps(document, separators=(",", ":"), sort_keys=True).encode()


def _digest_of(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"
