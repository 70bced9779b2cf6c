"""Where desired state comes from: a revision of the manifests repo."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional


@dataclass(frozen=True)
class Revision:
    """One revision of the manifests source.

    Attributes:
        sha: full git commit hash, or ``dir-<sha256>`` of a plain folder's content.
        ref: the branch followed (``main``), or ``folder`` for a plain folder.
        committed_at: commit time, seconds since the epoch (None for a folder).
        message: first line of the commit message.
    """

    sha: str
    ref: str = "main"
    committed_at: Optional[float] = None
    message: str = ""

    @property
    def short(self) -> str:
        """The first 12 characters of the revision id (12 hex digits for git)."""
        return self.sha[4:16] if self.sha.startswith("dir-") else self.sha[:12]


@dataclass(frozen=True)
class Checkout:
    """A revision exported to a folder of its own, ready to load.

    Attributes:
        revision: the revision exported.
        root: absolute path of the exported tree (the repo's top level).
        manifests: absolute path of the manifests folder inside ``root``.
        stack_hashes: stack name -> hash of that stack folder's content (git tree id or sha256),
            so a stack is known unchanged without rendering it.
        context_revisions: absolute folder path -> short id of the last revision that changed it,
            filled on demand by the source (see ``GitSource.last_change``).
    """

    revision: Revision
    root: str
    manifests: str
    stack_hashes: dict
