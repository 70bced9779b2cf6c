"""grafana/keelson-dashboard.json: importable and file-provisionable (a datasource variable,
no ``${DS_...}`` input), filterable by instance and stack, and every metric it queries exists."""
import json
import pathlib
import re

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from controller.telemetry.metrics import MetricsRecorder

DASHBOARD = pathlib.Path(__file__).resolve().parents[2] / "grafana" / "keelson-dashboard.json"
METRIC_RE = re.compile(r"\bkeelson_[a-zA-Z0-9_:]+")
DS = "${datasource}"
PROVISIONING = DASHBOARD.parent / "provisioning"


@pytest.fixture(scope="module")
def dashboard():
    return json.loads(DASHBOARD.read_text(encoding="utf-8"))


def queries(dashboard):
    """Every PromQL text in the dashboard: panel targets and template variable queries."""
    out = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    out += [a["expr"] for a in dashboard["annotations"]["list"] if a.get("expr")]
    for var in dashboard.get("templating", {}).get("list", []):
        q = var.get("query")
        out.append(q["query"] if isinstance(q, dict) else str(q or ""))
    return out


def exercised_sample_names():
    """Sample names in the exposition after each recorder verb ran once."""
    rec = MetricsRecorder(registry=CollectorRegistry())
    rec.reconcile_finished("success", 1.0)
    rec.source_revision("a" * 40, "main", 1700000000.0)
    rec.stack_status("web", "a" * 40, "Synced", "Healthy")
    rec.rollout_finished("web", "web_app", "rolled_back", 20.0)
    rec.image_build("web", "app", "success", 30.0)
    rec.image_push("web", "app", "success", 3.0)
    rec.git_fetch("error", 0.5)
    rec.swarm_write("service", "update")
    rec.drift("web", ["service"], 1)
    body, _ = rec.exposition()
    return {s.name for fam in text_string_to_metric_families(body.decode()) for s in fam.samples}


def test_importable_shape(dashboard):
    assert dashboard["title"] == "Keelson" and dashboard["uid"]
    assert dashboard["id"] is None  # import must create, not overwrite by id
    # file provisioning does not replace ${DS_...} inputs: the data source is a variable
    assert "__inputs" not in dashboard
    assert "${DS_" not in DASHBOARD.read_text(encoding="utf-8")
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for p in dashboard["panels"]:
        assert p["datasource"] == {"type": "prometheus", "uid": DS}, p["title"]
        for t in p["targets"]:
            assert t["datasource"] == {"type": "prometheus", "uid": DS}, p["title"]
            assert t["expr"].strip(), p["title"]


def test_variables_exist_and_filter_every_query(dashboard):
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for name in ("instance", "stack"):
        assert variables[name]["type"] == "query"
        assert variables[name]["datasource"]["uid"] == DS
    used = re.findall(r"\$\{?([a-z_]+)", json.dumps(dashboard))
    builtin = {"__rate_interval", "__range", "__interval", "labels", "value"}
    assert set(used) - builtin <= set(variables), set(used) - builtin - set(variables)
    for q in queries(dashboard):  # the instance filter reaches every keelson_ selector
        for sel in re.findall(r"\bkeelson_[a-z_]+(?:\{[^}]*\})?", q):
            if sel != "keelson_build_info":
                assert 'instance=~"$instance"' in sel, q


def test_rollout_annotations(dashboard):
    notes = [a for a in dashboard["annotations"]["list"] if a.get("expr")]
    assert {"Rollouts", "Rollbacks"} <= {a["name"] for a in notes}
    for a in notes:
        assert a["datasource"]["uid"] == DS and "{{stack}}" in a["titleFormat"]


def test_per_stack_freshness_and_drift_panels(dashboard):
    exprs = " ".join(queries(dashboard))
    assert "time() - max by (stack) (keelson_stack_last_synced_timestamp_seconds" in exprs
    assert "keelson_stack_drifted_objects" in exprs


def test_provisioning_example():
    yaml = pytest.importorskip("yaml")
    providers = yaml.safe_load((PROVISIONING / "dashboards" / "keelson.yml").read_text())
    [prov] = providers["providers"]
    assert prov["type"] == "file" and prov["options"]["path"].startswith("/")
    sources = yaml.safe_load((PROVISIONING / "datasources" / "prometheus.yml").read_text())
    assert sources["datasources"][0]["type"] == "prometheus"


def test_panels_do_not_overlap(dashboard):
    cells = set()
    for p in dashboard["panels"]:
        g = p["gridPos"]
        assert 0 <= g["x"] and g["x"] + g["w"] <= 24, p["title"]
        mine = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
        assert not cells & mine, f"{p['title']} overlaps another panel"
        cells |= mine


def test_required_panels_present(dashboard):
    by_metric = " ".join(queries(dashboard))
    for needed in ("keelson_source_revision_info", "keelson_stack_info", "keelson_reconcile_total",
                   "keelson_reconcile_duration_seconds_bucket",
                   "keelson_last_successful_reconcile_timestamp_seconds", "keelson_rollouts_total",
                   "keelson_rollbacks_total", "keelson_image_builds_total",
                   "keelson_image_pushes_total", "keelson_git_fetch_errors_total"):
        assert needed in by_metric, needed
    exprs = by_metric
    assert "histogram_quantile(0.5," in exprs and "histogram_quantile(0.95," in exprs
    table = [p for p in dashboard["panels"] if p["type"] == "table"]
    assert any("keelson_stack_info" in t["expr"] for p in table for t in p["targets"])


def test_every_queried_metric_is_exported(dashboard):
    exported = exercised_sample_names()
    queried = {m for q in queries(dashboard) for m in METRIC_RE.findall(q)}
    assert queried, "the dashboard queries no keelson_ metric"
    missing = sorted(queried - exported)
    assert not missing, f"dashboard queries metrics the recorder does not export: {missing}"


def test_metrics_doc_lists_every_metric():
    doc = (DASHBOARD.parents[1] / "docs" / "metrics.md").read_text(encoding="utf-8")
    rec = MetricsRecorder(registry=CollectorRegistry())
    for fam in rec.registry.collect():
        name = fam.name + ("_total" if fam.type == "counter" else "")
        assert f"`{name}`" in doc, name
