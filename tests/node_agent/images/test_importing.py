"""Imports into the image store: oci-archives (the busybox image, multi-platform indexes,
names from annotations), docker-archives written by hand (legacy and blobs/ layouts, gzip and
plain layers, symlinked duplicates), wasm modules; every digest is verified and a refused
import leaves the store as it was; names resolve by reference, digest and image id."""

from __future__ import annotations

import gzip
import json
import tarfile
from pathlib import Path

import pytest

from engenho.node_agent.images import (
    MEDIA_WASM_LAYER,
    ArchiveError,
    DigestMismatchError,
    ImageNotFoundError,
    ImageStore,
    host_platform,
    import_archive,
    import_wasm,
    parse_reference,
)
from tests.node_agent.images.archives import (
    digest,
    docker_archive,
    image_config,
    layer,
    manifest_for,
    oci_archive,
)

LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"


def blob_names(store: ImageStore) -> set[str]:
    return {p.name for p in store.blobs.iterdir()} if store.blobs.exists() else set()


def test_busybox_oci_archive_imports_and_resolves(store: ImageStore, busybox_archive: Path) -> None:
    seen: list[int] = []
    result = import_archive(store, busybox_archive, progress=seen.append)
    assert result.format == "oci-archive"
    assert sum(seen) == busybox_archive.stat().st_size
    (image,) = result.images
    assert str(image.reference) == "docker.io/library/busybox:latest"
    assert result.blobs_added == 3 and result.blobs_present == 0
    # Every blob is named by its content.
    for name in blob_names(store):
        assert digest((store.blobs / name).read_bytes()) == f"sha256:{name}"
    for spelling in ("busybox", "busybox:latest", "docker.io/library/busybox", image.repo_digest):
        assert store.resolve(spelling) == image
    assert store.resolve(f"busybox@{image.manifest_digest}") == image
    assert store.resolve(image.image_id) == image
    assert store.find("busybox:1.36") is None
    with pytest.raises(ImageNotFoundError, match=r"busybox:1\.36"):
        store.resolve("busybox:1.36")
    assert image.config.cmd == ("sh",)
    assert image.config.architecture == host_platform().architecture
    # The store is a plain OCI layout, annotated as containerd writes it.
    index = json.loads((store.root / "index.json").read_text())
    (entry,) = index["manifests"]
    assert entry["annotations"]["io.containerd.image.name"] == "docker.io/library/busybox:latest"
    assert entry["annotations"]["org.opencontainers.image.ref.name"] == "latest"
    assert json.loads((store.root / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}


def test_importing_again_adds_nothing(store: ImageStore, busybox_archive: Path) -> None:
    import_archive(store, busybox_archive)
    again = import_archive(store, busybox_archive)
    assert (again.blobs_added, again.blobs_present, again.bytes_added) == (0, 3, 0)
    assert len(store.images()) == 1


def test_tag_names_the_imported_image(store: ImageStore, busybox_archive: Path) -> None:
    result = import_archive(store, busybox_archive, tag="registry.example:5000/tools/bb:1.0")
    assert str(result.images[0].reference) == "registry.example:5000/tools/bb:1.0"
    assert store.find("busybox") is None
    assert store.resolve("registry.example:5000/tools/bb:1.0") == result.images[0]


def test_a_tampered_blob_is_refused_and_the_store_is_unchanged(
    store: ImageStore, tmp_path: Path
) -> None:
    content = layer({"hello.txt": b"hello\n"})
    config = image_config([content])
    manifest = manifest_for(config, [content], media=LAYER_TAR)
    index = {
        "schemaVersion": 2,
        "manifests": [
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": digest(manifest),
                "size": len(manifest),
                "annotations": {"io.containerd.image.name": "docker.io/library/hello:1"},
            }
        ],
    }
    bad = tmp_path / "bad.tar"
    oci_archive(bad, [content, config, manifest], index, tamper={digest(content): b"evil" * 10})
    with pytest.raises(DigestMismatchError, match="hashes to"):
        import_archive(store, bad)
    assert store.images() == []
    assert blob_names(store) == set()
    good = tmp_path / "good.tar"
    oci_archive(good, [content, config, manifest], index)
    (image,) = import_archive(store, good).images
    assert str(image.reference) == "docker.io/library/hello:1"


