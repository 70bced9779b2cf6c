"""Registry logins (issue 9): config.json parsing, lookup by host as docker does, the headers'
content, and the classification of registry refusals. Pure functions only."""
import base64
import json

import pytest

from controller.errors import ConfigError, ImageResolveError, RegistryFault
from controller.model.registry_auth import (DOCKER_HUB_SERVER, RegistryAuth, canonical_host,
                                            parse_docker_config, registry_auth, registry_host,
                                            unusable_entries)
from controller.swarm.registry_errors import describe, registry_fault

PW = "s3cret-Pa55"


def _b64(text):
    return base64.b64encode(text.encode()).decode()


def test_registry_host_follows_docker_rules():
    assert registry_host("busybox") == "docker.io"
    assert registry_host("team/api:1") == "docker.io"
    assert registry_host("docker.io/library/busybox") == "docker.io"
    assert registry_host("index.docker.io/team/api") == "docker.io"
    assert registry_host("registry.example.com:5000/a/b:1@sha256:" + "0" * 64) == \
        "registry.example.com:5000"
    assert registry_host("localhost/x") == "localhost"
    assert registry_host("127.0.0.1:5000/x:y") == "127.0.0.1:5000"


def test_canonical_host_drops_scheme_and_path_and_folds_hub():
    assert canonical_host("https://index.docker.io/v1/") == "docker.io"
    assert canonical_host("http://Reg.Example.com:443/v2/") == "reg.example.com:443"
    assert canonical_host("registry-1.docker.io") == "docker.io"


def test_config_json_auth_and_fields_and_lookup():
    text = json.dumps({"auths": {
        "https://index.docker.io/v1/": {"auth": _b64(f"hubuser:{PW}")},
        "reg.example.com:5000": {"username": "u2", "password": "p2-xxxx"},
        "ghcr.example.com": {"username": "u3", "identitytoken": "tok-abcd"},
        "helper.example.com": {},
    }, "credsStore": "desktop"})
    auth = parse_docker_config(text)
    assert auth.hosts == ("docker.io", "ghcr.example.com", "reg.example.com:5000")
    assert auth.for_image("busybox:1") == {"serveraddress": DOCKER_HUB_SERVER,
                                           "username": "hubuser", "password": PW}
    assert auth.for_image("reg.example.com:5000/a:b")["password"] == "p2-xxxx"
    assert auth.for_image("reg.example.com/a:b") is None  # host:port must match exactly
    assert auth.for_image("reg.example.com:5001/a:b") is None
    assert auth.for_image("ghcr.example.com/o/i") == {"serveraddress": "ghcr.example.com",
                                                      "username": "u3",
                                                      "identitytoken": "tok-abcd"}
    assert set(auth.build_config()) == {DOCKER_HUB_SERVER, "ghcr.example.com",
                                        "reg.example.com:5000"}
    assert unusable_entries(text) == ("helper.example.com", "credsStore")
    # the secrets never show in repr/str
    assert PW not in repr(auth) and "p2-xxxx" not in str(auth) and "tok-abcd" not in repr(auth)


def test_username_password_files_win_for_the_push_registry():
    text = json.dumps({"auths": {"reg:5000": {"auth": _b64("old:old-pass")}}})
    auth = registry_auth(text, registry="reg:5000", username="ci", password=PW)
    assert auth.for_image("reg:5000/x")["username"] == "ci"
    assert auth.secrets() == (PW,)


@pytest.mark.parametrize("text, words", [
    ("not json", "not a Docker config.json"),
    ('{"auths": []}', "auths must be an object"),
    ('{"auths": {"r:1": {"auth": "%%%"}}}', "auths.r:1.auth: not base64"),
    ('{"auths": {"r:1": {"auth": "%s"}}}' % _b64("nocolon"), "auths.r:1.auth"),
])
def test_bad_config_names_the_key_not_the_value(text, words):
    with pytest.raises(ConfigError, match="KEELSON_REGISTRY_AUTH_FILE") as err:
        parse_docker_config(text)
    assert words in str(err.value)


def test_username_and_password_go_together_and_need_a_registry():
    with pytest.raises(ConfigError, match="set both or neither"):
        registry_auth("", registry="r:1", username="u")
    with pytest.raises(ConfigError, match="KEELSON_REGISTRY, which is not set"):
        registry_auth("", username="u", password="p")
    assert registry_auth("") == RegistryAuth()


