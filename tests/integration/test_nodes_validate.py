"""`keelson validate` checks the nodes file (issue 11): the real command, no Docker needed."""
from __future__ import annotations

from tests.integration.test_cli import clean_env, describe, keelson


def _repo(tmp_path, nodes: str):
    repo = tmp_path / "repo"
    (repo / "manifests" / "web").mkdir(parents=True)
    (repo / "manifests" / "web" / "stack.yml").write_text("services:\n  a:\n    image: busybox\n")
    (repo / "cluster").mkdir()
    (repo / "cluster" / "nodes.yml").write_text(nodes)
    return repo


def test_validate_checks_the_nodes_file(tmp_path):
    env = clean_env(tmp_path)
    good = _repo(tmp_path / "good", "nodes:\n  w1:\n    labels: {mem: max}\n")
    proc = keelson(["validate", str(good)], env, timeout_s=60)
    assert proc.returncode == 0, describe(proc)
    assert "ok   nodes (cluster/nodes.yml): 1 node(s), 0 group(s)" in proc.stdout
    # the manifests folder given: the nodes file is found beside it
    proc = keelson(["validate", str(good / "manifests")], env, timeout_s=60)
    assert proc.returncode == 0 and "ok   nodes" in proc.stdout, describe(proc)

    bad = _repo(tmp_path / "bad", "nodes:\n  w1:\n    availability: off\n")
    proc = keelson(["validate", str(bad)], env, timeout_s=60)
    assert proc.returncode == 1, describe(proc)
    assert ("FAIL nodes: cluster/nodes.yml:3: key nodes.w1.availability: 'off' is not one of "
            "active, pause, drain") in proc.stdout, proc.stdout
    assert any(line.startswith("ok") and "web" in line for line in proc.stdout.splitlines())

    # KEELSON_NODES_FILE names another file; one leaving the repo is refused
    (good / "nodes.yml").write_text("groups: [1]\n")
    proc = keelson(["validate", str(good)], dict(env, KEELSON_NODES_FILE="nodes.yml"), timeout_s=60)
    assert proc.returncode == 1 and "FAIL nodes: nodes.yml:1" in proc.stdout, describe(proc)
    (good.parent / "x.yml").write_text("nodes: {}\n")
    proc = keelson(["validate", str(good)], dict(env, KEELSON_NODES_FILE="../x.yml"), timeout_s=60)
    assert proc.returncode == 1 and "leaves the repository" in proc.stdout, describe(proc)
