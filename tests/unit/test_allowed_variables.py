"""Interpolation sees only what the operator allows (issue 7), and the settings that bound work."""
import pytest

from controller.config import Settings, settings_from_env
from controller.errors import ConfigError, ManifestError
from controller.reconcile.loop import PassClock
from controller.render.convert import to_desired
from controller.render.compose.loader import load_text
from controller.render.compose.variables import allowed_variables

ENV = {"HOSTNAME": "planted-host", "KEELSON_REPO": "https://u:planted-token@h/r",
       "APP_DOMAIN": "example.org", "PYTHON_VERSION": "3.11", "KEELSON_GIT_TOKEN": "t"}


def test_default_allows_nothing():
    assert allowed_variables(ENV, ()) == {}


def test_patterns_match_and_keelson_never():
    assert allowed_variables(ENV, ("APP_*", "HOSTNAME")) == {"APP_DOMAIN": "example.org",
                                                             "HOSTNAME": "planted-host"}
    assert "KEELSON_REPO" not in allowed_variables(ENV, ("*",))
    assert allowed_variables(ENV, ("KEELSON_*", "KEELSON_REPO")) == {}
    assert allowed_variables(ENV, ("app_*",)) == {}  # case-sensitive, as variable names are


def test_allowed_variable_wins_over_dotenv_and_others_are_unset(tmp_path):
    (tmp_path / ".env").write_text("APP_DOMAIN=from-dotenv\nTAG=1\n")
    m = load_text("services:\n  a:\n    image: 'x:${TAG}'\n    environment:\n"
                  "      D: ${APP_DOMAIN}\n      H: ${HOSTNAME:-none}\n      R: ${KEELSON_REPO:-none}\n",
                  directory=str(tmp_path), environ=allowed_variables(ENV, ("APP_*", "KEELSON_*")))
    assert m.services["a"]["environment"] == {"D": "example.org", "H": "none", "R": "none"}
    assert m.variables == {"APP_DOMAIN": "example.org", "TAG": "1"}


def test_unset_required_variable_names_it(tmp_path):
    with pytest.raises(ManifestError, match="KEELSON_REPO") as e:
        load_text("services:\n  a:\n    image: x\n    environment:\n      R: ${KEELSON_REPO:?}\n",
                  directory=str(tmp_path), environ=allowed_variables(ENV, ("*",)))
    assert "planted" not in str(e.value)


def test_secret_environment_reads_the_same_set(tmp_path):
    (tmp_path / ".env").write_text("FROM_DOTENV=dot\n")
    text = ("services:\n  a: {image: x}\nsecrets:\n  s: {environment: FROM_DOTENV}\n"
            "  t: {environment: APP_DOMAIN}\n")
    m = load_text(text, directory=str(tmp_path), environ=allowed_variables(ENV, ("APP_*",)))
    d = to_desired(m, {})
    assert sorted(c.data for c in d.secrets.values()) == [b"dot", b"example.org"]
    bad = load_text("services:\n  a: {image: x}\nsecrets:\n  s: {environment: HOSTNAME}\n",
                    directory=str(tmp_path), environ=allowed_variables(ENV, ("APP_*",)))
    with pytest.raises(ManifestError, match="variable HOSTNAME is not set"):
        to_desired(bad, {})


def test_settings_from_env():
    kw = settings_from_env({"KEELSON_ENV_ALLOW": " APP_*, DOMAIN ,", "KEELSON_BUILD_TIMEOUT": "5m",
                            "KEELSON_GIT_TIMEOUT": "30", "KEELSON_PASS_DEADLINE": "2h",
                            "KEELSON_MAX_TREE_BYTES": "64m", "KEELSON_MAX_ENV_FILE_BYTES": "1024"})
    assert kw == {"env_allow": ("APP_*", "DOMAIN"), "build_timeout_s": 300.0,
                  "git_timeout_s": 30.0, "pass_deadline_s": 7200.0,
                  "max_tree_bytes": 64 << 20, "max_env_file_bytes": 1024}
    with pytest.raises(ConfigError, match="KEELSON_MAX_TREE_BYTES"):
        settings_from_env({"KEELSON_MAX_TREE_BYTES": "lots"})
    with pytest.raises(ConfigError, match="KEELSON_BUILD_TIMEOUT"):
        Settings(repo="r", build_timeout_s=0).validated()


def test_pass_clock():
    now = [100.0]
    clock = PassClock(10.0, clock=lambda: now[0])
    assert not clock.overdue()
    clock.started()
    now[0] += 10
    assert not clock.overdue()
    now[0] += 1
    assert clock.overdue()
    clock.finished()
    assert not clock.overdue()
