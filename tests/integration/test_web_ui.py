"""Issue 13, the web page, in a real browser (headless Debian Chromium, see browser.py) against a
real ``keelson run`` bound beyond loopback with an API token, a real git repo and the real swarm.

One stack rolls out slowly (``update_config.delay``) so the page is loaded while old and new
tasks run side by side; another asks for an image the registry does not have and fails.
"""
from __future__ import annotations

import json
import os
import pathlib
import shutil
import urllib.request

import pytest

from tests.integration.conftest import remove_stack
from tests.integration.browser import CHROMIUM, dump_dom, screenshot
from tests.integration.test_run_http_trust import non_loopback_ipv4
from tests.integration.test_run_loop import KeelsonRun, http, wait_for

pytestmark = pytest.mark.integration

TOKEN = "ui-token-for-the-test-3a9d"
NAMESPACE = "com.docker.stack.namespace"
UPDATE_DELAY_S = 40  # between replicas of the rolling update: the page is loaded meanwhile


def rolling_stack(registry: str, version: str) -> str:
    """Three replicas that update one at a time with a long pause between them, plus one more."""
    return f"""services:
  app:
    image: {registry}/library/busybox:latest
    command: ["sh", "-c", "sleep 3600"]
    environment:
      VERSION: "{version}"
    deploy:
      replicas: 3
      update_config:
        parallelism: 1
        delay: {UPDATE_DELAY_S}s
        monitor: 1s
        order: stop-first
        failure_action: rollback
  side:
    image: {registry}/library/busybox:latest
    command: ["sh", "-c", "sleep 3600"]
"""


def missing_image_stack(registry: str) -> str:
    """A stack whose image the registry does not have: the pass fails it."""
    return f"""services:
  app:
    image: {registry}/keelson-test/no-such-image:none
"""


def running_tasks(engine, stacks) -> dict:
    """Task ID -> node ID of every task of ``stacks`` that runs now (``docker service ps``
    rows with desired and current state running)."""
    out = {}
    for stack in stacks:
        for svc in engine.services.list(filters={"label": f"{NAMESPACE}={stack}"}):
            for t in engine.api.tasks(filters={"service": svc.id, "desired-state": "running"}):
                if t["Status"]["State"] == "running" and t["ServiceID"] == svc.id:
                    out[t["ID"]] = t["NodeID"]
    return out


def swarm_doc(run: KeelsonRun) -> dict:
    """The /api/swarm document (with the token)."""
    code, body = run.get("/api/swarm")
    assert code == 200, body
    return json.loads(body)


def in_flight(run: KeelsonRun, stack: str, new_sha: str):
    """The /api/swarm document once ``stack``'s app runs old and new tasks side by side."""
    doc = swarm_doc(run)
    app = [t for t in doc["tasks"] if t["service"] == f"{stack}_app" and t["look"] == "running"]
    gens = {(t["generation"], t["revision"] == new_sha) for t in app}
    return doc if ("current", True) in gens and ("previous", False) in gens else None


