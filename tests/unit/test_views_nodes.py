"""PURE: the nodes part of ``keelson status`` (issue 11): declared vs live per node."""
from __future__ import annotations

from controller import views

SECTION = {
    "file": "cluster/nodes.yml", "result": "Refused", "health": "Healthy", "error": None,
    "refusals": [{"rule": "quorum", "node": "m2", "message": "demoting m2 leaves no fault tolerance"}],
    "notes": ["group workers: w3 is down, skipped"], "moves": ["app.1 w2 -> w1"],
    "short": [{"service": "s_db", "running": 0, "desired": 1}],
    "nodes": {
        "w1": {"declared": {"labels": {"zone": "a", "disk": "ssd", "tier": "1"},
                            "availability": "drain", "role": None},
               "live": {"id": "x", "state": "ready", "role": "worker", "availability": "active",
                        "labels": {"zone": "a", "disk": "hdd", "hand": "set",
                                   "io.keelson.node-labels": "zone"}}},
        "m1": {"declared": None,
               "live": {"id": "y", "state": "ready", "role": "manager", "availability": "active",
                        "labels": {"k": "v"}}},
        "ghost": {"declared": {"labels": {}, "availability": None, "role": "worker"}, "live": None},
    },
}


def test_labels_cell_marks_each_kind_of_difference():
    cell = views.node_labels_cell({"zone": "a", "disk": "ssd", "tier": "1"},
                                  {"zone": "a", "disk": "hdd", "hand": "set",
                                   "io.keelson.node-labels": "zone"})
    assert cell == "~disk=ssd (live hdd), ?hand=set, +tier=1, zone=a"


def test_labels_cell_of_an_undeclared_node_is_plain_and_empty_is_dash():
    assert views.node_labels_cell(None, {"b": "2", "a": "1"}) == "a=1, b=2"
    assert views.node_labels_cell({}, {}) == "-"


def test_rows_pair_declared_and_live_and_mark_differences():
    rows = views.node_rows(SECTION)
    assert [r[0] for r in rows] == ["ghost (not in the swarm)", "m1", "w1"]
    ghost, m1, w1 = rows
    assert ghost[1:3] == ["worker/- !", "-/-"]
    assert m1 == ["m1", "-/manager", "-/active", "k=v"]
    assert w1[1:3] == ["-/worker", "drain/active !"]
    assert "+tier=1" in w1[3]


def test_nodes_text_has_table_legend_result_and_refusals():
    text = views.nodes_text(SECTION)
    lines = text.splitlines()
    assert lines[0].split() == ["NODE", "ROLE", "AVAILABILITY", "LABELS"]
    assert "nodes (cluster/nodes.yml): last result Refused, health Healthy" in text
    assert "  refused [quorum] m2: demoting m2 leaves no fault tolerance" in lines
    assert "  note: group workers: w3 is down, skipped" in lines
    assert "  moved: app.1 w2 -> w1" in lines
    assert "  short: s_db 0/1" in lines


def test_standby_line_only_when_standby():
    assert views.standby_line({"lease": {"standby": False, "holder": ""}}) == ""
    assert views.standby_line({}) == ""
    line = views.standby_line({"lease": {"standby": True, "holder": "keelson.1.abc"}})
    assert line.startswith("standby: another Keelson (keelson.1.abc)")
