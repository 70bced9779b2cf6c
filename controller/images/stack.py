"""The images step of a pass: build what the stack builds, pin what it pulls.

Rules (case c02): every image-only service is resolved to the digest its tag has now, so a tag
re-pushed by CI rolls the service; when the registry cannot be reached the service keeps the
digest it runs (a pinned reference is never downgraded to a bare tag) and the stack is reported
degraded. A private registry that refuses Keelson's login (issue 9) fails the stack with
``RegistryUnauthorized`` unless the service already runs that tag pinned: its nodes could not
pull the image either, so nothing is deployed. Docker Hub's refusal also means "no such
repository", so there, as for a missing tag, the tag is deployed unpinned as docker does.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Dict, List, Mapping, Optional, Tuple

from controller.errors import ImageError, ImageResolveError, RegistryFault
from controller.images.naming import build_repository, build_tag
from controller.images.resolve import resolve_image
from controller.model import Checkout, ImageRef, LiveStack, StackManifest, StackRecord
from controller.model.registry_auth import DOCKER_HUB, registry_host
from controller.render.compose.inputs import inputs_hash

log = logging.getLogger("keelson.images")


@dataclass
class StackImages:
    """The images of one stack.

    Attributes:
        refs: compose service name -> ImageRef to run.
        warnings: e.g. a tag kept at its live digest because the registry was down.
        degraded: True when some image could not be resolved this pass.
        to_build: services whose image would be built (plan mode only).
    """

    refs: Dict[str, ImageRef] = field(default_factory=dict)
    warnings: List[str] = field(default_factory=list)
    degraded: bool = False
    to_build: List[str] = field(default_factory=list)


def live_image_for(live: Optional[LiveStack], stack: str, service: str) -> str:
    """The image reference the live service ``<stack>_<service>`` runs, or ""."""
    if live is None:
        return ""
    svc = live.services.get(f"{stack}_{service}")
    if svc is None:
        return ""
    return svc.spec.get("TaskTemplate", {}).get("ContainerSpec", {}).get("Image", "")


def stack_images(manifest: StackManifest, checkout: Checkout, live: Optional[LiveStack], *,
                 source, builder, digests, registry: str, dry_run: bool = False,
                 pulled: Optional[StackImages] = None) -> StackImages:
    """Build, push and resolve every image ``manifest`` needs.

    Args:
        manifest: the loaded stack. checkout: the revision being applied (for context revisions).
        live: the stack's live objects (to keep pinned digests when the registry is down).
        source: the manifests source (``last_change``). builder: images.build.ImageBuilder.
        digests: images.digests.DigestCache (tag -> digest, asked at most once per image poll
            interval). registry: ``host:port`` for built images.
        dry_run: build nothing; report which services would be built.
        pulled: the image-only services as ``resolve_pulled_images`` already resolved them this
            pass (None resolves them here).
    Returns:
        StackImages.
    Raises:
        ImageBuildError / ImagePushError: a build or push failed (nothing was deployed).
        ImageError: a service needs a build but no registry is configured.
    """
    out = StackImages()
    for svc, build in sorted(manifest.builds.items()):
        if not registry:
            raise ImageError(f"stack {manifest.name}: service {svc} has build: but no registry "
                             "is configured (--registry / KEELSON_REGISTRY)")
        context_rev = source.last_change(checkout, build.context)
        # a Dockerfile outside its context is not covered by the context's revision
        dockerfile_rev = (source.last_change(checkout, build.dockerfile_path)
                          if build.dockerfile_outside else "")
        if dry_run:
            repo = build_repository(registry, manifest.name, svc, build.image)
            tag = build_tag(context_rev, build, dockerfile_rev)
            info = _info_or_none(digests, f"{repo}:{tag}")
            if info is None:
                out.to_build.append(svc)
            out.refs[svc] = ImageRef(repo, tag, *(info or ("", ())))
            continue
        try:
            out.refs[svc] = builder.ensure(manifest.name, svc, build, context_rev,
                                           checkout.revision.sha, dockerfile_rev)
        except ImageResolveError as exc:
            # Registry down: an unchanged build that already runs pinned keeps running pinned.
            want = ImageRef(build_repository(registry, manifest.name, svc, build.image),
                            build_tag(context_rev, build, dockerfile_rev))
            kept = _keep_live(live, manifest.name, svc, want)
            if kept is None:
                raise
            out.refs[svc] = kept
            out.warnings.append(f"service {svc}: cannot check {want.reference} ({exc}); keeping "
                                f"the pinned {kept.reference}")
            out.degraded = True
    if pulled is None:
        pulled = resolve_pulled_images(manifest, live, digests=digests)
    out.refs.update(pulled.refs)
    out.warnings.extend(pulled.warnings)
    out.degraded = out.degraded or pulled.degraded
    return out


def resolve_pulled_images(manifest: StackManifest, live: Optional[LiveStack], *,
                          digests) -> StackImages:
    """Resolve the tag of every service without ``build:`` to the digest the registry holds.

    Nothing is built or pushed, so the pass can call it before deciding whether the stack's
    inputs (``controller.render.compose.inputs.inputs_hash``, which includes these digests) already
    failed.

    Args:
        manifest: the loaded stack. live: its live objects (a pinned digest is kept when the
            registry cannot be reached). digests: images.digests.DigestCache (or anything with
            ``registry_info(repo:tag)``).
    Returns:
        StackImages: ``refs`` for the image-only services; warnings and ``degraded`` when a tag
        could not be resolved (kept at its live digest, or deployed unpinned as docker does).
    Raises:
        ImageResolveError: a registry other than Docker Hub refused (``RegistryUnauthorized``)
            for a service that does not already run that tag pinned. Other registry failures
            become warnings.
    """
    out = StackImages()
    for svc, body in sorted(manifest.services.items()):
        if svc in manifest.builds:
            continue
        image = str(body.get("image") or "")
        try:
            out.refs[svc] = resolve_image(digests, image)
        except ImageResolveError as exc:
            kept = _keep_live(live, manifest.name, svc, ImageRef.parse(image))
            if kept is not None:
                out.refs[svc] = kept
                out.warnings.append(f"service {svc}: cannot resolve {image} ({exc}); keeping the "
                                    f"pinned {kept.reference}")
                out.degraded = True
            elif exc.fault == RegistryFault.UNAUTHORIZED and registry_host(image) != DOCKER_HUB:
                raise ImageResolveError(f"stack {manifest.name}: service {svc}: {exc}",
                                        exc.fault) from exc
            else:
                # docker stack deploy does the same: deploy the tag and say it is not pinned.
                out.warnings.append(f"service {svc}: cannot resolve {image} to a digest ({exc}); "
                                    "deploying the tag unpinned")
    return out


def pulled_with_inputs(manifest: StackManifest, live: Optional[LiveStack],
                       record: StackRecord, *, digests,
                       options: Mapping[str, str]) -> Tuple[StackImages, str]:
    """The image-only services pinned, and the stack's inputs key with them.

    With ``x-keelson: {follow_tags: false}`` the digests live services pin are kept while
    every other input is what was last applied (no registry request); any change of an
    input (a commit) resolves the tags again. Otherwise each tag is resolved through the
    digest cache (asked at most once per KEELSON_IMAGE_POLL_INTERVAL).

    Args:
        manifest: the loaded stack. live: its live objects. record: its state record (the
            inputs key last applied). digests: images.digests.DigestCache. options: operator
            settings the rendering depends on (part of the inputs key).
    Returns:
        (StackImages for the image-only services, the inputs key
        ``render.compose.inputs.inputs_hash`` of the stack with them).
    Raises:
        ImageResolveError: as :func:`resolve_pulled_images`.
    """
    if not manifest.options.follow_tags and record.applied_source_hash:
        kept = live_pinned_images(manifest, live)
        if kept is not None:
            inputs = inputs_hash(manifest, kept.refs, options)
            if inputs == record.applied_source_hash:
                return kept, inputs
    pulled = resolve_pulled_images(manifest, live, digests=digests)
    return pulled, inputs_hash(manifest, pulled.refs, options)


@dataclass(frozen=True)
class TagMove:
    """A service whose tag now names another digest than the one it runs (issue 9).

    Attributes:
        service: the compose service name. tag: ``repo:tag``. old: the digest the live service
            pins (``sha256:...``). new: the digest the tag names now.
    """

    service: str
    tag: str
    old: str
    new: str


def live_pinned_images(manifest: StackManifest, live: Optional[LiveStack]) -> Optional[StackImages]:
    """The image-only services at the digests their live services pin (``follow_tags: false``).

    Args:
        manifest: the loaded stack. live: its live objects.
    Returns:
        StackImages with a ref for every image-only service, or None when one of them does not
        run pinned at the same repository and tag (a new service, a changed tag): then the
        registry must be asked.
    """
    out = StackImages()
    for svc, body in sorted(manifest.services.items()):
        if svc in manifest.builds:
            continue
        want = ImageRef.parse(str(body.get("image") or ""))
        if want.digest:
            out.refs[svc] = want
            continue
        kept = _keep_live(live, manifest.name, svc, want)
        if kept is None:
            return None
        out.refs[svc] = ImageRef(kept.repository, kept.tag or "latest", kept.digest,
                                 kept.platforms)
    return out


def tag_moves(manifest: StackManifest, live: Optional[LiveStack],
              refs: Dict[str, ImageRef]) -> List[TagMove]:
    """Services whose image reference names the same repo:tag as the live service but another
    digest: a tag that moved at the registry (no change in git).

    Args:
        manifest: the loaded stack. live: its live objects. refs: service -> ImageRef to run.
    Returns:
        one TagMove per such service, sorted by service.
    """
    moves = []
    for svc, ref in sorted(refs.items()):
        if svc in manifest.builds or not ref.tag or not ref.digest:
            continue
        cur = ImageRef.parse(live_image_for(live, manifest.name, svc))
        if (cur.digest and cur.digest != ref.digest
                and (cur.repository, cur.tag or "latest") == (ref.repository, ref.tag)):
            moves.append(TagMove(svc, f"{ref.repository}:{ref.tag}", cur.digest, ref.digest))
    return moves


def _keep_live(live: Optional[LiveStack], stack: str, service: str,
               want: ImageRef) -> Optional[ImageRef]:
    """The live pinned image when it is the same repository and tag as ``want`` (else None).

    An untagged name means ``:latest``, as the engine resolves it.
    """
    cur = ImageRef.parse(live_image_for(live, stack, service))
    if cur.digest and (cur.repository, cur.tag or "latest") == (want.repository,
                                                                want.tag or "latest"):
        svc = live.services[f"{stack}_{service}"]
        placement = svc.spec.get("TaskTemplate", {}).get("Placement") or {}
        platforms = tuple((p.get("OS", ""), p.get("Architecture", ""))
                          for p in placement.get("Platforms") or [])
        return ImageRef(cur.repository, cur.tag, cur.digest, platforms)
    return None


def _info_or_none(digests, reference: str):
    """(digest, platforms) the registry holds for ``reference``, or None (absent/unreachable)."""
    try:
        return digests.registry_info(reference)
    except ImageError:
        return None