@pytest.mark.skipif(CHROMIUM is None, reason="chromium missing: run scripts/dev-env.sh")
def test_page_shows_nodes_tasks_rollout_and_failure(engine, registry, manifest_repo, stack_names,
                                                    tmp_path):
    """Chromium loads the page with the token from the URL fragment: one column per swarm node,
    one running box per running task of our stacks (the count `docker service ps` gives), each
    in its node's column; old and new tasks of the rolling update told apart with their
    revisions; the failing stack shown Failed with its error as text; the stack page with its
    plan, conditions and the actions slot. Without the token the page asks for one. The
    security headers are sent. A screenshot is saved."""
    roll, bad = stack_names("kuiroll"), stack_names("kuibad")
    manifest_repo.write(f"manifests/{roll}/stack.yml", rolling_stack(registry, "1"))
    manifest_repo.write(f"manifests/{bad}/stack.yml", missing_image_stack(registry))
    sha1 = manifest_repo.commit("rolling and missing-image stacks")
    token_file = tmp_path / "api_token"
    token_file.write_text(TOKEN + "\n")
    run = KeelsonRun(manifest_repo.url, [roll, bad], tmp_path,
                     listen_host=non_loopback_ipv4() or "0.0.0.0", token=TOKEN,
                     env_extra={"KEELSON_API_TOKEN_FILE": str(token_file),
                                "KEELSON_ROLLOUT_TIMEOUT": "600"})
    try:
        st = run.wait_ready()
        assert st["stacks"][roll]["sync_status"] == "Synced", st["stacks"].get(roll)
        assert st["stacks"][bad]["sync_status"] == "Failed", st["stacks"].get(bad)

        # the page and the API: headers, and the token rule for /api/swarm
        code, _ = http("GET", run.base + "/api/swarm")
        assert code == 401
        for path in ("/", "/ui/app.js", "/ui/app.css"):
            assert http("GET", run.base + path)[0] == 200
        page = urllib.request.urlopen(run.base + "/", timeout=10)
        assert "default-src 'self'" in page.headers["Content-Security-Policy"]
        assert page.headers["X-Content-Type-Options"] == "nosniff"

        # a rolling update, caught while old and new tasks run side by side
        manifest_repo.write(f"manifests/{roll}/stack.yml", rolling_stack(registry, "2"))
        sha2 = manifest_repo.commit("roll app to version 2")
        wait_for("the rolling update in flight", lambda: in_flight(run, roll, sha2), 90)

        for attempt in range(3):  # a task may finish its swap between the page and docker
            before = running_tasks(engine, [roll, bad])
            dom = dump_dom(f"{run.base}/#token={TOKEN}")
            after = running_tasks(engine, [roll, bad])
            boxes = [b for b in dom.find("task") if b.attrs.get("data-stack") in (roll, bad)]
            shown = {b.attrs["data-task-id"] for b in boxes if b.attrs["data-look"] == "running"}
            if shown == set(before) and before == after:
                break
        else:
            raise AssertionError(f"page shows {sorted(shown)}, docker runs {sorted(after)}")
        assert len(shown) == 4  # 3 app + 1 side

        # one column per node, every running box in its node's column
        node_ids = {n.attrs["ID"] for n in engine.nodes.list()}
        columns = {c.attrs["data-node-id"]: c for c in dom.find("node") if c.attrs.get("data-node-id")}
        assert set(columns) == node_ids
        for box in boxes:
            if box.attrs["data-look"] == "running":
                assert dom.inside(box, columns[before[box.attrs["data-task-id"]]])

        # old and new tasks of the rolling update, with the revision each was made from
        app = [b for b in boxes if b.attrs["data-service"] == f"{roll}_app"
               and b.attrs["data-look"] == "running"]
        new = [b for b in app if b.attrs["data-generation"] == "current"]
        old = [b for b in app if b.attrs["data-generation"] == "previous"]
        assert new and old, [(b.attrs["data-generation"], b.attrs["data-revision"]) for b in app]
        assert {b.attrs["data-revision"] for b in new} == {sha2}
        assert {b.attrs["data-revision"] for b in old} == {sha1}

        # the stacks table: the rollout Progressing, the missing image Failed with its error
        rows = {r.attrs["data-stack"]: r for r in dom.find("stack")}
        assert rows[roll].attrs["data-sync"] == "Progressing"
        # Failed on the pass that tried it, Stalled on later passes (the revision is not retried)
        assert rows[bad].attrs["data-sync"] in ("Failed", "Stalled")
        assert [b for b in boxes if b.attrs["data-stack"] == bad and b.attrs["data-look"] == "failed"]
        assert "no-such-image" in rows[bad].text
        assert "3/3" in rows[roll].text or "2/3" in rows[roll].text, rows[roll].text
        assert TOKEN not in dom.text  # the fragment is dropped from the address once read

        # the stack page: plan, conditions, the slot for action buttons
        stack_dom = dump_dom(f"{run.base}/#/stack/{roll}&token={TOKEN}")
        plan = stack_dom.by_id("stack-plan")
        assert plan is not None and f"{roll}_app" in plan.text and "update" in plan.text, \
            stack_dom.by_id("stack-body")
        body = stack_dom.by_id("stack-body").text
        assert "Reconciling" in body and "Progressing" in body
        assert stack_dom.by_id("stack-actions") is not None
        # the failed stack, Stalled by now, keeps the plan that failed and shows why
        bad_dom = dump_dom(f"{run.base}/#/stack/{bad}&token={TOKEN}")
        assert f"{bad}_app" in bad_dom.by_id("stack-plan").text and "create" in bad_dom.by_id("stack-plan").text
        assert "no-such-image" in bad_dom.by_id("stack-error").text
        assert "Stalled" in bad_dom.by_id("stack-body").text

        # no token: the page asks for one and shows no data
        locked = dump_dom(run.base + "/")
        assert "hidden" not in locked.by_id("token-form").attrs
        assert not locked.find("task", data_stack=roll) and not locked.find("stack")

        # only our stacks in the picture (the swarm is shared with other tests)
        shot = screenshot(f"{run.base}/#/?filter=kui&token={TOKEN}", tmp_path / "ui-swarm.png")
        if os.environ.get("KEELSON_SCREENSHOT_DIR"):
            target = pathlib.Path(os.environ["KEELSON_SCREENSHOT_DIR"])
            target.mkdir(parents=True, exist_ok=True)
            shutil.copy(shot, target / "ui-swarm.png")
            shutil.copy(screenshot(f"{run.base}/#/stack/{roll}&token={TOKEN}",
                                   tmp_path / "ui-stack.png"), target / "ui-stack.png")
    finally:
        remove_stack(engine, roll)  # ends the watched rollout: the pass, and then keelson, stop
        assert run.terminate() == 0, run.log()[-3000:]
        run.close()


