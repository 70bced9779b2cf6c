"""Issue 7, items 1-3: what a merge to the deploy repo can make Keelson read or wait for.

Each test is a repo an attacker could push, run through the real App (or the real ``keelson run``
process) against the real git, swarm and registry. Every escape must give a clear error for its
own stack only, another stack of the same repo must still sync, and a secret planted outside the
repo (a file, controller variables) must appear in no log line, status field, label or spec.
"""
from __future__ import annotations

import json
import logging
import os
import tarfile
import time
import uuid

import docker
import pytest

from controller.app import App
from controller.cli import main as cli_main
from controller.config import Settings
from tests.integration.conftest import NAMESPACE
from tests.integration.keelson_app import tools_stack
from tests.integration.test_run_loop import KeelsonRun, wait_for

pytestmark = pytest.mark.integration

# from a stack folder of an exported tree (<tmp>/wd/trees/<sha>/manifests/<stack>) to <tmp>
UP_TO_TMP = "../../../../.."


def plant(tmp_path) -> tuple:
    """A secret file outside the repo and the workdir; returns (path, unique value)."""
    value = f"PLANTED-{uuid.uuid4().hex}"
    folder = tmp_path / "planted"
    folder.mkdir()
    path = folder / "secret.txt"
    path.write_text(value + "\n")
    return path, value


def app_for(repo: str, tmp_path, registry: str, stacks, environ=None, **kw) -> App:
    """An App on ``repo`` limited to ``stacks``, with no HTTP listener."""
    settings = Settings(repo=repo, registry=registry, workdir=str(tmp_path / "wd"), listen="",
                        stacks=tuple(stacks), rollout_timeout_s=120, pending_timeout_s=20, **kw)
    return App(settings.validated(), environ=dict(os.environ if environ is None else environ))


def everything_written(engine, stacks) -> str:
    """JSON of every service, network, config and secret of ``stacks`` as the engine holds them
    (specs, labels, env), to grep for a planted value."""
    out = []
    for stack in stacks:
        flt = {"label": f"{NAMESPACE}={stack}"}
        for kind in (engine.services, engine.networks, engine.configs, engine.secrets):
            out.extend(o.attrs for o in kind.list(filters=flt))
        try:  # the state record may carry no namespace label: ask by name too
            out.append(engine.configs.get(f"{stack}_keelson-state").attrs)
        except docker.errors.NotFound:
            pass
    return json.dumps(out)


def assert_nowhere(secret: str, *texts: str) -> None:
    """``secret`` appears in none of ``texts`` (logs, status, objects)."""
    for text in texts:
        assert secret not in text, f"planted value leaked: ...{text[max(0, text.find(secret) - 200):][:400]}"


def stack_body(extra: str = "") -> str:
    """A minimal image-only stack (never deployed when its stack fails to load)."""
    return f"services:\n  app:\n    image: busybox:latest\n{extra}"


SITE_DOCKERFILE = "FROM busybox:latest\nCMD [\"sleep\", \"3600\"]\n"


