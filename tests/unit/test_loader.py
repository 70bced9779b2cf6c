"""The stack loader: finding stacks, casting, validation, paths, build, env_file."""
import os

import pytest

from controller.errors import ManifestError
from controller.render.compose.files import STACK_FILE_NAMES, find_stacks
from controller.render.compose.loader import load_stack, load_text


def load(body, **kw):
    return load_text("services:\n  web:\n    image: busybox:latest\n" + body,
                     environ=kw.pop("environ", {}), **kw)


def web(body, **kw):
    return load(body, **kw).services["web"]


def err(body, **kw):
    with pytest.raises(ManifestError) as e:
        load(body, **kw)
    return e.value


# --- find_stacks -------------------------------------------------------------------------

def test_find_stacks(tmp_path):
    for name, fname in (("b", "compose.yaml"), ("a", "stack.yml"), ("c_1", "docker-stack.yml")):
        (tmp_path / name).mkdir()
        (tmp_path / name / fname).write_text("services: {}\n")
    (tmp_path / "a" / "compose.yml").write_text("x")  # stack.yml comes first
    (tmp_path / ".hidden").mkdir()
    (tmp_path / ".hidden" / "stack.yml").write_text("x")
    (tmp_path / "docs").mkdir()
    (tmp_path / "README.md").write_text("x")
    found = find_stacks(str(tmp_path))
    assert list(found) == ["a", "b", "c_1"]
    assert found["a"] == str(tmp_path / "a" / "stack.yml")
    assert found["b"] == str(tmp_path / "b" / "compose.yaml")
    assert STACK_FILE_NAMES[0] == "stack.yml"


@pytest.mark.parametrize("bad", ["Web", "-x", "a.b", "_x"])
def test_find_stacks_rejects_bad_folder_names(tmp_path, bad):
    (tmp_path / bad).mkdir()
    (tmp_path / bad / "stack.yml").write_text("services: {}\n")
    with pytest.raises(ManifestError, match=bad):
        find_stacks(str(tmp_path))


def test_find_stacks_missing_folder(tmp_path):
    with pytest.raises(ManifestError):
        find_stacks(str(tmp_path / "nope"))


# --- document level ----------------------------------------------------------------------

def test_version_accepted_and_dropped():
    m = load_text("version: '3.8'\nservices:\n  a: {image: x}\n")
    assert "version" not in m.compose and m.services == {"a": {"image": "x"}}


def test_x_keys_dropped_everywhere():
    m = load_text("x-top: 1\nservices:\n  a:\n    image: x\n    x-s: 1\n"
                  "    deploy: {x-d: 1, replicas: 1}\nnetworks:\n  n: {x-n: '${BAD:?no}'}\n",
                  environ={})
    assert m.compose == {"services": {"a": {"image": "x", "deploy": {"replicas": 1}}},
                         "networks": {"n": {}}}


@pytest.mark.parametrize("text,key,line", [
    ("services:\n  a:\n    image: x\n    imagee: y\n", "services.a.imagee", 4),
    ("services:\n  a:\n    image: x\n    deploy:\n      replica: 2\n",
     "services.a.deploy.replica", 5),
    ("services: {a: {image: x}}\nfoo: 1\n", "foo", 2),
])
def test_unknown_keys(text, key, line):
    with pytest.raises(ManifestError) as e:
        load_text(text, name="s")
    assert e.value.key == key and e.value.line == line and "unknown key" in e.value.message


def test_empty_and_non_mapping_documents():
    with pytest.raises(ManifestError, match="empty"):
        load_text("")
    with pytest.raises(ManifestError, match="mapping"):
        load_text("- a\n")
    with pytest.raises(ManifestError, match="services"):
        load_text("networks: {}\n")


def test_forbidden_key_is_an_error():
    e = err("    mem_limit: 1g\n")
    assert e.key == "services.web.mem_limit" and "deploy.resources" in e.message


def test_ignored_keys_kept_and_warned():
    m = load("    privileged: true\n    security_opt: [a]\n    depends_on: [db]\n")
    # depends_on orders the rollout waves (issue 10); db is not a service of this stack
    assert m.warnings == ["service web: ignoring options Swarm does not support: "
                          "privileged, security_opt",
                          "service web: depends_on names db, which is not a service of this "
                          "stack: ignored"]


# --- casting -----------------------------------------------------------------------------

