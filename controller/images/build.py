"""Build, push and pin the images of services that have a ``build:`` section."""
from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional, Tuple

from controller.config import Settings
from controller.errors import ImageBuildError
from controller.images.naming import build_repository, build_tag
from controller.images.progress import BuildProgress
from controller.model import labels as L
from controller.model.manifest import BuildSpec, ImageRef
from controller.render.compose.sandbox import RepoLimits, RepoSandbox

if TYPE_CHECKING:  # annotation only: images/ stays free of the docker import
    from controller.swarm.engine_images import ImageEngine

log = logging.getLogger(__name__)

REVISION_BUILD_ARG = "KEELSON_REVISION"  # always passed; Dockerfiles may declare ARG for it
DOCKERIGNORE = ".dockerignore"
OUTSIDE_DOCKERFILE = ".keelson.Dockerfile"  # name a Dockerfile from outside the context is sent as


@dataclass(frozen=True)
class BuildInputs:
    """What the engine is given for one build, every repo file already read through the sandbox.

    Attributes:
        dockerfile: path relative to the context, or OUTSIDE_DOCKERFILE when ``dockerfile_text``
            carries a Dockerfile that lies in the tree but outside the context.
        dockerfile_text: that Dockerfile's content, or None.
        exclude: ``.dockerignore`` patterns (blank and ``#`` lines dropped, as the SDK does).
    """

    dockerfile: str
    dockerfile_text: Optional[str]
    exclude: Tuple[str, ...]


def build_inputs(build: BuildSpec, limits: Optional[RepoLimits] = None) -> BuildInputs:
    """Resolve a build's Dockerfile and ``.dockerignore`` inside the tree (issue 7).

    Args:
        build: the service's build section (``root`` = the tree, ``context`` inside it).
        limits: size caps; the Dockerfile and ``.dockerignore`` take ``object_file_bytes``.
    Returns:
        BuildInputs.
    Raises:
        RepoAccessError: the Dockerfile or ``.dockerignore`` leaves the tree (absolute, ``..``,
            a symlink out of it) or is over its cap; the context holds a link out of the tree.
        ImageBuildError: the Dockerfile does not exist.
    """
    box = RepoSandbox(build.root or build.context, limits)
    box.check_folder(build.context, what="build context")
    path = box.resolve(build.context, build.dockerfile or "Dockerfile", what="build.dockerfile")
    if not os.path.isfile(path):
        raise ImageBuildError(f"Dockerfile {build.dockerfile or 'Dockerfile'!r} not found in the "
                              "build context")
    cap = box.limits.object_file_bytes
    rel = os.path.relpath(path, build.context)  # both in the tree's spelling
    text = None
    if rel == ".." or rel.startswith(".." + os.sep):
        text = box.read_text(path, what="build.dockerfile", max_bytes=cap)
        rel = OUTSIDE_DOCKERFILE
    else:  # read it once through the sandbox anyway: refuses a FIFO or an oversized file
        box.read(path, what="build.dockerfile", max_bytes=cap)
    exclude: Tuple[str, ...] = ()
    ignore = os.path.join(build.context, DOCKERIGNORE)
    if os.path.lexists(ignore):
        lines = box.read_text(ignore, what=DOCKERIGNORE, max_bytes=cap).splitlines()
        exclude = tuple(ln.strip() for ln in lines if ln.strip() and not ln.strip().startswith("#"))
    return BuildInputs(dockerfile=rel.replace(os.sep, "/"), dockerfile_text=text,
                       exclude=exclude)


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
        build_timeout_s: seconds one build may take before it is cancelled
            (KEELSON_BUILD_TIMEOUT; None: no limit).
        limits: size caps for the Dockerfile and ``.dockerignore`` (default: Settings').
    """

    def __init__(self, engine: ImageEngine, registry: str, observer=None, digests=None, *,
                 build_timeout_s: Optional[float] = Settings.build_timeout_s,
                 limits: Optional[RepoLimits] = None):
        self.engine = engine
        self.digests = digests
        self.registry = registry
        self.observer = observer
        self.build_timeout_s = build_timeout_s
        self.limits = limits

    def ensure(self, stack: str, service: str, build: BuildSpec, context_revision: str,
               revision: str, dockerfile_revision: str = "") -> ImageRef:
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
            dockerfile_revision: revision that last changed a Dockerfile outside the context
                ("" when it is inside); part of the tag (naming.build_tag).
        Returns:
            ImageRef: repository, tag and the registry's manifest digest.
        Raises:
            ImageBuildError: no registry configured, a bad revision, the build failed or ran
                past ``build_timeout_s`` (it is cancelled).
            RepoAccessError: the Dockerfile or ``.dockerignore`` leaves the tree.
            ImagePushError: the push failed.
            ImageResolveError: the registry could not be asked whether it holds the tag.
        """
        if not self.registry:
            raise ImageBuildError(f"{stack}/{service}: has build: but no --registry is set")
        try:
            tag = build_tag(context_revision, build, dockerfile_revision)
        except ValueError as exc:
            raise ImageBuildError(f"{stack}/{service}: {exc}") from exc
        repo = build_repository(self.registry, stack, service, build.image)
        ref = f"{repo}:{tag}"
        info = (self.digests or self.engine).registry_info(ref)
        if info:
            log.debug("image %s already in the registry (%s); not building", ref, info[0])
            return ImageRef(repo, tag, *info)
        if self.engine.local_image(ref) is None:
            log.info("image %s building (%s/%s)", ref, stack, service)
            inputs = build_inputs(build, self.limits)
            progress = BuildProgress(ref)  # issue 13.5: steps at debug, slow builds at info
            self._timed("image_build", stack, service, lambda: self.engine.build(
                build.context, inputs.dockerfile, ref,
                dict(build.args or {}, **{REVISION_BUILD_ARG: revision}),
                build.target, dict(build.labels or {}, **{L.REVISION: revision}),
                timeout_s=self.build_timeout_s, exclude=inputs.exclude,
                dockerfile_text=inputs.dockerfile_text, progress=progress.text))
        pushing = BuildProgress(ref)
        digest = self._timed("image_push", stack, service,
                             lambda: self.engine.push(repo, tag, progress=pushing.pushed))
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

