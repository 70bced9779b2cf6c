"""Pin image-only services to the digest their tag names in the registry right now."""
from __future__ import annotations

from typing import TYPE_CHECKING

from controller.errors import ImageResolveError
from controller.model.manifest import ImageRef

if TYPE_CHECKING:  # annotation only: images/ stays free of the docker import
    from controller.swarm.engine_images import ImageEngine

DEFAULT_TAG = "latest"  # docker's default when a reference names no tag


def resolve_image(engine: ImageEngine, image: str) -> ImageRef:
    """Resolve a service's ``image:`` to ``repo:tag@sha256:...``.

    Each call asks the registry again, so a tag that was re-pushed resolves to its new digest
    (case c02).

    Args:
        engine: the ImageEngine used to query the registry through the Engine.
        image: the reference as written in the stack file (``repo``, ``repo:tag``,
            ``repo[:tag]@sha256:...``).
    Returns:
        ImageRef: a reference already pinned by digest is returned as parsed; otherwise
        repository, tag (``latest`` when none), the registry's manifest digest and platforms.
    Raises:
        ImageResolveError: the registry has no such tag, or cannot be reached. The caller then
            keeps the live pinned digest: a pinned service is never downgraded to a bare tag.
    """
    ref = ImageRef.parse(image)
    if ref.digest:
        return ref
    tag = ref.tag or DEFAULT_TAG
    reference = f"{ref.repository}:{tag}"
    info = engine.registry_info(reference)
    if not info:
        raise ImageResolveError(f"resolve {reference}: the registry has no such tag")
    digest, platforms = info
    return ImageRef(ref.repository, tag, digest, platforms)
