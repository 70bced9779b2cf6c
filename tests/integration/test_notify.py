"""Notifications (issue 13.2) through real Apprise to a real HTTP receiver on loopback.

The first tests drive the Notifier alone (filtering, repeat window, a receiver that is down);
the last runs a real Keelson against a real git repo and the swarm: a good commit tells
rollout started/completed with stack, revision, subject and digest; a commit that breaks health
tells rolled back, then stalled on the next poll, and a repeat pass tells nothing new.
"""
from __future__ import annotations

import json
import logging
import subprocess
import time

import pytest

from controller.model import Revision, RolloutResult, StackStatus
from controller.model.status import EventKind, SyncStatus
from controller.notify.notifier import Notifier
from controller.telemetry.metrics import MetricsRecorder
from tests.integration.keelson_app import make_app
from tests.integration.receiver import Receiver

pytestmark = pytest.mark.integration


@pytest.fixture
def receiver():
    """A loopback receiver, closed after the test."""
    r = Receiver()
    yield r
    r.close()


def count(rec: MetricsRecorder, event: str, result: str) -> float:
    """keelson_notifications_total{event,result}."""
    v = rec.registry.get_sample_value("keelson_notifications_total",
                                      {"event": event, "result": result})
    return v or 0.0


def failed(reason="RolledBack", sha="a" * 40):
    """A Failed status of stack ``web`` rolled back at ``sha``."""
    return StackStatus("web", sync_status=SyncStatus.FAILED, reason=reason,
                       last_attempted_revision=sha, last_error="task exited 1",
                       rollouts=[RolloutResult("web_web", "rolled_back", "RolledBack")],
                       services={"web_web": "busybox@sha256:" + "1" * 64})


def test_same_failure_is_sent_once_per_window_and_filtered(receiver):
    rec = MetricsRecorder()
    now = [1000.0]
    n = Notifier([receiver.url], metrics=rec, repeat_window_s=60, clock=lambda: now[0],
                 events=[EventKind.ROLLED_BACK, EventKind.STALLED])
    try:
        n.source_fetched(Revision("a" * 40, message="web: v2"))
        n.stack_changed(None, failed())
        n.stack_changed(failed(), failed())  # the same failure again, inside the window
        n.stack_changed(None, StackStatus("web", sync_status=SyncStatus.PROGRESSING,
                                          last_attempted_revision="a" * 40))  # filtered out
        receiver.wait_for(lambda p: len(p) >= 1)
        now[0] += 61  # past the window: a reminder
        n.stack_changed(failed(), failed())
        got = receiver.wait_for(lambda p: len(p) >= 2)
    finally:
        n.close()
    assert len(got) == 2
    assert got[0]["title"] == "Keelson: web rolled back"
    assert "revision: aaaaaaaaaaaa web: v2" in got[0]["message"]
    assert "web_web=busybox@sha256:" + "1" * 64 in got[0]["message"]
    assert count(rec, "rolled_back", "sent") == 2
    assert count(rec, "rolled_back", "suppressed") == 1
    assert count(rec, "rollout_started", "sent") == 0


def test_a_down_receiver_never_blocks_and_is_counted(caplog):
    rec = MetricsRecorder()
    secret_url = "json://127.0.0.1:1/hooks/s3cr3t-token-abcdef"  # nothing listens on port 1
    n = Notifier([secret_url], metrics=rec)
    caplog.set_level(logging.DEBUG)
    try:
        for i in range(300):  # more than the queue holds: the caller never waits
            n.stack_changed(None, failed(reason=f"R{i}"))
    finally:
        n.close(timeout_s=30)
    assert count(rec, "rolled_back", "dropped") > 0
    assert count(rec, "rolled_back", "error") >= 1
    assert count(rec, "rolled_back", "sent") == 0
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "s3cr3t-token-abcdef" not in logged


def test_fetch_failing_after_threshold_then_recovered(receiver):
    now = [0.0]
    n = Notifier([receiver.url], fetch_failing_after_s=300, clock=lambda: now[0])
    try:
        n.source_failed("git fetch: connection refused")
        now[0] = 200.0
        n.source_failed("git fetch: connection refused")  # not long enough yet
        now[0] = 301.0
        n.source_failed("git fetch: connection refused")
        n.source_fetched(Revision("b" * 40, message="fix"))
        got = receiver.wait_for(lambda p: len(p) >= 2)
    finally:
        n.close()
    assert [p["title"] for p in got] == ["Keelson: source fetch failing", "Keelson: source recovered"]
    assert "failing for 5.0 min: git fetch: connection refused" in got[0]["message"]


STACK = """services:
  app:
    image: {registry}/library/busybox:latest
    command: ["sleep", "3600"]
    healthcheck:
      test: ["CMD", "grep", "-q", "healthy", "/etc/app.conf"]
      interval: 1s
      timeout: 1s
      retries: 1
      start_period: 0s
    configs:
      - source: app
        target: /etc/app.conf
    deploy:
      replicas: 1
      update_config: {{parallelism: 1, delay: 0s, monitor: 3s, failure_action: rollback}}
      rollback_config: {{parallelism: 0, monitor: 1s}}
configs:
  app:
    file: ./app.conf
"""