def test_repo_escapes_fail_only_their_stack(engine, registry, manifest_repo, stack_names,
                                            tmp_path, monkeypatch, caplog):
    """Symlinked .env / stack file / Dockerfile / config, absolute and ``..`` paths for
    dockerfile, env_file and file:, files over their caps, an alias bomb, deep nesting, an
    unterminated quote and an interpolation bomb: each fails its own stack with a clear error, under a Python whose
    ``tarfile`` has no ``data_filter`` (forced), and the good stack of the same repo syncs."""
    monkeypatch.delattr(tarfile, "data_filter", raising=False)
    monkeypatch.delattr(tarfile, "FilterError", raising=False)
    caplog.set_level(logging.DEBUG)
    secret, value = plant(tmp_path)
    dotdot = f"{UP_TO_TMP}/planted/secret.txt"
    link = ("link", str(secret))
    bomb = "x-bomb:\n  a: &a [x,x,x,x,x,x,x,x,x,x]\n" + "".join(
        f"  {chr(98 + i)}: &{chr(98 + i)} [" + ",".join([f"*{chr(97 + i)}"] * 10) + "]\n"
        for i in range(8))
    # prefix -> (files of the stack folder, words its error must hold)
    cases = {
        "envlink": ({".env": link, "stack.yml": stack_body()}, ["symlink-outside", ".env"]),
        "stacklink": ({"stack.yml": link}, ["symlink-outside", "stack.yml"]),
        "dflink": ({"stack.yml": "services:\n  app:\n    build: ./site\n",
                    "site/Dockerfile": link}, ["symlink-outside", "site/Dockerfile"]),
        "cfglink": ({"stack.yml": stack_body() + "configs:\n  c:\n    file: ./c.conf\n",
                     "c.conf": link}, ["symlink-outside", "c.conf"]),
        "dfabs": ({"stack.yml": "services:\n  app:\n    build:\n      context: ./site\n"
                                "      dockerfile: /proc/self/environ\n",
                   "site/Dockerfile": SITE_DOCKERFILE},
                  ["absolute-path", "services.app.build.dockerfile", "/proc/self/environ"]),
        "dfabs2": ({"stack.yml": "services:\n  app:\n    build:\n      context: ./site\n"
                                 f"      dockerfile: {secret}\n",
                    "site/Dockerfile": SITE_DOCKERFILE}, ["absolute-path", "build.dockerfile"]),
        "dfdotdot": ({"stack.yml": "services:\n  app:\n    build:\n      context: ./site\n"
                                   f"      dockerfile: ../{dotdot}\n",
                      "site/Dockerfile": SITE_DOCKERFILE}, ["outside-repo", "build.dockerfile"]),
        "envabs": ({"stack.yml": stack_body(f"    env_file: {secret}\n")},
                   ["absolute-path", "services.app.env_file"]),
        "envdotdot": ({"stack.yml": stack_body(f"    env_file: {dotdot}\n")},
                      ["outside-repo", "services.app.env_file"]),
        "cfgabs": ({"stack.yml": stack_body() + f"configs:\n  c:\n    file: {secret}\n"},
                   ["absolute-path", "configs.c.file"]),
        "secdotdot": ({"stack.yml": stack_body() + f"secrets:\n  s:\n    file: {dotdot}\n"},
                      ["outside-repo", "secrets.s.file"]),
        "bigstack": ({"stack.yml": stack_body() + "#" + "x" * (300 << 10) + "\n"},
                     ["size-cap", "stack.yml"]),
        "bigenv": ({".env": "A=" + "x" * (300 << 10) + "\n", "stack.yml": stack_body()},
                   ["size-cap", ".env"]),
        "bigcfg": ({"stack.yml": stack_body() + "configs:\n  c:\n    file: ./c.conf\n",
                    "c.conf": "x" * (600 << 10)}, ["size-cap", "c.conf"]),
        "bomb": ({"stack.yml": stack_body() + bomb}, ["alias bomb"]),
        "deep": ({"stack.yml": stack_body() + "x-deep: " + "[" * 5000 + "]" * 5000 + "\n"},
                 ["nests more than"]),
        "quote": ({".env": 'A="' + "x\n" * 100_000, "stack.yml": stack_body()},
                  ["unterminated", ".env"]),
        "interp": ({".env": "A=" + "x" * (200 << 10) + "\n",
                    "stack.yml": stack_body("    environment:\n      B: '" + "${A}" * 30 + "'\n")},
                   ["interpolation produces more than", "services.app.environment.B"]),
    }
    good = stack_names("good")
    manifest_repo.write(f"manifests/{good}/stack.yml", tools_stack(registry))
    names = {}
    for prefix, (files, _) in cases.items():
        name = names[prefix] = stack_names(prefix)
        for rel, content in files.items():
            path = manifest_repo.work / "manifests" / name / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, tuple):
                os.symlink(content[1], path)
            else:
                path.write_text(content)
    manifest_repo.commit("an attacker's merge")

    app = app_for(manifest_repo.url, tmp_path, registry, [good, *names.values()])
    try:
        start = time.monotonic()
        outcome = app.sync()
        took = time.monotonic() - start
    finally:
        app.stop()

    status = app.store.snapshot()
    assert outcome.result == "partial", outcome.error
    assert status["stacks"][good]["sync_status"] == "Synced", status["stacks"][good]
    assert engine.services.get(f"{good}_ticker")  # the good stack really runs
    for prefix, (_, words) in cases.items():
        st = status["stacks"][names[prefix]]
        assert st["sync_status"] == "Failed", (prefix, st)
        assert st["reason"] in ("PolicyDenied", "RenderFailed"), (prefix, st)
        for word in [f"stack {names[prefix]}", *words]:
            assert word in st["last_error"], (prefix, word, st["last_error"])
        assert not engine.services.list(filters={"label": f"{NAMESPACE}={names[prefix]}"})
    refused = [p for p in cases if status["stacks"][names[p]]["reason"] == "PolicyDenied"]
    assert {"envlink", "stacklink", "dflink", "cfglink", "dfabs", "envabs", "secdotdot",
            "bigstack", "bigenv", "bigcfg"} <= set(refused)
    assert took < 60, f"the pass took {took:.0f} s: a bomb or a quadratic parse is not cheap"
    assert_nowhere(value, caplog.text, json.dumps(status, default=str),
                   everything_written(engine, [good, *names.values()]))


