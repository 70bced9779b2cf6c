"""Behaviour 9 of issue #2: Keelson's deployment of a stack file matches ``docker stack deploy``
of the same file; every difference is listed here with its justification.

Keelson's side is the real App (``make_app`` + ``app.sync()`` limited to the stack, reading a
plain folder), so the comparison is of what Keelson really writes. Docker's side is the docker
CLI (28.x) with its default ``--resolve-image always``. Services, networks, configs and secrets
as the engine stores them are compared after normalizing stack names, IDs and Keelson's config
version suffix (tests/integration/parity/compare.py). Systematic differences are justified once
in ``compare.GENERAL``; per-stack ones below, and a listed per-stack difference that no longer
occurs fails too. The bundled manifests/ are covered: ``web`` (``build:``: Keelson builds and
pushes the image, docker gets a copy of the file with ``image:`` set to the same reference) and
``tools`` (``${KEELSON_REGISTRY:-...}``: both get the same environment). Each is applied twice
by Keelson: the second pass writes nothing and no service's Version.Index moves.
"""
from __future__ import annotations

import pathlib
import subprocess

import pytest

from controller.config import PolicyLevel
from tests.integration.keelson_app import make_app, versions, writes
from tests.integration.parity.compare import (ABSENT, KEELSON_DEFAULT_UPDATE, compare,
                                              docker_copy, docker_deploy, keelson_folder,
                                              remove_services, service_labels, snapshot,
                                              unexplained)

pytestmark = pytest.mark.integration

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parents[1]
IMAGE = "127.0.0.1:5000/keelson-parity/busybox:1"

# Per-stack differences: (kind, name, path) -> (docker value, keelson value, why).
JUSTIFIED = {
    "full": {
        # failure_action: pause is written, so both send UpdateConfig; sparse has only delay.
        ("services", "sparse", "UpdateConfig/FailureAction"): (
            "pause", "rollback", "Keelson defaults failure_action to rollback (Swarm: pause)"),
        ("services", "worker", "UpdateConfig"): (
            ABSENT, KEELSON_DEFAULT_UPDATE, "Keelson always sends an UpdateConfig"),
    },
    "web": {},
    "tools": {},
}


@pytest.fixture(scope="module")
def parity_image(engine):
    """busybox pushed under the name the parity stacks use."""
    engine.images.get("busybox:latest").tag(IMAGE)
    subprocess.run(["docker", "push", "-q", IMAGE], check=True, capture_output=True)
    return IMAGE


CASES = [("full", HERE / "parity", "full.yml"),
         ("web", ROOT / "manifests" / "web", "stack.yml"),
         ("tools", ROOT / "manifests" / "tools", "stack.yml")]


@pytest.mark.parametrize("case,folder,stack_file", CASES, ids=[c[0] for c in CASES])
def test_keelson_matches_docker_stack_deploy(engine, registry, stack_names, parity_image,
                                             tmp_path, monkeypatch, case, folder, stack_file):
    """Same stack file, two deployers: stored objects equal except the justified differences."""
    env = {"KEELSON_REGISTRY": registry}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    ours_name, theirs_name = stack_names("pk"), stack_names("pd")

    # Keelson first (it builds and pushes any build: image docker then deploys by reference)
    base = keelson_folder(folder, tmp_path / "repo", ours_name, stack_file)
    # parity is about conversion: no admission level refuses a key here (the "full" fixture
    # binds /tmp, adds NET_ADMIN and sets sysctls; policy is tested in test_trust_policy)
    app = make_app(str(base), tmp_path / "wd", registry, [ours_name],
                   policy=PolicyLevel.PRIVILEGED)
    out = app.sync()
    assert out.converged, app.store.snapshot()
    ours = snapshot(engine, ours_name, [theirs_name])

    # apply twice: no write, no Version.Index moves
    before, w = versions(engine, ours_name), writes(app)
    again = app.sync()
    assert again.converged and writes(app) == w, app.store.snapshot()
    assert versions(engine, ours_name) == before

    built = {svc: image for svc, image in
             service_labels(engine, ours_name, "com.docker.stack.image").items()
             if svc in _built_services(folder / stack_file)}
    remove_services(engine, ours_name)  # frees published ports for docker's copy
    path = docker_copy(folder, tmp_path / "docker", stack_file, built)
    done = docker_deploy(path, theirs_name, env)
    assert done.returncode == 0, done.stderr
    theirs = snapshot(engine, theirs_name, [ours_name])

    report = compare(theirs, ours)
    bad, stale = unexplained(report, JUSTIFIED[case])
    assert not bad, "differences from docker stack deploy not justified:\n" + "\n".join(bad)
    assert not stale, "justified differences that no longer occur:\n" + "\n".join(stale)


def _built_services(path: pathlib.Path) -> set:
    import yaml
    return {k for k, v in yaml.safe_load(path.read_text())["services"].items() if "build" in v}
