"""Image builds, pushes and registry look-ups through the Docker Engine.

The Engine does the registry work (it holds the credentials and the insecure-registry list);
Keelson reads its streams to the end, because build and push failures arrive in-band.
"""
from __future__ import annotations

import logging
from typing import Dict, List, Optional, Tuple

import docker.errors
import requests.exceptions

from controller.errors import ImageBuildError, ImagePushError, ImageResolveError
from controller.swarm import parse
from controller.swarm.calls import is_not_found
from controller.swarm.client import SwarmClient

log = logging.getLogger(__name__)

LOG_TAIL_LINES = 20
_ENGINE_ERRORS = (docker.errors.DockerException, requests.exceptions.RequestException)


def _explain(exc: BaseException) -> str:
    return str(getattr(exc, "explanation", None) or exc)


class ImageEngine:
    """Builds, pushes and resolves images with the Engine that ``client`` talks to.

    Args:
        client: the SwarmClient whose low-level API is used.
    """

    def __init__(self, client: SwarmClient):
        self.api = client.api

    def build(self, context: str, dockerfile: str, tag: str, buildargs: Dict[str, str],
              target: Optional[str], labels: Dict[str, str]) -> Tuple[str, List[str]]:
        """Build an image with the Engine's builder (``POST /build``), reading every chunk.

        Args:
            context: absolute path of the build context folder (``.dockerignore`` honoured).
            dockerfile: Dockerfile path relative to ``context``.
            tag: full reference to tag the result with (``registry/repo:tag``).
            buildargs: ``--build-arg`` values. target: multi-stage target or None.
            labels: image labels to add.
        Returns:
            tuple ``(image_id, lines)``: ``sha256:...`` id and the build output lines.
        Raises:
            ImageBuildError: the build failed (message plus the last 20 output lines in
                ``log_tail``), or the Engine refused the request.
        """
        try:
            stream = self.api.build(path=context, dockerfile=dockerfile, tag=tag,
                                    buildargs=dict(buildargs), target=target or None,
                                    labels=dict(labels), rm=True, forcerm=True, decode=True)
            image_id, lines, error = parse.scan_build_stream(stream)
        except _ENGINE_ERRORS as exc:
            raise ImageBuildError(f"build {tag}: {_explain(exc)}") from exc
        tail = "\n".join(lines[-LOG_TAIL_LINES:])
        if error is not None:
            raise ImageBuildError(f"build {tag}: {error}", log_tail=tail)
        if not image_id:
            local = self.local_image(tag)
            image_id = (local or {}).get("Id", "")
        if not image_id:
            raise ImageBuildError(f"build {tag}: the engine reported no image id", log_tail=tail)
        return image_id, lines

    def push(self, repository: str, tag: str) -> str:
        """Push ``repository:tag`` (``POST /images/{name}/push``), reading every chunk.

        Args:
            repository: ``registry/path/name`` without tag. tag: the tag to push.
        Returns:
            str: the manifest digest the registry stored (``sha256:...``).
        Raises:
            ImagePushError: an in-band error (registry refused, unreachable), a failed
                request, or a stream that ended without a digest.
        """
        ref = f"{repository}:{tag}"
        try:
            stream = self.api.push(repository, tag=tag, stream=True, decode=True)
            digest, error = parse.scan_push_stream(stream)
        except _ENGINE_ERRORS as exc:
            raise ImagePushError(f"push {ref}: {_explain(exc)}") from exc
        if error is not None:
            raise ImagePushError(f"push {ref}: {error}")
        if not digest:
            raise ImagePushError(f"push {ref}: the push stream reported no digest")
        return digest

    def registry_info(self, reference: str) -> Optional[Tuple[str, Tuple[Tuple[str, str], ...]]]:
        """Digest and platforms the registry holds for ``repo:tag``, in one request.

        Same endpoint as :meth:`registry_digest`. The platforms are what ``docker stack deploy``
        copies into ``Placement.Platforms`` (docker/cli ``stack/swarm`` image resolution).

        Returns:
            (``sha256:...``, ((os, architecture), ...)) or None when the registry has no such tag.
        Raises:
            ImageResolveError: the registry could not be reached or refused.
        """
        try:
            resp = self.api._get(self.api._url("/distribution/{0}/json", reference))
            if resp.status_code == 404:
                return None
            self.api._raise_for_status(resp)
            body = resp.json()
            platforms = tuple((p.get("os", ""), p.get("architecture", ""))
                              for p in body.get("Platforms") or [])
            return body["Descriptor"]["digest"], platforms
        except _ENGINE_ERRORS as exc:
            raise ImageResolveError(f"resolve {reference}: {_explain(exc)}") from exc
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise ImageResolveError(f"resolve {reference}: unexpected answer: {exc}") from exc

    def registry_digest(self, reference: str) -> Optional[str]:
        """The manifest digest the registry holds for ``repo:tag``.

        Uses the Engine's ``GET /distribution/{name}/json``. dockerd 20.10 answers 404
        ("manifest unknown") for a missing tag or repository, and 500 with the dial error when
        the registry cannot be reached (observed on this engine, fixtures in
        tests/unit/fixtures/swarm/).

        Args:
            reference: ``registry/repo:tag``.
        Returns:
            str ``sha256:...`` or None when the registry has no such tag.
        Raises:
            ImageResolveError: the registry could not be reached or refused (auth, 5xx).
        """
        try:
            resp = self.api._get(self.api._url("/distribution/{0}/json", reference))
            if resp.status_code == 404:
                return None
            self.api._raise_for_status(resp)
            return resp.json()["Descriptor"]["digest"]
        except _ENGINE_ERRORS as exc:
            raise ImageResolveError(f"resolve {reference}: {_explain(exc)}") from exc
        except (KeyError, TypeError, ValueError) as exc:
            raise ImageResolveError(f"resolve {reference}: unexpected answer: {exc}") from exc

    def local_image(self, reference: str) -> Optional[dict]:
        """Inspect a local image (``GET /images/{name}/json``).

        Returns:
            dict (Id, RepoTags, RepoDigests, Config.Labels, ...) or None when absent.
        Raises:
            ImageResolveError: the Engine failed otherwise.
        """
        try:
            return self.api.inspect_image(reference)
        except _ENGINE_ERRORS as exc:
            if is_not_found(exc):
                return None
            raise ImageResolveError(f"inspect image {reference}: {_explain(exc)}") from exc
