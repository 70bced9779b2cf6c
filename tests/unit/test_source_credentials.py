"""GitSource credentials: config via environment, never on a command line, always redacted."""
import base64
import os
import shlex
import stat

from controller.source.git import GitSource


def env_config(env):
    """GIT_CONFIG_KEY_n / VALUE_n pairs as a dict."""
    return {env[f"GIT_CONFIG_KEY_{i}"]: env[f"GIT_CONFIG_VALUE_{i}"]
            for i in range(int(env["GIT_CONFIG_COUNT"]))}


def test_token_from_env_becomes_a_host_scoped_header(tmp_path):
    src = GitSource("https://git.example.com/org/m.git", "main", "m", str(tmp_path),
                    environ={"KEELSON_GIT_TOKEN": "tok123"})
    env = src._git_env()
    header = env_config(env)["http.https://git.example.com/.extraHeader"]
    assert header == "Authorization: Basic " + base64.b64encode(b"x-access-token:tok123").decode()
    assert env["GIT_TERMINAL_PROMPT"] == "0"
    assert "tok123" not in src.url
    assert src._redact("failed with tok123 and " + header) == \
        "failed with *** and Authorization: Basic ***"


def test_token_file_wins_over_nothing_and_username_is_configurable(tmp_path):
    (tmp_path / "t").write_text("  filetok\n")
    src = GitSource("https://h/m.git", "main", "m", str(tmp_path / "wd"),
                    environ={"KEELSON_GIT_TOKEN_FILE": str(tmp_path / "t"),
                             "KEELSON_GIT_USERNAME": "oauth2"})
    header = env_config(src._git_env())["http.https://h/.extraHeader"]
    assert base64.b64decode(header.split()[-1]) == b"oauth2:filetok"


def test_url_credentials_are_taken_out_of_the_url(tmp_path):
    src = GitSource("https://bot:p%40ss@h.example/m.git", "main", "m", str(tmp_path), environ={})
    assert src.url == "https://h.example/m.git"
    header = env_config(src._git_env())["http.https://h.example/.extraHeader"]
    assert base64.b64decode(header.split()[-1]) == b"bot:p@ss"
    assert src._redact("x https://u:p@other/ y p@ss") == "x https://***@other/ y ***"


def test_no_token_for_ssh_or_local_urls(tmp_path):
    for url in ("git@h:org/m.git", str(tmp_path)):
        env = GitSource(url, "main", "m", str(tmp_path), environ={"KEELSON_GIT_TOKEN": "t"})._git_env()
        assert not any(k.endswith(".extraHeader") for k in env_config(env))


def test_ssh_key_and_known_hosts(tmp_path):
    key = tmp_path / "id"
    key.write_text("KEY")
    os.chmod(key, 0o600)
    src = GitSource("git@h:org/m.git", "main", "m", str(tmp_path / "wd"),
                    environ={"KEELSON_GIT_SSH_KEY_FILE": str(key),
                             "KEELSON_GIT_KNOWN_HOSTS_FILE": "/run/secrets/known hosts"})
    argv = shlex.split(src._git_env()["GIT_SSH_COMMAND"])
    assert argv[0] == "ssh" and argv[argv.index("-i") + 1] == str(key)
    assert "UserKnownHostsFile=/run/secrets/known hosts" in argv
    assert "StrictHostKeyChecking=yes" in argv and "BatchMode=yes" in argv


def test_world_readable_key_is_copied_private(tmp_path):
    key = tmp_path / "id"
    key.write_text("KEY")
    os.chmod(key, 0o444)  # how Docker mounts secrets by default
    src = GitSource("ssh://git@h/m.git", "main", "m", str(tmp_path / "wd"),
                    environ={"KEELSON_GIT_SSH_KEY_FILE": str(key)})
    argv = shlex.split(src._git_env()["GIT_SSH_COMMAND"])
    copy = argv[argv.index("-i") + 1]
    assert copy != str(key) and open(copy).read() == "KEY"
    assert stat.S_IMODE(os.stat(copy).st_mode) == 0o600
