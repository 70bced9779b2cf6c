"""Stack files merged by Compose's rules (compose-spec merge.md), with lines and files kept."""
from __future__ import annotations

import pytest

from controller.errors import ManifestError
from controller.render.compose.files import find_stacks
from controller.render.compose.loader import load_stack
from controller.render.compose.merge import StackDocument, merge_documents
from controller.render.compose.yaml_load import load_yaml


def doc(text: str, file: str) -> StackDocument:
    data, positions = load_yaml(text)
    return StackDocument(data, positions, file)


BASE = """services:
  web:
    image: busybox:latest
    command: ["sleep", "1"]
    environment: [A=1, B=2]
    ports: ["8080:80", {target: 443, published: 8443}]
    volumes: ["data:/data", "/logs"]
    secrets: [token]
    deploy: {replicas: 1, labels: [x=1]}
    dns: 1.1.1.1
    healthcheck: {test: ["CMD", "true"], interval: 5s}
volumes:
  data: {}
"""

OVERRIDE = """services:
  web:
    command: ["sleep", "2"]
    environment: {B: "3", C: "4"}
    ports: ["9090:80", {target: 443, published: 8443, mode: host}]
    volumes: ["other:/data"]
    secrets: [{source: token2, target: /run/secrets/token}]
    deploy: {replicas: 3}
    dns: [8.8.8.8, 1.1.1.1]
    healthcheck: {test: ["CMD", "false"]}
  extra:
    image: busybox:latest
volumes:
  other: {}
"""


def test_compose_merge_rules():
    m = merge_documents([doc(BASE, "compose.yml"), doc(OVERRIDE, "compose.override.yml")])
    web = m.data["services"]["web"]
    assert web["command"] == ["sleep", "2"]  # replaced, not appended
    assert web["healthcheck"] == {"test": ["CMD", "false"], "interval": "5s"}
    assert web["environment"] == {"A": "1", "B": "3", "C": "4"}  # merged by name
    assert web["ports"] == ["8080:80", {"target": 443, "published": 8443, "mode": "host"},
                            "9090:80"]  # unique by (ip, target, published, protocol)
    assert web["volumes"] == ["other:/data", "/logs"]  # unique by target
    assert web["secrets"] == [{"source": "token2", "target": "/run/secrets/token"}]
    assert web["deploy"] == {"replicas": 3, "labels": ["x=1"]}  # untouched: as written
    assert web["dns"] == ["1.1.1.1", "8.8.8.8"]  # appended, not repeated
    assert set(m.data["services"]) == {"web", "extra"}
    assert set(m.data["volumes"]) == {"data", "other"}
    # every value knows its line and file
    assert (m.positions["services.web.deploy.replicas"],
            m.files["services.web.deploy.replicas"]) == (8, "compose.override.yml")
    assert (m.positions["services.web.deploy.labels"],
            m.files["services.web.deploy.labels"]) == (9, "compose.yml")
    assert m.files["services.web.ports.2"] == "compose.override.yml"
    assert m.files["services.web"] == "compose.yml"  # a mapping keeps the base's line


def test_reset_and_override_tags():
    over = """services:
  web:
    ports: !override ["7070:70"]
    environment:
      A: !reset null
    dns: !reset []
"""
    m = merge_documents([doc(BASE, "a.yml"), doc(over, "b.yml")])
    web = m.data["services"]["web"]
    assert web["ports"] == ["7070:70"]
    assert web["environment"] == {"B": "2"}
    assert "dns" not in web


def test_shape_mismatch_names_the_override():
    with pytest.raises(ManifestError) as e:
        merge_documents([doc(BASE, "a.yml"), doc("services:\n  web:\n    deploy: [1]\n", "b.yml")])
    assert (e.value.file, e.value.line, e.value.key) == ("b.yml", 3, "services.web.deploy")


def write(folder, files):
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text)


def test_load_stack_merges_the_convention_override(tmp_path):
    write(tmp_path / "s", {"compose.yml": BASE + "secrets:\n  token: {file: ./t}\n",
                           "compose.override.yml": OVERRIDE +
                           "secrets:\n  token2: {file: ./t}\n", "t": "x"})
    m = load_stack("s", str(tmp_path / "s" / "compose.yml"), {}, root=str(tmp_path))
    assert [p.rsplit("/", 1)[1] for p in m.files] == ["compose.yml", "compose.override.yml"]
    assert m.services["web"]["deploy"]["replicas"] == 3
    assert m.position_files["services.web.deploy.replicas"] == "s/compose.override.yml"
    assert {"s/compose.yml", "s/compose.override.yml", "s/t"} <= set(m.inputs)


