"""The ``keelson`` command line as a user runs it: a subprocess of the real console script (or
``python -m controller``) against real git repos, the real swarm and the loopback registry.

Every call is limited to the test's own stacks (``--stack`` / KEELSON_STACKS) so it never prunes
anything another test or engineer deployed.
"""
from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

from tests.integration.conftest import ROOT, git
from tests.integration.keelson_app import tools_stack, versions

pytestmark = pytest.mark.integration

KEELSON = shutil.which("keelson")


def clean_env(tmp_path: pathlib.Path, **extra: str) -> dict:
    """The process environment without any KEELSON_* variable, plus a private workdir,
    no HTTP listener and ``extra`` (values of None remove a variable)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEELSON_")}
    env.update(KEELSON_WORKDIR=str(tmp_path / "keelson-wd"), KEELSON_LISTEN="",
               KEELSON_PENDING_TIMEOUT="20", KEELSON_ROLLOUT_TIMEOUT="120")
    for key, value in extra.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def keelson(args, env: dict, module: bool = False, timeout_s: float = 300) -> subprocess.CompletedProcess:
    """Run ``keelson ARGS`` (or ``python -m controller ARGS``); returns the finished process."""
    cmd = [sys.executable, "-m", "controller"] if module else [KEELSON or "keelson"]
    return subprocess.run(cmd + list(args), env=env, cwd=str(ROOT), capture_output=True, text=True,
                          timeout=timeout_s)


def image_stack(registry: str, healthy: bool = True) -> str:
    """One busybox service with a healthcheck that passes (or fails) and rollback on failure."""
    check = "true" if healthy else "false"
    return f"""services:
  app:
    image: {registry}/library/busybox:latest
    command: ["sh", "-c", "sleep 3600"]
    healthcheck:
      test: ["CMD", "{check}"]
      interval: 1s
      timeout: 1s
      retries: 1
      start_period: 0s
    deploy:
      replicas: 1
      update_config:
        parallelism: 1
        delay: 0s
        monitor: 5s
        failure_action: rollback
      rollback_config:
        parallelism: 0
        monitor: 1s
"""


def describe(proc: subprocess.CompletedProcess) -> str:
    """rc, stdout and stderr of a finished process, for assertion messages."""
    return f"rc={proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"


def test_help_console_script_and_module():
    """`keelson --help` and `python -m controller --help` both list the four commands."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEELSON_")}
    for module in (False, True):
        proc = keelson(["--help"], env, module=module, timeout_s=60)
        assert proc.returncode == 0, describe(proc)
        for word in ("run", "sync", "plan", "validate"):
            assert word in proc.stdout
    proc = keelson(["sync", "--help"], env, module=True, timeout_s=60)
    assert proc.returncode == 0
    for opt in ("--repo", "--branch", "--path", "--registry", "--interval", "--listen", "--stack"):
        assert opt in proc.stdout, opt


def test_bad_usage_exits_2(tmp_path):
    """No --repo, a bad --interval, an unknown command or option: exit 2 with a one-line reason."""
    env = clean_env(tmp_path)
    folder = tmp_path / "m"
    (folder / "manifests").mkdir(parents=True)
    cases = [
        (["sync"], "--repo"),
        (["plan"], "--repo"),
        (["sync", "--repo", str(folder), "--interval", "abc"], "--interval"),
        (["sync", "--repo", str(folder), "--interval", "0"], "--interval"),
        (["sync", "--repo", str(tmp_path / "missing")], "no such folder"),
        (["sync", "--repo", str(folder), "--registry", "http://x/y"], "--registry"),
        (["sync", "--repo", str(folder), "--bogus"], "unrecognized"),
        ([], "required"),
    ]
    for args, needle in cases:
        proc = keelson(args, env, timeout_s=60)
        assert proc.returncode == 2, f"{args}: {describe(proc)}"
        assert needle in proc.stderr, f"{args}: {describe(proc)}"
        assert "Traceback" not in proc.stderr, describe(proc)


