"""The swarm view's pure parts: Engine JSON -> overview -> /api/swarm JSON, its cache, the repo's
web address, and the page's routes and headers over real HTTP on 127.0.0.1."""
import http.client
import json
import pathlib

import pytest
from prometheus_client import CollectorRegistry

from controller.errors import SwarmError
from controller.http import ui
from controller.http.links import repo_web_url
from controller.http.server import StatusServer
from controller.http.swarm_view import SwarmView, overview_json, task_look
from controller.model.overview import SwarmOverview, TaskInfo, TaskLook
from controller.swarm.overview import build_overview, parse_node_info, tasks_worth_showing, template_key
from controller.telemetry.metrics import MetricsRecorder

FIXTURES = pathlib.Path(__file__).parent / "fixtures" / "swarm"


def load(name):
    return json.loads((FIXTURES / name).read_text())


def test_mid_update_capture_tells_old_from_new():
    """The captured mid-update swarm (tasks.json): the task being replaced was made from the
    PreviousSpec and is shutting down; the new one from the current spec and is starting."""
    view = build_overview(load("nodes.json"), [load("service_updated.json")], load("tasks.json"))
    doc = overview_json(view)
    looks = {(t["look"], t["generation"]) for t in doc["tasks"]}
    assert looks == {("shutdown", "previous"), ("starting", "current")}
    (svc,) = doc["services"]
    assert (svc["name"], svc["stack"], svc["replicas"], svc["running"]) == ("capfx1_web", "capfx1", 1, 0)
    assert svc["update_state"] == "updating"
    (node,) = doc["nodes"]
    assert node["role"] == "manager" and node["engine_version"] and node["state"] == "ready"
    assert {t["node_id"] for t in doc["tasks"]} == {node["id"]}


def test_revision_follows_the_spec_a_task_came_from():
    """Current-spec tasks carry the service's io.keelson.revision, old ones the PreviousSpec's."""
    svc = load("service_updated.json")
    svc["Spec"].setdefault("Labels", {})["io.keelson.revision"] = "b" * 40
    svc["PreviousSpec"].setdefault("Labels", {})["io.keelson.revision"] = "a" * 40
    doc = overview_json(build_overview(load("nodes.json"), [svc], load("tasks.json")))
    assert {(t["generation"], t["revision"]) for t in doc["tasks"]} == {
        ("previous", "a" * 40), ("current", "b" * 40)}


def test_template_key_ignores_runtime_only():
    spec = {"ContainerSpec": {"Image": "x"}, "ForceUpdate": 0}
    assert template_key(dict(spec, Runtime="container")) == template_key(spec)
    assert template_key(dict(spec, ForceUpdate=1)) != template_key(spec)
    assert template_key(None) == ""


def task(state, desired="running", slot=1, updated=0.0, service="s1", ident=None):
    return TaskInfo(id=ident or f"{state}{slot}{updated}", service_id=service, node_id="n1",
                    slot=slot, state=state, desired_state=desired, updated_at=updated)


def test_history_is_dropped_but_the_newest_failure_of_a_broken_slot_kept():
    tasks = [task("running", slot=1), task("failed", "shutdown", slot=1, updated=5),
             task("preparing", slot=2), task("rejected", "shutdown", slot=2, updated=1),
             task("rejected", "shutdown", slot=2, updated=9), task("shutdown", "shutdown", slot=3),
             task("complete", "shutdown", slot=3)]
    kept = {(t.slot, t.state, t.updated_at) for t in tasks_worth_showing(tasks)}
    assert kept == {(1, "running", 0.0), (2, "preparing", 0.0), (2, "rejected", 9)}


@pytest.mark.parametrize("state,desired,look", [
    ("running", "running", TaskLook.RUNNING), ("starting", "running", TaskLook.STARTING),
    ("preparing", "running", TaskLook.STARTING), ("failed", "shutdown", TaskLook.FAILED),
    ("rejected", "running", TaskLook.FAILED), ("running", "shutdown", TaskLook.SHUTDOWN),
    ("shutdown", "shutdown", TaskLook.SHUTDOWN), ("complete", "shutdown", TaskLook.SHUTDOWN)])
def test_task_look(state, desired, look):
    assert task_look(task(state, desired)) is look