def test_error_in_override_names_the_override_file(tmp_path):
    write(tmp_path / "s", {"stack.yml": "services:\n  a: {image: busybox}\n",
                           "stack.override.yml": "services:\n  a:\n    deploy:\n"
                                                 "      replicas: many\n"})
    with pytest.raises(ManifestError) as e:
        load_stack("s", str(tmp_path / "s" / "stack.yml"), {}, root=str(tmp_path))
    assert str(e.value) == ("stack s: s/stack.override.yml:4: key services.a.deploy.replicas: "
                            "must be an integer, got 'many'")


@pytest.mark.parametrize("files, message", [
    ({"stack.yml": "services: {}\n", "compose.yml": "services: {}\n"},
     "more than one base stack file: stack.yml, compose.yml"),
    ({"compose.override.yml": "services: {}\n"},
     "override file compose.override.yml has no base file"),
    ({"compose.yml": "services: {}\n", "docker-compose.override.yml": "services: {}\n"},
     "override file docker-compose.override.yml does not belong to the base file compose.yml"),
    ({"compose.yml": "services: {}\n", "compose.override.yml": "services: {}\n",
      "compose.override.yaml": "services: {}\n"},
     "two override files for compose.yml: compose.override.yml, compose.override.yaml"),
    ({"stack.yml": "x-keelson: {files: [prod.yml]}\nservices: {}\n", "prod.yml": "{}\n"},
     "x-keelson.files must start with this file (stack.yml), got prod.yml"),
    ({".keelson.yml": "files: [a.yml, missing.yml]\n", "a.yml": "services: {}\n"},
     ".keelson.yml lists missing.yml, which does not exist"),
    ({".keelson.yml": "order: [a.yml]\n"}, "unknown key 'order' (allowed here: files)"),
])
def test_ambiguous_or_broken_file_sets_are_errors(tmp_path, files, message):
    write(tmp_path / "s", files)
    with pytest.raises(ManifestError) as e:
        load_stack("s", find_stacks(str(tmp_path))["s"], {}, root=str(tmp_path))
    assert message in str(e.value) and e.value.stack == "s"


def test_explicit_order_from_x_keelson_and_keelson_file(tmp_path):
    write(tmp_path / "s", {
        "stack.yml": "x-keelson:\n  files: [stack.yml, prod.yml, extra.yml]\n"
                     "services:\n  a: {image: busybox, deploy: {replicas: 1}}\n",
        "prod.yml": "services:\n  a: {deploy: {replicas: 2}}\n",
        "extra.yml": "services:\n  a: {deploy: {replicas: 4}}\n",
        "stack.override.yml": "services:\n  a: {deploy: {replicas: 9}}\n"})
    m = load_stack("s", str(tmp_path / "s" / "stack.yml"), {}, root=str(tmp_path))
    assert m.services["a"]["deploy"]["replicas"] == 4
    assert "stack.override.yml is not listed in x-keelson.files and is not used" in m.warnings
    write(tmp_path / "t", {".keelson.yml": "files: [base.yml, prod.yml]\n",
                           "base.yml": "services:\n  a: {image: busybox}\n",
                           "prod.yml": "services:\n  a: {deploy: {replicas: 2}}\n"})
    m = load_stack("t", str(tmp_path / "t" / ".keelson.yml"), {}, root=str(tmp_path))
    assert m.services["a"] == {"image": "busybox", "deploy": {"replicas": 2}}


def test_build_string_and_service_networks_merge():
    base = "services:\n  a:\n    build: ./app\n    networks: [front]\n"
    over = ("services:\n  a:\n    build: {target: prod}\n    networks:\n"
            "      front: {aliases: [web]}\n      back:\n")
    m = merge_documents([doc(base, "a.yml"), doc(over, "b.yml")])
    svc = m.data["services"]["a"]
    assert svc["build"] == {"context": "./app", "target": "prod"}
    assert svc["networks"] == {"front": {"aliases": ["web"]}, "back": None}
