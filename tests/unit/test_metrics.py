"""MetricsRecorder: every verb, the series it leaves, and the one-series-per-stack rule."""
import io
import logging

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from controller.errors import ConfigError
from controller.telemetry.logs import LogfmtFormatter, setup_logging
from controller.telemetry.metrics import MetricsRecorder


@pytest.fixture
def rec():
    return MetricsRecorder(registry=CollectorRegistry())


def value(rec, name, **labels):
    return rec.registry.get_sample_value(name, labels)


def series(rec, name):
    """Label dicts of every sample called ``name`` in the exposition."""
    body, _ = rec.exposition()
    return [s.labels for fam in text_string_to_metric_families(body.decode())
            for s in fam.samples if s.name == name]


def test_fresh_registry_per_instance():
    a, b = MetricsRecorder(), MetricsRecorder()
    a.reconcile_finished("success", 1.0)
    assert value(a, "keelson_reconcile_total", result="success") == 1
    assert value(b, "keelson_reconcile_total", result="success") == 0


def test_initial_series_exist_at_zero(rec):
    for result in ("success", "failed", "partial", "noop"):
        assert value(rec, "keelson_reconcile_total", result=result) == 0
    for name in ("keelson_git_fetches_total", "keelson_image_builds_total",
                 "keelson_image_pushes_total"):
        for result in ("success", "error"):
            assert value(rec, name, result=result) == 0
    assert value(rec, "keelson_git_fetch_errors_total") == 0
    assert value(rec, "keelson_last_successful_reconcile_timestamp_seconds") == 0


def test_reconcile_finished(rec):
    rec.reconcile_finished("failed", 0.2)
    assert value(rec, "keelson_last_successful_reconcile_timestamp_seconds") == 0
    rec.reconcile_finished("noop", 0.03)
    rec.reconcile_finished("success", 700)
    assert value(rec, "keelson_reconcile_total", result="failed") == 1
    assert value(rec, "keelson_reconcile_total", result="noop") == 1
    assert value(rec, "keelson_reconcile_duration_seconds_count") == 3
    assert value(rec, "keelson_reconcile_duration_seconds_bucket", le="0.05") == 1
    assert value(rec, "keelson_reconcile_duration_seconds_bucket", le="600.0") == 2
    assert value(rec, "keelson_last_successful_reconcile_timestamp_seconds") > 1.6e9


def test_results_are_validated(rec):
    with pytest.raises(ValueError):
        rec.reconcile_finished("error", 1)
    with pytest.raises(ValueError):
        rec.rollout_finished("web", "web_app", "success", 1)
    with pytest.raises(ValueError):
        rec.git_fetch("failed", 1)
    with pytest.raises(ValueError):
        rec.image_build("web", "app", "ok", 1)


def test_negative_duration_is_clamped(rec):
    rec.git_fetch("success", -3)
    assert value(rec, "keelson_git_fetch_duration_seconds_sum") == 0


def test_source_revision_keeps_one_series(rec):
    rec.source_revision("a" * 40, "main", 1700000000.0)
    rec.source_revision("b" * 40, "main", 1700000100.0)
    assert series(rec, "keelson_source_revision_info") == [{"revision": "b" * 40, "ref": "main"}]
    assert value(rec, "keelson_source_commit_timestamp_seconds") == 1700000100.0
    rec.source_revision("dir-123", "folder", None)
    assert value(rec, "keelson_source_commit_timestamp_seconds") == 0
    assert len(series(rec, "keelson_source_revision_info")) == 1


def test_stack_info_one_series_per_stack(rec):
    rec.stack_status("web", "r1", "Progressing", "Unknown")
    rec.stack_status("web", "r1", "Synced", "Healthy")
    rec.stack_status("tools", "r1", "Failed", "Degraded")
    rec.stack_status("web", "r1", "Synced", "Healthy")  # same labels again: still one series
    got = sorted(series(rec, "keelson_stack_info"), key=lambda l: l["stack"])
    assert got == [
        {"stack": "tools", "revision": "r1", "sync_status": "Failed", "health_status": "Degraded"},
        {"stack": "web", "revision": "r1", "sync_status": "Synced", "health_status": "Healthy"},
    ]
    # Per-stack counters exist at 0 as soon as the stack is known.
    assert value(rec, "keelson_rollbacks_total", stack="web") == 0
    assert value(rec, "keelson_rollouts_total", stack="web", result="completed") == 0


def test_forget_stack_removes_every_series_of_that_stack(rec):
    rec.stack_status("web", "r1", "Synced", "Healthy")
    rec.stack_status("tools", "r1", "Synced", "Healthy")
    rec.rollout_finished("web", "web_app", "rolled_back", 30)
    rec.rollout_finished("tools", "tools_x", "completed", 3)
    rec.forget_stack("web")
    body = rec.exposition()[0].decode()
    assert 'stack="web"' not in body
    assert 'stack="tools"' in body
    rec.forget_stack("web")  # twice is fine
    rec.forget_stack("never-seen")
    # A stack that comes back starts from fresh series.
    rec.stack_status("web", "r2", "Synced", "Healthy")
    assert value(rec, "keelson_rollbacks_total", stack="web") == 0


