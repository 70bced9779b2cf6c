"""The manifests repo as a git remote: fetch a branch, export its head to a folder of its own.

Only this module (and ``watch.py``) talk to git. The clone is bare and lives in
``<workdir>/repo``; every revision is exported to ``<workdir>/trees/<sha>`` so a pass reads a
tree nobody changes under it. Secrets (token, credentials in the URL) never reach git's command
line: they travel in ``GIT_CONFIG_*`` environment variables and are redacted from every message
(``auth.py``).
"""
from __future__ import annotations

import logging
import os
import re
import shutil
import tarfile
import threading
import uuid
from typing import Dict, Mapping, Optional, Tuple

import git

from controller.config import Settings
from controller.errors import ControlError, GitFetchError
from controller.render.compose.sandbox import DEFAULT_LIMITS
from controller.model.source import Checkout, Revision
from controller.source.auth import GitCredentials, split_credentials
from controller.source.export import ExportRefused, extract_tree

log = logging.getLogger(__name__)

KEEP_TREES = 3  # exported trees kept: the current one plus two a slow pass may still read
MARKER_SUFFIX = ".complete"  # trees/<sha>.complete is written once trees/<sha> is whole
TRACKING_PREFIX = "refs/remotes/origin/"
SCP_LIKE = re.compile(r"^[A-Za-z0-9._-]+@[A-Za-z0-9._-]+:")  # git@host:org/repo.git
COMMIT_ID = re.compile(r"^[0-9a-fA-F]{4,40}$")  # what `rollback --to` accepts (never an option)
REMOTE_SCHEMES = ("https://", "http://", "ssh://", "git://", "file://", "git+ssh://")


def is_remote_url(repo: str) -> bool:
    """Tell a git URL from a local path.

    Args:
        repo: the ``--repo`` setting.
    Returns:
        bool: True for ``https://``, ``http://``, ``ssh://``, ``git://``, ``file://`` and
        scp-like ``user@host:path``; False for anything else (a local path).
    """
    return repo.startswith(REMOTE_SCHEMES) or bool(SCP_LIKE.match(repo))


def git_dir_of(path: str) -> Optional[str]:
    """Find the git directory of a local repo.

    Args:
        path: a folder that may be a bare repo or a work tree with ``.git``.
    Returns:
        str | None: absolute path of the git directory (``path`` itself for a bare repo,
        ``path/.git`` or the folder a ``.git`` file points to for a work tree), or None when
        ``path`` is not the top of a git repo.
    """
    path = os.path.abspath(path)
    dot_git = os.path.join(path, ".git")
    if os.path.isdir(dot_git):
        return dot_git
    if os.path.isfile(dot_git):  # linked work tree or submodule: "gitdir: <path>"
        try:
            with open(dot_git, encoding="utf-8") as fh:
                line = fh.readline().strip()
        except OSError:
            return None
        if line.startswith("gitdir:"):
            return os.path.normpath(os.path.join(path, line[len("gitdir:"):].strip()))
        return None
    if (os.path.isfile(os.path.join(path, "HEAD")) and os.path.isdir(os.path.join(path, "objects"))
            and os.path.isdir(os.path.join(path, "refs"))):
        return path
    return None


