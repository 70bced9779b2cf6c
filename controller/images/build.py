"""Build, push and pin the images of services that have a ``build:`` section."""
from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from controller.errors import ImageBuildError
from controller.images.naming import build_repository, build_tag
from controller.model import labels as L
from controller.model.manifest import BuildSpec, ImageRef

if TYPE_CHECKING:  # annotation only: images/ stays free of the docker import
    from controller.swarm.engine_images import ImageEngine

log = logging.getLogger(__name__)

REVISION_BUILD_ARG = "KEELSON_REVISION"  # always passed; Dockerfiles may declare ARG for it


class ImageBuilder:
    """Makes sure the registry holds the image of a service's build, building only if needed.

    Args:
        engine: the ImageEngine that builds and pushes.
        registry: ``host:port`` of the registry images are pushed to ("" forbids builds).
        digests: the DigestCache that answers "does the registry hold this tag" (None asks the
            engine every time). A pushed image is remembered there.
        observer: optional metrics sink with ``image_build(stack, service, result,
            duration_s)`` and ``image_push(stack, service, result, duration_s)``; result is
            ``"success"`` or ``"error"``, durations in seconds.
    """

    def __init__(self, engine: ImageEngine, registry: str, observer=None, digests=None):
        self.engine = engine
        self.digests = digests
        self.registry = registry
        self.observer = observer

    def ensure(self, stack: str, service: str, build: BuildSpec, context_revision: str,
               revision: str) -> ImageRef:
        """Return the pinned image for a service's build, building and pushing it if missing.

        The tag comes from the revision that last changed the build context (naming.build_tag),
        so when the registry already holds that tag nothing is built: an unchanged context is
        never rebuilt. A local image with that tag (built by an earlier pass whose push failed)
        is pushed without rebuilding.

        Args:
            stack: stack name. service: the service's key in the stack file.
            build: the service's build section (context is an absolute path).
            context_revision: full git revision that last changed the build context.
            revision: the git revision being applied; passed as build arg KEELSON_REVISION and
                image label ``io.keelson.revision`` (added to ``build.labels``).
        Returns:
            ImageRef: repository, tag and the registry's manifest digest.
        Raises:
            ImageBuildError: no registry configured, a bad revision, or the build failed.
            ImagePushError: the push failed.
            ImageResolveError: the registry could not be asked whether it holds the tag.
        """
        if not self.registry:
            raise ImageBuildError(f"{stack}/{service}: has build: but no --registry is set")
        try:
            tag = build_tag(context_revision, build)
        except ValueError as exc:
            raise ImageBuildError(f"{stack}/{service}: {exc}") from exc
        repo = build_repository(self.registry, stack, service, build.image)
        ref = f"{repo}:{tag}"
        info = (self.digests or self.engine).registry_info(ref)
        if info:
            log.debug("image %s already in the registry (%s); not building", ref, info[0])
            return ImageRef(repo, tag, *info)
        if self.engine.local_image(ref) is None:
            self._timed("image_build", stack, service, lambda: self.engine.build(
                build.context, build.dockerfile, ref,
                dict(build.args or {}, **{REVISION_BUILD_ARG: revision}),
                build.target, dict(build.labels or {}, **{L.REVISION: revision})))
        digest = self._timed("image_push", stack, service, lambda: self.engine.push(repo, tag))
        log.info("image %s pushed (%s)", ref, digest)
        # ask again for the platforms, so a fresh push pins exactly what a later pass will
        info = self.engine.registry_info(ref)
        platforms = info[1] if info and info[0] == digest else ()
        if self.digests is not None:
            self.digests.remember(ref, digest, platforms)
        return ImageRef(repo, tag, digest, platforms)

    def _timed(self, event: str, stack: str, service: str, fn):
        """Run ``fn`` and report its result and duration (seconds) to the observer."""
        start = time.monotonic()
        result = "error"
        try:
            value = fn()
            result = "success"
            return value
        finally:
            self._observe(event, stack, service, result, time.monotonic() - start)

    def _observe(self, event: str, stack: str, service: str, result: str,
                 duration_s: float) -> None:
        if self.observer is None:
            return
        try:
            getattr(self.observer, event)(stack, service, result, duration_s)
        except Exception:  # a metrics failure must not fail the build
            log.exception("observer %s failed", event)

