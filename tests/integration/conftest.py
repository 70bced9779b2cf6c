"""Fixtures for integration tests: a real dockerd in swarm mode, a real registry, real git repos.

`scripts/dev-env.sh` starts whatever is missing (idempotent). Every test gets unique stack names
and everything carrying those names' namespace label is removed afterwards.
"""
from __future__ import annotations

import os
import pathlib
import subprocess
import time
import uuid

import docker
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
REGISTRY = os.environ.get("KEELSON_TEST_REGISTRY", "127.0.0.1:5000")
NAMESPACE = "com.docker.stack.namespace"


@pytest.fixture(scope="session")
def engine():
    """A docker SDK client for a dockerd in swarm mode (started by scripts/dev-env.sh)."""
    subprocess.run(["bash", str(ROOT / "scripts" / "dev-env.sh")], check=True)
    client = docker.from_env(timeout=120)
    assert client.info()["Swarm"]["LocalNodeState"] == "active"
    yield client
    client.close()


@pytest.fixture(scope="session")
def registry(engine) -> str:
    """``host:port`` of the loopback registry (Debian's docker-registry)."""
    return REGISTRY


def remove_stack(client, stack: str, timeout_s: float = 60.0) -> None:
    """Remove every service, network, config and secret of ``stack`` (by namespace label)."""
    flt = {"label": f"{NAMESPACE}={stack}"}
    for s in client.services.list(filters=flt):
        s.remove()
    deadline = time.time() + timeout_s
    # networks/configs go only once the tasks that use them are gone
    while time.time() < deadline:
        left = 0
        for kind in (client.networks, client.configs, client.secrets):
            for obj in kind.list(filters=flt):
                try:
                    obj.remove()
                except docker.errors.APIError:
                    left += 1
        if not left:
            return
        time.sleep(0.5)


@pytest.fixture
def stack_names(engine):
    """Factory of unique stack names; the stacks are removed after the test."""
    made = []

    def make(prefix: str = "t") -> str:
        name = f"{prefix}{uuid.uuid4().hex[:6]}"
        made.append(name)
        return name

    yield make
    for name in made:
        remove_stack(engine, name)


def git(cwd, *args: str) -> str:
    """Run git in ``cwd`` with a fixed identity; returns stdout."""
    env = dict(os.environ, GIT_AUTHOR_NAME="test", GIT_AUTHOR_EMAIL="test@example.com",
               GIT_COMMITTER_NAME="test", GIT_COMMITTER_EMAIL="test@example.com")
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True,
                          text=True).stdout.strip()


class ManifestRepo:
    """A bare git repo (the remote Keelson polls) plus a work tree the test commits from."""

    def __init__(self, base: pathlib.Path):
        self.bare = base / "remote.git"
        self.work = base / "work"
        git(base, "init", "-q", "--bare", "-b", "main", str(self.bare))
        git(base, "clone", "-q", str(self.bare), str(self.work))
        git(self.work, "checkout", "-q", "-b", "main")

    @property
    def url(self) -> str:
        """The remote's URL (a local path GitPython can clone)."""
        return str(self.bare)

    def write(self, rel: str, text: str) -> None:
        """Write ``text`` to ``rel`` in the work tree, creating folders."""
        p = self.work / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)

    def remove(self, rel: str) -> None:
        """Remove a file or folder from the work tree."""
        git(self.work, "rm", "-rq", rel)

    def commit(self, message: str = "change") -> str:
        """Commit everything and push to the remote's main; returns the full sha."""
        git(self.work, "add", "-A")
        git(self.work, "commit", "-qm", message, "--allow-empty")
        git(self.work, "push", "-q", "origin", "HEAD:main")
        return git(self.work, "rev-parse", "HEAD")


@pytest.fixture
def manifest_repo(tmp_path) -> ManifestRepo:
    """A fresh manifests repo (bare remote + work tree) in the test's temp folder."""
    return ManifestRepo(tmp_path)