def test_ints_bools_floats_cast_from_strings():
    env = {"R": "0", "P": "2", "B": "on", "F": "0.25", "T": "8080"}
    s = web("    read_only: ${B}\n    init: 'yes'\n    tty: off\n"
            "    ports:\n      - {target: '80', published: '${T}'}\n      - 8080-8081:80-81\n"
            "    deploy:\n      replicas: ${R}\n      update_config:\n"
            "        parallelism: ${P}\n        max_failure_ratio: ${F}\n"
            "      restart_policy: {max_attempts: '3'}\n"
            "    healthcheck: {retries: '5', disable: 'false'}\n"
            "    ulimits: {nofile: {soft: '10', hard: 20}, nproc: '65535'}\n",
            environ=env)
    assert s["read_only"] is True and s["init"] is True and s["tty"] is False
    assert s["ports"] == [{"target": 80, "published": 8080}, "8080-8081:80-81"]
    assert s["deploy"]["replicas"] == 0
    assert s["deploy"]["update_config"] == {"parallelism": 2, "max_failure_ratio": 0.25}
    assert s["deploy"]["restart_policy"] == {"max_attempts": 3}
    assert s["healthcheck"] == {"retries": 5, "disable": False}
    assert s["ulimits"] == {"nofile": {"soft": 10, "hard": 20}, "nproc": 65535}


def test_mode_is_octal_aware():
    m = load_text("services:\n  a:\n    image: x\n    configs:\n"
                  "      - {source: c, mode: 0440}\n      - {source: c, mode: '0755'}\n"
                  "      - {source: c, mode: 292}\n      - {source: c, mode: 0o644}\n"
                  "configs:\n  c: {external: true}\n")
    assert [c["mode"] for c in m.services["a"]["configs"]] == [0o440, 0o755, 292, 0o644]


def test_cpus_number_or_string_kept_as_decimal_string():
    s = web("    deploy:\n      resources:\n        limits: {cpus: 0.50, memory: 64M}\n"
            "        reservations: {cpus: '1', memory: 1073741824}\n")
    assert s["deploy"]["resources"] == {"limits": {"cpus": "0.50", "memory": "64M"},
                                        "reservations": {"cpus": "1", "memory": 1073741824}}


@pytest.mark.parametrize("value", ["1m30s", "10s", "500ms", "1.5h", "0", "1h2m3s4ms5us6ns"])
def test_durations_accepted(value):
    assert web(f"    stop_grace_period: {value}\n")["stop_grace_period"] == value


@pytest.mark.parametrize("body,key", [
    ("    stop_grace_period: 10\n", "services.web.stop_grace_period"),
    ("    stop_grace_period: 10 s\n", "services.web.stop_grace_period"),
    ("    healthcheck: {interval: 1d}\n", "services.web.healthcheck.interval"),
    ("    deploy: {resources: {limits: {memory: 64Q}}}\n",
     "services.web.deploy.resources.limits.memory"),
    ("    deploy: {resources: {limits: {cpus: half}}}\n",
     "services.web.deploy.resources.limits.cpus"),
    ("    deploy: {replicas: -1}\n", "services.web.deploy.replicas"),
    ("    deploy: {replicas: 1.5}\n", "services.web.deploy.replicas"),
    ("    deploy: {mode: replicate}\n", "services.web.deploy.mode"),
    ("    read_only: maybe\n", "services.web.read_only"),
    ("    ports: [{target: http}]\n", "services.web.ports.0.target"),
    ("    environment: [1, [2]]\n", "services.web.environment.1"),
    ("    image: true\n", "services.web.image"),
])
def test_bad_values_name_key_and_line(body, key):
    e = err(body)
    assert e.key == key and e.line == 4, e


def test_yaml_1_1_words_stay_strings_in_string_places():
    s = web("    environment:\n      A: on\n      B: yes\n      C: 0755\n      D: 1.10\n"
            "      E: true\n      F:\n    labels: [x=no]\n")
    assert s["environment"] == {"A": "on", "B": "yes", "C": "0755", "D": "1.10", "E": "true",
                                "F": None}
    assert s["labels"] == {"x": "no"}


# --- normalization -----------------------------------------------------------------------

def test_list_forms_become_dicts_with_positions():
    m = load("    environment:\n      - A=1\n      - B\n      - C=x=y\n"
             "    deploy:\n      labels: [k=v]\n    extra_hosts: {db: 10.0.0.2}\n")
    s = m.services["web"]
    assert s["environment"] == {"A": "1", "B": None, "C": "x=y"}
    assert s["deploy"]["labels"] == {"k": "v"}
    assert s["extra_hosts"] == ["db:10.0.0.2"]
    assert m.positions["services.web.environment.B"] == 6


def test_repeated_name_in_list_form_is_an_error():
    assert err("    environment: [A=1, A=2]\n").key == "services.web.environment.1"


