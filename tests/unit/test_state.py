"""StatusStore: conditions after Flux, bounded history, transition times that mean transitions."""
import time

from controller.model import HistoryEntry, StackStatus
from controller.reconcile.state import HISTORY_LIMIT, StatusStore


def cond(store, stack, kind):
    return [c for c in store.snapshot()["stacks"][stack]["conditions"] if c["type"] == kind][0]


def test_unchanged_condition_keeps_its_transition_time():
    s = StatusStore()
    s.put(StackStatus("a", sync_status="Synced", reason="Succeeded"))
    first = cond(s, "a", "Ready")["last_transition"]
    time.sleep(0.02)
    s.put(StackStatus("a", sync_status="Synced", reason="Succeeded"))
    assert cond(s, "a", "Ready")["last_transition"] == first
    s.put(StackStatus("a", sync_status="Failed", reason="RolledBack"))
    assert cond(s, "a", "Ready")["last_transition"] > first
    assert cond(s, "a", "Stalled")["status"] == "True"


def test_history_is_bounded_newest_first():
    s = StatusStore()
    for i in range(HISTORY_LIMIT + 3):
        s.put(StackStatus("a", sync_status="Synced"), HistoryEntry(f"r{i}", "Succeeded", i))
    hist = s.snapshot()["stacks"]["a"]["history"]
    assert len(hist) == HISTORY_LIMIT and hist[0]["revision"] == f"r{HISTORY_LIMIT + 2}"


def test_nodes_section_is_scrubbed_and_cleared():
    s = StatusStore()
    assert s.snapshot()["nodes"] is None
    s.nodes_updated({"result": "refused", "error": "token=ghp_0123456789abcdefghij0123456789abcdef",
                     "refusals": [{"rule": "quorum", "node": "w2", "message": "demoting w2"}],
                     "nodes": {"w1": {"declared": {"labels": {"a": "b"}}, "live": None}}})
    nodes = s.snapshot()["nodes"]
    assert nodes["result"] == "refused" and "ghp_0123" not in nodes["error"]
    assert nodes["refusals"][0]["rule"] == "quorum" and nodes["updated_at"] > 0
    s.nodes_updated(None)
    assert s.snapshot()["nodes"] is None