def test_validate_bundled_and_broken(tmp_path):
    """`validate` passes the bundled manifests; a broken folder exits 1 naming stack, file, line."""
    env = clean_env(tmp_path)
    proc = keelson(["validate", str(ROOT / "manifests")], env, timeout_s=60)
    assert proc.returncode == 0, describe(proc)
    assert "ok" in proc.stdout

    broken = tmp_path / "broken"
    (broken / "good").mkdir(parents=True)
    (broken / "good" / "stack.yml").write_text("services:\n  a:\n    image: busybox\n")
    (broken / "yamlbad").mkdir()
    (broken / "yamlbad" / "stack.yml").write_text("services:\n  a:\n    image: x\n   bad: [\n")
    (broken / "keybad").mkdir()
    (broken / "keybad" / "stack.yml").write_text("services:\n  a:\n    image: x\n    replicaz: 2\n")
    proc = keelson(["validate", str(broken)], env, timeout_s=60)
    assert proc.returncode == 1, describe(proc)
    lines = proc.stdout.splitlines()
    yaml_line = next(line for line in lines if "yamlbad" in line and "FAIL" in line)
    assert "yamlbad/stack.yml:4" in yaml_line, proc.stdout
    key_line = next(line for line in lines if "keybad" in line and "FAIL" in line)
    assert "keybad/stack.yml:4" in key_line and "replicaz" in key_line, proc.stdout
    assert any(line.startswith("ok") and "good" in line for line in lines), proc.stdout
    # python -m controller gives the same answer
    assert keelson(["validate", str(broken)], env, module=True, timeout_s=60).returncode == 1


def test_plan_changes_nothing_then_sync_then_plan_is_empty(engine, registry, manifest_repo,
                                                           stack_names, tmp_path):
    """`plan` lists creates on a fresh stack and creates nothing; `sync` exits 0 and deploys;
    a second `plan` prints no changes and a second `sync` writes nothing."""
    tools = stack_names("clit")
    manifest_repo.write(f"manifests/{tools}/stack.yml", tools_stack(registry))
    sha = manifest_repo.commit("tools")
    env = clean_env(tmp_path)
    args = ["--repo", manifest_repo.url, "--registry", registry, "--stack", tools]

    proc = keelson(["plan", *args], env)
    assert proc.returncode == 0, describe(proc)
    assert f"revision {sha[:12]}" in proc.stdout
    assert f"+ service {tools}_ticker" in proc.stdout, proc.stdout
    assert f"+ service {tools}_other" in proc.stdout, proc.stdout
    assert f"+ network {tools}_default" in proc.stdout, proc.stdout
    assert versions(engine, tools) == {}
    assert not engine.networks.list(filters={"label": f"com.docker.stack.namespace={tools}"})

    proc = keelson(["sync", *args], env)
    assert proc.returncode == 0, describe(proc)
    assert f"{tools}: Synced" in proc.stdout, proc.stdout
    deployed = versions(engine, tools)
    assert set(deployed) == {f"{tools}_ticker", f"{tools}_other"}

    proc = keelson(["plan", *args], env)
    assert proc.returncode == 0, describe(proc)
    assert f"stack {tools}: no changes" in proc.stdout, proc.stdout
    assert "+ " not in proc.stdout and "~ " not in proc.stdout

    proc = keelson(["sync", "--json", *args], env)
    assert proc.returncode == 0, describe(proc)
    doc = json.loads(proc.stdout)
    assert doc["source"]["revision"] == sha
    assert doc["stacks"][tools]["last_applied_revision"] == sha
    assert doc["pass"]["last_result"] == "noop"
    assert versions(engine, tools) == deployed


