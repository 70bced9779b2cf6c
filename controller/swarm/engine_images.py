"""Image builds, pushes and registry look-ups through the Docker Engine.

The Engine does the registry work (TLS trust from ``/etc/docker/certs.d``, the
insecure-registry list), but it holds no registry credentials of its own: every request that
talks to a registry carries Keelson's login for it (issue 9), from ``RegistryAuth``
(KEELSON_REGISTRY_AUTH_FILE, KEELSON_REGISTRY_USERNAME_FILE/PASSWORD_FILE): ``X-Registry-Auth``
on ``/distribution`` and push, ``X-Registry-Config`` (every login) on build. Failures are
classified (``registry_errors``) so "unauthorised", "not found" and "registry down" read
differently. Keelson reads streams to the end, because build and push failures arrive in-band.
"""
from __future__ import annotations

import json
import logging
import socket
import threading
import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import docker.auth
import docker.errors
import docker.utils
import requests.exceptions
import urllib3.exceptions

from controller.errors import ImageBuildError, ImagePushError, ImageResolveError
from controller.model.registry_auth import RegistryAuth
from controller.swarm import parse
from controller.swarm.client import registry_header
from controller.swarm.registry_errors import build_fault, describe, registry_fault
from controller.swarm.calls import is_not_found
from controller.swarm.client import SwarmClient

log = logging.getLogger(__name__)

LOG_TAIL_LINES = 20
_ENGINE_ERRORS = (docker.errors.DockerException, requests.exceptions.RequestException)
# what reading a stream whose connection was shut down may raise
_STREAM_ERRORS = (urllib3.exceptions.HTTPError, OSError, ValueError)


class _Deadline:
    """Shuts a streaming response's socket down once ``timeout_s`` seconds have passed since
    creation (a timer thread); ``expired()`` tells whether it fired."""

    def __init__(self, timeout_s: Optional[float]):
        self.timeout_s = timeout_s
        self.ends = None if timeout_s is None else time.monotonic() + timeout_s
        self._fired = threading.Event()
        self._timer: Optional[threading.Timer] = None

    def watch(self, response) -> None:
        """Arm the timer on ``response`` (fires at once when the deadline already passed)."""
        if self.ends is None:
            return
        self._timer = threading.Timer(max(0.0, self.ends - time.monotonic()), self._cut, (response,))
        self._timer.daemon = True
        self._timer.start()

    def stop(self) -> None:
        """Disarm the timer (the stream ended first)."""
        if self._timer is not None:
            self._timer.cancel()

    def expired(self) -> bool:
        """True when the timer cut the connection, or the deadline passed."""
        return self._fired.is_set() or (self.ends is not None and time.monotonic() > self.ends)

    def _cut(self, response) -> None:
        self._fired.set()
        sock = _socket_of(response)
        log.warning("build still running after %s s: closing its connection", self.timeout_s)
        try:
            if sock is not None:
                sock.shutdown(socket.SHUT_RDWR)  # wakes the reading thread; dockerd sees EOF
            else:  # no socket found: closing is the next best thing
                response.close()
        except Exception:  # noqa: BLE001 - the reading thread may have closed it already
            pass


def _socket_of(response) -> Optional[socket.socket]:
    """The socket under a streaming ``requests`` response (urllib3 connection, or the file the
    http.client response reads from)."""
    raw = getattr(response, "raw", None)
    conn = getattr(raw, "_connection", None) or getattr(raw, "connection", None)
    sock = getattr(conn, "sock", None)
    if isinstance(sock, socket.socket):
        return sock
    fp = getattr(getattr(raw, "_fp", None), "fp", None)
    sock = getattr(getattr(fp, "raw", None), "_sock", None)
    return sock if isinstance(sock, socket.socket) else None


def _explain(exc: BaseException) -> str:
    return str(getattr(exc, "explanation", None) or exc)


def _fault(exc: BaseException):
    """The RegistryFault an Engine answer reports, or None (also for a failure to reach the
    Engine itself, which is not the registry's)."""
    if not isinstance(exc, docker.errors.APIError):
        return None
    return registry_fault(_explain(exc), getattr(exc.response, "status_code", None))


