"""GitSource, FolderSource and ChangeWatcher against real git repos made by the tests (no Docker)."""
from __future__ import annotations

import base64
import http.server
import os
import tarfile
import threading
import time

import pytest

from controller.errors import GitFetchError, RepoAccessError
from controller.render.compose.loader import load_stack
from controller.source import ChangeWatcher, FolderSource, GitSource, make_source
from tests.integration.conftest import ManifestRepo, git

STACK = "services:\n  app:\n    image: busybox\n"


def seeded(repo: ManifestRepo) -> str:
    """Two stacks, one with a build context; returns the commit sha."""
    repo.write("manifests/web/stack.yml", STACK)
    repo.write("manifests/web/app/Dockerfile", "FROM busybox\n")
    repo.write("manifests/tools/stack.yml", STACK)
    repo.write("README.md", "demo\n")
    return repo.commit("Seed two stacks\n\nbody text")


def source(repo: ManifestRepo, tmp_path, **kw) -> GitSource:
    return GitSource(repo.url, "main", "manifests", str(tmp_path / "wd"), environ={}, **kw)


def test_first_fetch_exports_the_branch_head(manifest_repo, tmp_path):
    sha = seeded(manifest_repo)
    src = source(manifest_repo, tmp_path)
    assert src.revision_of_last_fetch is None

    co = src.fetch()

    assert co.revision.sha == sha
    assert co.revision.ref == "main"
    assert co.revision.message == "Seed two stacks"
    committed = int(git(manifest_repo.work, "log", "-1", "--format=%ct"))
    assert co.revision.committed_at == committed
    assert co.root == str(tmp_path / "wd" / "trees" / sha)
    assert co.manifests == os.path.join(co.root, "manifests")
    assert open(os.path.join(co.manifests, "web", "stack.yml")).read() == STACK
    assert os.path.isfile(os.path.join(co.manifests, "web", "app", "Dockerfile"))
    assert not os.path.exists(os.path.join(co.root, ".git"))
    assert co.stack_hashes == {
        "web": git(manifest_repo.work, "rev-parse", "HEAD:manifests/web"),
        "tools": git(manifest_repo.work, "rev-parse", "HEAD:manifests/tools"),
    }
    assert src.revision_of_last_fetch == co.revision


def test_second_fetch_sees_a_new_commit_and_reuses_an_unchanged_one(manifest_repo, tmp_path):
    first_sha = seeded(manifest_repo)
    src = source(manifest_repo, tmp_path)
    first = src.fetch()
    sentinel = os.path.join(first.root, "sentinel")
    open(sentinel, "w").close()  # survives only if the tree is reused, not re-exported

    again = src.fetch()
    assert again.root == first.root and os.path.exists(sentinel)

    manifest_repo.write("manifests/tools/stack.yml", STACK + "# changed\n")
    second_sha = manifest_repo.commit("Touch tools")
    second = src.fetch()

    assert second.revision.sha == second_sha != first_sha
    assert second.root != first.root
    assert os.path.isdir(first.root)  # the previous tree is kept for a pass still reading it
    assert open(os.path.join(second.manifests, "tools", "stack.yml")).read().endswith("# changed\n")
    assert second.stack_hashes["web"] == first.stack_hashes["web"]
    assert second.stack_hashes["tools"] != first.stack_hashes["tools"]


def test_at_most_three_trees_are_kept(manifest_repo, tmp_path):
    seeded(manifest_repo)
    src = source(manifest_repo, tmp_path)
    roots = []
    for i in range(5):
        manifest_repo.write("manifests/web/stack.yml", STACK + f"# {i}\n")
        manifest_repo.commit(f"change {i}")
        roots.append(src.fetch().root)
    trees = tmp_path / "wd" / "trees"
    kept = sorted(p.name for p in trees.iterdir() if p.is_dir())
    assert kept == sorted(os.path.basename(r) for r in roots[-3:])
    assert sorted(p.name for p in trees.iterdir() if p.name.endswith(".complete")) == \
        sorted(os.path.basename(r) + ".complete" for r in roots[-3:])


