"""The records of the image store: descriptors, manifests, image configs, stored images.

They follow the OCI image specification (image-spec ``descriptor.md``, ``manifest.md``,
``config.md``); Docker's schema-2 media types are read as their OCI equivalents.
"""

from __future__ import annotations

import platform
from collections.abc import Mapping
from typing import Any

from attrs import field, frozen

from engenho.node_agent.images.errors import ArchiveError
from engenho.node_agent.images.reference import Reference

__all__ = [
    "ANNOTATION_IMAGE_NAME",
    "ANNOTATION_REF_NAME",
    "INDEX_TYPES",
    "MANIFEST_TYPES",
    "MEDIA_DOCKER_CONFIG",
    "MEDIA_DOCKER_LAYER",
    "MEDIA_DOCKER_LAYER_GZIP",
    "MEDIA_DOCKER_LIST",
    "MEDIA_DOCKER_MANIFEST",
    "MEDIA_OCI_CONFIG",
    "MEDIA_OCI_INDEX",
    "MEDIA_OCI_LAYER",
    "MEDIA_OCI_LAYER_GZIP",
    "MEDIA_OCI_LAYER_ZSTD",
    "MEDIA_OCI_MANIFEST",
    "MEDIA_WASM_LAYER",
    "WASM_LAYER_MEDIA_TYPES",
    "Descriptor",
    "ImageConfig",
    "Manifest",
    "Platform",
    "StoredImage",
    "host_platform",
]

MEDIA_OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MEDIA_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
MEDIA_OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
MEDIA_OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
MEDIA_DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MEDIA_DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MEDIA_DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
MEDIA_DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar"
MEDIA_DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
MEDIA_WASM_LAYER = "application/wasm"
"""A raw WebAssembly module as a layer: the CNCF Wasm OCI artifact layer type (also what
``engenho image import --wasm`` writes)."""
WASM_LAYER_MEDIA_TYPES = frozenset(
    {
        MEDIA_WASM_LAYER,
        # runwasi's oci-tar-builder (wasi images) and its earlier module layer type.
        "application/vnd.bytecodealliance.wasm.component.layer.v0+wasm",
        "application/vnd.w3c.wasm.module.v1+wasm",
        # wasm-to-oci / oci-distribution.
        "application/vnd.wasm.content.layer.v1+wasm",
    }
)
"""Layer media types whose blob is a WebAssembly module rather than a tar archive."""

MANIFEST_TYPES = frozenset({MEDIA_OCI_MANIFEST, MEDIA_DOCKER_MANIFEST})
INDEX_TYPES = frozenset({MEDIA_OCI_INDEX, MEDIA_DOCKER_LIST})

ANNOTATION_IMAGE_NAME = "io.containerd.image.name"
"""The full reference of an index entry, as containerd writes it."""
ANNOTATION_REF_NAME = "org.opencontainers.image.ref.name"
"""The image-spec's name of an index entry: a tag, or (skopeo, podman) a whole reference."""

_GOARCH = {
    "x86_64": "amd64",
    "amd64": "amd64",
    "aarch64": "arm64",
    "arm64": "arm64",
    "armv7l": "arm",
    "ppc64le": "ppc64le",
    "s390x": "s390x",
    "riscv64": "riscv64",
    "i686": "386",
    "i386": "386",
}


@frozen
class Platform:
    os: str
    architecture: str
    variant: str = ""

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Platform:
        return cls(
            str(data.get("os", "")),
            str(data.get("architecture", "")),
            str(data.get("variant", "")),
        )

    def to_json(self) -> dict[str, str]:
        out = {"architecture": self.architecture, "os": self.os}
        if self.variant:
            out["variant"] = self.variant
        return out


def host_platform() -> Platform:
    """The platform images must be for to run here, in Go's GOOS/GOARCH words."""
    machine = platform.machine().lower()
    return Platform("linux", _GOARCH.get(machine, machine))


