"""Issue 10 (pure): which services a stack rollback returns, to which spec, and the outcome."""
from prometheus_client import CollectorRegistry

from controller.model import LiveService, RolloutResult
from controller.model import labels as L
from controller.model.status import HealthStatus, RollbackScope, ServiceReturn, SyncStatus
from controller.reconcile import outcome
from controller.telemetry.metrics import MetricsRecorder

ME = "inst"
BAD, GOOD = "inputs-bad", "inputs-good"


def spec(name, inputs, revision, image="img:1"):
    return {"Name": name, "TaskTemplate": {"ContainerSpec": {"Image": image}},
            "Labels": {L.MANAGED_BY: L.MANAGED_BY_VALUE, L.INSTANCE: ME,
                       L.SOURCE_HASH: inputs, L.REVISION: revision}}


def live(name, current, previous=None, sid=None):
    return LiveService(sid or f"id-{name}", name, 1, dict(current["Labels"]), current, previous)


def test_scope_default_is_stack_and_only_stack_scope_rolls_the_stack_back():
    assert outcome.scope_of(None) == RollbackScope.STACK
    bad = [RolloutResult("s_a", "completed"), RolloutResult("s_c", "rolled_back", "RolledBack")]
    assert outcome.needs_stack_rollback(bad, RollbackScope.STACK, "r1")
    assert not outcome.needs_stack_rollback(bad, RollbackScope.SERVICE, "r1")
    assert not outcome.needs_stack_rollback(bad, RollbackScope.STACK, "")  # a first deploy
    assert not outcome.needs_stack_rollback([RolloutResult("s_a", "completed")],
                                            RollbackScope.STACK, "r1")


def test_updated_created_and_swarm_rolled_back_services_are_told_apart():
    old_a, old_c = spec("s_a", GOOD, "r1"), spec("s_c", GOOD, "r1", "img:c1")
    before = {"s_a": live("s_a", old_a), "s_c": live("s_c", old_c),
              "s_u": live("s_u", spec("s_u", GOOD, "r1"))}
    now = {
        "s_a": live("s_a", spec("s_a", BAD, "r2"), previous=old_a),        # updated, completed
        "s_c": live("s_c", old_c, previous=spec("s_c", BAD, "r2")),       # Swarm rolled back
        "s_n": live("s_n", spec("s_n", BAD, "r2")),                        # created
        "s_u": before["s_u"],                                              # unchanged
    }
    results = [RolloutResult("s_a", "completed", "Succeeded"),
               RolloutResult("s_c", "rolled_back", "RolledBack", "unhealthy"),
               RolloutResult("s_n", "completed", "Succeeded")]
    got = outcome.plan_returns(BAD, ME, results, before, now)
    assert [(r.service, r.action, r.revision, r.why) for r in got] == [
        ("s_a", "update", "r1", "completed"),
        ("s_c", "kept", "r1", "rolled_back (unhealthy)"),
        ("s_n", "remove", "", "completed"),
    ]
    assert got[0].spec is old_a


def test_after_a_restart_previous_spec_is_the_earlier_spec():
    old = spec("s_a", GOOD, "r1")
    now = {"s_a": live("s_a", spec("s_a", BAD, "r2"), previous=old),
           "s_b": live("s_b", old),  # already returned before the restart
           "s_n": live("s_n", spec("s_n", BAD, "r2"))}
    got = outcome.plan_returns(BAD, ME, [], {}, now)
    assert [(r.service, r.action, r.revision) for r in got] == [
        ("s_a", "update", "r1"), ("s_n", "remove", "")]
    assert got[0].why == "written by the failing revision"


def test_other_instances_services_are_never_returned():
    theirs = spec("s_x", BAD, "r2")
    theirs["Labels"][L.INSTANCE] = "other"
    assert outcome.plan_returns(BAD, ME, [], {}, {"s_x": live("s_x", theirs)}) == []


def test_a_service_updated_without_a_known_earlier_spec_is_kept_not_removed():
    now = {"s_a": live("s_a", spec("s_a", BAD, "r2"), previous=spec("s_a", BAD, "r2"))}
    [got] = outcome.plan_returns(BAD, ME, [], {}, now)
    assert got.action == "kept" and "no earlier spec known" in got.why


def test_stack_rolled_back_outcome_names_every_service():
    results = [RolloutResult("s_a", "completed"),
               RolloutResult("s_c", "rolled_back", "RolledBack", "task unhealthy")]
    returns = [ServiceReturn("s_a", "i1", "update", {}, "r1" * 10, "completed", "completed",
                             "img@sha256:1"),
               ServiceReturn("s_c", "i3", "kept", None, "r1", "rolled_back (task unhealthy)"),
               ServiceReturn("s_n", "i4", "remove", None, "", "completed", "removed")]
    got = outcome.stack_rolled_back(results, returns, revision_short="abc")
    assert (got.sync, got.health, got.reason, got.remember_failure) == (
        SyncStatus.FAILED, HealthStatus.ROLLED_BACK, "RolledBack", True)
    assert got.message == (
        "failed at revision abc: s_c: rolled_back (task unhealthy); stack rolled back: "
        "s_a returned to r1r1r1r1r1r1 (img@sha256:1), s_c kept (rolled_back (task unhealthy)), "
        "s_n removed (created by the failing revision)")


def test_a_return_that_did_not_complete_is_a_rollback_failure():
    returns = [ServiceReturn("s_a", "i1", "update", {}, "r1", "completed", "failed", "img")]
    got = outcome.stack_rolled_back([RolloutResult("s_b", "failed", "RolloutTimeout", "slow")],
                                    returns, revision_short="abc")
    assert (got.health, got.reason) == (HealthStatus.DEGRADED, "RollbackFailed")
    got = outcome.stack_rolled_back([], [], revision_short="abc", interrupted=True)
    assert "interrupted (Keelson restarted)" in got.message and got.reason == "RolledBack"


def test_the_trigger_reason_is_kept_when_the_stack_went_back():
    returns = [ServiceReturn("s_a", "i1", "update", {}, "r1", "completed", "completed", "img")]
    got = outcome.stack_rolled_back(
        [RolloutResult("s_a", "failed", "AnalysisFailed", "error rate 12% > 5%")], returns,
        revision_short="abc")
    assert (got.health, got.reason) == (HealthStatus.ROLLED_BACK, "AnalysisFailed")


def test_stack_rollbacks_metric_by_scope():
    rec = MetricsRecorder(registry=CollectorRegistry())
    rec.stack_rollback("s", "stack")
    rec.stack_rollback("s", RollbackScope.SERVICE)
    get = rec.registry.get_sample_value
    assert get("keelson_stack_rollbacks_total", {"stack": "s", "scope": "stack"}) == 1
    assert get("keelson_stack_rollbacks_total", {"stack": "s", "scope": "service"}) == 1
    rec.forget_stack("s")
    assert get("keelson_stack_rollbacks_total", {"stack": "s", "scope": "stack"}) is None
