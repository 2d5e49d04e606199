"""Hand-made image archives for the import tests: docker-archives as ``docker save`` writes
them (both the legacy layout with symlinked layers and the blobs/ layout) and OCI layouts
with any index, so each format's corner is tested without docker, podman or skopeo."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "add_bytes",
    "digest",
    "docker_archive",
    "image_config",
    "layer",
    "manifest_for",
    "oci_archive",
]


def digest(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


def add_bytes(tar: tarfile.TarFile, name: str, data: bytes, mode: int = 0o644) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = mode
    tar.addfile(info, io.BytesIO(data))


def layer(files: Mapping[str, bytes] = {}, *, extra: Iterable[tarfile.TarInfo] = ()) -> bytes:
    """An uncompressed layer tar holding ``files`` (and any hand-made ``extra`` entries)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in files.items():
            add_bytes(tar, name, data)
        for info in extra:
            tar.addfile(info)
    return buffer.getvalue()


def image_config(
    layers: Sequence[bytes], *, architecture: str = "amd64", os: str = "linux"
) -> bytes:
    return json.dumps(
        {
            "architecture": architecture,
            "os": os,
            "config": {"Cmd": ["sh"], "Env": ["PATH=/bin"]},
            "rootfs": {"type": "layers", "diff_ids": [digest(data) for data in layers]},
        }
    ).encode()


def docker_archive(
    path: Path,
    layers: Sequence[bytes],
    repo_tags: Sequence[str],
    *,
    gzip_layers: bool = False,
    legacy: bool = True,
    config: bytes | None = None,
    duplicate_first_layer: bool = False,
) -> None:
    """``docker save`` output: ``manifest.json`` + config + layer tars. ``legacy`` is the
    pre-Docker-25 layout (``<id>/layer.tar``, config ``<hex>.json``); with
    ``duplicate_first_layer`` the first layer appears twice, the second time as a symlink
    (how docker de-duplicates)."""
    config = config if config is not None else image_config(layers)
    entries: list[str] = []
    with tarfile.open(path, "w") as tar:
        stored = [gzip.compress(data, mtime=0) if gzip_layers else data for data in layers]
        for number, data in enumerate(stored):
            if legacy:
                name = f"{number:064x}/layer.tar"
                add_bytes(tar, f"{number:064x}/VERSION", b"1.0")
            else:
                name = f"blobs/sha256/{digest(data).partition(':')[2]}"
            add_bytes(tar, name, data)
            entries.append(name)
        if duplicate_first_layer:
            alias = "f" * 64 + "/layer.tar"
            info = tarfile.TarInfo(alias)
            info.type = tarfile.SYMTYPE
            info.linkname = f"../{entries[0]}"
            tar.addfile(info)
            entries.append(alias)
            config = image_config([*layers, layers[0]])
        config_name = (
            f"{digest(config).partition(':')[2]}.json"
            if legacy
            else f"blobs/sha256/{digest(config).partition(':')[2]}"
        )
        add_bytes(tar, config_name, config)
        manifest = [{"Config": config_name, "RepoTags": list(repo_tags), "Layers": entries}]
        add_bytes(tar, "manifest.json", json.dumps(manifest).encode())


def oci_archive(
    path: Path,
    blobs: Iterable[bytes],
    index: Mapping[str, Any],
    *,
    tamper: Mapping[str, bytes] | None = None,
) -> None:
    """An OCI layout tar with these blobs and this ``index.json``; ``tamper`` replaces the
    content of blobs (by digest) while keeping their names."""
    with tarfile.open(path, "w") as tar:
        add_bytes(tar, "oci-layout", b'{"imageLayoutVersion": "1.0.0"}')
        add_bytes(tar, "index.json", json.dumps(index).encode())
        for data in blobs:
            name = digest(data)
            content = (tamper or {}).get(name, data)
            add_bytes(tar, f"blobs/sha256/{name.partition(':')[2]}", content)


def manifest_for(config: bytes, layers: Sequence[bytes], *, media: str) -> bytes:
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": digest(config),
                "size": len(config),
            },
            "layers": [{"mediaType": media, "digest": digest(d), "size": len(d)} for d in layers],
        }
    ).encode()