MARKUP = '<img src=x onerror="document.title=1" id="injected">'


def crafted_status() -> dict:
    """An /api/status document whose every free text is markup."""
    sha = "c" * 40
    return {"source": {"revision": sha, "ref": "main", "web_url": "https://git.example.com/org/deploy"},
            "pass": {"count": 1},
            "stacks": {"evil": {
                "name": "evil", "sync_status": "Failed", "health_status": "Degraded",
                "last_attempted_revision": sha, "last_applied_revision": "", "reason": MARKUP,
                "last_error": MARKUP, "history": [{"revision": sha, "result": MARKUP, "at": 1.0,
                                                   "message": MARKUP}],
                "conditions": [{"type": "Ready", "status": "False", "reason": MARKUP,
                                "message": MARKUP, "last_transition": 1.0}],
                "plan": [{"kind": "service", "name": "evil_app", "action": "update",
                          "reason": MARKUP}],
                "drift": [{"kind": "service", "name": "evil_app", "paths": [MARKUP]}],
                "warnings": [MARKUP], "rollouts": [], "services": {}}}}


def crafted_swarm() -> dict:
    """An /api/swarm document with a down node, a drained node and markup in every string."""
    def node(ident, state, availability):
        return {"id": ident, "hostname": MARKUP + ident, "role": "worker", "state": state,
                "availability": availability, "engine_version": "24.0.7", "leader": False,
                "address": "10.0.0.9", "labels": {"zone": MARKUP}}
    return {"read_at": 1.0,
            "nodes": [node("n-up", "ready", "active"), node("n-down", "down", "active"),
                      node("n-drain", "ready", "drain")],
            "services": [{"id": "s1", "name": "evil_app", "stack": "evil", "mode": "replicated",
                          "replicas": 2, "running": 1, "image": MARKUP, "revision": "c" * 40,
                          "previous_revision": "", "update_state": MARKUP}],
            "tasks": [{"id": "t1", "service_id": "s1", "service": "evil_app", "stack": "evil",
                       "node_id": "n-up", "slot": 1, "state": "running", "desired_state": "running",
                       "look": "running", "generation": "current", "revision": "c" * 40,
                       "image": MARKUP, "message": MARKUP, "error": MARKUP, "updated_at": 1.0},
                      {"id": "t2", "service_id": "s1", "service": "evil_app", "stack": "evil",
                       "node_id": "", "slot": 2, "state": "rejected", "desired_state": "shutdown",
                       "look": "failed", "generation": "other", "revision": "",
                       "image": MARKUP, "message": MARKUP, "error": MARKUP, "updated_at": 1.0}]}


