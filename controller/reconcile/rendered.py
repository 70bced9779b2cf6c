"""The fast path's memory: each stack as last rendered, and when it may be reused.

A stack is rendered again only when its inputs changed (its folder's content hash when it
reads nothing outside its folder, else any new revision) or a digest it pinned is no longer
fresh in the digest cache. Kept slim: no Compose document, file contents or variables.
"""
from __future__ import annotations

import os
import threading
from dataclasses import dataclass, replace
from typing import Dict, List, Optional, Sequence, Tuple

from controller.images.digests import DigestCache
from controller.images.stack import StackImages
from controller.model import DesiredStack, StackManifest


@dataclass(frozen=True)
class Rendered:
    """A stack as loaded, pinned and converted at one revision (kept for the fast path).

    Attributes:
        key: what the rendering depends on: the stack folder's content hash when the stack
            reads nothing outside its folder, else ``rev:<revision>`` (any commit re-renders it).
        inputs: the inputs key (``render.inputs.inputs_hash``: every file and variable the
            stack reads, and the digests its tags resolve to); failures are remembered by it.
        manifest: the loaded stack. images: its pinned images. desired: its Swarm objects.
        warnings: from loading, images and conversion.
    """

    key: str
    inputs: str
    manifest: StackManifest
    images: StackImages
    desired: DesiredStack
    warnings: Tuple[str, ...] = ()


def reads_only_its_folder(manifest: StackManifest) -> bool:
    """True when every file the stack reads (build contexts and Dockerfiles, ``file:`` of
    configs and secrets, ``env_file``) lies inside its own folder, so the folder's content
    hash covers all its inputs."""
    folder = os.path.realpath(manifest.directory)
    paths: List[str] = []
    for build in manifest.builds.values():
        paths += [build.context, os.path.join(build.context, build.dockerfile)]
    for kind in ("configs", "secrets"):
        for obj in (manifest.compose.get(kind) or {}).values():
            if isinstance(obj, dict) and obj.get("file"):
                paths.append(os.path.join(manifest.directory, str(obj["file"])))
    for svc in manifest.services.values():
        env_files = (svc or {}).get("env_file") or []
        for entry in env_files if isinstance(env_files, list) else [env_files]:
            path = entry.get("path") if isinstance(entry, dict) else entry
            if path:
                paths.append(os.path.join(manifest.directory, str(path)))
    return all(os.path.realpath(p) == folder or os.path.realpath(p).startswith(folder + os.sep)
               for p in paths)



class RenderedCache:
    """Thread-safe map stack name -> Rendered (the stack workers share it).

    Args:
        digests: the DigestCache whose freshness decides whether a rendering may be reused.
    """

    def __init__(self, digests: DigestCache):
        self.digests = digests
        self._stacks: Dict[str, Rendered] = {}
        self._lock = threading.Lock()

    def get(self, name: str, inputs: str, revision: str, dry_run: bool) -> Optional[Rendered]:
        """The stack as last rendered, when its inputs are the same (its folder's content for a
        stack that reads only its folder, else the revision) and every digest it pinned is
        still fresh in the digest cache (``follow_tags: false``: whatever the registry says)."""
        if dry_run:
            return None
        with self._lock:
            rendered = self._stacks.get(name)
        if rendered is None or rendered.key not in (inputs or None, f"rev:{revision}"):
            return None
        if not rendered.manifest.options.follow_tags:
            return rendered  # issue 9: same inputs keep the pinned digests, nothing to ask
        for ref in rendered.images.refs.values():
            if not ref.tag:
                continue  # pinned by digest in the stack file: nothing to ask
            fresh = self.digests.fresh(f"{ref.repository}:{ref.tag}")
            if fresh is None or fresh.digest != ref.digest:
                return None
        return rendered

    def remember(self, name: str, rendered: Rendered) -> None:
        """Keep a rendered stack for the fast path, without what only a render needs (the
        Compose document, positions, file contents, variables): memory stays small at
        hundreds of stacks, and no interpolated value outlives its pass."""
        slim = replace(rendered.manifest, compose={}, positions={}, file_data={},
                       file_versions={}, inputs={}, position_files={}, variables={})
        with self._lock:
            self._stacks[name] = replace(rendered, manifest=slim)

    def keep_only(self, names: Sequence[str]) -> None:
        """Forget rendered stacks not in ``names`` (memory stays bounded by the repo)."""
        keep = set(names)
        with self._lock:
            for gone in [n for n in self._stacks if n not in keep]:
                del self._stacks[gone]

    def pinned_references(self) -> List[str]:
        """Every ``repo:tag`` the rendered stacks pin (what the digest cache must keep)."""
        with self._lock:
            return sorted({f"{r.repository}:{r.tag}" for st in self._stacks.values()
                           for r in st.images.refs.values() if r.tag})
