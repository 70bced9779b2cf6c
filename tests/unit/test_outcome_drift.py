"""Issue 8.4 (pure): drift left in place turns a Synced outcome into OutOfSync."""
from controller.model.status import HealthStatus, SyncStatus
from controller.reconcile.outcome import Outcome, drift_left


def test_synced_with_drift_left_is_out_of_sync():
    ok = Outcome(SyncStatus.SYNCED, HealthStatus.HEALTHY, "Succeeded", prune=True)
    got = drift_left(ok, "service s_web: EndpointSpec.Ports")
    assert (got.sync, got.reason, got.message) == (
        SyncStatus.OUT_OF_SYNC, "DriftDetected", "out of sync: service s_web: EndpointSpec.Ports")
    assert got.health == HealthStatus.HEALTHY and got.prune and not got.remember_failure


def test_nothing_left_or_not_synced_is_unchanged():
    ok = Outcome(SyncStatus.SYNCED, HealthStatus.HEALTHY, "Succeeded")
    failed = Outcome(SyncStatus.FAILED, HealthStatus.DEGRADED, "TaskFailed", "exit code 3")
    assert drift_left(ok, "") is ok and drift_left(failed, "service x: Mode") is failed
