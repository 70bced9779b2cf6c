"""FolderSource and hash_folder: content hashes as revisions."""
import os

import pytest

from controller.errors import SourceError
from controller.source import FolderSource, hash_folder


def make_tree(base, files):
    for rel, text in files.items():
        p = base / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)


def test_hash_depends_on_paths_and_content_only(tmp_path):
    make_tree(tmp_path / "a", {"x/stack.yml": "one", "y": "two"})
    make_tree(tmp_path / "b", {"y": "two", "x/stack.yml": "one"})
    (tmp_path / "b" / "empty").mkdir()  # empty folders do not count
    assert hash_folder(str(tmp_path / "a")) == hash_folder(str(tmp_path / "b"))
    assert len(hash_folder(str(tmp_path / "a"))) == 64


@pytest.mark.parametrize("other", [
    {"x/stack.yml": "one!", "y": "two"},      # content
    {"x/stack.yaml": "one", "y": "two"},      # a name
    {"x/stack.ymlo": "ne", "y": "two"},       # the boundary between name and content
])
def test_hash_sees_every_change(tmp_path, other):
    make_tree(tmp_path / "a", {"x/stack.yml": "one", "y": "two"})
    make_tree(tmp_path / "b", other)
    assert hash_folder(str(tmp_path / "a")) != hash_folder(str(tmp_path / "b"))


def test_symlinks_hash_as_their_target_text(tmp_path):
    (tmp_path / "d").mkdir()
    os.symlink("/nonexistent", tmp_path / "d" / "broken")
    os.symlink("/etc", tmp_path / "d" / "dirlink")
    first = hash_folder(str(tmp_path / "d"))
    os.remove(tmp_path / "d" / "dirlink")
    os.symlink("/usr", tmp_path / "d" / "dirlink")
    assert hash_folder(str(tmp_path / "d")) != first


def test_fetch_describes_the_folder(tmp_path):
    make_tree(tmp_path, {"m/web/stack.yml": "a", "m/tools/stack.yml": "b", "m/notes.txt": "c"})
    src = FolderSource(str(tmp_path), "./m/")
    co = src.fetch()
    assert co.root == str(tmp_path) and co.manifests == str(tmp_path / "m")
    assert co.revision.sha == "dir-" + hash_folder(str(tmp_path))
    assert co.revision.ref == "folder" and co.revision.committed_at is None
    assert co.stack_hashes == {"web": hash_folder(str(tmp_path / "m" / "web")),
                               "tools": hash_folder(str(tmp_path / "m" / "tools"))}
    assert src.revision_of_last_fetch == co.revision
    assert src.fetch().revision == co.revision  # unchanged folder, same revision


def test_saved_file_changes_the_revision_and_only_its_stack(tmp_path):
    make_tree(tmp_path, {"m/web/stack.yml": "a", "m/tools/stack.yml": "b"})
    src = FolderSource(str(tmp_path), "m")
    before = src.fetch()
    (tmp_path / "m" / "web" / "stack.yml").write_text("a2")
    after = src.fetch()
    assert after.revision.sha != before.revision.sha
    assert after.stack_hashes["web"] != before.stack_hashes["web"]
    assert after.stack_hashes["tools"] == before.stack_hashes["tools"]


def test_last_change_is_the_folder_hash(tmp_path):
    make_tree(tmp_path, {"m/web/app/Dockerfile": "FROM busybox\n"})
    src = FolderSource(str(tmp_path), "m")
    co = src.fetch()
    want = hash_folder(str(tmp_path / "m" / "web" / "app"))
    assert src.last_change(co, str(tmp_path / "m" / "web" / "app")) == want
    assert src.last_change(co, "m/web/app") == want
    with pytest.raises(SourceError, match="not found"):
        src.last_change(co, "m/nope")


def test_missing_folder_or_path_is_a_source_error(tmp_path):
    with pytest.raises(SourceError, match="does not exist"):
        FolderSource(str(tmp_path / "gone"), "m").fetch()
    with pytest.raises(SourceError, match="manifests path 'm' not found"):
        FolderSource(str(tmp_path), "m").fetch()
