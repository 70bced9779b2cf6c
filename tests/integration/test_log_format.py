"""KEELSON_LOG_FORMAT=json on a real pass (issue 13.5): ``keelson sync`` builds, pushes and
deploys a stack on the real swarm; every line it writes to stderr parses as JSON, the per-stack
summary carries stack, revision, result, reason and writes as members, and the build's steps
and pushed layers are there (debug) with the image as a field. The same run's notifications
reach a loopback receiver before the command exits, and the receiver's URL is in no line.
"""
from __future__ import annotations

import json

import pytest

from tests.integration.keelson_app import WEB_DOCKERFILE, web_stack
from tests.integration.receiver import Receiver
from tests.integration.test_cli import clean_env, keelson

pytestmark = pytest.mark.integration


def test_json_logs_of_a_real_pass(engine, registry, manifest_repo, stack_names, tmp_path):
    web = stack_names("kno")
    manifest_repo.write(f"manifests/{web}/stack.yml", web_stack(replicas=1))
    manifest_repo.write(f"manifests/{web}/site/Dockerfile", WEB_DOCKERFILE)
    manifest_repo.write(f"manifests/{web}/page.conf", "colour=blue\n")
    sha = manifest_repo.commit("web: first")
    receiver = Receiver()
    urls = tmp_path / "notify-urls"
    urls.write_text(receiver.url + "\n")
    env = clean_env(tmp_path, KEELSON_LOG_FORMAT="json", KEELSON_NOTIFY_URLS_FILE=str(urls))
    try:
        proc = keelson(["sync", "--repo", manifest_repo.url, "--registry", registry,
                        "--stack", web, "--log-level", "debug"], env, module=True)
    finally:
        receiver.close()
    # `keelson sync` delivers its notifications before it exits
    assert [p["title"] for p in receiver.payloads] == [f"Keelson: {web} rollout started",
                                                       f"Keelson: {web} rollout completed"]
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert lines
    records = [json.loads(ln) for ln in lines]  # every line is one JSON object
    assert all({"ts", "level", "logger", "msg"} <= set(r) for r in records)
    [summary] = [r for r in records if r["msg"] == "stack reconciled" and r.get("stack") == web]
    assert summary["revision"] == sha[:12] and summary["result"] == "Synced"
    assert summary["reason"] == "Succeeded" and summary["writes"] > 0
    steps = [r for r in records if r["msg"] == "build step"]
    assert steps and all(r["image"].startswith(f"{registry}/") for r in steps)
    assert [r["step"] for r in steps] == list(range(1, steps[0]["steps"] + 1))
    assert any(r["msg"] == "layer pushed" for r in records)
    assert receiver.url.split("://")[1] not in proc.stderr  # the URL is a secret
