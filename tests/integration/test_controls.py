"""Per-stack controls (issue 13.3) on the real swarm: a running Keelson (an App with its HTTP
server, as `keelson run` builds it) driven by the real `keelson` CLI as a subprocess.

Every App polls every 300 s: a change seen within seconds came from a commit (file events on the
bare repo), a control, or ``sync --now``, never from a poll.
"""
from __future__ import annotations

import json
import pathlib
import subprocess

import pytest

from tests.integration.keelson_app import make_app
from tests.integration.test_cli import clean_env, keelson
from tests.integration.test_run_loop import free_port, http, wait_for

pytestmark = pytest.mark.integration

TOKEN = "kct-control-token-0123456789"


def app_stack(registry: str, level: str, replicas: int = 1) -> str:
    """One image-only service whose environment the tests change; quick rollouts."""
    return f"""services:
  app:
    image: {registry}/library/busybox:latest
    command: ["sh", "-c", "sleep 3600"]
    environment:
      LEVEL: "{level}"
    deploy:
      replicas: {replicas}
      update_config:
        delay: 0s
        monitor: 1s
        failure_action: rollback
"""


class Controller:
    """A Keelson App listening on 127.0.0.1 with an API token, and the CLI pointed at it."""

    def __init__(self, repo, tmp_path: pathlib.Path, registry: str, stacks, port: int = 0):
        self.args = (repo, tmp_path / "wd", registry, stacks)
        self.port = port or free_port()
        self.server = f"http://127.0.0.1:{self.port}"
        token_file = tmp_path / "api_token"
        token_file.write_text(TOKEN + "\n")
        self.env = clean_env(tmp_path, KEELSON_SERVER=self.server,
                             KEELSON_API_TOKEN_FILE=str(token_file))
        self.app = None

    def start(self) -> "Controller":
        repo, wd, registry, stacks = self.args
        self.app = make_app(repo, wd, registry, stacks, listen=f"127.0.0.1:{self.port}",
                            interval_s=300, api_token=TOKEN, min_pass_gap_s=0.5)
        self.app.start()
        wait_for("first pass", self.app.ready, 180)
        return self

    def stop(self) -> None:
        if self.app is not None:
            self.app.stop()
            self.app = None

    def cli(self, *args: str, ok: bool = True, env=None) -> subprocess.CompletedProcess:
        """Run ``keelson ARGS``; with ``ok``, assert exit 0."""
        res = keelson(list(args), env=env or self.env, module=True, timeout_s=300)
        if ok:
            assert res.returncode == 0, (args, res.stdout, res.stderr)
        return res

    def status(self, stack: str) -> dict:
        """The stack's status, through ``keelson status STACK -o json``."""
        return json.loads(self.cli("status", stack, "-o", "json").stdout)

    def settled(self, sha: str) -> None:
        """Wait until a pass at ``sha`` finished (after a commit)."""
        def done():
            snap = self.app.store.snapshot()
            return snap["source"]["revision"] == sha and not snap["pass"]["running"]
        wait_for(f"a pass at {sha[:12]}", done, 120)


def env_of(engine, service: str) -> list:
    """The container environment a service's spec asks for."""
    return engine.services.get(service).attrs["Spec"]["TaskTemplate"]["ContainerSpec"].get("Env")


def replicas(engine, service: str) -> int:
    return engine.services.get(service).attrs["Spec"]["Mode"]["Replicated"]["Replicas"]


def record_labels(engine, stack: str) -> dict:
    found = [c for c in engine.configs.list(filters={"name": f"{stack}_keelson-state"})
             if c.name == f"{stack}_keelson-state"]
    return found[0].attrs["Spec"].get("Labels") or {}


