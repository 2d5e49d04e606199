"""The node's local image store (``DATA_DIR/images/``): an OCI image layout with imports
from oci-archives, docker-archives and wasm modules, reference resolution, and root
filesystems unpacked per image for the OCI runtime. Nothing here pulls from a registry."""

from engenho.node_agent.images.building import build_busybox_archive
from engenho.node_agent.images.errors import (
    ArchiveError,
    DigestMismatchError,
    ImageNotFoundError,
    ImageStoreError,
    InvalidReferenceError,
    UnpackError,
)
from engenho.node_agent.images.importing import ImportResult, import_archive, import_wasm
from engenho.node_agent.images.model import (
    MEDIA_WASM_LAYER,
    WASM_LAYER_MEDIA_TYPES,
    Descriptor,
    ImageConfig,
    Manifest,
    Platform,
    StoredImage,
    host_platform,
)
from engenho.node_agent.images.reference import DEFAULT_TAG, Reference, parse_reference
from engenho.node_agent.images.store import ImageStore
from engenho.node_agent.images.unpacking import ensure_rootfs

__all__ = [
    "DEFAULT_TAG",
    "MEDIA_WASM_LAYER",
    "WASM_LAYER_MEDIA_TYPES",
    "ArchiveError",
    "Descriptor",
    "DigestMismatchError",
    "ImageConfig",
    "ImageNotFoundError",
    "ImageStore",
    "ImageStoreError",
    "ImportResult",
    "InvalidReferenceError",
    "Manifest",
    "Platform",
    "Reference",
    "StoredImage",
    "UnpackError",
    "build_busybox_archive",
    "ensure_rootfs",
    "host_platform",
    "import_archive",
    "import_wasm",
    "parse_reference",
]