def test_interpolation_sees_only_allowed_variables(engine, registry, manifest_repo, stack_names,
                                                   tmp_path, caplog, capsys, monkeypatch):
    """``${KEELSON_REPO}`` and ``${HOSTNAME}`` read nothing unless allowed, ``KEELSON_*`` never
    (even when a pattern matches); an allowed variable wins over ``.env``; secrets
    ``environment:`` reads the same set; ``keelson validate`` applies the same filter."""
    caplog.set_level(logging.DEBUG)
    token, host = f"PLANTED-{uuid.uuid4().hex}", f"PLANTED-{uuid.uuid4().hex}"
    environ = dict(os.environ, HOSTNAME=host, KEELSON_REPO=f"https://u:{token}@git.invalid/r.git",
                   APP_DOMAIN="example.org")
    ok, needs, secret_env = stack_names("varok"), stack_names("varreq"), stack_names("varsec")
    manifest_repo.write(f"manifests/{ok}/.env", "APP_DOMAIN=from-dotenv\nTAG=latest\n")
    manifest_repo.write(f"manifests/{ok}/stack.yml", f"""services:
  app:
    image: {registry}/library/busybox:${{TAG}}
    command: ["sh", "-c", "sleep 3600"]
    environment:
      DOMAIN: ${{APP_DOMAIN}}
      HOST: ${{HOSTNAME:-unset}}
      REPO: ${{KEELSON_REPO:-unset}}
    secrets: [domain]
secrets:
  domain:
    environment: APP_DOMAIN
""")
    manifest_repo.write(f"manifests/{needs}/stack.yml",
                        stack_body("    environment:\n      REPO: ${KEELSON_REPO:?the repo URL}\n"))
    manifest_repo.write(f"manifests/{secret_env}/stack.yml",
                        stack_body() + "secrets:\n  h:\n    environment: HOSTNAME\n")
    manifest_repo.commit("variables")

    app = app_for(manifest_repo.url, tmp_path, registry, [ok, needs, secret_env],
                  environ=environ, env_allow=("APP_*", "KEELSON_*"))
    try:
        plan = app.sync(dry_run=True)
        assert plan.runs[ok].error is None and plan.runs[needs].error is not None
        outcome = app.sync()
    finally:
        app.stop()
    status = app.store.snapshot()["stacks"]
    assert outcome.result == "partial"
    assert status[ok]["sync_status"] == "Synced", status[ok]
    env = engine.services.get(f"{ok}_app").attrs["Spec"]["TaskTemplate"]["ContainerSpec"]["Env"]
    assert sorted(env) == ["DOMAIN=example.org", "HOST=unset", "REPO=unset"]
    assert [s.name for s in engine.secrets.list(filters={"label": f"{NAMESPACE}={ok}"})]
    assert status[needs]["reason"] == "RenderFailed" and "KEELSON_REPO" in status[needs]["last_error"]
    assert status[secret_env]["reason"] == "RenderFailed"
    assert "variable HOSTNAME is not set" in status[secret_env]["last_error"]

    # keelson validate: the same filter, from the same settings
    for var, val in environ.items():
        monkeypatch.setenv(var, val)
    monkeypatch.setenv("KEELSON_ENV_ALLOW", "APP_*,KEELSON_*")
    capsys.readouterr()
    assert cli_main(["validate", str(manifest_repo.work / "manifests" / ok)]) == 0
    assert cli_main(["validate", str(manifest_repo.work / "manifests" / needs)]) == 1
    printed = capsys.readouterr().out
    assert "KEELSON_REPO" in printed

    written = everything_written(engine, [ok, needs, secret_env])
    for planted in (token, host):
        assert_nowhere(planted, caplog.text, printed, json.dumps(status, default=str), written)