def test_status_history_suspend_diff_restart_resume_rollback(engine, registry, manifest_repo,
                                                             stack_names, tmp_path):
    """status table and -o json; history; the token is required; suspend holds a commit back
    (also across a restart) while diff shows the held change field by field; resume deploys
    it; rollback --to applies an earlier revision and holds it until a commit changes the
    stack."""
    a, b = stack_names("kcta"), stack_names("kctb")
    manifest_repo.write(f"manifests/{a}/stack.yml", app_stack(registry, "v1"))
    manifest_repo.write(f"manifests/{b}/stack.yml", app_stack(registry, "b1"))
    sha1 = manifest_repo.commit("v1")
    ctl = Controller(manifest_repo.url, tmp_path, registry, [a, b]).start()
    try:
        # status: a table like `docker stack ls`, and JSON
        out = ctl.cli("status").stdout
        assert out.splitlines()[0].split()[:4] == ["NAME", "SYNC", "HEALTH", "REVISION"], out
        row = next(line for line in out.splitlines() if line.startswith(a))
        assert row.split()[1:5] == ["Synced", "Healthy", sha1[:12], "1"], out
        st = ctl.status(a)
        assert (st["sync_status"], st["last_applied_revision"]) == ("Synced", sha1)
        assert ctl.cli("status", "nosuch", ok=False).returncode == 1
        hist = ctl.cli("history", a).stdout
        assert sha1[:12] in hist and "Succeeded" in hist, hist

        # the token: configured, so required even on this loopback bind
        no_token = dict(ctl.env, KEELSON_API_TOKEN_FILE="")
        res = ctl.cli("suspend", a, ok=False, env=no_token)
        assert res.returncode == 1 and "401" in res.stderr, res.stderr
        assert http("POST", f"{ctl.server}/api/stacks/{a}/suspend")[0] == 401
        auth = {"Authorization": f"Bearer {TOKEN}", "X-Keelson-Action": "1"}
        assert http("POST", f"{ctl.server}/api/stacks/nosuch/suspend", headers=auth)[0] == 404
        assert http("GET", f"{ctl.server}/api/stacks/{a}/suspend", headers=auth)[0] == 405
        assert http("POST", f"{ctl.server}/api/stacks/{a}/rollback", b"x" * 5000,
                    headers=auth)[0] == 413

        # suspend: a commit is not deployed; diff names the held field
        out = ctl.cli("suspend", a).stdout
        assert "Suspended" in out, out
        assert record_labels(engine, a)["io.keelson.suspended"] == "suspend"
        manifest_repo.write(f"manifests/{a}/stack.yml", app_stack(registry, "v2"))
        sha2 = manifest_repo.commit("v2")
        ctl.settled(sha2)
        assert env_of(engine, f"{a}_app") == ["LEVEL=v1"]
        assert ctl.status(a)["sync_status"] == "Suspended"
        diff = ctl.cli("diff", a).stdout
        assert "update service" in diff and \
            'TaskTemplate.ContainerSpec.Env[0]: "LEVEL=v1" -> "LEVEL=v2"' in diff, diff
        doc = json.loads(ctl.cli("diff", a, "-o", "json").stdout)
        assert doc["suspended"] == "suspend" and doc["revision"] == sha2
        fields = doc["changes"][0]["fields"]
        assert fields == [{"path": "TaskTemplate.ContainerSpec.Env[0]", "old": "LEVEL=v1",
                           "new": "LEVEL=v2"}], doc
        assert "in sync" in ctl.cli("diff", b).stdout

        # a restart (a new App) finds the stack still suspended in its state record
        ctl.stop()
        ctl.start()
        assert ctl.status(a)["sync_status"] == "Suspended"
        assert env_of(engine, f"{a}_app") == ["LEVEL=v1"]

        # resume: the held commit deploys
        out = ctl.cli("resume", a).stdout
        assert "Synced" in out, out
        assert env_of(engine, f"{a}_app") == ["LEVEL=v2"]
        assert ctl.status(a)["last_applied_revision"] == sha2
        assert "io.keelson.suspended" not in record_labels(engine, a)

        # rollback --to sha1: v1 runs again, held (Suspended) through a commit to another stack
        out = ctl.cli("rollback", a, "--to", sha1[:10]).stdout
        assert "Suspended" in out and "rolled back to" in out, out
        assert env_of(engine, f"{a}_app") == ["LEVEL=v1"]
        st = ctl.status(a)
        assert (st["sync_status"], st["last_applied_revision"]) == ("Suspended", sha1)
        manifest_repo.write(f"manifests/{b}/stack.yml", app_stack(registry, "b2"))
        sha3 = manifest_repo.commit("b only")
        ctl.settled(sha3)
        assert env_of(engine, f"{b}_app") == ["LEVEL=b2"]
        assert env_of(engine, f"{a}_app") == ["LEVEL=v1"]
        assert ctl.status(a)["sync_status"] == "Suspended"

        # the next commit that changes the stack deploys normally and ends the hold
        manifest_repo.write(f"manifests/{a}/stack.yml", app_stack(registry, "v3"))
        sha4 = manifest_repo.commit("v3")
        ctl.settled(sha4)
        wait_for("v3 deployed", lambda: ctl.status(a)["sync_status"] == "Synced", 60)
        assert env_of(engine, f"{a}_app") == ["LEVEL=v3"]
        assert "io.keelson.suspended" not in record_labels(engine, a)

        # rollback without --to: the revision applied before the current one (sha1 here)
        out = ctl.cli("rollback", a).stdout
        assert env_of(engine, f"{a}_app") == ["LEVEL=v1"]
        assert ctl.status(a)["last_applied_revision"] == sha1, out

        # an unknown revision is refused with a clear error
        res = ctl.cli("rollback", a, "--to", "0123456789abcdef", ok=False)
        assert res.returncode == 1 and "not found in branch" in res.stderr, res.stderr
    finally:
        ctl.stop()


