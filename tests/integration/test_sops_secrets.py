"""Secrets in git with SOPS + age (issue 9 part 3), on the real swarm with real sops and age.

The test makes age keys with ``age-keygen`` and encrypts with the real ``sops`` (from stdin, so
no plaintext file is ever written). Keelson decrypts in memory: the service reads the values
(``docker exec``), the repo and the exported tree never hold them in clear, a changed value rolls
out as a new secret version, the same value re-encrypted changes nothing, and a file encrypted
for another recipient fails its stack alone, naming the file and the recipient.
"""
from __future__ import annotations

import subprocess
import time

import pytest

from controller.secrets.sops import find_sops
from tests.integration.keelson_app import make_app, versions, writes

pytestmark = pytest.mark.integration

TOKEN_1 = "kso-token-value-one-7f3a"
TOKEN_2 = "kso-token-value-two-91bc"
API_KEY = "kso-api-key-c0ffee-5150"


def keygen(path) -> str:
    """Make an age identity at ``path`` with age-keygen; returns its recipient (age1...)."""
    subprocess.run(["age-keygen", "-o", str(path)], check=True, capture_output=True)
    return subprocess.run(["age-keygen", "-y", str(path)], check=True, capture_output=True,
                          text=True).stdout.strip()


def encrypt(recipient: str, plain: str, fmt: str) -> str:
    """sops-encrypt ``plain`` (given on stdin, never written) for ``recipient``."""
    done = subprocess.run([find_sops(), "--encrypt", "--age", recipient, "--input-type", fmt,
                           "--output-type", fmt, "/dev/stdin"], input=plain.encode(),
                          capture_output=True, check=True, env={"PATH": "/usr/bin:/bin"})
    return done.stdout.decode()


def stack(registry: str) -> str:
    return f"""services:
  app:
    image: {registry}/library/busybox:latest
    command: ["sh", "-c", "sleep 3600"]
    env_file: ./app.env
    secrets: [token]
    deploy:
      update_config: {{parallelism: 1, delay: 0s, monitor: 1s, order: stop-first}}
secrets:
  token:
    file: ./token.enc
"""


def container_of(engine, service: str, deadline_s: float = 60.0):
    """The running container of ``service``'s newest task (polled until it runs)."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        tasks = [t for t in engine.api.tasks(filters={"service": service})
                 if t["Status"]["State"] == "running" and t["DesiredState"] == "running"]
        if tasks:
            newest = max(tasks, key=lambda t: t["Version"]["Index"])
            return newest["Status"]["ContainerStatus"]["ContainerID"]
        time.sleep(0.5)
    raise AssertionError(f"{service}: no running task")


def exec_in(container: str, *cmd: str) -> str:
    return subprocess.run(["docker", "exec", container, *cmd], check=True, capture_output=True,
                          text=True).stdout


def clear_in(folder) -> list:
    """Files under ``folder`` holding any of the clear values."""
    found = []
    for value in (TOKEN_1, TOKEN_2, API_KEY):
        done = subprocess.run(["grep", "-r", "-a", "-l", value, str(folder)],
                              capture_output=True, text=True)
        found += done.stdout.split()
    return found


def test_sops_secret_and_env_file_decrypted_in_memory_and_rotated(
        engine, registry, manifest_repo, stack_names, tmp_path):
    good, bad = stack_names("ksosec"), stack_names("ksobad")
    keys = tmp_path / "keys"
    keys.mkdir()
    mine = keygen(keys / "keelson.txt")
    theirs = keygen(keys / "other.txt")
    manifest_repo.write(f"manifests/{good}/stack.yml", stack(registry))
    manifest_repo.write(f"manifests/{good}/token.enc", encrypt(mine, TOKEN_1, "binary"))
    manifest_repo.write(f"manifests/{good}/app.env", encrypt(mine, f"API_KEY={API_KEY}\n",
                                                             "dotenv"))
    manifest_repo.write(f"manifests/{bad}/stack.yml", stack(registry))
    manifest_repo.write(f"manifests/{bad}/token.enc", encrypt(theirs, "not ours", "binary"))
    manifest_repo.write(f"manifests/{bad}/app.env", encrypt(mine, "A=b\n", "dotenv"))
    manifest_repo.commit("sops")
    app = make_app(manifest_repo.url, tmp_path / "wd", registry, [good, bad],
                   sops_age_key_file=str(keys / "keelson.txt"))
    out = app.sync()
    snap = app.store.snapshot()["stacks"]
    # the stack encrypted for another recipient fails alone, naming the file and recipient
    assert snap[good]["sync_status"] == "Synced", snap[good]
    assert snap[bad]["sync_status"] == "Failed", snap[bad]
    assert snap[bad]["reason"] == "DecryptFailed", snap[bad]
    assert f"manifests/{bad}/token.enc" in snap[bad]["last_error"], snap[bad]
    assert theirs in snap[bad]["last_error"], snap[bad]
    assert not out.converged and not engine.services.list(
        filters={"label": f"com.docker.stack.namespace={bad}"})

    c = container_of(engine, f"{good}_app")
    assert exec_in(c, "cat", "/run/secrets/token") == TOKEN_1
    assert f"API_KEY={API_KEY}" in exec_in(c, "env").splitlines()
    secret_v1 = {s.name for s in engine.secrets.list(
        filters={"label": f"com.docker.stack.namespace={good}"})}
    assert len(secret_v1) == 1
    # nothing Keelson or the repo holds on disk has the values in clear
    assert clear_in(tmp_path) == []

    # the same value encrypted again (a new file): same secret version, nothing rolls
    manifest_repo.write(f"manifests/{good}/token.enc", encrypt(mine, TOKEN_1, "binary"))
    manifest_repo.commit("re-encrypted, same value")
    v, w = versions(engine, good), writes(app)
    app.sync()
    assert versions(engine, good) == v and writes(app) == w

    # a new value: a new secret version, the service rolls onto it
    manifest_repo.write(f"manifests/{good}/token.enc", encrypt(mine, TOKEN_2, "binary"))
    manifest_repo.commit("rotate the token")
    app.sync()
    assert app.store.snapshot()["stacks"][good]["sync_status"] == "Synced"
    secret_v2 = {s.name for s in engine.secrets.list(
        filters={"label": f"com.docker.stack.namespace={good}"})}
    assert secret_v2 and secret_v2 != secret_v1
    assert versions(engine, good) != v
    c = container_of(engine, f"{good}_app")
    assert exec_in(c, "cat", "/run/secrets/token") == TOKEN_2
    assert clear_in(tmp_path) == []