def test_last_change_names_the_commit_that_touched_a_context(manifest_repo, tmp_path):
    seeded(manifest_repo)
    manifest_repo.write("manifests/web/app/index.html", "v2\n")
    context_sha = manifest_repo.commit("Change web's build context")
    manifest_repo.write("manifests/tools/stack.yml", STACK + "# later\n")
    head = manifest_repo.commit("Change tools")
    src = source(manifest_repo, tmp_path)
    co = src.fetch()

    assert co.revision.sha == head
    assert src.last_change(co, os.path.join(co.manifests, "web", "app")) == context_sha
    assert src.last_change(co, "manifests/web/app") == context_sha
    assert src.last_change(co, "manifests/tools") == head
    with pytest.raises(GitFetchError, match="outside"):
        src.last_change(co, "/etc")


def test_missing_branch_is_a_fetch_error(manifest_repo, tmp_path):
    seeded(manifest_repo)
    src = GitSource(manifest_repo.url, "nope", "manifests", str(tmp_path / "wd"), environ={})
    with pytest.raises(GitFetchError, match="branch 'nope' not found") as info:
        src.fetch()
    assert info.value.__cause__ is not None
    assert info.value.retryable


def test_unreachable_url_keeps_the_old_tree(manifest_repo, tmp_path):
    seeded(manifest_repo)
    co = source(manifest_repo, tmp_path).fetch()
    gone = GitSource(str(tmp_path / "no-such-remote.git"), "main", "manifests",
                     str(tmp_path / "wd"), environ={})
    with pytest.raises(GitFetchError, match="no-such-remote"):
        gone.fetch()
    assert os.path.isfile(os.path.join(co.manifests, "web", "stack.yml"))
    assert os.path.exists(co.root + ".complete")


def test_missing_manifests_path_means_no_stacks(manifest_repo, tmp_path):
    """git keeps no empty folder: deleting every stack deletes the manifests path. That is a
    revision with no stacks (the pass's prune guard decides), not a failed fetch."""
    seeded(manifest_repo)
    src = GitSource(manifest_repo.url, "main", "deploy/stacks", str(tmp_path / "wd"), environ={})
    co = src.fetch()
    assert co.stack_hashes == {} and not os.path.isdir(co.manifests)


def test_top_level_path_and_local_work_tree(manifest_repo, tmp_path):
    seeded(manifest_repo)
    src = make_source(str(manifest_repo.work), "main", ".", str(tmp_path / "wd"))
    assert isinstance(src, GitSource)
    co = src.fetch()
    assert co.manifests == co.root
    assert set(co.stack_hashes) == {"manifests"}


@pytest.mark.parametrize("has_data_filter", [True, False])
def test_symlink_out_of_the_tree_fails_only_its_stack(manifest_repo, tmp_path, monkeypatch,
                                                      has_data_filter):
    """Issue 7: the export is the same with or without ``tarfile.data_filter`` (Debian 12's
    3.11.2 lacks it): a link out of the tree is exported as a link, never followed, and only
    the stack holding it fails to load."""
    if not has_data_filter:
        monkeypatch.delattr(tarfile, "data_filter", raising=False)
        monkeypatch.delattr(tarfile, "FilterError", raising=False)
    secret = tmp_path / "secret.txt"
    secret.write_text("PLANTED-export\n")
    seeded(manifest_repo)
    os.symlink(str(secret), manifest_repo.work / "manifests" / "web" / ".env")
    manifest_repo.commit("Sneaky link")
    co = source(manifest_repo, tmp_path).fetch()
    link = os.path.join(co.manifests, "web", ".env")
    assert os.path.islink(link) and os.readlink(link) == str(secret)
    with pytest.raises(RepoAccessError) as e:
        load_stack("web", os.path.join(co.manifests, "web", "stack.yml"), {}, root=co.root)
    assert e.value.rule == "symlink-outside" and e.value.reason == "PolicyDenied"
    assert "web/.env" in str(e.value) and "PLANTED" not in str(e.value)
    load_stack("tools", os.path.join(co.manifests, "tools", "stack.yml"), {}, root=co.root)


