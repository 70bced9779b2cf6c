"""The manifests as a plain folder (no git): read in place, revisions are content hashes.

For development and for repos synced by something else (a volume, rsync). A revision is
``dir-<sha256>`` of every file's relative path and content, so a saved file is a new revision
and an untouched folder is the same revision however often it is read.
"""
from __future__ import annotations

import os
import stat
from typing import Dict, Optional

from controller.errors import ControlError, SourceError
from controller.model.source import Checkout, Revision
from controller.render.compose.inputs import hash_file, hash_tree
from controller.render.compose.sandbox import DEFAULT_LIMITS


def hash_folder(folder: str) -> str:
    """Hash a folder's content (``controller.render.compose.inputs.hash_tree``: paths, contents, links).

    Raises:
        OSError: a file could not be read.
    """
    return hash_tree(folder)


def tree_size(folder: str) -> int:
    """Size of a folder counted as an exported revision is: 512 bytes per entry plus the size
    of each regular file (symlinks are not followed).

    Raises:
        OSError: an entry vanished while counting.
    """
    total = 0
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in dirnames + filenames:
            st = os.lstat(os.path.join(dirpath, name))
            total += 512 + (st.st_size if stat.S_ISREG(st.st_mode) else 0)
    return total


class FolderSource:
    """A plain folder holding the manifests, read where it is.

    Args:
        folder: the folder (the repo's top level); relative paths are made absolute.
        path: folder inside ``folder`` with one sub-folder per stack (``.`` or ``""`` for
            ``folder`` itself).
        max_tree_bytes: cap on the folder's size, bytes (512 per entry plus file sizes, as an
            exported revision; KEELSON_MAX_TREE_BYTES); None for the Settings default.
    """

    def __init__(self, folder: str, path: str, *, max_tree_bytes: Optional[int] = None):
        self.folder = os.path.abspath(folder)
        self.max_tree_bytes = max_tree_bytes or DEFAULT_LIMITS.tree_bytes
        self.path = "" if os.path.normpath(path or ".") == "." else os.path.normpath(path)
        self._last: "Revision | None" = None

    @property
    def revision_of_last_fetch(self) -> "Revision | None":
        """The revision the last successful ``fetch()`` returned, or None before the first."""
        return self._last

    def fetch(self) -> Checkout:
        """Hash the folder and describe it as a Checkout (nothing is copied).

        Returns:
            Checkout: ``root`` = the folder, ``manifests`` = ``root/path``, ``stack_hashes`` =
            stack folder name -> sha256 hex of its content, revision =
            Revision(``dir-<sha256>``, ref ``folder``, committed_at None).
        Raises:
            SourceError: the folder or the manifests path is missing, a file cannot be read, or
                the folder is bigger than ``max_tree_bytes`` (checked before hashing).
        """
        manifests = os.path.join(self.folder, self.path) if self.path else self.folder
        if not os.path.isdir(self.folder):
            raise SourceError(f"manifests folder {self.folder} does not exist")
        if not os.path.isdir(manifests):
            raise SourceError(f"manifests path {self.path!r} not found in folder {self.folder}")
        try:
            size = tree_size(self.folder)
            if size > self.max_tree_bytes:
                raise SourceError(f"manifests folder {self.folder} holds {size} bytes, more than "
                                  f"the {self.max_tree_bytes} allowed (KEELSON_MAX_TREE_BYTES)")
            stack_hashes: Dict[str, str] = {}
            for name in sorted(os.listdir(manifests)):
                full = os.path.join(manifests, name)
                if os.path.isdir(full):
                    stack_hashes[name] = hash_folder(full)
            sha = hash_folder(self.folder)
        except OSError as exc:
            raise SourceError(f"cannot read {exc.filename or self.folder}: {exc.strerror}") from exc
        revision = Revision(sha=f"dir-{sha}", ref="folder", committed_at=None, message="")
        self._last = revision
        return Checkout(revision=revision, root=self.folder, manifests=manifests,
                        stack_hashes=stack_hashes)

    def checkout_at(self, revision: str) -> Checkout:
        """A plain folder has no earlier revisions (``keelson rollback``, issue 13.3).

        Raises:
            ControlError: always.
        """
        raise ControlError(f"cannot roll back to {revision or 'an earlier revision'}: the "
                           f"source {self.folder} is a plain folder, which keeps no earlier "
                           "revisions (use a git repo as KEELSON_REPO)")

    def last_change(self, checkout: Checkout, folder: str) -> str:
        """Identify the current content of ``folder`` (a folder has no history).

        Args:
            checkout: the Checkout from ``fetch()``.
            folder: absolute path, or a path relative to ``checkout.root``; a file (a
                Dockerfile outside its build context) is accepted too.
        Returns:
            str: sha256 hex (64 characters) of the folder's content, as ``hash_folder`` (of the
            file's bytes for a file).
        Raises:
            SourceError: the folder or file cannot be read.
        """
        full = folder if os.path.isabs(folder) else os.path.join(checkout.root, folder)
        if os.path.isfile(full):
            try:
                return hash_file(full)
            except OSError as exc:
                raise SourceError(f"cannot read {full}: {exc.strerror}") from exc
        if not os.path.isdir(full):
            raise SourceError(f"folder {folder!r} not found in {checkout.root}")
        try:
            return hash_folder(full)
        except OSError as exc:
            raise SourceError(f"cannot read {exc.filename or full}: {exc.strerror}") from exc
