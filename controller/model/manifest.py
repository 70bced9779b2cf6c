"""A stack as loaded from its folder, and the images it runs."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

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
    """

    context: str
    dockerfile: str = "Dockerfile"
    args: Dict[str, str] = field(default_factory=dict)
    target: Optional[str] = None
    image: Optional[str] = None
    labels: Dict[str, str] = field(default_factory=dict)


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
        options: the stack's ``x-keelson`` options (drift mode, recreate).
    """

    name: str
    file: str
    directory: str
    compose: dict
    builds: Dict[str, BuildSpec] = field(default_factory=dict)
    warnings: List[str] = field(default_factory=list)
    source_hash: str = ""
    positions: Dict[str, int] = field(default_factory=dict)
    options: StackOptions = field(default_factory=StackOptions)

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