def test_revision_over_the_tree_cap_is_not_exported(manifest_repo, tmp_path):
    seeded(manifest_repo)
    manifest_repo.write("manifests/web/big.bin", "x" * 200_000)
    manifest_repo.commit("big")
    with pytest.raises(GitFetchError, match="KEELSON_MAX_TREE_BYTES"):
        source(manifest_repo, tmp_path, max_tree_bytes=100_000).fetch()
    assert source(manifest_repo, tmp_path / "again", max_tree_bytes=1 << 20).fetch()


class _AuthRecorder(http.server.BaseHTTPRequestHandler):
    """Records the Authorization header git sends, then refuses."""

    seen: list = []

    def do_GET(self):  # noqa: N802 (http.server's naming)
        self.seen.append(self.headers.get("Authorization"))
        self.send_response(403)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def auth_server():
    _AuthRecorder.seen = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _AuthRecorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", _AuthRecorder.seen
    server.shutdown()
    server.server_close()


def test_token_is_sent_as_a_header_and_never_shown(auth_server, tmp_path):
    base, seen = auth_server
    token_file = tmp_path / "token"
    token_file.write_text("s3cr3t-token\n")
    src = GitSource(f"{base}/org/repo.git", "main", "manifests", str(tmp_path / "wd"),
                    environ={"KEELSON_GIT_TOKEN_FILE": str(token_file)})
    with pytest.raises(GitFetchError) as info:
        src.fetch()
    expected = base64.b64encode(b"x-access-token:s3cr3t-token").decode()
    assert f"Basic {expected}" in seen
    assert "s3cr3t" not in str(info.value) and expected not in str(info.value)
    assert "s3cr3t" not in str(info.value.__cause__)


def test_credentials_in_the_url_are_moved_out_of_it(auth_server, tmp_path):
    base, seen = auth_server
    url = base.replace("http://", "http://bot:hunter2@") + "/org/repo.git"
    src = GitSource(url, "main", "manifests", str(tmp_path / "wd"), environ={})
    with pytest.raises(GitFetchError) as info:
        src.fetch()
    assert "Basic " + base64.b64encode(b"bot:hunter2").decode() in seen
    assert "hunter2" not in str(info.value)
    assert "hunter2" not in str(info.value.__cause__)


def test_folder_source_reads_in_place(tmp_path):
    (tmp_path / "m" / "web").mkdir(parents=True)
    (tmp_path / "m" / "web" / "stack.yml").write_text(STACK)
    (tmp_path / "m" / "tools").mkdir()
    (tmp_path / "m" / "tools" / "stack.yml").write_text(STACK)
    src = make_source(str(tmp_path), "main", "m", str(tmp_path / "wd"))
    assert isinstance(src, FolderSource)
    first = src.fetch()
    assert first.root == str(tmp_path) and first.revision.ref == "folder"

    (tmp_path / "m" / "web" / "stack.yml").write_text(STACK + "# saved\n")
    second = src.fetch()
    assert second.revision.sha != first.revision.sha
    assert second.stack_hashes["web"] != first.stack_hashes["web"]
    assert second.stack_hashes["tools"] == first.stack_hashes["tools"]


class Calls:
    """A thread-safe on_change counter."""

    def __init__(self):
        self.n = 0
        self.lock = threading.Lock()

    def __call__(self):
        with self.lock:
            self.n += 1


def settle(calls: Calls, debounce_s: float, want: int, timeout_s: float = 10.0) -> None:
    """Wait until ``want`` calls arrived (or time out), then a little longer for extras."""
    deadline = time.time() + timeout_s
    while calls.n < want and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(debounce_s * 3)


