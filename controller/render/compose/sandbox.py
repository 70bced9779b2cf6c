"""The one way Keelson reads a file because the repo says so: confined to the exported tree.

The deploy repo is semi-trusted (issue 7): a merge may change what runs on the swarm, never what
Keelson itself reads. Every path the repo names (stack file, ``.env``, ``env_file``, config and
secret ``file:``, build context, Dockerfile, ``.dockerignore``) is resolved here:

- a path written as absolute (``/run/secrets/x``) or from a home folder (``~/.ssh``) is refused;
- a path whose ``..`` leaves the tree is refused, and so is one that passes through a symlink
  whose target lies outside the tree (the real path is checked, on every Python version: nothing
  here relies on ``tarfile.data_filter``);
- a file is opened with ``O_NOFOLLOW`` after the check, must be a regular file (a FIFO would
  block the loop) and may not exceed its size cap; a folder (a build context) may hold no symlink
  pointing outside the tree.

It lives in ``render`` (not ``source``) because the loader, which is pure apart from these
reads, sits below ``source`` in the layers; ``source`` and ``images`` use it too.
"""
from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from typing import List, Optional, Tuple

from controller.config import Settings
from controller.errors import ManifestError, RepoAccessError

READ_CHUNK = 1 << 16  # bytes read at a time


@dataclass(frozen=True)
class RepoLimits:
    """Size caps on what the repo makes Keelson read, in bytes (see Settings for defaults).

    Attributes:
        stack_file_bytes: a stack file. env_file_bytes: a ``.env`` or ``env_file``.
        object_file_bytes: a config or secret ``file:`` (and a Dockerfile or
            ``.dockerignore``). tree_bytes: one exported revision (512 per entry plus sizes).
    """

    stack_file_bytes: int
    env_file_bytes: int
    object_file_bytes: int
    tree_bytes: int

    @classmethod
    def from_settings(cls, settings: Settings) -> "RepoLimits":
        """The limits the operator set (``KEELSON_MAX_*_BYTES``)."""
        return cls(settings.max_stack_file_bytes, settings.max_env_file_bytes,
                   settings.max_object_file_bytes, settings.max_tree_bytes)


DEFAULT_LIMITS = RepoLimits.from_settings(Settings())


def is_inside(path: str, root: str) -> bool:
    """True when ``path`` is ``root`` or below it (both absolute and normalised)."""
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