@frozen
class Descriptor:
    """image-spec ``descriptor.md``: what a blob is, its digest and its size."""

    media_type: str
    digest: str
    size: int
    annotations: Mapping[str, str] = field(factory=dict)
    platform: Platform | None = None

    @property
    def hex(self) -> str:
        return self.digest.partition(":")[2]

    @classmethod
    def from_json(cls, data: Any, where: str) -> Descriptor:
        if not isinstance(data, Mapping):
            raise ArchiveError(f"{where}: a descriptor must be an object")
        try:
            digest = str(data["digest"])
            size = int(data["size"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ArchiveError(f"{where}: a descriptor needs a digest and a size") from exc
        algorithm, _, hex_part = digest.partition(":")
        if algorithm != "sha256" or len(hex_part) != 64 or hex_part.strip("0123456789abcdef"):
            raise ArchiveError(f"{where}: {digest!r} is not a sha256 digest")
        annotations = data.get("annotations") or {}
        platform_data = data.get("platform")
        return cls(
            media_type=str(data.get("mediaType", "")),
            digest=digest,
            size=size,
            annotations={str(k): str(v) for k, v in dict(annotations).items()},
            platform=Platform.from_json(platform_data)
            if isinstance(platform_data, Mapping)
            else None,
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "mediaType": self.media_type,
            "digest": self.digest,
            "size": self.size,
        }
        if self.annotations:
            out["annotations"] = dict(sorted(self.annotations.items()))
        if self.platform is not None:
            out["platform"] = self.platform.to_json()
        return out


@frozen
class Manifest:
    """image-spec ``manifest.md`` (or Docker schema 2, which has the same shape)."""

    media_type: str
    config: Descriptor
    layers: tuple[Descriptor, ...]

    @classmethod
    def from_json(cls, data: Any, where: str) -> Manifest:
        if not isinstance(data, Mapping) or data.get("schemaVersion") != 2:
            raise ArchiveError(f"{where}: not a schema-2 image manifest")
        layers = data.get("layers")
        if not isinstance(layers, list):
            raise ArchiveError(f"{where}: a manifest needs a list of layers")
        return cls(
            media_type=str(data.get("mediaType", MEDIA_OCI_MANIFEST)),
            config=Descriptor.from_json(data.get("config"), f"{where} config"),
            layers=tuple(
                Descriptor.from_json(layer, f"{where} layer {n}") for n, layer in enumerate(layers)
            ),
        )


@frozen
class ImageConfig:
    """The parts of image-spec ``config.md`` a runtime uses (``config`` and ``rootfs``)."""

    os: str = "linux"
    architecture: str = ""
    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    env: tuple[str, ...] = ()
    """``NAME=value`` strings, in the image's order."""
    working_dir: str = ""
    user: str = ""
    stop_signal: str = ""
    labels: Mapping[str, str] = field(factory=dict)
    exposed_ports: tuple[str, ...] = ()
    diff_ids: tuple[str, ...] = ()

    @classmethod
    def from_json(cls, data: Any, where: str) -> ImageConfig:
        if not isinstance(data, Mapping):
            raise ArchiveError(f"{where}: an image config must be an object")
        config = data.get("config") or data.get("container_config") or {}
        rootfs = data.get("rootfs") or {}

        def strings(value: Any) -> tuple[str, ...]:
            if value is None:
                return ()
            if isinstance(value, str):
                return (value,)
            return tuple(str(item) for item in value)

        return cls(
            os=str(data.get("os", "linux")),
            architecture=str(data.get("architecture", "")),
            entrypoint=strings(config.get("Entrypoint")),
            cmd=strings(config.get("Cmd")),
            env=strings(config.get("Env")),
            working_dir=str(config.get("WorkingDir") or ""),
            user=str(config.get("User") or ""),
            stop_signal=str(config.get("StopSignal") or ""),
            labels={str(k): str(v) for k, v in dict(config.get("Labels") or {}).items()},
            exposed_ports=tuple(sorted(str(p) for p in dict(config.get("ExposedPorts") or {}))),
            diff_ids=strings(rootfs.get("diff_ids")),
        )


@frozen
class StoredImage:
    """One entry of the store's index: a name (or none) and the manifest it points at."""

    reference: Reference | None
    """The tagged name (``docker.io/library/busybox:latest``); None for an untagged image."""
    manifest_digest: str
    manifest: Manifest
    config: ImageConfig

    @property
    def image_id(self) -> str:
        """The config digest: what ``crictl images`` shows as IMAGE ID."""
        return self.manifest.config.digest

    @property
    def repo_digest(self) -> str:
        """``docker.io/library/busybox@sha256:...``: the pod status ``imageID``."""
        repository = self.reference.repository if self.reference else ""
        return f"{repository}@{self.manifest_digest}" if repository else self.manifest_digest

    @property
    def size(self) -> int:
        """Bytes of content: config and layers as stored (compressed when they are)."""
        return self.manifest.config.size + sum(layer.size for layer in self.manifest.layers)

    @property
    def is_wasm(self) -> bool:
        return any(layer.media_type in WASM_LAYER_MEDIA_TYPES for layer in self.manifest.layers)
