"""The CLI's shape for the per-stack controls (issue 13.3): local vs remote `sync`, env
variables in --help, shell completion. No controller is contacted here."""
from __future__ import annotations

import pytest

from controller.cli import build_parser, main
from controller.config import settings_table


def help_of(capsys, *argv: str) -> str:
    with pytest.raises(SystemExit):
        main([*argv, "--help"])
    return capsys.readouterr().out


@pytest.mark.parametrize("command", ["run", "sync", "plan"])
def test_help_names_every_setting_variable(capsys, command):
    text = help_of(capsys, command)
    missing = [meta.env for _, meta in settings_table() if meta.env not in text]
    assert not missing, missing
    assert "KEELSON_LOG_LEVEL" in text


@pytest.mark.parametrize("command", ["status", "diff", "suspend", "rollback"])
def test_remote_help_names_server_and_token_variables(capsys, command):
    text = help_of(capsys, command)
    assert "KEELSON_SERVER" in text and "KEELSON_API_TOKEN_FILE" in text


def test_sync_stays_local_and_now_needs_a_stack(capsys):
    args = build_parser().parse_args(["sync"])
    assert (args.stack_name, args.now) == (None, False)
    args = build_parser().parse_args(["sync", "web", "--now"])
    assert (args.stack_name, args.now) == ("web", True)
    assert main(["sync", "--now"]) == 2
    assert "needs a STACK" in capsys.readouterr().err


def test_rollback_and_status_options():
    args = build_parser().parse_args(["rollback", "web", "--to", "abc1234", "--no-wait"])
    assert (args.stack_name, args.to, args.no_wait) == ("web", "abc1234", True)
    args = build_parser().parse_args(["status", "-o", "yaml"])
    assert (args.stack_name, args.output) == (None, "yaml")


@pytest.mark.parametrize("shell", ["bash", "zsh"])
def test_completion_script(capsys, shell):
    pytest.importorskip("shtab")
    assert main(["completion", shell]) == 0
    out = capsys.readouterr().out
    assert "keelson" in out and "rollback" in out
