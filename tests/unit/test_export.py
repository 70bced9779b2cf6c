"""Unpacking a revision without relying on tarfile's filters (issue 7)."""
import io
import os
import tarfile

import pytest

from controller.source.export import ExportRefused, extract_tree


def tar_of(*members) -> io.BytesIO:
    """A tar stream of (name, kind, payload): kind file|dir|sym|fifo|link."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, kind, payload in members:
            info = tarfile.TarInfo(name)
            if kind == "file":
                info.size, info.mode = len(payload), 0o4755
                tar.addfile(info, io.BytesIO(payload))
                continue
            info.type = {"dir": tarfile.DIRTYPE, "sym": tarfile.SYMTYPE, "fifo": tarfile.FIFOTYPE,
                         "link": tarfile.LNKTYPE}[kind]
            info.linkname = payload or ""
            tar.addfile(info)
    buf.seek(0)
    return buf


@pytest.fixture(params=[True, False], ids=["with-data_filter", "without-data_filter"])
def python(request, monkeypatch):
    if not request.param:
        monkeypatch.delattr(tarfile, "data_filter", raising=False)


def test_files_folders_and_links(tmp_path, python):
    report = extract_tree(tar_of(("m", "dir", None), ("m/a.txt", "file", b"hi"),
                                 ("m/in", "sym", "a.txt"), ("m/out", "sym", "/etc/passwd")),
                          str(tmp_path), max_bytes=1 << 20)
    assert (tmp_path / "m" / "a.txt").read_bytes() == b"hi"
    assert oct((tmp_path / "m" / "a.txt").stat().st_mode & 0o7777) == "0o755"  # no set-uid
    assert os.readlink(tmp_path / "m" / "in") == "a.txt"
    assert report.escaping_links == (("m/out", "/etc/passwd"),)


@pytest.mark.parametrize("members", [
    [("../evil", "file", b"x")],
    [("/abs", "file", b"x")],
    [("a/../../evil", "file", b"x")],
    [("l", "sym", "/tmp"), ("l/evil", "file", b"x")],          # through a link just made
    [("p", "fifo", None)],
    [("a", "file", b"x"), ("h", "link", "a")],
])
def test_refused_members(tmp_path, python, members):
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises(ExportRefused):
        extract_tree(tar_of(*members), str(dest), max_bytes=1 << 20)
    assert not (tmp_path / "evil").exists()


def test_tree_cap(tmp_path):
    with pytest.raises(ExportRefused, match="KEELSON_MAX_TREE_BYTES"):
        extract_tree(tar_of(("a", "file", b"x" * 5000)), str(tmp_path), max_bytes=4000)


def test_a_commit_without_files_exports_an_empty_tree(tmp_path):
    """git archive of an empty tree is a pax global header and the end of the archive, which
    Python's tarfile reads as a broken header: Keelson exports it as an empty tree."""
    import subprocess
    repo = tmp_path / "r"
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@e",
                    "commit", "-q", "--allow-empty", "-m", "empty"], check=True)
    archive = subprocess.run(["git", "-C", str(repo), "archive", "--format=tar", "HEAD"],
                             check=True, capture_output=True).stdout
    dest = tmp_path / "out"
    dest.mkdir()
    report = extract_tree(io.BytesIO(archive), str(dest), max_bytes=1 << 20)
    assert report.total_bytes == 0 and list(dest.iterdir()) == []