def test_a_missing_blob_is_refused(store: ImageStore, tmp_path: Path) -> None:
    content = layer({"a": b"a"})
    config = image_config([content])
    manifest = manifest_for(config, [content], media=LAYER_TAR)
    index = {
        "schemaVersion": 2,
        "manifests": [
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": digest(manifest),
                "size": len(manifest),
                "annotations": {"org.opencontainers.image.ref.name": "example.com/a:1"},
            }
        ],
    }
    archive = tmp_path / "a.tar"
    oci_archive(archive, [config, manifest], index)
    with pytest.raises(ArchiveError, match="is not in the archive"):
        import_archive(store, archive)
    assert store.images() == []


def test_a_bare_tag_needs_a_repository(store: ImageStore, tmp_path: Path) -> None:
    content = layer({"a": b"a"})
    config = image_config([content])
    manifest = manifest_for(config, [content], media=LAYER_TAR)
    index = {
        "schemaVersion": 2,
        "manifests": [
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": digest(manifest),
                "size": len(manifest),
                "annotations": {"org.opencontainers.image.ref.name": "v2"},
            }
        ],
    }
    archive = tmp_path / "a.tar"
    oci_archive(archive, [content, config, manifest], index)
    with pytest.raises(ArchiveError, match="only by the tag 'v2'; give --tag"):
        import_archive(store, archive)
    (image,) = import_archive(store, archive, tag="example.com/app:v2").images
    assert str(image.reference) == "example.com/app:v2"


def test_a_multi_platform_index_resolves_to_this_host(store: ImageStore, tmp_path: Path) -> None:
    here = host_platform()
    other = "arm64" if here.architecture != "arm64" else "amd64"
    mine, theirs = layer({"arch": here.architecture.encode()}), layer({"arch": other.encode()})
    configs = {
        here.architecture: image_config([mine], architecture=here.architecture),
        other: image_config([theirs], architecture=other),
    }
    manifests = {
        here.architecture: manifest_for(configs[here.architecture], [mine], media=LAYER_TAR),
        other: manifest_for(configs[other], [theirs], media=LAYER_TAR),
    }
    nested = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [
                {
                    "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "digest": digest(data),
                    "size": len(data),
                    "platform": {"os": "linux", "architecture": arch},
                }
                for arch, data in sorted(
                    manifests.items(), key=lambda kv: kv[0] == here.architecture
                )
            ],
        }
    ).encode()
    index = {
        "schemaVersion": 2,
        "manifests": [
            {
                "mediaType": "application/vnd.oci.image.index.v1+json",
                "digest": digest(nested),
                "size": len(nested),
                "annotations": {"io.containerd.image.name": "docker.io/library/multi:1"},
            }
        ],
    }
    archive = tmp_path / "multi.tar"
    oci_archive(archive, [mine, theirs, *configs.values(), *manifests.values(), nested], index)
    (image,) = import_archive(store, archive).images
    assert image.manifest_digest == digest(manifests[here.architecture])
    assert image.config.architecture == here.architecture


@pytest.mark.parametrize("legacy", [True, False])
@pytest.mark.parametrize("gzip_layers", [False, True])
def test_docker_archives_become_oci_images(
    store: ImageStore, tmp_path: Path, legacy: bool, gzip_layers: bool
) -> None:
    layers = [layer({"etc/base": b"base\n"}), layer({"etc/app": b"app\n"})]
    archive = tmp_path / "saved.tar"
    docker_archive(
        archive, layers, ["app:1", "example.com/team/app:1"], gzip_layers=gzip_layers, legacy=legacy
    )
    result = import_archive(store, archive)
    assert result.format == "docker-archive"
    names = sorted(str(image.reference) for image in result.images)
    assert names == ["docker.io/library/app:1", "example.com/team/app:1"]
    image = store.resolve("app:1")
    assert image.manifest_digest == store.resolve("example.com/team/app:1").manifest_digest
    assert image.config.diff_ids == tuple(digest(data) for data in layers)
    media = {layer.media_type for layer in image.manifest.layers}
    assert media == {LAYER_TAR + ("+gzip" if gzip_layers else "")}
    manifest = json.loads(store.read_blob(image.manifest_digest))
    assert manifest["mediaType"] == "application/vnd.oci.image.manifest.v1+json"


