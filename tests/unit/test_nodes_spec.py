"""The nodes file (controller.nodes.spec): accepted shapes, and errors naming file, line, key."""
from __future__ import annotations

import os

import pytest

from controller.errors import ManifestError, RepoAccessError
from controller.nodes.spec import parse_nodes, read_nodes_file

FILE = "cluster/nodes.yml"


def test_full_file():
    spec = parse_nodes("""nodes:
  w1:
    labels: {mem: max, cores: 8, ssd: true, ratio: 0.50}
    availability: Drain
    role: manager
    optional: true
    force: true
groups:
  - match: {hostname: "db-*", labels: {zone: a}}
    labels: {tier: db}
    availability: pause
""", FILE)
    w1 = spec.nodes["w1"]
    assert w1.labels == {"mem": "max", "cores": "8", "ssd": "true", "ratio": "0.50"}
    assert (w1.availability, w1.role, w1.optional, w1.force, w1.line) == (
        "drain", "manager", True, True, 2)
    (g,) = spec.groups
    assert g.matches("db-1", {"zone": "a"}) and not g.matches("db-1", {})
    assert not g.matches("web-1", {"zone": "a"})


def test_empty_file_declares_nothing():
    assert parse_nodes("", FILE).nodes == {}
    assert parse_nodes("nodes:\n", FILE).nodes == {}


@pytest.mark.parametrize("text,line,key,words", [
    ("nodes:\n  w1:\n    availabilty: drain\n", 3, "nodes.w1.availabilty", "unknown key"),
    ("nodes:\n  w1:\n    availability: off\n", 3, "nodes.w1.availability", "is not one of"),
    ("nodes:\n  w1:\n    role: boss\n", 3, "nodes.w1.role", "is not one of"),
    ("nodes:\n  w1:\n    labels: {io.keelson.x: 1}\n", 3, "nodes.w1.labels.io.keelson.x",
     "Keelson's own"),
    ("nodes:\n  w1:\n    labels: {a: [1]}\n", 3, "nodes.w1.labels.a", "a label value"),
    ("nodes:\n  w1:\n    optional: yes\n", 3, "nodes.w1.optional", "true or false"),
    ("nodes:\n  w1: {}\n  w1: {}\n", 3, None, "w1"),
    ("groups:\n  - labels: {a: b}\n", 2, "groups.0.match", "needs match"),
    ("groups:\n  - match: {name: x}\n", 2, "groups.0.match.name", "unknown key"),
    ("groups: {a: b}\n", 1, "groups", "must be a list"),
    ("nodez: {}\n", 1, "nodez", "unknown key"),
    ("nodes: [w1]\n", 1, "nodes", "must be a mapping"),
    ("nodes:\n  w1:\n   - x\n  bad\n", None, None, "invalid YAML"),
])
def test_errors_name_file_line_and_key(text, line, key, words):
    with pytest.raises(ManifestError) as err:
        parse_nodes(text, FILE)
    assert err.value.file == FILE
    if line is not None:
        assert err.value.line == line, str(err.value)
    if key is not None:
        assert err.value.key == key
    assert words in str(err.value) and str(err.value).startswith(FILE)


def test_read_through_the_sandbox(tmp_path):
    assert read_nodes_file(str(tmp_path), FILE) is None  # no file: nodes not managed
    (tmp_path / "cluster").mkdir()
    (tmp_path / "cluster" / "nodes.yml").write_text("nodes:\n  w1:\n    labels: {a: b}\n")
    assert read_nodes_file(str(tmp_path), FILE).nodes["w1"].labels == {"a": "b"}
    with pytest.raises(RepoAccessError):
        read_nodes_file(str(tmp_path), "/etc/passwd")
    with pytest.raises(RepoAccessError):
        read_nodes_file(str(tmp_path), "../nodes.yml")
    os.symlink("/etc/hostname", tmp_path / "cluster" / "link.yml")
    with pytest.raises(RepoAccessError):
        read_nodes_file(str(tmp_path), "cluster/link.yml")
