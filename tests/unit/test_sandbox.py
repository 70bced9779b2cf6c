"""The repo sandbox (issue 7): every path the repo names stays in the tree, every file is capped."""
import os
import time

import pytest

from controller.errors import ManifestError, RepoAccessError
from controller.render.compose.dotenv import parse_dotenv
from controller.render.compose.loader import load_stack, load_text
from controller.render.compose.sandbox import RepoLimits, RepoSandbox
from controller.render.compose.yaml_load import load_yaml

SECRET = "PLANTED-sandbox-unit"


@pytest.fixture
def tree(tmp_path):
    """``tmp/secret.txt`` outside the tree ``tmp/repo``, stack folder ``repo/manifests/s``."""
    (tmp_path / "secret.txt").write_text(SECRET + "\n")
    stack = tmp_path / "repo" / "manifests" / "s"
    stack.mkdir(parents=True)
    return tmp_path / "repo", stack


def rule_of(root, stack, body, **kw) -> RepoAccessError:
    (stack / "stack.yml").write_text(body)
    with pytest.raises(RepoAccessError) as e:
        load_stack("s", str(stack / "stack.yml"), {}, root=str(root), **kw)
    assert SECRET not in str(e.value)
    assert e.value.stack == "s" and e.value.reason == "PolicyDenied"
    return e.value


@pytest.mark.parametrize("body,rule,key", [
    ("services:\n  a: {image: x, env_file: /etc/hostname}\n", "absolute-path", "services.a.env_file"),
    ("services:\n  a: {image: x, env_file: ../../../secret.txt}\n", "outside-repo", "services.a.env_file"),
    ("services:\n  a: {image: x, env_file: ~/x}\n", "home-path", "services.a.env_file"),
    ("services:\n  a: {image: x}\nconfigs:\n  c: {file: /proc/self/environ}\n", "absolute-path", "configs.c.file"),
    ("services:\n  a: {image: x}\nsecrets:\n  c: {file: ../../../secret.txt}\n", "outside-repo", "secrets.c.file"),
    ("services:\n  a: {build: {context: ., dockerfile: /proc/self/environ}}\n", "absolute-path",
     "services.a.build.dockerfile"),
    ("services:\n  a: {build: {context: ., dockerfile: ../../../secret.txt}}\n", "outside-repo",
     "services.a.build.dockerfile"),
    ("services:\n  a: {build: ../../..}\n", "outside-repo", "services.a.build.context"),
])
def test_paths_that_leave_the_tree(tree, body, rule, key):
    root, stack = tree
    err = rule_of(root, stack, body)
    assert err.rule == rule and err.key == key and err.line


@pytest.mark.parametrize("link,body", [
    (".env", "services:\n  a: {image: x}\n"),
    ("stack.yml", None),
    ("Dockerfile", "services:\n  a: {build: .}\n"),
    ("c.conf", "services:\n  a: {image: x}\nconfigs:\n  c: {file: ./c.conf}\n"),
])
def test_symlinks_out_of_the_tree(tree, link, body):
    root, stack = tree
    os.symlink(str(root.parent / "secret.txt"), stack / link)
    if body is None:
        with pytest.raises(RepoAccessError) as e:
            load_stack("s", str(stack / "stack.yml"), {}, root=str(root))
        err = e.value
    else:
        err = rule_of(root, stack, body)
    assert err.rule == "symlink-outside" and f"s/{link}" in str(err)


def test_symlinks_inside_the_tree_are_followed(tree):
    root, stack = tree
    (root / "shared.env").write_text("A=1\n")
    os.symlink("../../shared.env", stack / ".env")
    (stack / "stack.yml").write_text("services:\n  a: {image: 'x:${A}'}\n")
    m = load_stack("s", str(stack / "stack.yml"), {}, root=str(root))
    assert m.services["a"]["image"] == "x:1"


def test_fifo_is_not_read(tree):
    root, stack = tree
    os.mkfifo(stack / ".env")
    err = rule_of(root, stack, "services:\n  a: {image: x}\n")
    assert err.rule == "not-a-regular-file"


@pytest.mark.parametrize("name,body,limit", [
    ("stack.yml", None, dict(stack_file_bytes=100)),
    (".env", "services:\n  a: {image: x}\n", dict(env_file_bytes=100)),
    ("e.env", "services:\n  a: {image: x, env_file: e.env}\n", dict(env_file_bytes=100)),
    ("c.conf", "services:\n  a: {image: x}\nconfigs:\n  c: {file: c.conf}\n",
     dict(object_file_bytes=100)),
])
def test_size_caps(tree, name, body, limit):
    root, stack = tree
    limits = RepoLimits(**{**dict(stack_file_bytes=1 << 20, env_file_bytes=1 << 20,
                                  object_file_bytes=1 << 20, tree_bytes=1 << 30), **limit})
    (stack / name).write_text("A=" + "x" * 200 + "\n" if name != "stack.yml"
                              else "services:\n  a: {image: x}\n#" + "x" * 200 + "\n")
    if body is None:
        with pytest.raises(RepoAccessError) as e:
            load_stack("s", str(stack / "stack.yml"), {}, root=str(root), limits=limits)
        err = e.value
    else:
        err = rule_of(root, stack, body, limits=limits)
    assert err.rule == "size-cap" and "100" in str(err)


