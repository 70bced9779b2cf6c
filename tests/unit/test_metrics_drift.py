"""Issue 8.4: the drift metrics (a fresh registry per test)."""
import pytest

from controller.telemetry.metrics import MetricsRecorder


def value(m, name, **labels):
    for fam in m.registry.collect():
        for s in fam.samples:
            if s.name == name and s.labels == labels:
                return s.value
    return None


def test_drift_counts_per_kind_and_sets_what_is_left():
    m = MetricsRecorder()
    m.drift("web", ["service", "service", "unmanaged"], 1)
    assert value(m, "keelson_drift_detected_total", stack="web", kind="service") == 2
    assert value(m, "keelson_drift_detected_total", stack="web", kind="unmanaged") == 1
    assert value(m, "keelson_stack_drifted_objects", stack="web") == 1
    m.drift("web", [], 0)
    assert value(m, "keelson_stack_drifted_objects", stack="web") == 0


def test_drift_series_go_with_their_stack_and_kinds_are_bounded():
    m = MetricsRecorder()
    m.drift("web", ["network"], 0)
    m.forget_stack("web")
    assert value(m, "keelson_drift_detected_total", stack="web", kind="network") is None
    assert value(m, "keelson_stack_drifted_objects", stack="web") is None
    with pytest.raises(ValueError):
        m.drift("web", ["pod"], 0)