def test_sync_exits_1_when_a_stack_fails_to_load(engine, registry, manifest_repo, stack_names, tmp_path):
    """A stack with broken YAML makes `sync` exit 1 (naming it); the good stack still deploys."""
    good, bad = stack_names("cliok"), stack_names("clibad")
    manifest_repo.write(f"manifests/{good}/stack.yml", tools_stack(registry))
    manifest_repo.write(f"manifests/{bad}/stack.yml", "services:\n  a:\n    image: [oops\n")
    manifest_repo.commit("one good, one bad")
    env = clean_env(tmp_path)
    proc = keelson(["sync", "--repo", manifest_repo.url, "--stack", good, "--stack", bad], env)
    assert proc.returncode == 1, describe(proc)
    assert f"{good}: Synced" in proc.stdout, proc.stdout
    bad_line = next(line for line in proc.stdout.splitlines() if line.strip().startswith(f"{bad}:"))
    assert "Failed" in bad_line and "stack.yml" in bad_line, proc.stdout
    assert set(versions(engine, good)) == {f"{good}_ticker", f"{good}_other"}
    assert versions(engine, bad) == {}


def test_sync_exits_1_when_rolled_back(engine, registry, manifest_repo, stack_names, tmp_path):
    """A commit whose healthcheck fails is rolled back by Swarm: `sync` exits 1 saying so, and
    the service keeps its previous spec."""
    app = stack_names("clirb")
    manifest_repo.write(f"manifests/{app}/stack.yml", image_stack(registry, healthy=True))
    manifest_repo.commit("healthy")
    env = clean_env(tmp_path)
    args = ["sync", "--repo", manifest_repo.url, "--stack", app]
    proc = keelson(args, env)
    assert proc.returncode == 0, describe(proc)
    good_spec = engine.services.get(f"{app}_app").attrs["Spec"]["TaskTemplate"]["ContainerSpec"]

    manifest_repo.write(f"manifests/{app}/stack.yml", image_stack(registry, healthy=False))
    bad = manifest_repo.commit("unhealthy")
    proc = keelson(args, env)
    assert proc.returncode == 1, describe(proc)
    line = next(x for x in proc.stdout.splitlines() if x.strip().startswith(f"{app}:"))
    assert "Failed" in line and "RolledBack" in line and bad[:12] in line, proc.stdout
    spec = engine.services.get(f"{app}_app").attrs["Spec"]["TaskTemplate"]["ContainerSpec"]
    assert spec["Healthcheck"]["Test"] == good_spec["Healthcheck"]["Test"]

    # the failed revision is not applied again: still exit 1 (Stalled), no new service version
    before = versions(engine, app)
    proc = keelson(args, env)
    assert proc.returncode == 1, describe(proc)
    assert "Stalled" in proc.stdout, proc.stdout
    assert versions(engine, app) == before


