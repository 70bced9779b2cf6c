"""Where the manifests come from: a git branch (GitSource) or a plain folder (FolderSource).

``make_source`` picks one from the ``--repo`` setting; ``ChangeWatcher`` turns file events on a
local source into a prompt reconcile.
"""
from __future__ import annotations

import os
from typing import Optional, Union

from controller.config import Settings
from controller.errors import ConfigError
from controller.source.folder import FolderSource, hash_folder
from controller.source.git import GitSource, git_dir_of, is_remote_url
from controller.source.watch import ChangeWatcher

__all__ = ["ChangeWatcher", "FolderSource", "GitSource", "hash_folder", "local_watch_path",
           "make_source"]


def make_source(repo: str, branch: str, path: str, workdir: str, *,
                git_timeout_s: float = Settings.git_timeout_s,
                max_tree_bytes: Optional[int] = None) -> Union[GitSource, FolderSource]:
    """Build the source the ``--repo`` setting names.

    Args:
        repo: a git URL (``https://``, ``ssh://``, ``git@host:path``, ``file://``), a local git
            repo (bare, or a work tree with ``.git``), or a plain folder.
        branch: branch to follow (ignored for a plain folder).
        path: folder inside the repo with one sub-folder per stack.
        workdir: Keelson's own folder for the clone and exported trees (git only).
        git_timeout_s: seconds one git command may run (KEELSON_GIT_TIMEOUT).
        max_tree_bytes: cap on one revision, bytes (KEELSON_MAX_TREE_BYTES); None: default.
    Returns:
        GitSource | FolderSource: a GitSource for a URL or a local git repo, a FolderSource
        reading a plain folder in place.
    Raises:
        ConfigError: ``repo`` is empty, or a local path that does not exist or is not a folder.
    """
    if not repo:
        raise ConfigError("--repo (KEELSON_REPO) is required: a git URL, a local repo or a folder")
    if is_remote_url(repo):
        return GitSource(repo, branch, path, workdir, timeout_s=git_timeout_s,
                         max_tree_bytes=max_tree_bytes)
    local = os.path.abspath(os.path.expanduser(repo))
    if not os.path.exists(local):
        raise ConfigError(f"--repo {repo!r}: no such folder ({local}) and not a git URL")
    if not os.path.isdir(local):
        raise ConfigError(f"--repo {repo!r}: {local} is a file, not a git repo or a folder")
    if git_dir_of(local) is not None:
        return GitSource(local, branch, path, workdir, timeout_s=git_timeout_s,
                         max_tree_bytes=max_tree_bytes)
    return FolderSource(local, path, max_tree_bytes=max_tree_bytes)


def local_watch_path(repo: str) -> Optional[str]:
    """The folder to watch for changes, when the source is on this machine.

    Args:
        repo: the ``--repo`` setting.
    Returns:
        str | None: the absolute path of a local git repo or folder (for ``file://`` URLs, the
        path they name); None for remote URLs and for paths that do not exist.
    """
    if repo.startswith("file://"):
        local = repo[len("file://"):]
    elif is_remote_url(repo) or not repo:
        return None
    else:
        local = os.path.expanduser(repo)
    local = os.path.abspath(local)
    return local if os.path.isdir(local) else None
