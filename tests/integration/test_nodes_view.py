"""Issue 11 on the page and in ``keelson status``: declared vs live nodes, the last node step,
and the standby banner (issue 10's waves and rollback scope on the stack page too).

A real ``keelson run`` on the real single-node swarm with a repo whose ``cluster/nodes.yml``
declares a ``knv.*`` label on the local node; headless Chromium draws the page (browser.py) and
the real CLI prints the tables. The node is left as found: the label is pruned by Keelson when
the file drops it, and whatever Keelson added (its bookkeeping labels) is removed at the end.
Nothing drains, pauses or demotes the shared node.
"""
from __future__ import annotations

import json

import docker
import pytest
import yaml

from tests.integration.browser import CHROMIUM, dump_dom
from tests.integration.conftest import remove_stack
from tests.integration.test_cli import clean_env, keelson
from tests.integration.test_run_loop import KeelsonRun, wait_for

pytestmark = pytest.mark.integration

LABEL = "knv.zone"
GHOST = "knv-no-such-node"


def stack_yml(registry: str) -> str:
    """Two services, ``web`` depending on ``db``: two rollout waves; quick rollouts."""
    svc = f"""    image: {registry}/library/busybox:latest
    command: ["sh", "-c", "sleep 3600"]
    deploy:
      update_config: {{delay: 0s, monitor: 1s}}
    stop_grace_period: 1s
"""
    return f"services:\n  db:\n{svc}  web:\n{svc}    depends_on: [db]\n"


def nodes_yml(host: str, label: bool, ghost: bool) -> str:
    """The nodes file: the local node (role manager, as it is; the label when ``label``), and an
    unknown node when ``ghost`` (refused: the whole node plan then changes nothing)."""
    nodes = {host: {"role": "manager", **({"labels": {LABEL: "a"}} if label else {})}}
    if ghost:
        nodes[GHOST] = {"labels": {LABEL: "b"}}
    return yaml.safe_dump({"nodes": nodes})


def node_labels(engine, node_id: str) -> dict:
    return dict(engine.nodes.get(node_id).attrs["Spec"].get("Labels") or {})


def restore_labels(engine, node_id: str, before: dict) -> None:
    """Remove the labels the test (or its Keelson) added to the node; keep every other one."""
    for _ in range(5):
        node = engine.nodes.get(node_id)
        spec = dict(node.attrs["Spec"])
        labels = dict(spec.get("Labels") or {})
        added = [k for k in labels if k not in before and (k.startswith("knv.") or k.startswith("io.keelson."))]
        if not added:
            return
        spec["Labels"] = {k: v for k, v in labels.items() if k not in added}
        try:
            engine.api.update_node(node_id, node.attrs["Version"]["Index"], spec)
            return
        except docker.errors.APIError:  # a concurrent node update moved the version: retry
            continue


def cli_status(env, *args: str) -> str:
    res = keelson(["status", *args], env=env, module=True, timeout_s=120)
    assert res.returncode == 0, (res.stdout, res.stderr)
    return res.stdout


def nodes_of(run: KeelsonRun):
    return run.status().get("nodes")


