"""alerts/: the shipped Prometheus rules pass `promtool check rules` and their unit tests
(`promtool test rules`), and every metric they query is one Keelson exports (issue 13.4).

promtool comes with Debian's ``prometheus`` package (scripts/dev-env.sh installs it).
"""
import pathlib
import re
import shutil
import subprocess

import pytest
import yaml
from prometheus_client import CollectorRegistry

from controller.telemetry.metrics import MetricsRecorder

ALERTS = pathlib.Path(__file__).resolve().parents[2] / "alerts"
RULES = ALERTS / "keelson.rules.yml"


def promtool() -> str:
    """Path of promtool; fails (not skips) when it is missing: CI must run these tests."""
    path = shutil.which("promtool")
    if path is None:
        pytest.fail("promtool not found: run scripts/dev-env.sh (installs Debian's prometheus)")
    return path


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([promtool(), *args], cwd=ALERTS, capture_output=True, text=True,
                          timeout=120)


def test_promtool_check_rules():
    out = run("check", "rules", RULES.name)
    assert out.returncode == 0, out.stdout + out.stderr


def test_promtool_test_rules():
    out = run("test", "rules", "keelson.rules.test.yml")
    assert out.returncode == 0, out.stdout + out.stderr


def test_rules_query_only_exported_metrics():
    rec = MetricsRecorder(registry=CollectorRegistry())
    exported = set()
    for fam in rec.registry.collect():
        exported.add(fam.name)
        exported.update(s.name for s in fam.samples)
        exported.add(fam.name + "_total")
    rules = yaml.safe_load(RULES.read_text())["groups"][0]["rules"]
    names = {m for r in rules for m in re.findall(r"\b(?:keelson|process)_[a-z_]+", r["expr"])}
    assert names and not names - exported, sorted(names - exported)


def test_every_alert_is_unit_tested():
    rules = yaml.safe_load(RULES.read_text())["groups"][0]["rules"]
    tests = yaml.safe_load((ALERTS / "keelson.rules.test.yml").read_text())["tests"]
    tested = {t["alertname"] for case in tests for t in case["alert_rule_test"] if t["exp_alerts"]}
    assert {r["alert"] for r in rules} <= tested