class RepoSandbox:
    """Resolves and reads paths the repo names, never leaving ``root``.

    Args:
        root: the exported tree (or plain folder) every read must stay in; symlinks in its own
            path are allowed (its real path is what paths are checked against).
        limits: size caps; DEFAULT_LIMITS when None.
    """

    def __init__(self, root: str, limits: Optional[RepoLimits] = None):
        self.root = os.path.abspath(root)
        self.real_root = os.path.realpath(self.root)
        self.limits = limits or DEFAULT_LIMITS

    def resolve(self, base: str, value: str, *, what: str, want: Optional[str] = None) -> str:
        """Resolve a path written in the repo against the folder it is relative to.

        Args:
            base: absolute folder inside the tree the value is relative to (the stack folder,
                or a build context for its Dockerfile).
            value: the path as written (``./site``, ``config/a.conf``).
            what: what it is, for messages (``env_file``, ``build.dockerfile``).
            want: ``"file"`` or ``"folder"`` to require that it exists as one; None to accept
                a missing path (``env_file`` with ``required: false``).
        Returns:
            str: absolute path in ``root``'s spelling with in-tree symlinks resolved, so a later
            open cannot be redirected by a link.
        Raises:
            RepoAccessError: absolute, ``~``, ``..`` out of the tree, or a symlink out of it.
            ManifestError: ``want`` given and the path is missing or of the other kind.
        """
        text = str(value)
        if "\x00" in text:
            raise RepoAccessError(f"{what} {text!r} contains a NUL byte", rule="outside-repo")
        if text.startswith("~"):
            raise RepoAccessError(f"{what} {text!r} names a home folder; paths must be relative "
                                  "to the stack folder", rule="home-path")
        if os.path.isabs(text):
            raise RepoAccessError(f"{what} {text!r} is an absolute path; paths must be relative "
                                  "to the stack folder and stay inside the repository",
                                  rule="absolute-path")
        joined = os.path.normpath(os.path.join(os.path.abspath(base), text))
        if not is_inside(joined, self.root):
            raise RepoAccessError(f"{what} {text!r} leaves the repository (..)", rule="outside-repo")
        real = os.path.realpath(joined)
        if not is_inside(real, self.real_root):
            raise RepoAccessError(f"{what} {text!r} is or passes through a symlink that points "
                                  "outside the repository", rule="symlink-outside")
        if want == "file" and not os.path.isfile(real):
            raise ManifestError(f"{what} {text!r} does not exist or is not a file")
        if want == "folder" and not os.path.isdir(real):
            raise ManifestError(f"{what} {text!r} does not exist or is not a folder")
        return self._spelled(real)

    def read(self, path: str, *, what: str, max_bytes: int) -> bytes:
        """Read a file inside the tree, at most ``max_bytes`` bytes.

        Args:
            path: absolute path (from :meth:`resolve`, or a file found by listing the tree).
            what: what it is, for messages. max_bytes: its size cap in bytes.
        Returns:
            bytes: the whole content.
        Raises:
            RepoAccessError: outside the tree (by its real path), a symlink, not a regular file
                (a FIFO, a device), or bigger than ``max_bytes``.
            ManifestError: it cannot be read (missing, permissions).
        """
        shown = self.shown(path)
        real = os.path.realpath(path)
        if not is_inside(real, self.real_root):
            raise RepoAccessError(f"{what} {shown} is or passes through a symlink that points "
                                  "outside the repository", rule="symlink-outside")
        flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
        try:
            fd = os.open(real, flags)
        except OSError as exc:
            if os.path.islink(real):  # swapped for a link after the check: refuse, do not follow
                raise RepoAccessError(f"{what} {shown} is a symlink", rule="symlink-outside") from exc
            raise ManifestError(f"cannot read {what} {shown}: {exc.strerror}") from exc
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise RepoAccessError(f"{what} {shown} is not a regular file",
                                      rule="not-a-regular-file")
            if st.st_size > max_bytes:
                raise RepoAccessError(f"{what} {shown} has {st.st_size} bytes, more than the "
                                      f"{max_bytes} allowed", rule="size-cap")
            chunks: List[bytes] = []
            total = 0
            while True:
                chunk = os.read(fd, READ_CHUNK)
                if not chunk:
                    break
                total += len(chunk)
                if total > max_bytes:  # grew while being read
                    raise RepoAccessError(f"{what} {shown} has more than the {max_bytes} bytes "
                                          "allowed", rule="size-cap")
                chunks.append(chunk)
            return b"".join(chunks)
        except OSError as exc:
            raise ManifestError(f"cannot read {what} {shown}: {exc.strerror}") from exc
        finally:
            os.close(fd)

    def read_text(self, path: str, *, what: str, max_bytes: int) -> str:
        """:meth:`read`, decoded as UTF-8 (ManifestError when it is not UTF-8)."""
        data = self.read(path, what=what, max_bytes=max_bytes)
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ManifestError(f"{what} {self.shown(path)} is not UTF-8 text "
                                f"(byte {exc.start})") from exc

    def check_folder(self, folder: str, *, what: str) -> None:
        """Refuse a folder (a build context) holding a symlink whose target leaves the tree.

        Args:
            folder: absolute folder inside the tree. what: what it is, for messages.
        Raises:
            RepoAccessError: the folder itself leads outside the tree, or the first link under
                it that does, named relative to the tree (rule ``symlink-outside``).
        """
        if not is_inside(os.path.realpath(folder), self.real_root):  # never walk the outside
            raise RepoAccessError(f"{what} {self.shown(folder)} is a symlink that points outside "
                                  "the repository", rule="symlink-outside")
        bad = escaping_links(folder, self.real_root)
        if bad:
            link, _ = bad[0]
            raise RepoAccessError(f"{what} holds {self.shown(link)}, a symlink that points "
                                  "outside the repository", rule="symlink-outside")

    def shown(self, path: str) -> str:
        """``path`` relative to the tree, as messages name files (never the content)."""
        for root in (self.root, self.real_root):
            if is_inside(os.path.abspath(path), root):
                return os.path.relpath(os.path.abspath(path), root)
        return os.path.basename(path)

    def _spelled(self, real: str) -> str:
        """A real path inside ``real_root`` written under ``root`` (the caller's spelling)."""
        rel = os.path.relpath(real, self.real_root)
        return self.root if rel == "." else os.path.join(self.root, rel)


def escaping_links(folder: str, root: str) -> List[Tuple[str, str]]:
    """Every symlink under ``folder`` whose target resolves outside ``root``.

    Args:
        folder: absolute folder to walk (symlinked folders are checked, not walked).
        root: the tree's real path.
    Returns:
        list of (link path, its target as written), sorted by path; empty when all stay inside.
    """
    root = os.path.realpath(root)
    out: List[Tuple[str, str]] = []
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            if os.path.islink(full) and not is_inside(os.path.realpath(full), root):
                out.append((full, os.readlink(full)))
    return sorted(out)
