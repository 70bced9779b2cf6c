"""Pin image-only services to the digest their tag names in the registry right now."""
from __future__ import annotations

from typing import TYPE_CHECKING

from controller.errors import ImageResolveError, RegistryFault
from controller.model.manifest import ImageRef

if TYPE_CHECKING:  # annotation only: images/ stays free of the docker import
    from controller.images.digests import DigestCache
    from controller.swarm.engine_images import ImageEngine

DEFAULT_TAG = "latest"  # docker's default when a reference names no tag


def resolve_image(engine: "ImageEngine | DigestCache", image: str) -> ImageRef:
    """Resolve a service's ``image:`` to ``repo:tag@sha256:...``.

    With an ImageEngine each call asks the registry again; with the DigestCache the answer is
    at most KEELSON_IMAGE_POLL_INTERVAL old, so a re-pushed tag (case c02) rolls within that.

    Args:
        engine: what answers ``registry_info(repo:tag)``: the DigestCache in a pass, or the
            ImageEngine itself (asks the registry through the Engine).
        image: the reference as written in the stack file (``repo``, ``repo:tag``,
            ``repo[:tag]@sha256:...``).
    Returns:
        ImageRef: a reference already pinned by digest is returned as parsed; otherwise
        repository, tag (``latest`` when none), the registry's manifest digest and platforms.
    Raises:
        ImageResolveError: the registry has no such tag (``fault`` NOT_FOUND), refuses, or
            cannot be reached (see ``fault``). The caller then
            keeps the live pinned digest: a pinned service is never downgraded to a bare tag.
    """
    ref = ImageRef.parse(image)
    if ref.digest:
        return ref
    tag = ref.tag or DEFAULT_TAG
    reference = f"{ref.repository}:{tag}"
    info = engine.registry_info(reference)
    if not info:
        raise ImageResolveError(f"resolve {reference}: not found: the registry has no such "
                                "repository or tag", RegistryFault.NOT_FOUND)
    digest, platforms = info
    return ImageRef(ref.repository, tag, digest, platforms)