def test_short_and_long_forms_kept():
    s = web("    command: echo hi\n    volumes: ['data:/d', {type: tmpfs, target: /t}]\n"
            "    networks: {front: null}\n    secrets: [s]\n", environ={})
    assert s["command"] == "echo hi" and s["networks"] == {"front": None}
    assert s["volumes"] == ["data:/d", {"type": "tmpfs", "target": "/t"}]


# --- interpolation in the loader ----------------------------------------------------------

def test_unset_variable_warns_once():
    m = load("    hostname: ${NOPE}\n    labels: {a: $NOPE}\n")
    assert m.services["web"]["hostname"] == ""
    assert len(m.warnings) == 1 and "NOPE" in m.warnings[0]


def test_keys_are_not_interpolated():
    assert web("    labels: {$A: '$A'}\n", environ={"A": "v"})["labels"] == {"$A": "v"}


def test_controller_env_overrides_dotenv(tmp_path):
    (tmp_path / ".env").write_text("export A=fromfile\nB='quoted # not comment'\n")
    m = load_text("services:\n  a:\n    image: x\n    environment: {A: $A, B: $B}\n",
                  directory=str(tmp_path), environ={"A": "fromenv"})
    assert m.services["a"]["environment"] == {"A": "fromenv", "B": "quoted # not comment"}


# --- files and build ----------------------------------------------------------------------

def test_files_resolved_and_checked(tmp_path):
    (tmp_path / "c.txt").write_text("x")
    m = load_text("services:\n  a: {image: x}\nconfigs:\n  c: {file: ./c.txt}\n",
                  directory=str(tmp_path))
    assert m.compose["configs"]["c"]["file"] == str(tmp_path / "c.txt")
    with pytest.raises(ManifestError) as e:
        load_text("services:\n  a: {image: x}\nsecrets:\n  s:\n    file: nope.txt\n",
                  directory=str(tmp_path))
    assert e.value.key == "secrets.s.file" and e.value.line == 5


def test_files_must_stay_inside_root(tmp_path):
    root = tmp_path / "repo"
    (root / "s").mkdir(parents=True)
    (tmp_path / "secret.txt").write_text("x")
    (root / "s" / "stack.yml").write_text(
        "services:\n  a: {image: x}\nsecrets:\n  s: {file: ../../secret.txt}\n")
    with pytest.raises(ManifestError, match="outside") as e:
        load_stack("s", str(root / "s" / "stack.yml"), {}, root=str(root))
    assert e.value.file == os.path.join("s", "stack.yml")


def test_env_file_merged_environment_wins(tmp_path):
    (tmp_path / "a.env").write_text("# c\nA=1\nB=2\nC=3\n")
    (tmp_path / "b.env").write_text("B=20\n")
    m = load_text("services:\n  a:\n    image: x\n    env_file: [a.env, b.env, "
                  "{path: missing.env, required: false}]\n    environment: [C=30, A]\n",
                  directory=str(tmp_path))
    s = m.services["a"]
    assert "env_file" not in s
    assert s["environment"] == {"A": "1", "B": "20", "C": "30"}


def test_env_file_missing_is_an_error(tmp_path):
    with pytest.raises(ManifestError) as e:
        load_text("services:\n  a:\n    image: x\n    env_file: app.env\n",
                  directory=str(tmp_path))
    assert e.value.key == "services.a.env_file" and e.value.line == 4


def test_build_string_and_mapping(tmp_path):
    (tmp_path / "app").mkdir()
    m = load_text("services:\n  a:\n    build: ./app\n  b:\n    image: reg/b:1\n    build:\n"
                  "      context: app\n      dockerfile: Dockerfile.prod\n"
                  "      args: [V=1, FROM_ENV, NOT_SET]\n      target: final\n"
                  "      labels: {team: a}\n", directory=str(tmp_path),
                  environ={"FROM_ENV": "e"})
    app = str(tmp_path / "app")
    assert m.builds["a"].context == app and m.builds["a"].image is None
    assert m.services["a"]["build"] == app
    b = m.builds["b"]
    assert (b.context, b.dockerfile, b.target, b.image) == (app, "Dockerfile.prod", "final",
                                                            "reg/b:1")
    assert b.args == {"V": "1", "FROM_ENV": "e"} and b.labels == {"team": "a"}
    assert not m.warnings


def test_build_missing_context(tmp_path):
    with pytest.raises(ManifestError) as e:
        load_text("services:\n  a:\n    build:\n      context: ./nope\n",
                  directory=str(tmp_path))
    assert e.value.key == "services.a.build.context" and e.value.line == 4
    assert "./nope" in e.value.message  # as written: the tree's location is not the repo's business
