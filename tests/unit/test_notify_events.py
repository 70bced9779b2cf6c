"""notify.events: which notifications a stack's status change makes (pure)."""
from __future__ import annotations

from controller.model import Revision, RolloutResult, StackStatus
from controller.model.status import EventKind, SyncStatus
from controller.notify.events import source_failing, stack_events

SHA = "a" * 40
REV = Revision(SHA, message="web: bump to v2")


def st(sync, reason="", rollouts=(), warnings=(), error="", sha=SHA):
    """A StackStatus of stack ``web``."""
    return StackStatus("web", sync_status=sync, reason=reason, last_attempted_revision=sha,
                       rollouts=list(rollouts), warnings=list(warnings), last_error=error,
                       services={"web_web": "127.0.0.1:5000/web@sha256:" + "b" * 64})


def kinds(events):
    return [e.kind for e in events]


def test_progressing_is_rollout_started_once():
    starting = StackStatus("web", sync_status=SyncStatus.PROGRESSING,
                           last_attempted_revision=SHA)  # as the stack line shows it
    first = stack_events(st(SyncStatus.SYNCED), starting, REV, 1.0)
    assert kinds(first) == [EventKind.ROLLOUT_STARTED]
    assert first[0].services == ("web_web=127.0.0.1:5000/web@sha256:" + "b" * 64,)  # runs now
    assert stack_events(st(SyncStatus.PROGRESSING), st(SyncStatus.PROGRESSING), REV, 2.0) == []


def test_synced_after_rollouts_is_completed_with_facts():
    done = RolloutResult("web_web", "completed", "Succeeded")
    [ev] = stack_events(st(SyncStatus.PROGRESSING), st(SyncStatus.SYNCED, "Succeeded", [done]),
                        REV, 3.0)
    assert ev.kind == EventKind.ROLLOUT_COMPLETED
    assert (ev.stack, ev.revision, ev.subject) == ("web", SHA[:12], "web: bump to v2")
    body = ev.body()
    assert "revision: aaaaaaaaaaaa web: bump to v2" in body
    assert "web_web=127.0.0.1:5000/web@sha256:" + "b" * 64 in body


def test_noop_synced_says_nothing():
    assert stack_events(st(SyncStatus.SYNCED), st(SyncStatus.SYNCED, "Succeeded"), REV, 1) == []


def test_rolled_back_failed_and_stalled():
    back = RolloutResult("web_web", "rolled_back", "RolledBack", "task exited")
    assert kinds(stack_events(st(SyncStatus.PROGRESSING),
                              st(SyncStatus.FAILED, "RolledBack", [back]), REV, 1)) == [
        EventKind.ROLLED_BACK]
    assert kinds(stack_events(None, st(SyncStatus.FAILED, "RenderFailed"), REV, 1)) == [
        EventKind.FAILED]
    failed = st(SyncStatus.FAILED, "RolledBack")
    assert kinds(stack_events(failed, st(SyncStatus.STALLED, "RolledBack"), REV, 2)) == [
        EventKind.STALLED]
    stalled = st(SyncStatus.STALLED, "RolledBack")
    assert stack_events(stalled, st(SyncStatus.STALLED, "RolledBack"), REV, 3) == []


def test_recovered_and_prune_blocked_and_drift():
    stalled = st(SyncStatus.STALLED, "RolledBack", error="failed at revision x")
    assert EventKind.RECOVERED in kinds(stack_events(stalled, st(SyncStatus.SYNCED), REV, 1))
    blocked = st(SyncStatus.OUT_OF_SYNC, "PruneBlocked", error="prune blocked: ...")
    assert kinds(stack_events(st(SyncStatus.SYNCED), blocked, REV, 1)) == [
        EventKind.PRUNE_BLOCKED]
    assert stack_events(blocked, blocked, REV, 2) == []
    healed = st(SyncStatus.SYNCED, warnings=["drift healed: service web_web Env"])
    [ev] = stack_events(st(SyncStatus.SYNCED), healed, REV, 1)
    assert ev.kind == EventKind.DRIFT_HEALED and ev.message == "service web_web Env"


def test_subject_only_for_the_fetched_revision():
    [ev] = stack_events(None, st(SyncStatus.FAILED, "X", sha="c" * 40), REV, 1)
    assert ev.subject == "" and ev.revision == "c" * 12


def test_fetch_failing_says_how_long():
    ev = source_failing("git fetch: timeout", since=100.0, at=700.0)
    assert ev.kind == EventKind.FETCH_FAILING and ev.stack == ""
    assert "failing for 10.0 min" in ev.message and ev.title == "Keelson: source fetch failing"
