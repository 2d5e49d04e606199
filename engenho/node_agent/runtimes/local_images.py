"""Images for the runtimes that run from the node's own image store (``oci``, ``wasm``).

engenho pulls from no registry: an image is in ``DATA_DIR/images`` or it is missing, and the
missing-image message says how to import one. Each runtime gives its own example there (an
OCI archive, a WebAssembly module), so the hint fits what it runs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
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

__all__ = ["Unpacker", "find_image", "image_info"]


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


class Unpacker:
    """The unpacked trees of ``store``'s images (unpacked on first use, shared by every
    container of the image), one build per image at a time.

    The build itself is safe to run at once from several threads (``ensure_rootfs`` takes a
    lock file), but each waiter would hold a thread of the default executor, blocked on that
    lock, and those few threads also do the agent's other file work (and, in ``engenho
    server``, the log's writes): the containers of a burst await the first one's build
    instead."""

    def __init__(self, store: ImageStore) -> None:
        self._store = store
        self._building: dict[str, asyncio.Future[Path]] = {}

    async def rootfs(self, image: StoredImage, reference: str) -> Path:
        """The image's tree; a CreateContainerError for the container that asked,
        ``reference``, if it cannot be unpacked."""
        digest = image.manifest_digest
        building = self._building.get(digest)
        if building is None:
            building = asyncio.ensure_future(asyncio.to_thread(ensure_rootfs, self._store, image))
            self._building[digest] = building
            building.add_done_callback(self._built(digest))
        try:
            return await asyncio.shield(building)
        except (UnpackError, ImageStoreError) as exc:
            raise CreateContainerError(f"failed to unpack image {reference!r}: {exc}") from exc

    def _built(self, digest: str) -> Callable[[asyncio.Future[Path]], None]:
        def forget(building: asyncio.Future[Path]) -> None:
            # Done: the next caller checks the tree again (it may have been removed since).
            self._building.pop(digest, None)
            if not building.cancelled():
                building.exception()  # retrieved, whether or not anyone still awaits it

        return forget
