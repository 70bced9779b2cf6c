"""Outcome decisions (pure): plan + rollout results -> a stack's status, without Docker."""
from controller.model import Change, RolloutResult, StackPlan, StackRecord
from controller.model.status import HealthStatus, SyncStatus
from controller.reconcile import outcome


def plan(*changes: Change) -> StackPlan:
    return StackPlan("s", list(changes))


def test_all_rollouts_completed_is_synced_and_prunes_removals():
    p = plan(Change("service", "s_a", "update"), Change("service", "s_old", "remove"))
    got = outcome.after_rollouts(p, [RolloutResult("s_a", "completed", "Succeeded")],
                                 revision_short="abc", degraded=False)
    assert (got.sync, got.health, got.reason, got.prune) == (
        SyncStatus.SYNCED, HealthStatus.HEALTHY, "Succeeded", True)
    assert not got.remember_failure


def test_nothing_to_roll_out_is_synced_without_prune():
    got = outcome.after_rollouts(plan(Change("service", "s_a", "unchanged")), [],
                                 revision_short="abc", degraded=True)
    assert (got.sync, got.health, got.prune) == (SyncStatus.SYNCED, HealthStatus.DEGRADED, False)


def test_a_rolled_back_service_fails_the_stack_and_never_prunes():
    p = plan(Change("service", "s_a", "update"), Change("service", "s_old", "remove"))
    results = [RolloutResult("s_a", "rolled_back", "RolledBack", "unhealthy container"),
               RolloutResult("s_b", "completed", "Succeeded")]
    got = outcome.after_rollouts(p, results, revision_short="abc123", degraded=False)
    assert (got.sync, got.health, got.reason) == (SyncStatus.FAILED, HealthStatus.ROLLED_BACK,
                                                  "RolledBack")
    assert got.remember_failure and not got.prune
    assert got.message == "failed at revision abc123: s_a: rolled_back (unhealthy container)"


def test_a_timeout_takes_its_own_reason():
    results = [RolloutResult("s_a", "rolled_back", "RolledBack", "x"),
               RolloutResult("s_b", "failed", "RolloutTimeout", "still Starting")]
    got = outcome.after_rollouts(plan(), results, revision_short="r", degraded=False)
    assert (got.reason, got.health) == ("RolloutTimeout", HealthStatus.DEGRADED)


def test_stalled_repeats_the_remembered_failure():
    rec = StackRecord(failed_revision="f" * 40, failed_source_hash="h", failed_reason="RolledBack",
                      failed_message="s_a: rolled_back")
    got = outcome.stalled(rec)
    assert (got.sync, got.health, got.attempted) == (SyncStatus.STALLED, HealthStatus.ROLLED_BACK,
                                                     "f" * 40)
    assert outcome.is_stalled(rec, "h") and not outcome.is_stalled(rec, "other")
    assert not outcome.is_stalled(None, "h") and not outcome.is_stalled(rec, "")


def test_retryable_or_unloaded_failures_are_not_remembered():
    assert not outcome.refused("ImagePushFailed", "x", retryable=True, loaded=True).remember_failure
    assert not outcome.refused("RenderFailed", "x", retryable=False, loaded=False).remember_failure
    assert outcome.refused("ImageBuildFailed", "x", retryable=False, loaded=True).remember_failure


def test_a_crash_is_an_internal_error_that_is_retried():
    got = outcome.crashed(RecursionError("maximum recursion depth exceeded"))
    assert (got.sync, got.reason) == (SyncStatus.FAILED, "InternalError")
    assert "RecursionError" in got.message and not got.remember_failure


def test_a_stack_reads_only_its_folder_unless_a_path_leaves_it(tmp_path):
    from controller.model import BuildSpec, StackManifest
    from controller.reconcile.stack import reads_only_its_folder

    folder = tmp_path / "s"
    folder.mkdir()

    def manifest(compose, builds=None):
        return StackManifest("s", str(folder / "stack.yml"), str(folder), compose, builds or {})

    inside = {"services": {"a": {"env_file": ["a.env", {"path": "b.env"}]}},
              "configs": {"c": {"file": "./conf/c.txt"}}}
    assert reads_only_its_folder(manifest(inside, {"a": BuildSpec(str(folder / "ctx"))}))
    assert not reads_only_its_folder(manifest({"configs": {"c": {"file": "../shared.txt"}}}))
    assert not reads_only_its_folder(manifest({"services": {"a": {"env_file": "../x.env"}}}))
    assert not reads_only_its_folder(manifest({}, {"a": BuildSpec(str(tmp_path / "other"))}))
    assert not reads_only_its_folder(manifest({}, {"a": BuildSpec(str(folder), "../Dockerfile")}))


def test_stalled_message_names_the_revision_once():
    rec = StackRecord(failed_revision="a" * 40, failed_source_hash="h", failed_reason="RolledBack",
                      failed_message="failed at revision aaaaaaaaaaaa: s_a: rolled_back (x)")
    assert outcome.stalled(rec).message == "failed at revision aaaaaaaaaaaa: s_a: rolled_back (x)"