class GitSource:
    """A branch of a git repo, fetched on demand and exported one folder per revision.

    Args:
        url: the repo: ``https://…``, ``ssh://…``, ``git@host:path``, ``file://…`` or a local
            path to a bare repo or work tree. ``https://user:token@host/…`` is accepted; the
            credential is moved into a request header and never printed.
        branch: branch to follow (``main``).
        path: folder inside the repo holding one sub-folder per stack (``manifests``; ``.`` or
            ``""`` for the top level).
        workdir: folder Keelson owns; the clone goes in ``repo/``, exported trees in ``trees/``.
        environ: where credentials are read from (default ``os.environ``): ``KEELSON_GIT_TOKEN``
            or ``KEELSON_GIT_TOKEN_FILE`` (HTTPS; optional ``KEELSON_GIT_USERNAME``, default
            ``x-access-token``), ``KEELSON_GIT_SSH_KEY_FILE`` and
            ``KEELSON_GIT_KNOWN_HOSTS_FILE`` (SSH). Read again on every fetch, so a rotated
            secret is picked up.
        timeout_s: seconds a single git command may run before it is killed
            (KEELSON_GIT_TIMEOUT).
        max_tree_bytes: cap on one exported revision, bytes (KEELSON_MAX_TREE_BYTES; see
            ``export.extract_tree``); None for the Settings default.
    """

    def __init__(self, url: str, branch: str, path: str, workdir: str, *,
                 environ: Optional[Mapping[str, str]] = None,
                 timeout_s: float = Settings.git_timeout_s,
                 max_tree_bytes: Optional[int] = None):
        self.url, url_credentials = split_credentials(url)
        self.branch = branch
        self.path = _norm_repo_path(path)
        self.workdir = os.path.abspath(workdir)
        self.timeout_s = timeout_s
        self.max_tree_bytes = max_tree_bytes or DEFAULT_LIMITS.tree_bytes
        self._credentials = GitCredentials(url_credentials,
                                           os.environ if environ is None else environ,
                                           self.workdir)
        self._repo: Optional[git.Repo] = None
        self._lock = threading.Lock()  # one fetch/export at a time over the shared clone
        self._last: Optional[Revision] = None
        self._last_change_cache: Dict[Tuple[str, str], str] = {}

    @property
    def revision_of_last_fetch(self) -> Optional[Revision]:
        """The revision the last successful ``fetch()`` returned, or None before the first."""
        return self._last

    # -- fetch -----------------------------------------------------------------------------

    def fetch(self) -> Checkout:
        """Fetch the branch and export its head commit to ``<workdir>/trees/<sha>``.

        Returns:
            Checkout: ``root`` = the exported tree, ``manifests`` = ``root/path``,
            ``stack_hashes`` = stack folder name -> git tree id (40 hex) of that folder,
            ``revision`` = Revision(sha, ref=branch, committed_at in unix seconds, first
            line of the message).
        Raises:
            GitFetchError: network, authentication, missing branch, missing ``path`` folder,
                or a tree that cannot be exported. Secrets are redacted from the message; the
                trees exported before stay where they were.
        """
        with self._lock:
            try:
                env = self._git_env()
                repo = self._open_repo()
                commit = self._fetch_head(repo, env)
                stack_hashes = self._stack_hashes(commit)
                root = self._export(repo, commit.hexsha)
            except GitFetchError:
                raise
            except (git.GitError, OSError, tarfile.TarError, ValueError) as exc:
                raise GitFetchError(self._redact(f"fetch of {self.url} ({self.branch}) failed: "
                                                 f"{_describe(exc)}")) from exc
            revision = Revision(sha=commit.hexsha, ref=self.branch,
                                committed_at=float(commit.committed_date),
                                message=_first_line(commit.message))
            self._last = revision
            manifests = os.path.join(root, self.path) if self.path else root
            return Checkout(revision=revision, root=root, manifests=os.path.normpath(manifests),
                            stack_hashes=stack_hashes)

    def checkout_at(self, revision: str) -> Checkout:
        """Export an earlier commit of the followed branch, as ``fetch`` exports its head
        (``keelson rollback --to``, issue 13.3); nothing is fetched.

        Args:
            revision: a commit id, 4 to 40 hex digits, reachable from the branch as last
                fetched.
        Returns:
            Checkout: as ``fetch()`` returns, for that commit.
        Raises:
            ControlError: not a commit id, unknown or ambiguous, or not on the branch.
            GitFetchError: the tree cannot be exported (same checks as ``fetch``).
        """
        if not COMMIT_ID.match(revision or ""):
            raise ControlError(f"revision {revision!r}: give a commit id (4 to 40 hex digits)")
        with self._lock:
            repo = self._open_repo()
            try:
                commit = repo.commit(revision)
                on_branch = repo.is_ancestor(commit, repo.commit(TRACKING_PREFIX + self.branch))
            except (git.GitError, git.BadName, git.BadObject, ValueError) as exc:
                raise ControlError(f"revision {revision} not found in branch {self.branch!r} "
                                   f"(as last fetched)") from exc
            if not on_branch:
                raise ControlError(f"revision {revision} is not on branch {self.branch!r}")
            try:
                stack_hashes = self._stack_hashes(commit)
                root = self._export(repo, commit.hexsha)
            except GitFetchError:
                raise
            except (git.GitError, OSError, tarfile.TarError, ValueError) as exc:
                raise GitFetchError(self._redact(f"export of {revision} failed: "
                                                 f"{_describe(exc)}")) from exc
        rev = Revision(sha=commit.hexsha, ref=self.branch, committed_at=float(commit.committed_date),
                       message=_first_line(commit.message))
        manifests = os.path.join(root, self.path) if self.path else root
        return Checkout(revision=rev, root=root, manifests=os.path.normpath(manifests),
                        stack_hashes=stack_hashes)

    def _open_repo(self) -> git.Repo:
        """Open ``<workdir>/repo``, creating the bare repo (or re-creating a broken one)."""
        if self._repo is not None:
            return self._repo
        repo_dir = os.path.join(self.workdir, "repo")
        try:
            self._repo = git.Repo(repo_dir)
        except (git.InvalidGitRepositoryError, git.NoSuchPathError):
            if os.path.exists(repo_dir):
                log.warning("git: %s is not a usable repo; cloning again", repo_dir)
                shutil.rmtree(repo_dir)
            os.makedirs(self.workdir, exist_ok=True)
            self._repo = git.Repo.init(repo_dir, bare=True)
        return self._repo

    def _fetch_head(self, repo: git.Repo, env: Dict[str, str]) -> git.Commit:
        """Fetch only the followed branch (the URL is passed each time, never stored)."""
        tracking = TRACKING_PREFIX + self.branch
        try:
            # no auto-maintenance: a poll every 30 s must not spawn git's housekeeping each time
            repo.git.fetch("--no-tags", "--force", "--quiet", "--no-auto-maintenance", self.url,
                           f"+refs/heads/{self.branch}:{tracking}",
                           env=env, kill_after_timeout=self.timeout_s)
        except git.GitCommandError as exc:
            stderr = str(exc.stderr or "")
            if "couldn't find remote ref" in stderr:
                raise GitFetchError(f"branch {self.branch!r} not found in "
                                    f"{self._redact(self.url)}") from exc
            raise GitFetchError(self._redact(f"git fetch {self.url} {self.branch} failed: "
                                             f"{_describe(exc)}")) from exc
        return repo.commit(tracking)

    def _stack_hashes(self, commit: git.Commit) -> Dict[str, str]:
        """Map each direct sub-folder of ``path`` in ``commit`` to its tree id."""
        tree = commit.tree
        if self.path:
            try:
                tree = commit.tree / self.path
            except KeyError:
                tree = None
            if tree is None or tree.type != "tree":
                # git keeps no empty folder: a commit that deletes every stack removes the
                # manifests path too. That is "no stacks" (the prune guard decides), not a
                # failed fetch.
                log.warning("manifests path %r not found in branch %r at %s: no stacks",
                            self.path, self.branch, commit.hexsha[:12])
                return {}
        return {t.name: t.hexsha for t in tree.trees}

    def _export(self, repo: git.Repo, sha: str) -> str:
        """Export ``sha`` to ``trees/<sha>`` unless already complete; prune old trees."""
        trees = os.path.join(self.workdir, "trees")
        dest = os.path.join(trees, sha)
        marker = dest + MARKER_SUFFIX
        os.makedirs(trees, exist_ok=True)
        if os.path.isdir(dest) and os.path.exists(marker):
            os.utime(marker)  # mark it newest so pruning keeps it
            self._prune(trees)
            return dest
        tmp = os.path.join(trees, f".tmp-{sha[:12]}-{uuid.uuid4().hex[:8]}")
        try:
            self._extract(repo, sha, tmp)
            if os.path.lexists(dest):  # a half-written tree from a crash
                shutil.rmtree(dest)
            os.rename(tmp, dest)
        finally:
            if os.path.exists(tmp):
                shutil.rmtree(tmp, ignore_errors=True)
        with open(marker, "w", encoding="utf-8") as fh:  # written last: the tree is whole
            fh.write(sha + "\n")
        self._prune(trees)
        return dest

    def _extract(self, repo: git.Repo, sha: str, dest: str) -> None:
        """Stream ``git archive`` into ``dest`` with ``export.extract_tree`` (the same checks on
        every Python); symlinks pointing outside the tree are logged, and every read through
        the sandbox refuses them (the stack that reads one fails, the others go on)."""
        os.makedirs(dest)
        proc = repo.git.archive("--format=tar", sha, as_process=True)
        try:
            report = extract_tree(proc.stdout, dest, max_bytes=self.max_tree_bytes)
            proc.stdout.read()  # drain the end-of-archive padding so git can exit
        except BaseException as exc:
            # git would block on a full pipe forever: stop it before reporting
            proc.proc.kill()
            proc.proc.wait()
            if isinstance(exc, ExportRefused):
                raise GitFetchError(f"revision {sha[:12]} of {self._redact(self.url)} cannot "
                                    f"be exported safely: {exc}") from exc
            raise
        proc.wait()  # raises GitCommandError when git archive failed
        for link, target in report.escaping_links:
            log.warning("revision %s: symlink %s points outside the repository (to %s); "
                        "any stack reading it fails", sha[:12], link, target)

    @staticmethod
    def _prune(trees: str) -> None:
        """Keep the ``KEEP_TREES`` most recently used complete trees; remove the rest."""
        complete = sorted(((os.stat(os.path.join(trees, n)).st_mtime_ns, n[:-len(MARKER_SUFFIX)])
                           for n in os.listdir(trees) if n.endswith(MARKER_SUFFIX)), reverse=True)
        keep = {sha for _, sha in complete[:KEEP_TREES]}
        for name in os.listdir(trees):
            sha = name[:-len(MARKER_SUFFIX)] if name.endswith(MARKER_SUFFIX) else name
            if sha in keep:
                continue
            full = os.path.join(trees, name)
            if os.path.isdir(full) and not os.path.islink(full):
                shutil.rmtree(full, ignore_errors=True)
            elif os.path.lexists(full):
                os.remove(full)

    # -- history -------------------------------------------------------------------------------

    def last_change(self, checkout: Checkout, folder: str) -> str:
        """Find the most recent commit that changed ``folder``.

        Args:
            checkout: a Checkout returned by ``fetch()``; history is read from its revision.
            folder: absolute path inside ``checkout.root``, or a path relative to the repo top.
        Returns:
            str: full sha (40 hex) of the newest commit reachable from
            ``checkout.revision.sha`` that changed anything under ``folder``;
            ``checkout.revision.sha`` itself when no commit touched it.
        Raises:
            GitFetchError: ``folder`` lies outside the checkout, or git could not read history.
        """
        rel = _norm_repo_path(os.path.relpath(folder, checkout.root)
                              if os.path.isabs(folder) else folder)
        if rel == ".." or rel.startswith("../"):
            raise GitFetchError(f"folder {folder!r} is outside the checkout {checkout.root}")
        key = (checkout.revision.sha, rel)
        with self._lock:
            if key in self._last_change_cache:  # history of a commit never changes
                return self._last_change_cache[key]
            try:
                out = self._open_repo().git.log("-1", "--format=%H", checkout.revision.sha,
                                                "--", rel or ".")
            except git.GitError as exc:
                raise GitFetchError(f"git log for {rel or '.'!r} failed: {_describe(exc)}") from exc
            sha = out.strip() or checkout.revision.sha
            self._last_change_cache[key] = sha
            return sha

    # -- credentials ---------------------------------------------------------------------------

    def _git_env(self) -> Dict[str, str]:
        """Environment for one git command (see :meth:`GitCredentials.git_env`)."""
        return self._credentials.git_env(self.url)

    def _redact(self, text: str) -> str:
        """``text`` with every secret this source knows replaced by ``***``."""
        return self._credentials.redact(text)


def _norm_repo_path(path: str) -> str:
    """``./manifests/`` -> ``manifests``; ``.``, ``./`` and ``""`` -> ``""`` (the top level)."""
    p = os.path.normpath(path.replace("\\", "/")) if path else "."
    return "" if p == "." else p.replace(os.sep, "/")


def _first_line(message) -> str:
    """First line of a commit message (GitPython may hand back bytes for odd encodings)."""
    text = message.decode("utf-8", "replace") if isinstance(message, bytes) else message
    return (text.strip().splitlines() or [""])[0]


def _describe(exc: BaseException) -> str:
    """A one-line account of a git/OS error: git's own stderr when there is one."""
    stderr = getattr(exc, "stderr", None)
    if stderr:
        text = str(stderr).strip()
        text = re.sub(r"^stderr:\s*", "", text).strip().strip("'").strip()
        lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
        return "; ".join(lines[:4])  # git's first lines say what went wrong, later ones hint
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