def test_never_ending_build_is_cancelled_and_readyz_reports_the_stuck_pass(
        engine, registry, manifest_repo, stack_names, tmp_path):
    """``RUN sleep 3600`` under KEELSON_BUILD_TIMEOUT=8: the build is cancelled on the daemon
    too (its container goes), only that stack fails ImageBuildFailed, the other stack of the
    same commit syncs, and ``/readyz`` answers 503 while the pass is past KEELSON_PASS_DEADLINE."""
    slow, good = stack_names("slow"), stack_names("good")
    marker = f"keelson-never-ends-{uuid.uuid4().hex[:8]}"
    manifest_repo.write(f"manifests/{good}/stack.yml", tools_stack(registry))
    manifest_repo.commit("good only")
    run = KeelsonRun(manifest_repo.url, [slow, good], tmp_path,
                     env_extra={"KEELSON_REGISTRY": registry, "KEELSON_BUILD_TIMEOUT": "8",
                                "KEELSON_PASS_DEADLINE": "3"})
    try:
        first = run.wait_ready()
        assert first["stacks"][good]["sync_status"] == "Synced"
        passes = run.passes()
        manifest_repo.write(f"manifests/{slow}/stack.yml", "services:\n  app:\n    build: ./site\n")
        manifest_repo.write(f"manifests/{slow}/site/Dockerfile",
                            f"FROM busybox:latest\nRUN echo {marker} && sleep 3600\n")
        manifest_repo.write(f"manifests/{good}/stack.yml", tools_stack(registry, replicas=2))
        manifest_repo.commit("a build that never ends")
        started = time.monotonic()
        # the watcher starts the pass; past 3 s it is overdue, until the build is cut at 8 s
        wait_for("/readyz 503 during the stuck pass", lambda: run.get("/readyz")[0] == 503, 30)
        st = run.wait_passes(passes, 120, "the pass with the slow build")
        took = time.monotonic() - started
        assert run.get("/readyz")[0] == 200
        assert st["stacks"][slow]["sync_status"] == "Failed", st["stacks"][slow]
        assert st["stacks"][slow]["reason"] == "ImageBuildFailed"
        assert "KEELSON_BUILD_TIMEOUT" in st["stacks"][slow]["last_error"]
        assert st["stacks"][good]["sync_status"] == "Synced", st["stacks"][good]
        svc = engine.services.get(f"{good}_ticker").attrs["Spec"]
        assert svc["Mode"]["Replicated"]["Replicas"] == 2  # synced in that same pass
        assert took < 90, took

        def build_container_gone():
            return not [c for c in engine.containers.list(all=True)
                        if marker in " ".join(c.attrs["Config"].get("Cmd") or [])]
        wait_for("the daemon to cancel the build step", build_container_gone, 30)
        assert "pass starting" in run.log() and "closing its connection" in run.log()
    finally:
        run.close()