def test_build_context_with_a_link_out_is_refused(tree):
    root, stack = tree
    (stack / "site").mkdir()
    (stack / "site" / "Dockerfile").write_text("FROM busybox\n")
    os.symlink(str(root.parent / "secret.txt"), stack / "site" / ".dockerignore")
    err = rule_of(root, stack, "services:\n  a: {build: ./site}\n")
    assert err.rule == "symlink-outside" and "site/.dockerignore" in str(err)


def test_resolve_returns_the_callers_spelling(tmp_path):
    real = tmp_path / "real"
    (real / "a").mkdir(parents=True)
    os.symlink(str(real), tmp_path / "alias")
    box = RepoSandbox(str(tmp_path / "alias"))
    assert box.resolve(str(tmp_path / "alias"), "a", what="x", want="folder") == \
        str(tmp_path / "alias" / "a")


def test_dotenv_is_linear_on_an_unterminated_quote():
    start = time.monotonic()
    with pytest.raises(ManifestError, match="unterminated"):
        parse_dotenv('A="' + "x\n" * 300_000)
    assert parse_dotenv("A=x" + " " * 600_000 + "y #c") == {"A": "x" + " " * 600_000 + "y"}
    assert time.monotonic() - start < 2.0


def test_alias_bomb_fails_fast():
    bomb = "a: &a [x,x,x,x,x,x,x,x,x,x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [" + ",".join([f"*{chr(97 + i)}"] * 10) + "]\n"
        for i in range(8))
    start = time.monotonic()
    with pytest.raises(ManifestError, match="alias bomb"):
        load_yaml(bomb)
    assert time.monotonic() - start < 0.5


@pytest.mark.parametrize("text", ["a: " + "[" * 5000 + "]" * 5000 + "\n",
                                  "a: " + "{b: " * 3000 + "1" + "}" * 3000 + "\n",
                                  "a0: &a0 [[[[1]]]]\n" + "".join(
                                      f"a{i}: &a{i} [[[[*a{i - 1}]]]]\n" for i in range(1, 40))])
def test_deep_nesting_is_a_clear_error(text, tmp_path):
    with pytest.raises(ManifestError, match="nests more than") as e:
        load_text(text, directory=str(tmp_path))
    assert e.value.stack == "test"


def test_stack_folder_linked_out_of_the_tree_is_never_walked(tmp_path):
    outside = tmp_path / "host" / "app"
    outside.mkdir(parents=True)
    (outside / "compose.yml").write_text("services:\n  a: {image: x}\n")
    manifests = tmp_path / "repo" / "manifests"
    manifests.mkdir(parents=True)
    os.symlink(str(outside), manifests / "evil")
    with pytest.raises(RepoAccessError) as e:
        load_stack("evil", str(manifests / "evil" / "compose.yml"), {}, root=str(tmp_path / "repo"))
    assert e.value.rule == "symlink-outside"


def test_folder_source_does_not_open_a_fifo(tmp_path):
    from controller.source.folder import FolderSource
    (tmp_path / "manifests" / "s").mkdir(parents=True)
    (tmp_path / "manifests" / "s" / "stack.yml").write_text("services:\n  a: {image: x}\n")
    os.mkfifo(tmp_path / "manifests" / "s" / "pipe")
    assert FolderSource(str(tmp_path), "manifests").fetch().stack_hashes["s"]


def test_folder_source_tree_cap(tmp_path):
    from controller.errors import SourceError
    from controller.source.folder import FolderSource
    (tmp_path / "manifests" / "s").mkdir(parents=True)
    (tmp_path / "manifests" / "s" / "big").write_bytes(b"x" * 10_000)
    with pytest.raises(SourceError, match="KEELSON_MAX_TREE_BYTES"):
        FolderSource(str(tmp_path), "manifests", max_tree_bytes=5_000).fetch()


def test_interpolation_output_is_bounded(tmp_path):
    (tmp_path / ".env").write_text("A=" + "x" * (200 << 10) + "\n")
    start = time.monotonic()
    with pytest.raises(ManifestError, match="interpolation produces more than"):
        load_text("services:\n  a:\n    image: x\n    environment:\n      B: '"
                  + "${A}" * 30 + "'\n", directory=str(tmp_path))
    with pytest.raises(ManifestError, match="interpolation produces more than"):
        load_text("services:\n  a:\n    image: x\n    environment:\n"
                  + "".join(f"      B{i}: '${{A}}'\n" for i in range(30)), directory=str(tmp_path))
    assert time.monotonic() - start < 2.0


def test_nested_defaults_are_bounded(tmp_path):
    nested = "${A:-" * 2000 + "x" + "}" * 2000
    start = time.monotonic()
    with pytest.raises(ManifestError, match="nests more than"):
        load_text(f"services:\n  a:\n    image: x\n    environment:\n      B: '{nested}'\n",
                  directory=str(tmp_path))
    assert time.monotonic() - start < 2.0