def test_sync_now_runs_one_stack(engine, registry, manifest_repo, stack_names, tmp_path):
    """`keelson sync STACK --now` runs a pass for that stack alone while the poll is 300 s
    away: its hand-made drift is healed, the other stack's is not (yet). A suspended stack
    that leaves the repo is not pruned until it is resumed."""
    a, b = stack_names("kcts"), stack_names("kctt")
    manifest_repo.write(f"manifests/{a}/stack.yml", app_stack(registry, "a"))
    manifest_repo.write(f"manifests/{b}/stack.yml", app_stack(registry, "b"))
    manifest_repo.commit("two stacks")
    ctl = Controller(manifest_repo.url, tmp_path, registry, [a, b]).start()
    try:
        for stack in (a, b):
            engine.services.get(f"{stack}_app").scale(2)
        out = ctl.cli("sync", a, "--now").stdout
        assert "Synced" in out, out
        assert replicas(engine, f"{a}_app") == 1
        assert replicas(engine, f"{b}_app") == 2
        res = ctl.cli("sync", "--now", ok=False)
        assert res.returncode == 2 and "needs a STACK" in res.stderr

        # a suspended stack that leaves the repo is kept; once resumed, it is pruned
        ctl.cli("suspend", b)
        manifest_repo.remove(f"manifests/{b}")
        sha = manifest_repo.commit(f"remove {b}")
        ctl.settled(sha)
        assert replicas(engine, f"{b}_app") == 2  # neither pruned nor healed
        out = ctl.cli("resume", b).stdout
        assert "removed" in out, out
        assert not engine.services.list(filters={"name": f"{b}_app"})
    finally:
        ctl.stop()


def test_rollback_refused_on_a_folder_source(registry, stack_names, tmp_path):
    """A plain folder keeps no earlier revisions: rollback is refused with a clear error."""
    a = stack_names("kctf")
    folder = tmp_path / "folder"
    (folder / "manifests" / a).mkdir(parents=True)
    (folder / "manifests" / a / "stack.yml").write_text(app_stack(registry, "f1"))
    ctl = Controller(str(folder), tmp_path, registry, [a]).start()
    try:
        res = ctl.cli("rollback", a, "--to", "abcdef1", ok=False)
        assert res.returncode == 1 and "plain folder" in res.stderr, res.stderr
        assert ctl.status(a)["sync_status"] == "Synced"
    finally:
        ctl.stop()
