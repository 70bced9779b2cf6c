"""The settings table (controller.config): one declaration per setting, read the same way by the
environment and the command line, and every variable documented in README."""
import pathlib

import pytest

from controller.cli import build_parser, settings_from
from controller.config import Settings, settings_from_env, settings_table
from controller.errors import ConfigError

README = (pathlib.Path(__file__).resolve().parents[2] / "README.md").read_text()


def test_every_setting_has_a_variable_documented_in_readme():
    missing = [meta.env for _, meta in settings_table() if f"`{meta.env}`" not in README]
    assert not missing, f"README's settings table lacks {missing}"


def test_environment_is_parsed_by_kind():
    kw = settings_from_env({"KEELSON_INTERVAL": "5m", "KEELSON_WORKERS": "8",
                            "KEELSON_STACKS": "a, b,", "KEELSON_MAX_TREE_BYTES": "1m",
                            "KEELSON_PRUNE": "off", "KEELSON_REGISTRY": "",
                            "KEELSON_BRANCH": "", "KEELSON_DRIFT": "Report"})
    assert kw == {"interval_s": 300.0, "workers": 8, "stacks": ("a", "b"),
                  "max_tree_bytes": 1 << 20, "prune": False, "registry": "", "drift": "report"}


def test_bad_values_name_their_variable():
    with pytest.raises(ConfigError, match="KEELSON_WORKERS"):
        settings_from_env({"KEELSON_WORKERS": "many"})
    with pytest.raises(ConfigError, match="KEELSON_WORKERS must be >= 1"):
        settings_from_env({"KEELSON_WORKERS": "0"})
    with pytest.raises(ConfigError, match="--interval must be > 0"):
        Settings(repo="r", interval_s=0).validated()


def test_an_option_replaces_its_variable():
    args = build_parser().parse_args(["sync", "--interval", "10s", "--stack", "a", "--stack", "b"])
    s = settings_from(args, {"KEELSON_REPO": "/r", "KEELSON_INTERVAL": "not a duration",
                             "KEELSON_STACKS": "x"})
    assert (s.interval_s, s.stacks, s.repo) == (10.0, ("a", "b"), "/r")


def test_secrets_stay_out_of_repr(tmp_path):
    token = tmp_path / "token"
    token.write_text("s3cret-value\n")
    s = Settings(repo="r", **settings_from_env({"KEELSON_API_TOKEN_FILE": str(token)}))
    assert s.api_token == "s3cret-value" and "s3cret" not in repr(s)
