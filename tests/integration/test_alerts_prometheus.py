"""The shipped alert rules on a real Prometheus scraping a real Keelson (issue 13.4).

Debian's ``prometheus`` runs on a free loopback port with its own config and data folder,
scraping Keelson every second and evaluating ``alerts/keelson.rules.yml`` (the shipped
expressions; only ``for:`` is shortened to 1 s so the test does not wait minutes). A commit that
breaks a stack's health makes Swarm roll it back: KeelsonStackFailed and KeelsonStackRolledBack
must reach ``firing`` in Prometheus' own API.
"""
from __future__ import annotations

import json
import pathlib
import shutil
import socket
import subprocess
import time
import urllib.request

import pytest
import yaml

from tests.integration.keelson_app import make_app
from tests.integration.test_notify import STACK

pytestmark = pytest.mark.integration

RULES = pathlib.Path(__file__).resolve().parents[2] / "alerts" / "keelson.rules.yml"


def free_port() -> int:
    """A TCP port free on loopback right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return json.loads(resp.read())


@pytest.fixture
def prometheus(tmp_path):
    """A function that starts prometheus scraping ``target`` (host:port) and returns its base
    URL once its API answers; every prometheus started is stopped after the test."""
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.fail("prometheus not found: run scripts/dev-env.sh (Debian's prometheus)")
    procs = []

    def start(target: str) -> str:
        rules = yaml.safe_load(RULES.read_text())
        for group in rules["groups"]:
            for rule in group["rules"]:
                if "for" in rule:
                    rule["for"] = "1s"
        (tmp_path / "rules.yml").write_text(yaml.safe_dump(rules))
        (tmp_path / "prometheus.yml").write_text(yaml.safe_dump({
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(tmp_path / "rules.yml")],
            "scrape_configs": [{"job_name": "keelson",
                                "static_configs": [{"targets": [target]}]}]}))
        port = free_port()
        log = open(tmp_path / "prometheus.log", "w")
        procs.append(subprocess.Popen(
            [binary, f"--config.file={tmp_path / 'prometheus.yml'}",
             f"--storage.tsdb.path={tmp_path / 'data'}",
             f"--web.listen-address=127.0.0.1:{port}"], stdout=log, stderr=subprocess.STDOUT))
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if get_json(f"{base}/api/v1/rules")["status"] == "success":
                    return base
            except OSError:
                pass
            assert procs[-1].poll() is None, (tmp_path / "prometheus.log").read_text()
            time.sleep(0.3)
        raise AssertionError("prometheus did not answer: "
                             + (tmp_path / "prometheus.log").read_text()[-2000:])

    yield start
    for p in procs:
        p.terminate()
        try:
            p.wait(20)
        except subprocess.TimeoutExpired:
            p.kill()


def firing(base: str, stack: str) -> set:
    """Names of the alerts firing for ``stack``."""
    alerts = get_json(f"{base}/api/v1/alerts")["data"]["alerts"]
    return {a["labels"]["alertname"] for a in alerts
            if a["state"] == "firing" and a["labels"].get("stack") == stack}


def test_a_broken_rollout_fires_the_shipped_alerts(engine, registry, manifest_repo, stack_names,
                                                   tmp_path, prometheus):
    stack = stack_names("kno")
    manifest_repo.write(f"manifests/{stack}/stack.yml", STACK.format(registry=registry))
    manifest_repo.write(f"manifests/{stack}/app.conf", "healthy v1\n")
    manifest_repo.commit("v1")
    port = free_port()
    app = make_app(manifest_repo.url, tmp_path / "wd", registry, [stack],
                   listen=f"127.0.0.1:{port}", interval_s=1.0)
    app.start()
    try:
        base = prometheus(f"127.0.0.1:{port}")
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # Prometheus sees the stack Synced first
            q = get_json(f"{base}/api/v1/query?query=keelson_stack_info"
                         f"{{stack=%22{stack}%22,sync_status=%22Synced%22}}")
            if q["data"]["result"]:
                break
            time.sleep(0.5)
        else:
            raise AssertionError(f"never Synced: {app.store.snapshot()['stacks']}")
        assert firing(base, stack) == set()

        manifest_repo.write(f"manifests/{stack}/app.conf", "broken v2\n")
        manifest_repo.commit("v2 breaks health")
        wanted = {"KeelsonStackFailed", "KeelsonStackRolledBack"}
        deadline = time.monotonic() + 180
        seen: set = set()
        while time.monotonic() < deadline and not wanted <= seen:
            seen = firing(base, stack)
            time.sleep(0.5)
        assert wanted <= seen, (seen, app.store.snapshot()["stacks"].get(stack))
        rules = get_json(f"{base}/api/v1/rules")["data"]["groups"][0]["rules"]
        assert all(r["health"] == "ok" for r in rules), [r for r in rules if r["health"] != "ok"]
    finally:
        app.stop()