def test_rollout_finished(rec):
    rec.rollout_finished("web", "web_app", "completed", 12)
    rec.rollout_finished("web", "web_app", "rolled_back", 40)
    rec.rollout_finished("web", "web_app", "failed", 300)
    assert value(rec, "keelson_rollouts_total", stack="web", result="completed") == 1
    assert value(rec, "keelson_rollouts_total", stack="web", result="rolled_back") == 1
    assert value(rec, "keelson_rollouts_total", stack="web", result="failed") == 1
    assert value(rec, "keelson_rollbacks_total", stack="web") == 1
    assert value(rec, "keelson_rollout_duration_seconds_count", stack="web") == 3
    assert value(rec, "keelson_rollout_duration_seconds_sum", stack="web") == 352


def test_images_and_fetches(rec):
    rec.image_build("web", "app", "success", 42)
    rec.image_build("web", "app", "error", 5)
    rec.image_push("web", "app", "success", 3)
    rec.git_fetch("success", 0.4)
    rec.git_fetch("error", 10)
    assert value(rec, "keelson_image_builds_total", result="success") == 1
    assert value(rec, "keelson_image_builds_total", result="error") == 1
    assert value(rec, "keelson_image_build_duration_seconds_sum") == 47
    assert value(rec, "keelson_image_pushes_total", result="success") == 1
    assert value(rec, "keelson_image_push_duration_seconds_count") == 1
    assert value(rec, "keelson_git_fetches_total", result="error") == 1
    assert value(rec, "keelson_git_fetch_errors_total") == 1
    assert value(rec, "keelson_git_fetch_duration_seconds_count") == 2


def test_swarm_writes(rec):
    rec.swarm_write("service", "update")
    rec.swarm_write("service", "update")
    rec.swarm_write("network", "create")
    assert value(rec, "keelson_swarm_writes_total", kind="service", action="update") == 2
    assert value(rec, "keelson_swarm_writes_total", kind="network", action="create") == 1


def test_exposition_is_parseable_text(rec):
    rec.stack_status("web", "r1", "Synced", "Healthy")
    body, content_type = rec.exposition()
    assert content_type.startswith("text/plain")
    names = {fam.name for fam in text_string_to_metric_families(body.decode())}
    assert {"keelson_reconcile", "keelson_stack_info", "keelson_rollouts"} <= names
    # Keelson's own series plus the standard collectors registered on its own registry
    # (issue 13.4): nothing else (nothing from the global default registry).
    assert all(n.startswith(("keelson_", "process_", "python_")) for n in names)
    assert "python_info" in names and "python_gc_objects_collected" in names
    assert "process_cpu_seconds" in names  # Linux: /proc is read


def test_build_info_carries_version_and_python(rec):
    import platform

    from controller import __version__
    assert value(rec, "keelson_build_info", version=__version__,
                 python=platform.python_version()) == 1


def test_notifications_counter(rec):
    rec.notification("failed", "sent")
    rec.notification("failed", "suppressed")
    assert value(rec, "keelson_notifications_total", event="failed", result="sent") == 1
    assert value(rec, "keelson_notifications_total", event="failed", result="suppressed") == 1
    with pytest.raises(ValueError):
        rec.notification("failed", "maybe")


def test_logfmt_line():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(LogfmtFormatter())
    logger = logging.getLogger("keelson.test.logfmt")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        logger.info("stack reconciled", extra={"stack": "web", "revision": "3f2c1a9b7e10",
                                               "result": "success", "duration_s": 12.48})
        logger.warning('odd "value"', extra={"path": "a b"})
    finally:
        logger.removeHandler(handler)
    first, second = stream.getvalue().splitlines()
    assert "level=info" in first and 'msg="stack reconciled"' in first
    assert "stack=web revision=3f2c1a9b7e10 result=success" in first
    assert first.endswith("duration_s=12.48")
    assert 'msg="odd \\"value\\""' in second and 'path="a b"' in second


def test_setup_logging_is_idempotent():
    root = logging.getLogger()
    before = list(root.handlers)
    level = root.level
    try:
        setup_logging("debug")
        setup_logging("INFO")
        ours = [h for h in root.handlers if h.get_name() == "keelson-logfmt"]
        assert len(ours) == 1 and root.level == logging.INFO
        with pytest.raises(ConfigError):
            setup_logging("loud")
    finally:
        for h in list(root.handlers):
            if h not in before:
                root.removeHandler(h)
        root.setLevel(level)


def test_stack_last_synced_and_completed_passes(rec):
    """issue 8: per-stack last-synced time; a partial pass still counts as completed."""
    rec.stack_status("web", "r1", "Progressing", "Unknown")
    assert value(rec, "keelson_stack_last_synced_timestamp_seconds", stack="web") is None
    rec.stack_status("web", "r1", "Synced", "Healthy")
    assert value(rec, "keelson_stack_last_synced_timestamp_seconds", stack="web") > 1.6e9
    rec.stack_status("tools", "r1", "Stalled", "RolledBack")
    assert value(rec, "keelson_stack_last_synced_timestamp_seconds", stack="tools") is None
    rec.reconcile_finished("partial", 1.0)
    assert value(rec, "keelson_last_successful_reconcile_timestamp_seconds") > 1.6e9
    rec.forget_stack("web")
    assert value(rec, "keelson_stack_last_synced_timestamp_seconds", stack="web") is None