def test_options_and_environment(engine, registry, manifest_repo, stack_names, tmp_path):
    """Every setting reads its KEELSON_* variable when the option is absent; the option wins."""
    a, b = stack_names("clia"), stack_names("clib")
    # main: stack a under manifests/, stack b under other/; release adds b under manifests/
    manifest_repo.write(f"manifests/{a}/stack.yml", tools_stack(registry))
    manifest_repo.write(f"other/{b}/stack.yml", tools_stack(registry))
    main_sha = manifest_repo.commit("main")
    # branch release: stack b under manifests/
    git(manifest_repo.work, "checkout", "-q", "-b", "release")
    manifest_repo.write(f"manifests/{b}/stack.yml", tools_stack(registry))
    git(manifest_repo.work, "add", "-A")
    git(manifest_repo.work, "commit", "-qm", "release")
    git(manifest_repo.work, "push", "-q", "origin", "release")
    release_sha = git(manifest_repo.work, "rev-parse", "HEAD")

    def plan(args, **env):
        proc = keelson(["plan", *args], clean_env(tmp_path, **env))
        assert proc.returncode == 0, describe(proc)
        return proc.stdout

    both = f"{a},{b}"
    # KEELSON_REPO + KEELSON_STACKS + defaults (branch main, path manifests)
    out = plan([], KEELSON_REPO=manifest_repo.url, KEELSON_STACKS=both)
    assert f"revision {main_sha[:12]}" in out and f"stack {a}:" in out and f"stack {b}:" not in out
    # KEELSON_BRANCH, and --branch wins over it
    out = plan([], KEELSON_REPO=manifest_repo.url, KEELSON_STACKS=both, KEELSON_BRANCH="release")
    assert f"revision {release_sha[:12]}" in out and f"stack {b}:" in out
    out = plan(["--branch", "main"], KEELSON_REPO=manifest_repo.url, KEELSON_STACKS=both,
               KEELSON_BRANCH="release")
    assert f"revision {main_sha[:12]}" in out
    # KEELSON_PATH, and --path wins over it
    out = plan([], KEELSON_REPO=manifest_repo.url, KEELSON_STACKS=both, KEELSON_PATH="other")
    assert f"stack {b}:" in out and f"stack {a}:" not in out
    out = plan(["--path", "manifests"], KEELSON_REPO=manifest_repo.url, KEELSON_STACKS=both,
               KEELSON_PATH="other")
    assert f"stack {a}:" in out and f"stack {b}:" not in out
    # --stack wins over KEELSON_STACKS (release has both stacks under manifests/)
    out = plan([], KEELSON_REPO=manifest_repo.url, KEELSON_STACKS=b, KEELSON_BRANCH="release")
    assert f"stack {b}:" in out and f"stack {a}:" not in out
    out = plan(["--stack", a], KEELSON_REPO=manifest_repo.url, KEELSON_STACKS=b,
               KEELSON_BRANCH="release")
    assert f"stack {a}:" in out and f"stack {b}:" not in out
    # --repo wins over KEELSON_REPO
    out = plan(["--repo", manifest_repo.url, "--stack", a], KEELSON_REPO=str(tmp_path / "nope"))
    assert f"stack {a}:" in out

    # settings whose effect is only visible when bad: the variable is read, the option wins
    base = {"KEELSON_REPO": manifest_repo.url, "KEELSON_STACKS": a}
    for var, bad, opt, good in [("KEELSON_INTERVAL", "soon", "--interval", "30"),
                                ("KEELSON_REGISTRY", "http://reg/x", "--registry", registry),
                                ("KEELSON_LISTEN", "nocolon", "--listen", "")]:
        proc = keelson(["plan"], clean_env(tmp_path, **base, **{var: bad}))
        assert proc.returncode == 2 and var.split("_")[1].lower() in proc.stderr.lower(), describe(proc)
        proc = keelson(["plan", opt, good], clean_env(tmp_path, **base, **{var: bad}))
        assert proc.returncode == 0, f"{opt} {good!r} over {var}={bad!r}: {describe(proc)}"
    # nothing was deployed by any of this
    assert versions(engine, a) == {} and versions(engine, b) == {}


def test_docker_host_is_honoured(tmp_path):
    """DOCKER_HOST pointing nowhere: a one-line error naming it (exit 1), never a traceback."""
    folder = tmp_path / "repo"
    (folder / "manifests" / "dh").mkdir(parents=True)
    (folder / "manifests" / "dh" / "stack.yml").write_text("services:\n  a:\n    image: busybox\n")
    env = clean_env(tmp_path, DOCKER_HOST="unix:///nonexistent")
    for cmd in ("sync", "plan", "run"):
        for module in (False, True):
            proc = keelson([cmd, "--repo", str(folder), "--stack", "dh-never-deployed"], env,
                           module=module, timeout_s=60)
            assert proc.returncode == 1, f"{cmd}: {describe(proc)}"
            assert "Traceback" not in proc.stderr, describe(proc)
            assert "unix:///nonexistent" in proc.stderr, describe(proc)
    # validate is offline: DOCKER_HOST does not matter
    assert keelson(["validate", str(folder / "manifests")], env, timeout_s=60).returncode == 0
