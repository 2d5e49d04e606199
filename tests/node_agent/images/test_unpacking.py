"""Unpacking layers into a root filesystem: whiteouts and opaque directories hide what the
layers below hold and nothing of the layer's own; symlinks in layers are resolved inside the
tree and can never write outside it; modes (setuid too), owners, links and devices survive;
an image's tree is built once and cached."""

from __future__ import annotations

import gzip
import os
import stat
import tarfile
from pathlib import Path

import pytest

from engenho.node_agent.images import (
    Descriptor,
    ImageStore,
    UnpackError,
    ensure_rootfs,
    import_archive,
)
from engenho.node_agent.images.unpacking import apply_layer, resolve_in_root
from tests.node_agent.images.archives import digest, docker_archive, layer

LAYER = "application/vnd.oci.image.layer.v1.tar"


def entry(name: str, kind: bytes = tarfile.REGTYPE, **fields: object) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    for key, value in fields.items():
        setattr(info, key, value)
    return info


def apply(root: Path, tmp_path: Path, data: bytes, *, compress: bool = False) -> None:
    blob = tmp_path / f"layer-{digest(data)[7:19]}"
    blob.write_bytes(gzip.compress(data) if compress else data)
    apply_layer(root, blob, Descriptor(LAYER, digest(data), len(data)))


def test_whiteouts_remove_lower_entries_but_not_the_layers_own(tmp_path: Path) -> None:
    root = tmp_path / "rootfs"
    root.mkdir()
    apply(
        root,
        tmp_path,
        layer({"etc/keep": b"k", "etc/gone": b"g", "var/lib/a": b"a", "var/lib/b": b"b"}),
    )
    apply(
        root,
        tmp_path,
        layer(
            {"etc/.wh.gone": b"", "var/lib/c": b"c", "var/lib/.wh..wh..opq": b""},
            extra=[entry("var/log", tarfile.DIRTYPE, mode=0o755)],
        ),
        compress=True,
    )
    assert (root / "etc/keep").read_bytes() == b"k"
    assert not (root / "etc/gone").exists()
    assert not (root / "etc/.wh.gone").exists()
    # The opaque marker empties var/lib of the lower layer, keeping this layer's own entry,
    # whatever order the tar lists them in.
    assert sorted(p.name for p in (root / "var/lib").iterdir()) == ["c"]
    assert (root / "var/log").is_dir()


def test_a_whiteout_of_a_directory_removes_the_whole_tree(tmp_path: Path) -> None:
    root = tmp_path / "rootfs"
    root.mkdir()
    apply(root, tmp_path, layer({"opt/app/bin/tool": b"t", "opt/app/share/doc": b"d"}))
    apply(root, tmp_path, layer({"opt/.wh.app": b""}))
    assert not (root / "opt/app").exists()
    assert (root / "opt").is_dir()


def test_symlinks_cannot_lead_writes_out_of_the_tree(tmp_path: Path) -> None:
    root = tmp_path / "rootfs"
    outside = tmp_path / "host-etc"
    outside.mkdir()
    root.mkdir()
    evil = layer(
        {"escape/passwd": b"owned", "up/passwd": b"owned"},
        extra=[],
    )
    links = layer(
        extra=[
            entry("escape", tarfile.SYMTYPE, linkname=str(outside)),
            entry("up", tarfile.SYMTYPE, linkname="../../../../host-etc"),
        ]
    )
    apply(root, tmp_path, links)
    apply(root, tmp_path, evil)
    assert list(outside.iterdir()) == []
    # Followed inside the tree instead: the absolute link is relative to the root.
    assert (root / str(outside).lstrip("/") / "passwd").read_bytes() == b"owned"
    assert (root / "host-etc/passwd").read_bytes() == b"owned"
    climbing = layer({"../outside": b"x"})
    with pytest.raises(UnpackError, match="climbs out"):
        apply(root, tmp_path, climbing)


def test_resolve_in_root_clamps_at_the_root(tmp_path: Path) -> None:
    root = tmp_path / "rootfs"
    (root / "usr/lib").mkdir(parents=True)
    (root / "lib").symlink_to("/usr/lib")
    (root / "loop").symlink_to("loop")
    assert resolve_in_root(root, "/lib/x.so") == root / "usr/lib/x.so"
    assert resolve_in_root(root, "../../../etc/passwd") == root / "etc/passwd"
    with pytest.raises(UnpackError, match="too many levels"):
        resolve_in_root(root, "/loop/x")


def test_modes_owners_links_and_devices_survive(tmp_path: Path) -> None:
    root = tmp_path / "rootfs"
    root.mkdir()
    apply(
        root,
        tmp_path,
        layer(
            {"bin/su": b"#!su"},
            extra=[
                entry("bin/link-to-su", tarfile.LNKTYPE, linkname="bin/su"),
                entry("bin/sh", tarfile.SYMTYPE, linkname="/bin/busybox"),
                entry("dev/null", tarfile.CHRTYPE, devmajor=1, devminor=3, mode=0o666),
                entry("run/fifo", tarfile.FIFOTYPE, mode=0o600),
                entry("home/user", tarfile.DIRTYPE, mode=0o700, uid=1000, gid=1000),
            ],
        ),
    )
    apply(
        root,
        tmp_path,
        layer(extra=[entry("bin/passwd", size=0, mode=0o4755, uid=0, gid=0)]),
    )
    assert stat.S_IMODE((root / "bin/passwd").stat().st_mode) == 0o4755
    assert os.path.samefile(root / "bin/su", root / "bin/link-to-su")
    assert os.readlink(root / "bin/sh") == "/bin/busybox"
    device = (root / "dev/null").lstat()
    assert stat.S_ISCHR(device.st_mode) and os.major(device.st_rdev) == 1
    assert stat.S_ISFIFO((root / "run/fifo").lstat().st_mode)
    home = (root / "home/user").stat()
    assert (home.st_uid, stat.S_IMODE(home.st_mode)) == (1000, 0o700)


def test_an_images_tree_is_built_once(store: ImageStore, busybox_archive: Path) -> None:
    (image,) = import_archive(store, busybox_archive).images
    rootfs = ensure_rootfs(store, image)
    assert (rootfs / "bin/busybox").is_file()
    assert os.readlink(rootfs / "bin/sh") == "/bin/busybox"
    assert stat.S_IMODE((rootfs / "tmp").stat().st_mode) == 0o1777
    marker = rootfs / "marker"
    marker.write_text("cached")
    assert ensure_rootfs(store, image) == rootfs
    assert marker.exists()
    # Garbage collection keeps the tree of a stored image and drops it with the image.
    store.collect_garbage()
    assert rootfs.exists()
    store.untag("busybox")
    store.collect_garbage()
    assert not rootfs.exists()


def test_zstd_layers_are_refused_with_advice(store: ImageStore, tmp_path: Path) -> None:
    archive = tmp_path / "a.tar"
    docker_archive(archive, [layer({"a": b"a"})], ["z:1"])
    (image,) = import_archive(store, archive).images
    zstd = Descriptor(
        "application/vnd.oci.image.layer.v1.tar+zstd",
        image.manifest.layers[0].digest,
        image.manifest.layers[0].size,
    )
    with pytest.raises(UnpackError, match=r"zstd.*dest-compress-format gzip"):
        apply_layer(tmp_path / "root", store.blob_path(zstd.digest), zstd)