def titles(payloads):
    return [p["title"] for p in payloads]


def test_real_passes_notify_rollouts_rollbacks_and_stalls(engine, registry, manifest_repo,
                                                          stack_names, tmp_path, receiver):
    stack = stack_names("kno")
    manifest_repo.write(f"manifests/{stack}/stack.yml", STACK.format(registry=registry))
    manifest_repo.write(f"manifests/{stack}/app.conf", "healthy v1\n")
    good = manifest_repo.commit("app: first version")
    urls = tmp_path / "notify-urls"
    urls.write_text(f"# receivers\n{receiver.url}\n")
    app = make_app(manifest_repo.url, tmp_path / "wd", registry, [stack],
                   notify_urls=urls.read_text())
    try:
        assert app.sync().converged, app.store.snapshot()
        got = receiver.wait_for(lambda p: f"Keelson: {stack} rollout completed" in titles(p))
        assert titles(got)[:2] == [f"Keelson: {stack} rollout started",
                                   f"Keelson: {stack} rollout completed"]
        done = got[1]["message"]
        assert f"stack: {stack}" in done
        assert f"revision: {good[:12]} app: first version" in done
        assert f"{stack}_app={registry}/library/busybox:latest@sha256:" in done

        manifest_repo.write(f"manifests/{stack}/app.conf", "broken v2\n")
        bad = manifest_repo.commit("app: break health")
        assert not app.sync().converged
        got = receiver.wait_for(lambda p: f"Keelson: {stack} rolled back" in titles(p))
        back = next(p["message"] for p in got if p["title"] == f"Keelson: {stack} rolled back")
        assert f"revision: {bad[:12]} app: break health" in back
        assert "reason: RolledBack" in back and "why: failed at revision" in back
        assert f"{stack}_app={registry}/library/busybox:latest@sha256:" in back

        app.sync()  # the next poll: Stalled
        got = receiver.wait_for(lambda p: f"Keelson: {stack} stalled" in titles(p))
        app.sync()  # and again: nothing new
        app.sync()
        app.notifier.close()  # sends what is queued, then stops
        final = titles(receiver.payloads)
        for what in ("rollout started", "rolled back", "stalled"):
            n = final.count(f"Keelson: {stack} {what}")
            assert n == (2 if what == "rollout started" else 1), final
        assert app.metrics.registry.get_sample_value(
            "keelson_notifications_total", {"event": "stalled", "result": "sent"}) == 1
    finally:
        app.stop()


def busy(registry: str) -> str:
    """An image-only stack with no replicas (control plane only: nothing to wait for)."""
    return f"""services:
  a:
    image: {registry}/library/busybox:latest
    command: ["sleep", "3600"]
    deploy:
      replicas: 0
"""


def test_real_passes_notify_drift_prune_blocked_and_a_failing_source(
        engine, registry, manifest_repo, stack_names, tmp_path, receiver):
    one, two = stack_names("kno"), stack_names("kno")
    for name in (one, two):
        manifest_repo.write(f"manifests/{name}/stack.yml", busy(registry))
    manifest_repo.commit("two stacks")
    app = make_app(manifest_repo.url, tmp_path / "wd", registry, [one, two],
                   notify_urls=receiver.url, notify_fetch_failing_after_s=0.0,
                   prune_max_stacks=0)
    try:
        assert app.sync().converged, app.store.snapshot()

        # drift: a hand-made change outside git is healed and told
        subprocess.run(["docker", "service", "update", "-d", "--env-add", "HAND=1",
                        f"{one}_a"], check=True, capture_output=True)
        app.sync()
        got = receiver.wait_for(lambda p: f"Keelson: {one} drift healed" in titles(p))
        healed = next(p["message"] for p in got if p["title"] == f"Keelson: {one} drift healed")
        assert f"{one}_a" in healed and "Env" in healed

        # the prune guard (KEELSON_PRUNE_MAX_STACKS=0) blocks removing a stack that left git
        manifest_repo.remove(f"manifests/{two}")
        manifest_repo.commit("remove the second stack")
        assert app.sync().result == "failed"
        got = receiver.wait_for(lambda p: f"Keelson: {two} prune blocked" in titles(p))
        blocked = next(p["message"] for p in got if p["title"] == f"Keelson: {two} prune blocked")
        assert "reason: PruneBlocked" in blocked and "KEELSON_PRUNE_MAX_STACKS" in blocked

        # the repo goes away: fetch_failing (threshold 0 s), then recovered when it is back
        moved = manifest_repo.bare.with_name("moved.git")
        manifest_repo.bare.rename(moved)
        try:
            assert app.sync().result == "failed"
            receiver.wait_for(lambda p: "Keelson: source fetch failing" in titles(p))
        finally:
            moved.rename(manifest_repo.bare)
        app.sync()
        receiver.wait_for(lambda p: "Keelson: source recovered" in titles(p))
        app.notifier.close()
        final = titles(receiver.payloads)
        assert final.count(f"Keelson: {two} prune blocked") == 1, final  # not every poll
        # the URL is a secret: never in the status
        assert "json://" not in json.dumps(app.store.snapshot())
    finally:
        app.stop()
