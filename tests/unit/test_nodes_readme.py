"""README's "Nodes in git" examples parse as nodes files and mean what their comment says."""
from __future__ import annotations

import pathlib
import re

from controller.nodes.spec import parse_nodes

README = (pathlib.Path(__file__).resolve().parents[2] / "README.md").read_text()


def _section() -> str:
    start = README.index("## Nodes in git")
    return README[start:README.index("\n## ", start + 1)]


def test_every_yaml_example_parses():
    blocks = re.findall(r"```yaml\n(.*?)```", _section(), re.S)
    assert len(blocks) >= 5
    specs = {b.splitlines()[0]: parse_nodes(b, "README.md") for b in blocks}
    label = specs["# docker node update --label-add mem=max w1"]
    assert label.nodes["w1"].labels == {"mem": "max"}
    drain = specs["# docker node update --availability drain w2"]
    assert drain.nodes["w2"].availability == "drain"
    promote = specs["# docker node promote w1 w2"]
    assert {h: e.role for h, e in promote.nodes.items()} == {"w1": "manager", "w2": "manager"}
    demote = specs["# docker node demote w2 (3 -> 2 managers: refused unless forced)"]
    assert demote.nodes["w2"].role == "worker" and demote.nodes["w2"].force


def test_table_equivalents_parse():
    rows = re.findall(r"^\| `docker node [^|]*` \| `(nodes: [^`]*)`", _section(), re.M)
    assert len(rows) == 5
    for row in rows:
        assert parse_nodes(row, "README.md").nodes