def test_docker_archive_symlinked_layers_are_followed(store: ImageStore, tmp_path: Path) -> None:
    layers = [layer({"one": b"1"})]
    archive = tmp_path / "dup.tar"
    docker_archive(archive, layers, ["dup:1"], duplicate_first_layer=True)
    (image,) = import_archive(store, archive).images
    assert len(image.manifest.layers) == 2
    assert image.manifest.layers[0].digest == image.manifest.layers[1].digest


def test_docker_archive_diff_ids_are_verified(store: ImageStore, tmp_path: Path) -> None:
    layers = [layer({"one": b"1"})]
    wrong = image_config([layer({"two": b"2"})])
    archive = tmp_path / "wrong.tar"
    docker_archive(archive, layers, ["wrong:1"], config=wrong, legacy=False)
    with pytest.raises(DigestMismatchError, match="diff_id"):
        import_archive(store, archive)
    assert store.images() == []


def test_untagged_docker_archive_images_are_kept_by_digest(
    store: ImageStore, tmp_path: Path
) -> None:
    archive = tmp_path / "untagged.tar"
    docker_archive(archive, [layer({"x": b"x"})], [])
    (image,) = import_archive(store, archive).images
    assert image.reference is None
    assert store.resolve(image.manifest_digest) == image


def test_what_is_not_an_image_archive_is_refused(store: ImageStore, tmp_path: Path) -> None:
    junk = tmp_path / "junk.tar"
    junk.write_bytes(b"not a tar at all" * 100)
    with pytest.raises(ArchiveError, match="not a readable tar archive"):
        import_archive(store, junk)
    empty = tmp_path / "other.tar"
    with tarfile.open(empty, "w") as tar:
        tar.add(__file__, arcname="readme.py")
    with pytest.raises(ArchiveError, match="neither an OCI image layout"):
        import_archive(store, empty)


def test_a_wasm_module_becomes_a_one_layer_image(store: ImageStore, tmp_path: Path) -> None:
    module = tmp_path / "hello.wasm"
    module.write_bytes(b"\0asm\x01\0\0\0")
    result = import_wasm(store, module, tag="hello-wasm:v1")
    (image,) = result.images
    assert str(image.reference) == "docker.io/library/hello-wasm:v1"
    assert image.is_wasm
    (only,) = image.manifest.layers
    assert only.media_type == MEDIA_WASM_LAYER
    assert store.read_blob(only.digest) == module.read_bytes()
    assert (image.config.os, image.config.architecture) == ("wasip1", "wasm")
    assert image.config.entrypoint == ("hello.wasm",)
    text = tmp_path / "not.wasm"
    text.write_text("hello")
    with pytest.raises(ArchiveError, match="not a WebAssembly module"):
        import_wasm(store, text, tag="x:1")


def test_untag_and_collect_garbage(store: ImageStore, busybox_archive: Path) -> None:
    import_archive(store, busybox_archive)
    import_archive(store, busybox_archive, tag="copy:1")
    store.untag("busybox")
    assert store.find("busybox") is None
    assert store.collect_garbage() == 0  # copy:1 still holds every blob
    store.untag("copy:1")
    assert store.collect_garbage() > 0
    assert blob_names(store) == set()
    assert parse_reference("copy:1") not in {i.reference for i in store.images()}


def test_a_compressed_archive_imports(
    store: ImageStore, busybox_archive: Path, tmp_path: Path
) -> None:
    compressed = tmp_path / "busybox.tar.gz"
    compressed.write_bytes(gzip.compress(busybox_archive.read_bytes()))
    (image,) = import_archive(store, compressed).images
    assert str(image.reference) == "docker.io/library/busybox:latest"
