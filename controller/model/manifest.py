"""A stack as loaded from its folder, and the images it runs."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

from controller.model.drift import StackOptions


@dataclass(frozen=True)
class BuildSpec:
    """A service's ``build:`` section, resolved against the stack folder.

    Attributes:
        context: absolute path of the build context (checked to exist by the loader).
        dockerfile: Dockerfile path relative to ``context`` (default ``Dockerfile``).
        args: build arguments after interpolation (name -> value).
        target: multi-stage target, or None.
        image: the service's ``image:`` name when both are given (its repository is used).
        labels: image labels from ``build.labels`` (name -> value).
        root: the tree the build must stay in (the exported revision); the image step reads the
            Dockerfile and ``.dockerignore`` through a sandbox rooted here ("" = ``context``).
    """

    context: str
    dockerfile: str = "Dockerfile"
    args: Dict[str, str] = field(default_factory=dict)
    target: Optional[str] = None
    image: Optional[str] = None
    labels: Dict[str, str] = field(default_factory=dict)
    root: str = ""

    @property
    def dockerfile_path(self) -> str:
        """Absolute path of the Dockerfile (``dockerfile`` resolved against ``context``)."""
        return os.path.normpath(os.path.join(self.context, self.dockerfile or "Dockerfile"))

    @property
    def dockerfile_outside(self) -> bool:
        """True when the Dockerfile lies outside the build context (then its own changes must
        change the image tag, as the context's revision does not cover it)."""
        ctx = os.path.normpath(self.context)
        return not self.dockerfile_path.startswith(ctx + os.sep)


@dataclass
class StackManifest:
    """One stack, loaded, interpolated, type-cast and validated.

    Attributes:
        name: stack name (the folder's name; also the ``com.docker.stack.namespace``).
        file: absolute path of the stack file that was loaded.
        directory: absolute path of the stack folder (relative paths resolve against it).
        compose: the Compose document after interpolation, merge keys and casting; ``x-`` keys
            removed. Shapes are those of the Compose Specification (short or long forms kept).
        builds: service name -> BuildSpec for services with ``build:``.
        warnings: human-readable warnings (ignored keys, unset variables).
        source_hash: hash of the stack folder's content (set by the source), "" if unknown.
        positions: dotted key path (``services.web.deploy.replicas``) -> 1-based line in
            ``file``, so later stages can point at the line of a bad value.
        x_keelson: the top-level ``x-keelson`` mapping as written (not interpolated; {} when
            absent): per-stack Keelson options such as ``adopt``.
        files: absolute paths of the stack files merged into ``compose``, base (``file``)
            first, then its override files in merge order.
        position_files: dotted key path -> the override file (as errors show it) whose line
            ``positions`` holds for that path; paths not listed are in ``file``.
        shown_file: ``file`` as errors show it (relative to the manifests root where known).
        inputs: everything the stack read -> sha256 hex of it: file paths (relative to the
            manifests root when known) of stack files, ``.env``, env_files, config/secret
            files, build contexts (tree hash) and Dockerfiles, and ``variable NAME`` for each
            interpolation variable (hash of its value, or ``unset``). See
            ``controller.render.compose.inputs.inputs_hash``.
        variables: the variables interpolation used (the stack's ``.env`` overlaid with the
            allowed controller variables); config/secret ``environment:`` reads these too.
        file_data: absolute path -> content of each config/secret ``file:``, read by the loader
            through the sandbox (size-capped, confined to the tree; decrypted when SOPS-encrypted).
        file_versions: absolute path -> version id (hex) of each SOPS-decrypted ``file:``, a
            keyed hash of its plaintext (``encrypted.Decryptor.version``) that names its
            versioned config/secret instead of the plain content hash.
        options: the stack's ``x-keelson`` options (drift mode, recreate, rollback, analysis).
        depends: compose service name -> {dependency: condition} from ``depends_on`` (issue
            10: rollout waves); every service is a key.
    """

    name: str
    file: str
    directory: str
    compose: dict
    builds: Dict[str, BuildSpec] = field(default_factory=dict)
    warnings: List[str] = field(default_factory=list)
    source_hash: str = ""
    positions: Dict[str, int] = field(default_factory=dict)
    x_keelson: Dict[str, Any] = field(default_factory=dict)
    files: Tuple[str, ...] = ()
    position_files: Dict[str, str] = field(default_factory=dict)
    inputs: Dict[str, str] = field(default_factory=dict)
    shown_file: str = ""
    variables: Dict[str, str] = field(default_factory=dict)
    file_data: Dict[str, bytes] = field(default_factory=dict)
    file_versions: Dict[str, str] = field(default_factory=dict)
    options: StackOptions = field(default_factory=StackOptions)
    depends: Dict[str, Dict[str, str]] = field(default_factory=dict)

    @property
    def services(self) -> dict:
        """The ``services`` mapping (service name -> Compose service dict)."""
        return self.compose.get("services") or {}


@dataclass(frozen=True)
class ImageRef:
    """An image pinned by digest.

    Attributes:
        repository: ``registry/path/name`` without tag.
        tag: the tag it was pushed or referenced under ("" when none).
        digest: ``sha256:<64 hex>`` manifest digest, or "" when it could not be resolved.
        platforms: ((os, architecture), ...) the registry lists for that digest, in its order;
            written to ``Placement.Platforms`` as ``docker stack deploy --resolve-image always``
            does, so a mixed-architecture swarm never schedules a task on a node it cannot run.
    """

    repository: str
    tag: str = ""
    digest: str = ""
    platforms: Tuple[Tuple[str, str], ...] = ()

    @property
    def reference(self) -> str:
        """``repo:tag@sha256:...`` (the form ``docker stack deploy`` pins services to)."""
        ref = self.repository + (f":{self.tag}" if self.tag else "")
        return ref + (f"@{self.digest}" if self.digest else "")

    @staticmethod
    def parse(reference: str) -> "ImageRef":
        """Split ``repo[:tag][@digest]`` into its parts (a registry port is not a tag)."""
        digest = ""
        if "@" in reference:
            reference, digest = reference.split("@", 1)
        repo, tag = reference, ""
        last = reference.rsplit("/", 1)[-1]
        if ":" in last:
            repo, tag = reference.rsplit(":", 1)
        return ImageRef(repo, tag, digest)
