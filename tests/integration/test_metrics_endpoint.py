"""GET /metrics of a real `keelson run` after a pass with an image build and push, a rollout
and a failed git fetch: every metric docs/metrics.md documents (and the issue asks for) is
there with the documented type, and the values tell what happened.
"""
from __future__ import annotations

import re
import shutil
from typing import Dict, List, Tuple

import pytest

from tests.integration.conftest import ROOT
from tests.integration.keelson_app import WEB_DOCKERFILE, web_stack
from tests.integration.test_run_loop import KeelsonRun, http, stack_revision

pytestmark = pytest.mark.integration

# What the issue names, as (metric, type, a label that must be on it or "").
ISSUE_METRICS = [
    ("keelson_reconcile_total", "counter", "result"),
    ("keelson_reconcile_duration_seconds", "histogram", ""),
    ("keelson_last_successful_reconcile_timestamp_seconds", "gauge", ""),
    ("keelson_source_revision_info", "gauge", "revision"),
    ("keelson_stack_info", "gauge", "sync_status"),
    ("keelson_rollouts_total", "counter", "result"),
    ("keelson_image_builds_total", "counter", "result"),
    ("keelson_image_build_duration_seconds", "histogram", ""),
    ("keelson_image_pushes_total", "counter", "result"),
    ("keelson_image_push_duration_seconds", "histogram", ""),
    ("keelson_git_fetch_errors_total", "counter", ""),
]


def documented_metrics() -> Dict[str, str]:
    """Metric name -> type from the table in docs/metrics.md (``gauge (info)`` is a gauge)."""
    out = {}
    for line in (ROOT / "docs" / "metrics.md").read_text().splitlines():
        m = re.match(r"\|\s*`(keelson_[a-z_]+)`\s*\|\s*([a-z]+)", line)
        if m:
            out[m.group(1)] = m.group(2)
    return out


def type_lines(text: str) -> Dict[str, str]:
    """Metric name -> type from the ``# TYPE`` lines of an exposition."""
    return dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, flags=re.M))


def samples(text: str, name: str) -> List[Tuple[Dict[str, str], float]]:
    """(labels, value) of every sample called exactly ``name``."""
    out = []
    for m in re.finditer(r"^" + re.escape(name) + r"(?:\{(.*?)\})? (\S+)$", text, flags=re.M):
        labels = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(1) or ""))
        out.append((labels, float(m.group(2))))
    return out


def value(text: str, name: str, **labels: str) -> float:
    """The value of the one sample ``name{labels}`` (labels matched as a subset)."""
    found = [v for lab, v in samples(text, name) if all(lab.get(k) == x for k, x in labels.items())]
    assert len(found) == 1, f"{name}{labels}: {found}"
    return found[0]


def test_metrics_after_build_rollout_and_fetch_error(engine, registry, manifest_repo, stack_names,
                                                     tmp_path):
    """Build + push + rollout + git fetch error, then every documented metric has its # TYPE and
    the values that match; keelson_source_revision_info carries the commit sha."""
    web = stack_names("metw")
    manifest_repo.write(f"manifests/{web}/stack.yml", web_stack(replicas=1))
    manifest_repo.write(f"manifests/{web}/site/Dockerfile", WEB_DOCKERFILE)
    manifest_repo.write(f"manifests/{web}/page.conf", "colour=blue\n")
    sha = manifest_repo.commit("web")
    run = KeelsonRun(manifest_repo.url, [web], tmp_path, env_extra={
        "KEELSON_REGISTRY": registry, "KEELSON_WEBHOOK_ALLOW_UNSIGNED": "true"})
    try:
        st = run.wait_ready(timeout_s=300)
        assert stack_revision(st, web) == sha, st
        text = run.metrics()

        # before the fetch error: a successful pass that built, pushed and rolled out
        assert value(text, "keelson_reconcile_total", result="success") >= 1
        assert value(text, "keelson_image_builds_total", result="success") >= 1
        assert value(text, "keelson_image_pushes_total", result="success") >= 1
        assert value(text, "keelson_image_build_duration_seconds_count") >= 1
        assert value(text, "keelson_image_push_duration_seconds_count") >= 1
        assert value(text, "keelson_rollouts_total", stack=web, result="completed") >= 1
        for result in ("rolled_back", "failed"):
            assert value(text, "keelson_rollouts_total", stack=web, result=result) == 0
        assert value(text, "keelson_rollout_duration_seconds_count", stack=web) >= 1
        assert value(text, "keelson_rollbacks_total", stack=web) == 0
        assert value(text, "keelson_last_successful_reconcile_timestamp_seconds") > 1.6e9
        assert value(text, "keelson_git_fetch_errors_total") == 0

        # the repo goes away: a webhook-started pass fails to fetch
        n = run.status()["pass"]["count"]
        moved = tmp_path / "moved.git"
        shutil.move(str(manifest_repo.bare), str(moved))
        try:
            assert http("POST", run.base + "/hooks/git", b"{}")[0] == 202
            st = run.wait_passes(n, 30, "the pass after the repo moved")
            assert st["pass"]["last_result"] == "failed" and st["source"]["error"], st
            text = run.metrics()
        finally:
            shutil.move(str(moved), str(manifest_repo.bare))
    finally:
        code = run.terminate()
        run.close()
    assert code == 0, run.log()[-3000:]

    types = type_lines(text)
    docs = documented_metrics()
    assert len(docs) >= 15, docs
    for name, kind in docs.items():
        assert types.get(name) == kind, f"{name}: documented {kind}, exposed {types.get(name)}"
    for name, kind, label in ISSUE_METRICS:
        assert types.get(name) == kind, f"{name}: want {kind}, exposed {types.get(name)}"
        if label:
            assert any(label in lab for lab, _ in samples(text, name)), f"{name} lacks {label}"
    # histograms expose their buckets, sum and count
    for name in ("keelson_reconcile_duration_seconds", "keelson_image_build_duration_seconds",
                 "keelson_image_push_duration_seconds", "keelson_git_fetch_duration_seconds",
                 "keelson_rollout_duration_seconds"):
        assert samples(text, name + "_bucket") and samples(text, name + "_count"), name

    # values after the failed fetch
    assert value(text, "keelson_git_fetch_errors_total") >= 1
    assert value(text, "keelson_git_fetches_total", result="error") == \
        value(text, "keelson_git_fetch_errors_total")
    assert value(text, "keelson_git_fetches_total", result="success") >= 1
    assert value(text, "keelson_reconcile_total", result="failed") >= 1
    for result in ("success", "failed", "partial", "noop"):
        assert samples(text, "keelson_reconcile_total") and any(
            lab.get("result") == result for lab, _ in samples(text, "keelson_reconcile_total")), result
    assert value(text, "keelson_reconcile_duration_seconds_count") >= 2
    # the source revision is the commit sha (the last good one stays after a failed fetch)
    revs = samples(text, "keelson_source_revision_info")
    assert revs == [({"revision": sha, "ref": "main"}, 1.0)], revs
    assert value(text, "keelson_source_commit_timestamp_seconds") > 1.6e9
    # one stack_info series for the stack, Synced/Healthy at the sha
    info = [lab for lab, _ in samples(text, "keelson_stack_info") if lab.get("stack") == web]
    assert info == [{"stack": web, "revision": sha, "sync_status": "Synced",
                     "health_status": "Healthy"}], info
    assert value(text, "keelson_swarm_writes_total", kind="service", action="create") >= 1