def test_node_info_down_and_drained():
    js = {"ID": "n2", "Spec": {"Role": "worker", "Availability": "drain", "Labels": {"zone": "b"}},
          "Description": {"Hostname": "w2", "Engine": {"EngineVersion": "24.0.7"}},
          "Status": {"State": "down", "Addr": "10.0.0.2"}}
    n = parse_node_info(js)
    assert (n.hostname, n.role, n.state, n.availability, n.engine_version, n.labels, n.leader) == (
        "w2", "worker", "down", "drain", "24.0.7", (("zone", "b"),), False)


def test_cache_reads_once_per_window_and_retries_after_an_error():
    now = [100.0]
    calls = []

    def read():
        calls.append(now[0])
        if len(calls) == 3:
            raise SwarmError("engine gone")
        return SwarmOverview(read_at=now[0])

    view = SwarmView(read, cache_s=1.5, clock=lambda: now[0])
    assert view()["read_at"] == 100.0 and view()["read_at"] == 100.0
    now[0] = 101.0
    assert view()["read_at"] == 100.0 and len(calls) == 1
    now[0] = 101.6
    assert view()["read_at"] == 101.6 and len(calls) == 2
    now[0] = 103.2
    with pytest.raises(SwarmError):
        view()
    assert view()["read_at"] == 103.2 and len(calls) == 4


@pytest.mark.parametrize("repo,web", [
    ("https://x-access-token:ghp_secret@github.com/org/deploy.git", "https://github.com/org/deploy"),
    ("git@gitlab.example.com:group/sub/deploy.git", "https://gitlab.example.com/group/sub/deploy"),
    ("ssh://git@gitea.local:2222/org/deploy", "https://gitea.local/org/deploy"),
    ("http://gitea.local:3000/org/deploy/", "http://gitea.local:3000/org/deploy"),
    ("https://github.com/org/deploy.git?token=x#frag", "https://github.com/org/deploy"),
    ("/srv/deploy.git", ""), ("file:///srv/deploy.git", ""), ("https://github.com/", "")])
def test_repo_web_url_never_keeps_credentials(repo, web):
    assert repo_web_url(repo) == web


@pytest.fixture
def server():
    srv = StatusServer("127.0.0.1:0", metrics=MetricsRecorder(registry=CollectorRegistry()),
                       status=lambda: {"stacks": {}}, ready=lambda: True, on_webhook=lambda: None,
                       swarm=SwarmView(lambda: SwarmOverview(read_at=1.0)))
    srv.start()
    yield srv
    srv.stop()


def get(srv, path):
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=5)
    conn.request("GET", path)
    resp = conn.getresponse()
    body = resp.read()
    conn.close()
    return resp, body


def test_page_files_and_headers(server):
    for path in ui.PAGES:
        resp, body = get(server, path)
        assert resp.status == 200 and body == ui.page(path)[0]
        assert resp.getheader("Content-Security-Policy").startswith("default-src 'self'")
        assert resp.getheader("X-Content-Type-Options") == "nosniff"
        assert resp.getheader("Content-Type") == ui.PAGES[path][1]
    resp, body = get(server, "/api/swarm")
    assert resp.status == 200 and json.loads(body)["read_at"] == 1.0
    assert resp.getheader("X-Content-Type-Options") == "nosniff"


def test_page_never_writes_markup_from_data():
    """The page builds its DOM with textContent and attributes only (no innerHTML, no
    document.write, no eval), and has no inline script or style the CSP would refuse."""
    js = ui.page("/ui/app.js")[0].decode()
    for banned in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(",
                   "new Function"):
        assert banned not in js, banned
    html = ui.page("/")[0].decode()
    assert "<script>" not in html and "style=" not in html and "<style" not in html


def test_swarm_route_answers_503_without_a_view_or_engine():
    def broken():
        raise SwarmError("cannot connect to the Docker engine")

    for swarm in (None, SwarmView(broken)):
        srv = StatusServer("127.0.0.1:0", metrics=MetricsRecorder(registry=CollectorRegistry()),
                           status=dict, ready=lambda: True, on_webhook=lambda: None, swarm=swarm)
        srv.start()
        try:
            resp, body = get(srv, "/api/swarm")
            assert resp.status == 503 and "error" in json.loads(body)
        finally:
            srv.stop()
