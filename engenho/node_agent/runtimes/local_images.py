"""Images for the runtimes that run from the node's own image store (``oci``, ``wasm``).

engenho pulls from no registry: an image is in ``DATA_DIR/images`` or it is missing, and the
missing-image message says how to import one. Each runtime gives its own example there (an
OCI archive, a WebAssembly module), so the hint fits what it runs.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from engenho.node_agent.images.errors import ImageStoreError, InvalidReferenceError, UnpackError
from engenho.node_agent.images.model import StoredImage
from engenho.node_agent.images.reference import parse_reference
from engenho.node_agent.images.store import ImageStore
from engenho.node_agent.images.unpacking import ensure_rootfs
from engenho.node_agent.runtime import (
    CreateContainerError,
    ImageInfo,
    PullPolicy,
    invalid_image_name,
    missing_image,
)

__all__ = ["find_image", "image_info", "unpacked_rootfs"]


async def find_image(
    store: ImageStore, reference: str, policy: PullPolicy, *, import_example: str
) -> StoredImage:
    """The stored image ``reference`` (a reference or an image id) names, or the ImageError
    the agent shows; ``import_example`` goes in brackets after the import command."""
    try:
        if not reference.startswith("sha256:"):
            parse_reference(reference)
        image = await asyncio.to_thread(store.find, reference)
    except InvalidReferenceError as exc:
        raise invalid_image_name(reference, str(exc)) from exc
    except ImageStoreError as exc:
        raise missing_image(reference, policy, f"the image store is damaged: {exc}") from exc
    if image is None:
        normalised = (
            reference if reference.startswith("sha256:") else str(parse_reference(reference))
        )
        raise missing_image(
            reference,
            policy,
            f'image "{normalised}" is not in the node\'s image store, and engenho does not '
            f'pull from registries: import it with "engenho image import" ({import_example})',
        )
    return image


def image_info(image: StoredImage) -> ImageInfo:
    return ImageInfo(
        reference=str(image.reference) if image.reference else image.manifest_digest,
        image_id=image.image_id,
        repo_digest=image.repo_digest,
        config=image.config,
        size=image.size,
        is_wasm=image.is_wasm,
    )


async def unpacked_rootfs(store: ImageStore, image: StoredImage, reference: str) -> Path:
    """The image's unpacked tree (unpacked on first use, shared by every container of the
    image); a CreateContainerError for the container that asked, ``reference``, if it cannot
    be unpacked."""
    try:
        return await asyncio.to_thread(ensure_rootfs, store, image)
    except (UnpackError, ImageStoreError) as exc:
        raise CreateContainerError(f"failed to unpack image {reference!r}: {exc}") from exc
