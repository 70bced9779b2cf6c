"""Field cases (tests/fixtures/cases/compose, copied from the field inputs) loaded from their own files."""
import os
import pathlib
import shutil

import pytest

from controller.errors import ManifestError
from controller.render.compose.loader import load_stack, load_text

FIXTURE_CASES = pathlib.Path(__file__).resolve().parents[1] / "fixtures" / "cases" / "compose"
CASES = pathlib.Path(os.environ.get("KEELSON_CASES", FIXTURE_CASES))



def _copy(tmp_path, case, dotenv=None):
    """A tmp copy of a case's stack folder (without its .env), with ``dotenv`` written."""
    dst = tmp_path / "manifests" / "stack"
    dst.mkdir(parents=True)
    shutil.copy(CASES / case / "stack.yml", dst / "stack.yml")
    if dotenv is not None:
        (dst / ".env").write_text(dotenv)
    return dst / "stack.yml"


def test_c04_interpolation_with_dotenv(tmp_path):
    f = _copy(tmp_path, "c04-interpolation", "OWNER=platform\nFEATURE=1\n")
    m = load_stack("c04", str(f), {}, root=str(tmp_path / "manifests"))
    svc = m.services["exporter"]
    assert svc["image"] == "127.0.0.1:5000/exporter:1"
    assert svc["environment"] == {
        "NODE_ID": "{{.Node.ID}}", "ADMIN_HASH": "$2y$05$abcdefghijklmnopqrstuv",
        "LEVEL": "warn", "REQUIRED": "platform", "FLAG": "enabled"}
    assert svc["command"] == ["--path.ignore=^/(sys|proc|dev)($|/)"]
    assert m.warnings == []


def test_c04_controller_environment_wins_over_dotenv(tmp_path):
    f = _copy(tmp_path, "c04-interpolation", "OWNER=platform\nFEATURE=1\n")
    m = load_stack("c04", str(f), {"OWNER": "ops", "TAG": "7", "LEVEL": ""})
    svc = m.services["exporter"]
    assert svc["environment"]["REQUIRED"] == "ops"
    assert svc["environment"]["LEVEL"] == ""  # ${LEVEL-warn}: set but empty keeps ""
    assert svc["image"].endswith(":7")


def test_c04_the_case_folder_itself_loads():
    m = load_stack("c04", str(CASES / "c04-interpolation" / "stack.yml"), {})
    assert m.services["exporter"]["environment"]["REQUIRED"] == "platform"


def test_c04_without_owner_names_variable_message_stack_and_key(tmp_path):
    f = _copy(tmp_path, "c04-interpolation", "FEATURE=1\n")
    with pytest.raises(ManifestError) as err:
        load_stack("c04", str(f), {}, root=str(tmp_path / "manifests"))
    e = err.value
    assert e.stack == "c04" and e.file == os.path.join("stack", "stack.yml")
    assert e.key == "services.exporter.environment.REQUIRED" and e.line == 10
    assert "OWNER" in str(e) and "set OWNER in .env" in str(e)
    assert str(e).startswith("stack c04: stack/stack.yml:10: key services.exporter")


def test_c04_without_feature_flag_is_empty(tmp_path):
    f = _copy(tmp_path, "c04-interpolation", "OWNER=platform\n")
    m = load_stack("c04", str(f), {})
    assert m.services["exporter"]["environment"]["FLAG"] == ""


def test_c05_types_after_interpolation():
    m = load_stack("c05", str(CASES / "c05-types-after-interpolation" / "stack.yml"), {})
    d = m.services["app"]["deploy"]
    assert d["replicas"] == 2 and type(d["replicas"]) is int
    assert d["placement"]["max_replicas_per_node"] == 1
    assert d["resources"]["limits"] == {"cpus": "0.5", "memory": "256M"}
    assert d["resources"]["reservations"] == {"cpus": "0.25"}
    assert d["update_config"]["delay"] == "1m30s"


def test_c05_values_from_environment_are_cast():
    m = load_stack("c05", str(CASES / "c05-types-after-interpolation" / "stack.yml"),
                   {"REPLICAS": "0", "MAX_PER_NODE": "3"})
    d = m.services["app"]["deploy"]
    assert d["replicas"] == 0 and d["placement"]["max_replicas_per_node"] == 3


def test_c05_uncastable_value_names_key_and_line():
    with pytest.raises(ManifestError) as err:
        load_stack("c05", str(CASES / "c05-types-after-interpolation" / "stack.yml"),
                   {"REPLICAS": "two"})
    assert err.value.key == "services.app.deploy.replicas" and err.value.line == 5
    assert "'two'" in err.value.message


def test_c06_anchors_and_merge():
    m = load_stack("c06", str(CASES / "c06-anchors-and-merge" / "stack.yml"), {})
    assert set(m.compose) == {"services"}  # x- top-level keys dropped
    api = m.services["api"]
    assert "x-owner" not in api
    assert api["deploy"] == {"restart_policy": {"condition": "any"},
                             "update_config": {"parallelism": 1, "order": "start-first"},
                             "replicas": 2}
    assert api["logging"] == {"driver": "json-file", "options": {"max-size": "10m"}}
    assert m.positions["services.api.deploy.replicas"] == 15


@pytest.mark.parametrize("extra,line,key", [
    ("    image: other\n", 16, "services.api.image"),
    ("    deploy:\n      replicas: 1\n", 16, "services.api.deploy"),
])
def test_c06_repeated_keys_are_errors(extra, line, key):
    text = (CASES / "c06-anchors-and-merge" / "stack.yml").read_text()
    with pytest.raises(ManifestError) as err:
        load_text(text + extra, name="c06")
    assert err.value.line == line and err.value.key == key and err.value.stack == "c06"


def test_c06_two_merge_keys_are_an_error():
    text = (CASES / "c06-anchors-and-merge" / "stack.yml").read_text()
    text = text.replace("      <<: [*restart, *update]\n",
                        "      <<: *restart\n      <<: *update\n")
    with pytest.raises(ManifestError) as err:
        load_text(text, name="c06")
    assert err.value.line == 15 and err.value.key == "services.api.deploy.<<"


def test_c08_compose_only_keys_warn_once_per_service():
    m = load_stack("c08", str(CASES / "c08-compose-only-keys" / "stack.yml"), {})
    assert m.warnings == [
        "service web: ignoring options Swarm does not support: container_name",
        "service db: ignoring options Swarm does not support: links"]
    assert m.services["web"]["depends_on"] == {"db": {"condition": "service_healthy"}}
    assert m.services["web"]["restart"] == "always"  # kept: the converter's fallback policy


def test_c08_service_without_image_or_build_is_an_error():
    text = (CASES / "c08-compose-only-keys" / "stack.yml").read_text()
    text = text.replace("    image: 127.0.0.1:5000/db:1\n", "")
    with pytest.raises(ManifestError) as err:
        load_text(text, name="c08")
    assert err.value.key == "services.db" and "neither image nor build" in err.value.message
