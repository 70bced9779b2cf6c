"""Relative bind mounts (refused, or under KEELSON_BIND_ROOT), plan exit codes, bad settings."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from controller.config import Settings, settings_from_env
from controller.config_parse import env_bool
from controller.errors import ConfigError, ManifestError
from controller.model import StackPlan
from controller.model.plan import Change
from controller.render.convert import to_desired
from controller.render.compose.loader import load_text
from controller.report import plan_exit_code


def stack(volume: str):
    return load_text(f"services:\n  a:\n    image: busybox\n    volumes:\n      - {volume}\n",
                     name="s", directory="/repo/manifests/s")


@pytest.mark.parametrize("volume", ["./data:/data", "../x:/data", "~/data:/data",
                                    "{type: bind, source: rel, target: /d}"])
def test_relative_bind_is_refused_with_a_hint(volume):
    with pytest.raises(ManifestError) as e:
        to_desired(stack(volume), {})
    assert e.value.key == "services.a.volumes.0" and e.value.line == 5
    assert "use a config (configs:) for files from the repo, a named volume for data, an " \
           "absolute path" in e.value.message


def test_relative_bind_resolves_under_bind_root():
    d = to_desired(stack("./data:/data"), {}, bind_root="/srv/keelson")
    mount = d.services["s_a"].spec["TaskTemplate"]["ContainerSpec"]["Mounts"][0]
    assert mount["Source"] == "/srv/keelson/s/data"
    with pytest.raises(ManifestError, match="leaves KEELSON_BIND_ROOT"):
        to_desired(stack("../../etc:/data"), {}, bind_root="/srv/keelson")
    d = to_desired(stack("/var/log:/data"), {})
    assert d.services["s_a"].spec["TaskTemplate"]["ContainerSpec"]["Mounts"][0]["Source"] == "/var/log"


def run(error=None, sync="Synced", changes=(), to_build=()):
    status = SimpleNamespace(sync_status=sync, last_error="")
    return SimpleNamespace(error=error, status=status, plan=StackPlan("s", list(changes)),
                           to_build=list(to_build))


@pytest.mark.parametrize("runs, result, plain, detailed", [
    ([run()], "noop", 0, 0),
    ([run(changes=[Change("service", "s_a", "create")])], "noop", 0, 2),
    ([run(to_build=["a"])], "noop", 0, 2),
    ([run(), run(error=ManifestError("bad"), sync="Failed")], "partial", 1, 1),
    ([run(sync="Stalled")], "partial", 1, 1),
    ([], "failed", 1, 1),
])
def test_plan_exit_code(runs, result, plain, detailed):
    outcome = SimpleNamespace(result=result, runs={str(i): r for i, r in enumerate(runs)})
    assert plan_exit_code(outcome, False) == plain
    assert plan_exit_code(outcome, True) == detailed


@pytest.mark.parametrize("env, message", [
    ({"KEELSON_PRUNE": "maybe"}, "KEELSON_PRUNE: not a boolean: 'maybe'"),
    ({"KEELSON_INTERVAL": "nan"}, "KEELSON_INTERVAL: must be a finite number"),
    ({"KEELSON_ROLLOUT_TIMEOUT": "-5"}, "KEELSON_ROLLOUT_TIMEOUT: must be a finite number"),
])
def test_bad_environment_values(env, message):
    with pytest.raises(ConfigError, match=message):
        Settings(repo="/r", **settings_from_env(env)).validated()


def test_bind_root_setting():
    assert Settings(repo="/r", **settings_from_env({"KEELSON_BIND_ROOT": "/srv/b"})).validated() \
        .bind_root == "/srv/b"
    with pytest.raises(ConfigError, match="KEELSON_BIND_ROOT must be an absolute path"):
        Settings(repo="/r", bind_root="srv").validated()
    assert env_bool("off", True) is False and env_bool("", True) is True