@pytest.mark.skipif(CHROMIUM is None, reason="chromium missing: run scripts/dev-env.sh")
def test_page_and_cli_show_declared_vs_live_nodes(engine, registry, manifest_repo, stack_names,
                                                  tmp_path):
    """A refused node plan (an unknown node) leaves the declared label not live: the page marks
    it missing in the node's column and lists the refusal in the nodes panel; `keelson status`
    prints it with `+` and the refusal. Without the unknown node the label is applied: shown as
    matching on both. A second `keelson run` of the same instance is standby: its page shows the
    banner and its CLI the standby line. The stack page shows the waves and rollback scope.
    Dropping the label from the file prunes it from the node."""
    node_id = engine.info()["Swarm"]["NodeID"]
    host = engine.nodes.get(node_id).attrs["Description"]["Hostname"]
    before = node_labels(engine, node_id)
    assert LABEL not in before
    stack = stack_names("knv")
    manifest_repo.write(f"manifests/{stack}/stack.yml", stack_yml(registry))
    manifest_repo.write("cluster/nodes.yml", nodes_yml(host, label=True, ghost=True))
    manifest_repo.commit("a stack, a label, and an unknown node")
    run = KeelsonRun(manifest_repo.url, [stack], tmp_path)
    (tmp_path / "b").mkdir()
    standby = None
    try:
        st = run.wait_ready()
        env = clean_env(tmp_path, KEELSON_SERVER=run.base)
        sec = wait_for("the refused node step", lambda: (nodes_of(run) or {}).get("refusals")
                       and nodes_of(run), 60)
        assert sec["refusals"][0]["rule"] == "unknown-node" and sec["refusals"][0]["node"] == GHOST
        assert sec["nodes"][host]["declared"]["labels"] == {LABEL: "a"}
        assert LABEL not in sec["nodes"][host]["live"]["labels"]

        # the page: the declared label marked missing in the local node's column; the refusal
        dom = dump_dom(run.base + "/")
        col = dom.find("node", data_node_id=node_id)[0]
        assert col.attrs["data-declared"] == "true"
        item = [e for e in dom.find(data_label_key=LABEL) if dom.inside(e, col)][0]
        assert item.attrs["data-label-state"] == "missing" and "not live yet" in item.text
        assert dom.find("declared", data_declared_role="manager")
        panel = dom.by_id("nodes-panel")
        assert "hidden" not in panel.attrs
        refusals = [e for e in dom.find("refusal") if dom.inside(e, panel)]
        assert [r.attrs["data-rule"] for r in refusals] == ["unknown-node"] and GHOST in refusals[0].text
        assert "hidden" in dom.by_id("standby").attrs

        # the CLI: the stacks table, then the nodes table with the label marked '+'
        out = cli_status(env)
        assert stack in out.split("NODE")[0]
        rows = {line.split()[0]: line for line in out.splitlines() if line.startswith(host)}
        assert f"+{LABEL}=a" in rows[host] and "manager/manager" in rows[host], out
        assert f"refused [unknown-node] {GHOST}" in out and "standby" not in out
        doc = json.loads(cli_status(env, "-o", "json"))
        assert doc["nodes"]["nodes"][host]["declared"]["labels"] == {LABEL: "a"}
        assert yaml.safe_load(cli_status(env, "-o", "yaml"))["nodes"]["refusals"]

        # the stack page: waves (db before web) and the rollback scope, as /api/status has them
        s = st["stacks"][stack]
        assert s["waves"] == [[f"{stack}_db"], [f"{stack}_web"]], s["waves"]
        page = dump_dom(f"{run.base}/#/stack/{stack}")
        waves = page.find("wave")
        assert [w.text for w in waves] == [f"{stack}_db", f"{stack}_web"]
        assert page.by_id("stack-rollback-scope").attrs["data-scope"] == s["rollback_scope"]

        # a second Keelson of the same instance waits for the writer lease: standby
        standby = KeelsonRun(manifest_repo.url, [stack], tmp_path / "b")
        wait_for("the standby's lease section", lambda: standby.proc.poll() is None and
                 _standby_status(standby), 60)
        sdom = dump_dom(standby.base + "/")
        banner = sdom.by_id("standby")
        assert "hidden" not in banner.attrs and banner.text.startswith("standby: another Keelson (")
        assert "standby: another Keelson (" in cli_status(clean_env(tmp_path, KEELSON_SERVER=standby.base))
        assert standby.terminate() == 0, standby.log()[-3000:]
        standby.close()
        standby = None

        # without the unknown node the plan applies: the label is live, shown as matching
        manifest_repo.write("cluster/nodes.yml", nodes_yml(host, label=True, ghost=False))
        manifest_repo.commit("drop the unknown node")
        wait_for("the label applied", lambda: node_labels(engine, node_id).get(LABEL) == "a", 90)
        wait_for("the status shows it", lambda: (nodes_of(run)["nodes"][host]["live"]["labels"]
                                                 .get(LABEL) == "a") and not nodes_of(run)["refusals"], 60)
        dom = dump_dom(run.base + "/")
        col = dom.find("node", data_node_id=node_id)[0]
        item = [e for e in dom.find(data_label_key=LABEL) if dom.inside(e, col)][0]
        assert item.attrs["data-label-state"] == "same" and item.text == f"{LABEL}=a"
        assert not dom.find("refusal")
        out = cli_status(env)
        row = [line for line in out.splitlines() if line.startswith(host)][0]
        assert f"{LABEL}=a" in row and f"+{LABEL}" not in row, out

        # dropped from the file: Keelson prunes the label it set
        manifest_repo.write("cluster/nodes.yml", nodes_yml(host, label=False, ghost=False))
        manifest_repo.commit("drop the label")
        wait_for("the label pruned", lambda: LABEL not in node_labels(engine, node_id), 90)
    finally:
        if standby is not None:
            standby.terminate()
            standby.close()
        assert run.terminate() == 0, run.log()[-3000:]
        run.close()
        remove_stack(engine, stack)
        restore_labels(engine, node_id, before)
    after = node_labels(engine, node_id)
    assert {k: v for k, v in after.items() if k.startswith(("knv.", "io.keelson."))} == \
        {k: v for k, v in before.items() if k.startswith(("knv.", "io.keelson."))}