class ImageEngine:
    """Builds, pushes and resolves images with the Engine that ``client`` talks to.

    Args:
        client: the SwarmClient whose low-level API is used.
        registry_auth: the registry logins to send (none: requests go anonymous).
    """

    def __init__(self, client: SwarmClient, registry_auth: Optional[RegistryAuth] = None):
        self.api = client.api
        self.registry_auth = registry_auth or RegistryAuth()

    def build(self, context: str, dockerfile: str, tag: str, buildargs: Dict[str, str],
              target: Optional[str], labels: Dict[str, str], *,
              timeout_s: Optional[float] = None, exclude: Sequence[str] = (),
              dockerfile_text: Optional[str] = None,
              progress: Optional[Callable[[str], None]] = None) -> Tuple[str, List[str]]:
        """Build an image with the Engine's builder (``POST /build``), reading every chunk.

        The caller (``images.build``) has already checked every path through the repo
        sandbox: this method reads no file the repo names except the context's own files, which
        the SDK's ``utils.tar`` archives without following symlinks. It does what the SDK's
        ``APIClient.build`` does, but keeps the HTTP response so a deadline can cut it: at
        ``timeout_s`` the connection is shut down, which makes dockerd cancel the build (the
        request's context ends; the classic builder kills and removes the running step's
        container, moby ``builder/dockerfile/containerbackend.go``).

        Args:
            context: absolute path of the build context folder.
            dockerfile: Dockerfile path relative to ``context`` (when ``dockerfile_text`` is
                None), or the name to give ``dockerfile_text`` inside the sent context.
            tag: full reference to tag the result with (``registry/repo:tag``).
            buildargs: ``--build-arg`` values. target: multi-stage target or None.
            labels: image labels to add.
            timeout_s: seconds the whole build may take (upload, steps, output); None: no limit.
            exclude: ``.dockerignore`` patterns (read by the caller through the sandbox).
            dockerfile_text: the Dockerfile's content when it lies outside ``context`` (the
                SDK's way: it is added to the sent archive under ``dockerfile``).
            progress: called with each output text as it arrives (must not raise), or None.
        Returns:
            tuple ``(image_id, lines)``: ``sha256:...`` id and the build output lines.
        Raises:
            ImageBuildError: the build failed (message plus the last 20 output lines in
                ``log_tail``), ran past ``timeout_s`` (cancelled), or the Engine refused.
        """
        deadline = _Deadline(timeout_s)
        try:
            archive = docker.utils.tar(context, exclude=list(exclude) or None,
                                       dockerfile=(dockerfile, dockerfile_text), gzip=False)
            params = {"t": tag, "q": False, "nocache": False, "rm": True, "forcerm": True,
                      "pull": False, "dockerfile": dockerfile}
            if buildargs:
                params["buildargs"] = json.dumps(dict(buildargs))
            if labels:
                params["labels"] = json.dumps(dict(labels))
            if target:
                params["target"] = target
            headers = {"Content-Type": "application/tar"}
            logins = self.registry_auth.build_config()
            if logins:  # every login: the Dockerfile's FROM may name any registry
                headers["X-Registry-Config"] = docker.auth.encode_header(logins).decode("ascii")
            else:
                self.api._set_auth_headers(headers)
            try:
                # the per-operation socket timeout bounds the upload and any silent step
                response = self.api._post(self.api._url("/build"), data=archive, params=params,
                                          headers=headers, stream=True, timeout=timeout_s)
            finally:
                archive.close()
            deadline.watch(response)
            try:
                self.api._raise_for_status(response)
                image_id, lines, error = parse.scan_build_stream(
                    self.api._stream_helper(response, decode=True), on_text=progress)
            finally:
                deadline.stop()
                response.close()
        except Exception as exc:  # noqa: BLE001 - a cut connection fails in many ways
            if deadline.expired():
                raise ImageBuildError(f"build {tag}: cancelled after {timeout_s:g} s "
                                      "(KEELSON_BUILD_TIMEOUT)") from exc
            if isinstance(exc, _ENGINE_ERRORS + _STREAM_ERRORS):
                fault = build_fault(_explain(exc)) if _fault(exc) else None
                raise ImageBuildError(f"build {tag}: {_explain(exc)}", fault=fault) from exc
            raise
        if deadline.expired():
            raise ImageBuildError(f"build {tag}: cancelled after {timeout_s:g} s "
                                  "(KEELSON_BUILD_TIMEOUT)", log_tail="\n".join(lines[-LOG_TAIL_LINES:]))
        tail = "\n".join(lines[-LOG_TAIL_LINES:])
        if error is not None:
            fault = build_fault(error)  # a FROM the registry refused, or another failure
            raise ImageBuildError(describe("build", tag, error, fault) if fault else
                                  f"build {tag}: {error}", log_tail=tail, fault=fault)
        if not image_id:
            local = self.local_image(tag)
            image_id = (local or {}).get("Id", "")
        if not image_id:
            raise ImageBuildError(f"build {tag}: the engine reported no image id", log_tail=tail)
        return image_id, lines

    def push(self, repository: str, tag: str,
             progress: Optional[Callable[[str, str], None]] = None) -> str:
        """Push ``repository:tag`` (``POST /images/{name}/push``), reading every chunk.

        Args:
            repository: ``registry/path/name`` without tag. tag: the tag to push.
            progress: called with ``(status, layer id)`` of each status message (must not
                raise), or None.
        Returns:
            str: the manifest digest the registry stored (``sha256:...``).
        Raises:
            ImagePushError: an in-band error (registry refused, unreachable), a failed
                request, or a stream that ended without a digest; ``fault`` tells
                unauthorised / unreachable / untrusted apart.
        """
        ref = f"{repository}:{tag}"
        try:
            stream = self.api.push(repository, tag=tag, stream=True, decode=True,
                                   auth_config=self.registry_auth.for_image(repository))
            digest, error = parse.scan_push_stream(stream, on_status=progress)
        except _ENGINE_ERRORS as exc:
            fault = _fault(exc)
            raise ImagePushError(describe("push", ref, _explain(exc), fault), fault) from exc
        if error is not None:
            fault = registry_fault(error)
            raise ImagePushError(describe("push", ref, error, fault), fault)
        if not digest:
            raise ImagePushError(f"push {ref}: the push stream reported no digest")
        return digest

    def registry_info(self, reference: str) -> Optional[Tuple[str, Tuple[Tuple[str, str], ...]]]:
        """Digest and platforms the registry holds for ``repo:tag``, in one request.

        Uses the Engine's ``GET /distribution/{name}/json`` with the login for the image's
        registry (``X-Registry-Auth``). dockerd 20.10 answers 404 ("manifest unknown") for a
        missing tag or repository, 401 or 500 "no basic auth credentials" when the login is
        wrong or missing, and 500 with the dial error when the registry cannot be reached
        (fixtures in tests/unit/fixtures/swarm/, tests/integration/test_registry_auth.py). The
        platforms are what ``docker stack deploy`` copies into ``Placement.Platforms``
        (docker/cli ``stack/swarm`` image resolution).

        Returns:
            (``sha256:...``, ((os, architecture), ...)) or None when the registry has no such tag.
        Raises:
            ImageResolveError: the registry refused (``fault`` UNAUTHORIZED), could not be
                reached (UNREACHABLE), is not trusted (UNTRUSTED), or failed otherwise; the
                message names the image.
        """
        try:
            resp = self.api._get(self.api._url("/distribution/{0}/json", reference),
                                 headers=registry_header(self.registry_auth.for_image(reference)))
            if resp.status_code == 404:
                return None
            self.api._raise_for_status(resp)
            body = resp.json()
            platforms = tuple((p.get("os", ""), p.get("architecture", ""))
                              for p in body.get("Platforms") or [])
            return body["Descriptor"]["digest"], platforms
        except _ENGINE_ERRORS as exc:
            fault = _fault(exc)
            raise ImageResolveError(describe("resolve", reference, _explain(exc), fault),
                                    fault) from exc
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise ImageResolveError(f"resolve {reference}: unexpected answer: {exc}") from exc

    def registry_digest(self, reference: str) -> Optional[str]:
        """The manifest digest the registry holds for ``repo:tag`` (see :meth:`registry_info`).

        Args:
            reference: ``registry/repo:tag``.
        Returns:
            str ``sha256:...`` or None when the registry has no such tag.
        Raises:
            ImageResolveError: as :meth:`registry_info`.
        """
        info = self.registry_info(reference)
        return info[0] if info else None

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
