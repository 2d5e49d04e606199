"""Build a small ``busybox`` image from the host's static busybox (Debian ``busybox-static``).

The result is an oci-archive (an OCI image layout in a tar), the same format ``skopeo copy
... oci-archive:`` writes, so it goes through the ordinary ``engenho image import`` path.
One gzip layer holds ``/bin/busybox``, a symlink per applet at the path busybox itself
reports (``busybox --list-full``: ``bin/sh``, ``usr/bin/env``, ...), the usual top-level
directories and a minimal ``/etc/passwd`` and ``/etc/group``. Every timestamp is fixed, so the
same busybox binary always gives the same digests.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import subprocess
import tarfile
from collections.abc import Iterable
from pathlib import Path

from engenho.node_agent.images.model import (
    ANNOTATION_IMAGE_NAME,
    ANNOTATION_REF_NAME,
    MEDIA_OCI_CONFIG,
    MEDIA_OCI_INDEX,
    MEDIA_OCI_LAYER_GZIP,
    MEDIA_OCI_MANIFEST,
    host_platform,
)
from engenho.node_agent.images.reference import parse_reference

__all__ = ["DEFAULT_BUSYBOX", "FALLBACK_APPLETS", "build_busybox_archive", "busybox_applets"]

DEFAULT_BUSYBOX = Path("/bin/busybox")
FALLBACK_APPLETS = (
    "bin/cat",
    "bin/echo",
    "bin/false",
    "bin/hostname",
    "bin/kill",
    "bin/ls",
    "bin/mkdir",
    "bin/ps",
    "bin/pwd",
    "bin/rm",
    "bin/sh",
    "bin/sleep",
    "bin/true",
    "usr/bin/env",
    "usr/bin/id",
    "usr/bin/nc",
    "usr/bin/wget",
)
"""Used when the binary cannot be asked for its applets (it is not for this machine)."""
_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_DIRECTORIES = ("bin", "dev", "etc", "home", "proc", "root", "sbin", "sys", "tmp", "usr",
                "usr/bin", "usr/sbin", "var")  # fmt: skip
_PASSWD = b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
_GROUP = b"root:x:0:\nnobody:x:65534:\n"


def busybox_applets(busybox: Path = DEFAULT_BUSYBOX) -> tuple[str, ...]:
    """The applets' install paths (``bin/sh``, ...), as ``busybox --list-full`` prints them."""
    try:
        listed = subprocess.run(
            [str(busybox), "--list-full"], capture_output=True, check=True, timeout=10
        ).stdout.decode()
    except (OSError, subprocess.SubprocessError):
        return FALLBACK_APPLETS
    applets = sorted({line.strip().lstrip("/") for line in listed.splitlines() if line.strip()})
    return tuple(a for a in applets if a != "bin/busybox") or FALLBACK_APPLETS


def build_busybox_archive(
    output: Path,
    *,
    busybox: Path = DEFAULT_BUSYBOX,
    reference: str = "busybox:latest",
    applets: Iterable[str] | None = None,
) -> str:
    """Write an oci-archive of a busybox image to ``output``; returns the manifest digest."""
    ref = parse_reference(reference)
    binary = busybox.read_bytes()
    layer_tar = _layer(binary, tuple(applets) if applets is not None else busybox_applets(busybox))
    layer_gz = gzip.compress(layer_tar, mtime=0)
    here = host_platform()
    config = _json(
        {
            "architecture": here.architecture,
            "os": here.os,
            "config": {"Env": [f"PATH={_PATH}"], "Cmd": ["sh"]},
            "rootfs": {"type": "layers", "diff_ids": [_digest(layer_tar)]},
            "history": [{"created_by": f"engenho image build-busybox from {busybox}"}],
        }
    )
    manifest = _json(
        {
            "schemaVersion": 2,
            "mediaType": MEDIA_OCI_MANIFEST,
            "config": {
                "mediaType": MEDIA_OCI_CONFIG,
                "digest": _digest(config),
                "size": len(config),
            },
            "layers": [
                {
                    "mediaType": MEDIA_OCI_LAYER_GZIP,
                    "digest": _digest(layer_gz),
                    "size": len(layer_gz),
                }
            ],
        }
    )
    index = _json(
        {
            "schemaVersion": 2,
            "mediaType": MEDIA_OCI_INDEX,
            "manifests": [
                {
                    "mediaType": MEDIA_OCI_MANIFEST,
                    "digest": _digest(manifest),
                    "size": len(manifest),
                    "platform": here.to_json(),
                    "annotations": {
                        ANNOTATION_IMAGE_NAME: str(ref),
                        ANNOTATION_REF_NAME: ref.tag or "latest",
                    },
                }
            ],
        }
    )
    output.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(output, "w", format=tarfile.PAX_FORMAT) as tar:
        _add_file(tar, "oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        _add_file(tar, "index.json", index)
        _add_dir(tar, "blobs")
        _add_dir(tar, "blobs/sha256")
        for blob in (layer_gz, config, manifest):
            _add_file(tar, f"blobs/sha256/{_digest(blob).partition(':')[2]}", blob)
    return _digest(manifest)


def _layer(binary: bytes, applets: tuple[str, ...]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        directories = set(_DIRECTORIES)
        for applet in applets:
            parent = applet.rpartition("/")[0]
            while parent:
                directories.add(parent)
                parent = parent.rpartition("/")[0]
        for directory in sorted(directories):
            _add_dir(tar, directory, mode=0o1777 if directory == "tmp" else 0o755)
        _add_file(tar, "bin/busybox", binary, mode=0o755)
        _add_file(tar, "etc/passwd", _PASSWD)
        _add_file(tar, "etc/group", _GROUP)
        for applet in applets:
            info = tarfile.TarInfo(applet)
            info.type = tarfile.SYMTYPE
            info.linkname = "/bin/busybox"
            info.mode = 0o777
            tar.addfile(info)
    return buffer.getvalue()


def _add_dir(tar: tarfile.TarFile, name: str, mode: int = 0o755) -> None:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    info.mode = mode
    tar.addfile(info)


def _add_file(tar: tarfile.TarFile, name: str, data: bytes, mode: int = 0o644) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = mode
    tar.addfile(info, io.BytesIO(data))


def _json(document: object) -> bytes:
    return json.dumps(document, separators=(",", ":"), sort_keys=True).encode()


def _digest(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"