@pytest.mark.parametrize("message, status, fault", [
    ("unauthorized: authentication required", 401, RegistryFault.UNAUTHORIZED),
    ('Head "https://r:1/v2/a/manifests/b": no basic auth credentials', 500,
     RegistryFault.UNAUTHORIZED),
    ("pull access denied for x, repository does not exist or may require 'docker login'", None,
     RegistryFault.UNAUTHORIZED),
    ("denied: requested access to the resource is denied", None, RegistryFault.UNAUTHORIZED),
    ("manifest unknown: manifest unknown", 404, RegistryFault.NOT_FOUND),
    ('Get "http://127.0.0.1:5439/v2/": dial tcp 127.0.0.1:5439: connect: connection refused',
     500, RegistryFault.UNREACHABLE),
    ("Get https://r:1/v2/: net/http: request canceled (Client.Timeout exceeded)", 500,
     RegistryFault.UNREACHABLE),
    ("dial tcp: lookup nohost on 1.1.1.1:53: no such host", 500, RegistryFault.UNREACHABLE),
    ("x509: certificate signed by unknown authority", 500, RegistryFault.UNTRUSTED),
    ("received unexpected HTTP status: 500 Internal Server Error", 500, None),
])
def test_registry_fault_classification(message, status, fault):
    assert registry_fault(message, status) == fault


def test_fault_sets_reason_and_message_names_the_image():
    exc = ImageResolveError(describe("resolve", "r:1/a:b", "no basic auth credentials",
                                     RegistryFault.UNAUTHORIZED), RegistryFault.UNAUTHORIZED)
    assert exc.reason == "RegistryUnauthorized" and "r:1/a:b" in str(exc)
    assert "credentials" in str(exc)
    assert ImageResolveError("x").reason == "ImageResolveFailed"


def test_build_errors_count_only_when_about_a_registry():
    from controller.swarm.registry_errors import build_fault
    assert build_fault("COPY failed: file not found in build context") is None
    assert build_fault("The command '/bin/sh -c false' returned a non-zero code: 1") is None
    assert build_fault("The command '/bin/sh -c docker pull reg/x # unauthorized' returned a "
                       "non-zero code: 1") is None
    assert build_fault('Head "https://r:1/v2/base/manifests/1": no basic auth credentials') == \
        RegistryFault.UNAUTHORIZED


def test_registry_header_is_base64url_json_of_the_login():
    from controller.swarm.client import registry_header
    login = {"username": "ci", "password": PW, "serveraddress": "r:1"}
    header = registry_header(login)["X-Registry-Auth"]
    assert json.loads(base64.urlsafe_b64decode(header)) == login
    assert registry_header(None) == {}


def test_settings_read_the_secret_files_and_hide_them(tmp_path):
    from controller.config import Settings, settings_from_env
    conf = tmp_path / "config.json"
    conf.write_text(json.dumps({"auths": {"r:1": {"auth": _b64(f"ci:{PW}")}}}) + "\n")
    (tmp_path / "user").write_text("ci\n")
    (tmp_path / "pass").write_text(PW + "\n")
    kw = settings_from_env({"KEELSON_REGISTRY_AUTH_FILE": str(conf),
                            "KEELSON_REGISTRY_USERNAME_FILE": str(tmp_path / "user"),
                            "KEELSON_REGISTRY_PASSWORD_FILE": str(tmp_path / "pass")})
    s = Settings(repo="/r", registry="r:1", **kw)
    assert PW not in repr(s) and _b64(f"ci:{PW}") not in repr(s)
    auth = registry_auth(s.registry_auth, registry=s.registry, username=s.registry_username,
                         password=s.registry_password)
    assert auth.for_image("r:1/a")["password"] == PW
    with pytest.raises(ConfigError, match="KEELSON_REGISTRY_AUTH_FILE"):
        settings_from_env({"KEELSON_REGISTRY_AUTH_FILE": str(tmp_path / "missing")})


def test_cli_bad_config_json_exits_2_naming_the_key_not_the_value(tmp_path, monkeypatch, capsys):
    from controller.cli import EXIT_USAGE, main
    conf = tmp_path / "config.json"
    conf.write_text('{"auths": {"r:1": {"auth": "not*base64", "password": 5}}}')
    monkeypatch.setenv("KEELSON_REGISTRY_AUTH_FILE", str(conf))
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent.sock")  # never reached
    assert main(["sync", "--repo", str(tmp_path), "--listen", ""]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "KEELSON_REGISTRY_AUTH_FILE: auths.r:1" in err and "not*base64" not in err
    assert "Traceback" not in err
