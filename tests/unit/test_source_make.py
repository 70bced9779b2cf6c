"""make_source / local_watch_path: which source a --repo setting names."""
import os
import subprocess

import pytest

from controller.errors import ConfigError
from controller.source import FolderSource, GitSource, local_watch_path, make_source
from controller.source.git import git_dir_of, is_remote_url


@pytest.mark.parametrize("url", [
    "https://github.com/org/manifests.git", "http://git.local/m.git", "ssh://git@host:22/m.git",
    "git@github.com:org/manifests.git", "file:///srv/manifests.git", "git://host/m.git",
])
def test_urls_make_git_sources_and_are_not_watched(url, tmp_path):
    src = make_source(url, "main", "manifests", str(tmp_path))
    assert isinstance(src, GitSource) and is_remote_url(url)
    assert src.branch == "main" and src.path == "manifests"
    if not url.startswith("file://"):
        assert local_watch_path(url) is None


@pytest.mark.parametrize("path", ["./manifests", "/srv/manifests", "C:stuff", "m:1"])
def test_paths_are_not_urls(path):
    assert not is_remote_url(path)


def test_bare_repo_and_work_tree_make_git_sources(tmp_path):
    subprocess.run(["git", "init", "-q", "--bare", str(tmp_path / "r.git")], check=True)
    subprocess.run(["git", "init", "-q", str(tmp_path / "work")], check=True)
    for repo in (tmp_path / "r.git", tmp_path / "work"):
        src = make_source(str(repo), "main", "m", str(tmp_path / "wd"))
        assert isinstance(src, GitSource) and src.url == str(repo)
        assert local_watch_path(str(repo)) == str(repo)
    assert git_dir_of(str(tmp_path / "r.git")) == str(tmp_path / "r.git")
    assert git_dir_of(str(tmp_path / "work")) == str(tmp_path / "work" / ".git")


def test_linked_work_tree_git_file_is_followed(tmp_path):
    (tmp_path / "gd").mkdir()
    (tmp_path / "wt").mkdir()
    (tmp_path / "wt" / ".git").write_text("gitdir: ../gd\n")
    assert git_dir_of(str(tmp_path / "wt")) == str(tmp_path / "gd")


def test_plain_folder_makes_a_folder_source(tmp_path):
    src = make_source(str(tmp_path), "main", "manifests", str(tmp_path / "wd"))
    assert isinstance(src, FolderSource) and src.folder == str(tmp_path)
    assert local_watch_path(str(tmp_path)) == str(tmp_path)
    assert local_watch_path(f"file://{tmp_path}") == str(tmp_path)
    assert git_dir_of(str(tmp_path)) is None


def test_relative_path_is_made_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    os.mkdir("m")
    src = make_source("m", "main", ".", "wd")
    assert isinstance(src, FolderSource) and src.folder == str(tmp_path / "m")


def test_missing_path_or_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="no such folder"):
        make_source(str(tmp_path / "absent"), "main", "m", str(tmp_path))
    (tmp_path / "f").write_text("x")
    with pytest.raises(ConfigError, match="is a file"):
        make_source(str(tmp_path / "f"), "main", "m", str(tmp_path))
    with pytest.raises(ConfigError, match="required"):
        make_source("", "main", "m", str(tmp_path))
    assert local_watch_path(str(tmp_path / "absent")) is None