def _standby_status(run: KeelsonRun):
    """/api/status of ``run`` once it reports standby (None before, or while not listening)."""
    try:
        st = run.status()
    except (AssertionError, OSError):
        return None
    return st if (st.get("lease") or {}).get("standby") else None




MARKUP = '<img src=x onerror="document.title=1" id="injected">'


def crafted_status() -> dict:
    """An /api/status a repo and a swarm could produce: a node declared drain but live active,
    a declared label not live and one with another live value; standby; a stack that rolled
    back; markup in every free text."""
    return {"source": {"revision": "c" * 40, "ref": "main", "web_url": ""}, "pass": {"count": 1},
            "lease": {"standby": True, "holder": MARKUP},
            "stacks": {"s": {"name": "s", "sync_status": "Failed", "health_status": "RolledBack",
                             "waves": [["s_db"], ["s_web", MARKUP]], "rollback_scope": "stack",
                             "rolled_back": ["s_db", MARKUP], "history": [], "conditions": [],
                             "plan": [], "services": {}}},
            "nodes": {"file": "cluster/nodes.yml", "result": "Refused", "health": "Healthy",
                      "error": MARKUP, "plan": [MARKUP], "applied": [],
                      "refusals": [{"rule": "nowhere-to-go", "node": "n1", "message": MARKUP}],
                      "notes": [MARKUP], "moves": [], "short": [],
                      "nodes": {"n1": {"declared": {"labels": {"zone": "a", "disk": "ssd"},
                                                    "availability": "drain", "role": None},
                                       "live": {"id": "n-1", "state": "ready", "role": "worker",
                                                "availability": "active",
                                                "labels": {"disk": "hdd", "hand": MARKUP}}}}}}


def crafted_swarm() -> dict:
    """/api/swarm with the one node of crafted_status."""
    return {"read_at": 1.0, "services": [], "tasks": [],
            "nodes": [{"id": "n-1", "hostname": "n1", "role": "worker", "state": "ready",
                       "availability": "active", "engine_version": "24.0.7", "leader": False,
                       "address": "10.0.0.9", "labels": {"disk": "hdd", "hand": MARKUP}}]}


@pytest.mark.skipif(CHROMIUM is None, reason="chromium missing: run scripts/dev-env.sh")
def test_page_marks_each_difference_and_keeps_markup_text():
    """Fed crafted documents (a real StatusServer, real Chromium): availability declared drain
    but live active is flagged, each label carries its state (missing, differs, undeclared),
    the refusal and notes show, the standby banner names the holder, the stack page lists what
    rolled back; markup stays text everywhere."""
    from prometheus_client import CollectorRegistry

    from controller.http.server import StatusServer
    from controller.telemetry.metrics import MetricsRecorder

    server = StatusServer("127.0.0.1:0", metrics=MetricsRecorder(registry=CollectorRegistry()),
                          status=crafted_status, ready=lambda: True, on_webhook=lambda: None,
                          swarm=crafted_swarm)
    server.start()
    try:
        base = f"http://127.0.0.1:{server.port}"
        dom = dump_dom(base + "/")
        assert not dom.find(id="injected") and not [e for e in dom.elements if e.tag == "img"]
        diff = dom.find("node-diff")
        assert [(d.attrs["data-field"], d.attrs["data-declared"], d.attrs["data-live"])
                for d in diff] == [("availability", "drain", "active")]
        states = {e.attrs["data-label-key"]: e.attrs["data-label-state"] for e in dom.elements
                  if "data-label-state" in e.attrs}
        assert states == {"disk": "differs", "hand": "undeclared", "zone": "missing"}
        assert dom.find(data_label_key="disk")[0].text == "disk=ssd (live hdd)"
        assert [r.attrs["data-rule"] for r in dom.find("refusal")] == ["nowhere-to-go"]
        assert MARKUP in dom.by_id("nodes-panel").text and MARKUP in dom.by_id("nodes-error").text
        banner = dom.by_id("standby")
        assert "hidden" not in banner.attrs and banner.text == f"standby: another Keelson ({MARKUP}) writes"
        page = dump_dom(base + "/#/stack/s")
        assert not page.find(id="injected")
        assert page.by_id("stack-rolled-back").text == f"rolled back: s_db, {MARKUP}"
        assert [w.text for w in page.find("wave")] == ["s_db", f"s_web, {MARKUP}"]
        assert page.by_id("stack-rollback-scope").text == "rollback scope: stack"
    finally:
        server.stop()
