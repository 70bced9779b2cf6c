"""Pure naming rules for the images Keelson builds: repository and content-derived tag."""
from __future__ import annotations

import hashlib
import json
from typing import Optional

from controller.model.manifest import BuildSpec, ImageRef
from controller.model.registry_auth import is_host

DEFAULT_DOCKERFILE = "Dockerfile"
REVISION_CHARS = 12  # hex digits of the git revision in a tag (as `git log --abbrev=12`)
OPTIONS_CHARS = 8  # hex digits of the build-options hash in a tag


def has_registry_host(name: str) -> bool:
    """True when the first path component of an image name is a registry host.

    Rule from docker/distribution ``reference.splitDockerDomain``: the part before the first
    ``/`` is a host when it contains ``.`` or ``:``, or is ``localhost``, or has upper case.

    Args:
        name: image name without tag or digest (``team/api``, ``127.0.0.1:5000/api``).
    Returns:
        bool.
    """
    return "/" in name and is_host(name.split("/", 1)[0])


def build_repository(registry: str, stack: str, service: str, image: Optional[str]) -> str:
    """Repository a service's ``build:`` is pushed to.

    Args:
        registry: ``host:port`` of Keelson's registry ("" leaves names unprefixed).
        stack: stack name. service: the service's key in the stack file.
        image: the service's ``image:`` when it names one beside ``build:``, else None.
    Returns:
        str: ``<registry>/<stack>_<service>`` (lower case: registries refuse upper case), or the
        repository of ``image`` (tag and digest dropped), prefixed with ``<registry>/`` when
        it names no registry host.
    """
    if image:
        repo = ImageRef.parse(image).repository
        if has_registry_host(repo) or not registry:
            return repo
        return f"{registry}/{repo}"
    name = f"{stack}_{service}".lower()
    return f"{registry}/{name}" if registry else name


def build_options_hash(build: BuildSpec, dockerfile_revision: str = "") -> str:
    """Hex sha256 of the build options that change the image besides the context.

    Args:
        build: the service's build section (args, target, dockerfile and, when given, labels
            are hashed as sorted JSON).
        dockerfile_revision: the revision that last changed a Dockerfile lying outside the
            context ("" when it is inside: the context revision covers it); hashed when given.
    Returns:
        str: 64 hex digits.
    """
    doc = {"args": dict(sorted((build.args or {}).items())), "target": build.target or "",
           "dockerfile": build.dockerfile or DEFAULT_DOCKERFILE}
    if build.labels:
        doc["labels"] = dict(sorted(build.labels.items()))
    if dockerfile_revision:
        doc["dockerfile_revision"] = dockerfile_revision
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode("utf-8")).hexdigest()


def build_tag(context_revision: str, build: BuildSpec, dockerfile_revision: str = "") -> str:
    """Tag of a built image: the same context, Dockerfile and options always give the same tag.

    Args:
        context_revision: full git revision (hex) that last changed the build context.
        build: the service's build section.
        dockerfile_revision: when the Dockerfile lies outside the context
            (``build.dockerfile_outside``), the revision (or content hash) that last changed
            it; a change to it then changes the tag, so the image is rebuilt.
    Returns:
        str: first 12 hex of ``context_revision``, plus ``-<8 hex>`` of build_options_hash
        when args, target, dockerfile or labels differ from the defaults (none, none,
        ``Dockerfile``, none) or ``dockerfile_revision`` is given.
    Raises:
        ValueError: ``context_revision`` is empty or not hexadecimal.
    """
    rev = (context_revision or "").strip().lower()
    if not rev or any(c not in "0123456789abcdef" for c in rev):
        raise ValueError(f"context revision must be a hex git revision, got {context_revision!r}")
    tag = rev[:REVISION_CHARS]
    default = (not build.args and not build.target and not build.labels and not dockerfile_revision
               and (build.dockerfile or DEFAULT_DOCKERFILE) == DEFAULT_DOCKERFILE)
    if not default:
        tag += "-" + build_options_hash(build, dockerfile_revision)[:OPTIONS_CHARS]
    return tag
