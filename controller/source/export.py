"""Unpack one revision (a ``git archive`` tar stream) into a folder of its own, safely.

The same code on every Python: ``tarfile``'s extraction filters (``data_filter``, Python 3.12
and some 3.8-3.11 patch releases; missing on Debian 12's 3.11.2) are not relied on (issue 7).
Rules, for each member in stream order:

- its name may not be absolute nor contain ``..``; every folder on its way must be a real folder
  made by this extraction (never a symlink), so no member lands outside the destination;
- only regular files, folders and symlinks are made (git stores nothing else); files get mode
  0644 or 0755, never set-uid; a file is written with ``O_EXCL | O_NOFOLLOW``;
- the total (512 bytes per member plus file sizes) may not exceed ``max_bytes``;
- symlinks are made as written; those whose target leaves the tree are listed in the result
  (and every read through ``render.sandbox`` refuses them).
"""
from __future__ import annotations

import os
import stat
import tarfile
from dataclasses import dataclass
from typing import IO, Tuple

from controller.render.compose.sandbox import escaping_links

HEADER_BYTES = 512  # a tar header: what an empty file or a folder costs
COPY_CHUNK = 1 << 20  # bytes copied at a time


class ExportRefused(Exception):
    """The archive breaks a rule above; the message names the member and the rule."""


@dataclass(frozen=True)
class ExportReport:
    """What an extraction made.

    Attributes:
        total_bytes: 512 per member plus the sizes of the files written.
        escaping_links: (path relative to the tree, target as written) of every symlink whose
            target resolves outside the tree, sorted.
    """

    total_bytes: int
    escaping_links: Tuple[Tuple[str, str], ...] = ()


def extract_tree(stream: IO[bytes], dest: str, *, max_bytes: int) -> ExportReport:
    """Unpack a tar stream into ``dest`` (an existing empty folder) under the rules above.

    Args:
        stream: the tar bytes, read once front to back (a pipe is fine).
        dest: absolute path of the empty folder to fill.
        max_bytes: cap on the total, in bytes (see ``ExportReport.total_bytes``).
    Returns:
        ExportReport.
    Raises:
        ExportRefused: a member breaks a rule, or the total passes ``max_bytes``.
        tarfile.TarError, OSError: a broken archive, a full disk.
    """
    dest = os.path.abspath(dest)
    total = 0
    try:
        tar = tarfile.open(fileobj=stream, mode="r|")
    except tarfile.ReadError as exc:
        # a commit with no files: git writes its pax global header and then the end of the
        # archive, which Python's tarfile reads as a broken header. That is an empty tree.
        if "end of file header" in str(exc) or "empty file" in str(exc):
            return ExportReport(total_bytes=0, escaping_links=())
        raise
    with tar:
        for member in tar:
            if member.type in (tarfile.XHDTYPE, tarfile.XGLTYPE):
                continue  # pax headers (git writes the commit id in one)
            name = _checked_name(member.name)
            total += HEADER_BYTES + (member.size if member.isfile() else 0)
            if total > max_bytes:
                raise ExportRefused(f"the revision is bigger than the {max_bytes} bytes allowed "
                                    "(KEELSON_MAX_TREE_BYTES)")
            if not name:
                continue  # the top folder itself
            target = os.path.join(dest, *name.split("/"))
            _make_parents(dest, name)
            if member.isdir():
                if not os.path.isdir(target) or os.path.islink(target):
                    os.mkdir(target, 0o755)
            elif member.issym():
                os.symlink(member.linkname, target)
            elif member.isfile():
                _write_file(tar, member, target)
            else:
                raise ExportRefused(f"{name}: only files, folders and symlinks are allowed "
                                    f"(tar type {member.type!r})")
    bad = tuple((os.path.relpath(link, dest), to) for link, to in escaping_links(dest, dest))
    return ExportReport(total_bytes=total, escaping_links=bad)


def _checked_name(name: str) -> str:
    """The member name as ``a/b/c`` (no ``./``, no trailing ``/``); refuses ``/x`` and ``..``."""
    if name.startswith("/") or "\\" in name or "\x00" in name:
        raise ExportRefused(f"{name!r}: absolute or odd member name")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise ExportRefused(f"{name!r}: a member name with '..'")
    return "/".join(parts)


def _make_parents(dest: str, name: str) -> None:
    """Make the folders above ``name`` inside ``dest``; refuse a symlink or a file on the way."""
    path = dest
    for part in name.split("/")[:-1]:
        path = os.path.join(path, part)
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            os.mkdir(path, 0o755)
            continue
        if not stat.S_ISDIR(st.st_mode):
            raise ExportRefused(f"{name!r}: {os.path.relpath(path, dest)} on its way is not a "
                                "folder (a symlink?)")


def _write_file(tar: tarfile.TarFile, member: tarfile.TarInfo, target: str) -> None:
    """Copy one regular file's bytes to ``target`` (new file, not through a link)."""
    mode = 0o755 if member.mode & 0o111 else 0o644
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                 | getattr(os, "O_CLOEXEC", 0), mode)
    with os.fdopen(fd, "wb") as out:
        src = tar.extractfile(member)
        if src is None:
            return
        left = member.size
        while left > 0:
            chunk = src.read(min(COPY_CHUNK, left))
            if not chunk:
                raise tarfile.ReadError(f"{member.name}: the archive ended inside the file")
            out.write(chunk)
            left -= len(chunk)