def test_watcher_fires_once_on_a_push_to_a_local_bare_repo(manifest_repo):
    seeded(manifest_repo)
    calls = Calls()
    watcher = ChangeWatcher(manifest_repo.url, calls, debounce_s=0.3)
    watcher.start()
    try:
        time.sleep(0.2)
        manifest_repo.write("manifests/web/stack.yml", STACK + "# pushed\n")
        manifest_repo.commit("Push one")
        settle(calls, 0.3, want=1)
        assert calls.n == 1
        git(manifest_repo.bare, "count-objects")  # reading the repo is not a change
        git(manifest_repo.bare, "log", "-1")
        time.sleep(0.9)
        assert calls.n == 1
    finally:
        watcher.stop()


def test_watcher_fires_on_a_commit_in_a_work_tree(manifest_repo):
    seeded(manifest_repo)
    calls = Calls()
    watcher = ChangeWatcher(str(manifest_repo.work), calls, debounce_s=0.3)
    watcher.start()
    try:
        time.sleep(0.2)
        manifest_repo.write("manifests/web/new.txt", "x\n")  # an unsaved-to-git edit: ignored
        time.sleep(0.9)
        assert calls.n == 0
        git(manifest_repo.work, "add", "-A")
        git(manifest_repo.work, "commit", "-qm", "local commit")
        settle(calls, 0.3, want=1)
        assert calls.n == 1
    finally:
        watcher.stop()


def test_watcher_fires_once_on_a_saved_file_and_not_on_reads(tmp_path):
    folder = tmp_path / "m"
    (folder / "web").mkdir(parents=True)
    (folder / "web" / "stack.yml").write_text(STACK)
    calls = Calls()
    watcher = ChangeWatcher(str(folder), calls, debounce_s=0.3)
    watcher.start()
    try:
        time.sleep(0.2)
        for i in range(5):  # an editor's burst of writes
            (folder / "web" / "stack.yml").write_text(STACK + f"# {i}\n")
            time.sleep(0.05)
        settle(calls, 0.3, want=1)
        assert calls.n == 1
        FolderSource(str(folder), ".").fetch()  # hashing reads every file
        time.sleep(0.9)
        assert calls.n == 1
    finally:
        watcher.stop()


def test_half_written_tree_and_broken_clone_are_redone(manifest_repo, tmp_path):
    sha = seeded(manifest_repo)
    wd = tmp_path / "wd"
    (wd / "trees" / sha).mkdir(parents=True)  # a crash mid-export: folder, no marker
    (wd / "trees" / sha / "junk").write_text("x")
    (wd / "repo").mkdir()  # a crash mid-clone: not a repo
    co = source(manifest_repo, tmp_path).fetch()
    assert co.root == str(wd / "trees" / sha)
    assert not os.path.exists(os.path.join(co.root, "junk"))
    assert os.path.isfile(os.path.join(co.manifests, "web", "stack.yml"))


def test_git_fetch_timeout_kills_a_stalled_fetch(tmp_path):
    """KEELSON_GIT_TIMEOUT: a remote that accepts the connection and never answers costs the
    timeout, not the loop (a GitFetchError; the pass fails its fetch and nothing changes)."""
    import socket
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    port = server.getsockname()[1]
    held = []
    stop = threading.Event()

    def accept():
        server.settimeout(0.5)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])  # read nothing, answer nothing
            except OSError:
                continue
    t = threading.Thread(target=accept, daemon=True)
    t.start()
    try:
        src = make_source(f"http://127.0.0.1:{port}/stalled.git", "main", "manifests",
                          str(tmp_path / "wd"), git_timeout_s=3)
        start = time.monotonic()
        with pytest.raises(GitFetchError):
            src.fetch()
        assert 2.5 <= time.monotonic() - start < 30  # it waited for the timeout, then stopped
    finally:
        stop.set()
        t.join(5)
        for conn in held:
            conn.close()
        server.close()