@pytest.mark.skipif(CHROMIUM is None, reason="chromium missing: run scripts/dev-env.sh")
def test_page_escapes_data_and_marks_down_and_drained_nodes():
    """Fed documents a swarm and a repo could produce (served by a real StatusServer, drawn by
    real Chromium): markup in host names, labels, errors, plans and history stays text; a down
    node and a drained node are marked; revisions link to <web_url>/commit/<sha>."""
    from prometheus_client import CollectorRegistry

    from controller.http.server import StatusServer
    from controller.telemetry.metrics import MetricsRecorder

    server = StatusServer("127.0.0.1:0", metrics=MetricsRecorder(registry=CollectorRegistry()),
                          status=crafted_status, ready=lambda: True, on_webhook=lambda: None,
                          swarm=crafted_swarm)
    server.start()
    try:
        base = f"http://127.0.0.1:{server.port}"
        for url in (base + "/", base + "/#/stack/evil"):
            dom = dump_dom(url)
            assert dom.find(id="injected") == [] and not dom.find(data_loaded="false")
            assert not [e for e in dom.elements if e.tag == "img"]
            assert MARKUP in dom.by_id("view").text  # shown, as text
        dom = dump_dom(base + "/")
        cols = {c.attrs["data-node-id"]: c for c in dom.find("node")}
        assert "node-down" in cols["n-down"].classes and "down" in cols["n-down"].text
        assert "node-drain" in cols["n-drain"].classes and "drain" in cols["n-drain"].text
        assert "node-down" not in cols["n-up"].classes and "node-drain" not in cols["n-up"].classes
        assert MARKUP + "n-up" in cols["n-up"].text  # the host name, as text
        assert [t.attrs["data-task-id"] for t in dom.find("task", data_look="failed")] == ["t2"]
        assert dom.inside(dom.find("task", data_task_id="t2")[0], cols[""])  # not assigned
        links = {e.attrs["href"] for e in dom.elements if e.tag == "a" and "rev" in e.classes}
        assert links == {"https://git.example.com/org/deploy/commit/" + "c" * 40}
        hidden = dump_dom(base + "/#/?filter=nothing-matches")
        assert not hidden.find("task", data_stack="evil") and not hidden.find("stack")
        assert len(hidden.find("node")) == 3  # nodes stay
        page = dump_dom(base + "/#/stack/evil")
        assert MARKUP in page.by_id("stack-plan").text and page.by_id("stack-actions") is not None
    finally:
        server.stop()


@pytest.mark.skipif(CHROMIUM is None, reason="chromium missing: run scripts/dev-env.sh")
def test_page_keeps_stacks_when_the_engine_cannot_be_read():
    """/api/swarm answering 503 (Docker unreachable): the page says so and still shows stacks."""
    from prometheus_client import CollectorRegistry

    from controller.errors import SwarmError
    from controller.http.server import StatusServer
    from controller.http.swarm_view import SwarmView
    from controller.telemetry.metrics import MetricsRecorder

    def unreachable():
        raise SwarmError("cannot connect to the Docker engine at unix:///var/run/docker.sock")

    server = StatusServer("127.0.0.1:0", metrics=MetricsRecorder(registry=CollectorRegistry()),
                          status=crafted_status, ready=lambda: True, on_webhook=lambda: None,
                          swarm=SwarmView(unreachable))
    server.start()
    try:
        dom = dump_dom(f"http://127.0.0.1:{server.port}/")
        banner = dom.by_id("error")
        assert "hidden" not in banner.attrs and "cannot connect to the Docker engine" in banner.text
        assert [r.attrs["data-stack"] for r in dom.find("stack")] == ["evil"]
        assert not dom.find("node")
    finally:
        server.stop()


def test_many_pollers_share_one_engine_read(engine):
    """/api/swarm from 16 concurrent clients, 3 requests each, against the real engine: one read
    (three Engine requests) answers them all within the cache window, with the engine's nodes."""
    import threading

    from prometheus_client import CollectorRegistry

    from controller.http.server import StatusServer
    from controller.http.swarm_view import SwarmView
    from controller.swarm.overview import read_overview
    from controller.telemetry.metrics import MetricsRecorder

    view = SwarmView(lambda: read_overview(engine.api), cache_s=600)  # one window for the test
    server = StatusServer("127.0.0.1:0", metrics=MetricsRecorder(registry=CollectorRegistry()),
                          status=dict, ready=lambda: True, on_webhook=lambda: None, swarm=view)
    server.start()
    answers = []

    def client():
        for _ in range(3):
            answers.append(http("GET", f"http://127.0.0.1:{server.port}/api/swarm"))

    try:
        threads = [threading.Thread(target=client) for _ in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    finally:
        server.stop()
    assert len(answers) == 48 and {code for code, _ in answers} == {200}
    assert view.reads == 1
    doc = json.loads(answers[0][1])
    assert {n["id"] for n in doc["nodes"]} == {n.id for n in engine.nodes.list()}
