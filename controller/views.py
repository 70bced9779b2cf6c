"""PURE: how the remote CLI shows status, history and diffs (``keelson status | history |
diff``, issue 13.3). Text only; no I/O, no clock (``now`` is passed in).

The status table follows ``docker stack ls`` and ``argocd app list``: upper-case headers,
columns padded with three spaces, one row per stack.
"""
from __future__ import annotations

import json
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence

STATUS_COLUMNS = ("NAME", "SYNC", "HEALTH", "REVISION", "SERVICES", "LAST SYNC", "MESSAGE")
HISTORY_COLUMNS = ("REVISION", "RESULT", "WHEN", "MESSAGE")
MESSAGE_WIDTH = 70  # characters of a message shown in a table cell
GAP = "   "

# ANSI colours for a terminal (``diff`` on a TTY)
RED, GREEN, YELLOW, BOLD, RESET = "\033[31m", "\033[32m", "\033[33m", "\033[1m", "\033[0m"


def table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """Left-aligned columns separated by three spaces; the last column is not padded.

    Args:
        headers: column titles. rows: cells (strings), one sequence per row.
    Returns:
        str: the lines, each ending with a newline.
    """
    rows = [list(headers)] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in rows) for i in range(len(headers))]
    lines = [GAP.join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    return "".join(line + "\n" for line in lines)


def ago(then: Optional[float], now: float) -> str:
    """A short age: ``12s ago``, ``4m ago``, ``3h ago``, ``2d ago``; ``-`` for None.

    Args:
        then: unix seconds (or None). now: unix seconds.
    """
    if not then:
        return "-"
    secs = max(0, int(now - then))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if secs >= size:
            return f"{secs // size}{unit} ago"
    return f"{secs}s ago"


def short(text: str, width: int = MESSAGE_WIDTH) -> str:
    """``text`` on one line, cut to ``width`` characters (``...`` marks a cut)."""
    one = " ".join(str(text or "").split())
    return one if len(one) <= width else one[:width - 3] + "..."


def status_rows(stacks: Mapping[str, Mapping[str, Any]], now: float) -> List[List[str]]:
    """One status-table row per stack, sorted by name.

    Args:
        stacks: ``/api/status``'s ``stacks`` (name -> StackStatus as JSON).
        now: unix seconds, for LAST SYNC.
    Returns:
        list of rows in ``STATUS_COLUMNS`` order: REVISION is the applied revision's first 12
        characters (else the attempted one's), SERVICES the number of services, MESSAGE the
        last error (else the reason when not Succeeded).
    """
    rows = []
    for name in sorted(stacks):
        st = stacks[name]
        rev = st.get("last_applied_revision") or st.get("last_attempted_revision") or ""
        reason = st.get("reason") or ""
        message = st.get("last_error") or ("" if reason in ("", "Succeeded") else reason)
        rows.append([name, str(st.get("sync_status") or "Unknown"),
                     str(st.get("health_status") or "Unknown"), rev[:12] or "-",
                     str(len(st.get("services") or {})), ago(st.get("updated_at"), now),
                     short(message)])
    return rows


def status_table(stacks: Mapping[str, Mapping[str, Any]], now: float) -> str:
    """The ``keelson status`` table (see ``status_rows``)."""
    return table(STATUS_COLUMNS, status_rows(stacks, now))


def history_table(status: Mapping[str, Any], now: float) -> str:
    """The ``keelson history STACK`` table, newest first.

    Args:
        status: one stack's status as JSON (its ``history``: revision, result, at, message).
        now: unix seconds, for WHEN.
    """
    rows = [[(h.get("revision") or "")[:12] or "-", h.get("result") or "", ago(h.get("at"), now),
             short(h.get("message") or "")] for h in status.get("history") or []]
    return table(HISTORY_COLUMNS, rows)


def _value(value: Any) -> str:
    """A diff value on one line: JSON (strings quoted), ``(none)`` for an absent field."""
    if value is None:
        return "(none)"
    return json.dumps(value, sort_keys=True)


def diff_text(doc: Mapping[str, Any], color: bool = False) -> str:
    """The ``keelson diff`` text of one stack.

    Args:
        doc: ``GET /api/stacks/NAME/diff``'s answer (stack, revision, suspended, changes with
            kind, name, action, reason, fields of path/old/new).
        color: ANSI colours (old red, new green, headers bold) for a terminal.
    Returns:
        str: ``stack NAME: in sync at REV`` when nothing changes; else a header line, then per
        object ``ACTION KIND NAME (reason)`` and per field ``    PATH: OLD -> NEW``.
    """
    def paint(text: str, code: str) -> str:
        """``text`` wrapped in the ANSI colour ``code`` when colour is on."""
        return f"{code}{text}{RESET}" if color else text

    name, rev = doc.get("stack", ""), (doc.get("revision") or "")[:12]
    held = f" (suspended: {doc['suspended']})" if doc.get("suspended") else ""
    changes = doc.get("changes") or []
    if not changes:
        return f"stack {name}: in sync with {rev or 'the repo'}{held}\n"
    out = [paint(f"stack {name}: {len(changes)} change(s) to reach {rev}{held}", BOLD)]
    for ch in changes:
        reason = f" ({ch['reason']})" if ch.get("reason") else ""
        out.append(paint(f"  {ch.get('action')} {ch.get('kind')} {ch.get('name')}{reason}",
                         YELLOW))
        for f in ch.get("fields") or []:
            out.append(f"    {f.get('path')}: {paint(_value(f.get('old')), RED)} -> "
                       f"{paint(_value(f.get('new')), GREEN)}")
    return "\n".join(out) + "\n"


def one_stack(snapshot: Mapping[str, Any], name: str) -> Dict[str, Any]:
    """``name``'s status from an ``/api/status`` document ({} when absent)."""
    return dict((snapshot.get("stacks") or {}).get(name) or {})


# -- nodes (issue 11): declared vs live --------------------------------------------------------
NODE_COLUMNS = ("NODE", "ROLE", "AVAILABILITY", "LABELS")
NODE_LEGEND = ("(declared/live; '!' differs, '+' declared but not live yet, '~' live value "
               "differs, '?' live but not declared; '-' not declared)")
BOOKKEEPING_PREFIX = "io.keelson."  # Keelson's own node labels (which keys it set)


def _pair(declared: Optional[str], live: Optional[str]) -> str:
    """``declared/live`` with ``!`` when a declared value differs from the live one."""
    cell = f"{declared or '-'}/{live or '-'}"
    return cell + " !" if declared and declared != live else cell


def node_labels_cell(declared: Optional[Mapping[str, str]], live: Optional[Mapping[str, str]]) -> str:
    """The LABELS cell of one node: every label key once, sorted, comma-separated.

    Args:
        declared: the node's declared labels (None: the node is not in the nodes file).
        live: its live labels (None: not in the swarm). Keelson's ``io.keelson.*``
            bookkeeping labels are left out.
    Returns:
        str: ``k=v`` when declared and live agree (or the node is not declared),
        ``+k=v`` declared but not live yet, ``~k=v (live w)`` a different live value,
        ``?k=v`` live but not declared; ``-`` when there is none.
    """
    live = {k: v for k, v in (live or {}).items() if not k.startswith(BOOKKEEPING_PREFIX)}
    cells = []
    for key in sorted(set(declared or {}) | set(live)):
        if declared is None:
            cells.append(f"{key}={live[key]}")
        elif key not in declared:
            cells.append(f"?{key}={live[key]}")
        elif key not in live:
            cells.append(f"+{key}={declared[key]}")
        elif declared[key] != live[key]:
            cells.append(f"~{key}={declared[key]} (live {live[key]})")
        else:
            cells.append(f"{key}={declared[key]}")
    return ", ".join(cells) or "-"


def node_rows(section: Mapping[str, Any]) -> List[List[str]]:
    """One row per node of ``/api/status``'s ``nodes`` section, sorted by hostname.

    Args:
        section: the ``nodes`` section (``nodes``: hostname -> {"declared", "live"}, either
            None).
    Returns:
        list of rows in ``NODE_COLUMNS`` order (ROLE and AVAILABILITY as ``declared/live``).
    """
    rows = []
    for host in sorted(section.get("nodes") or {}):
        node = section["nodes"][host] or {}
        declared, live = node.get("declared"), node.get("live")
        d, lv = declared or {}, live or {}
        name = host + ("" if live else " (not in the swarm)")
        rows.append([name, _pair(d.get("role"), lv.get("role")),
                     _pair(d.get("availability"), lv.get("availability")),
                     node_labels_cell(d.get("labels") if declared is not None else None,
                                      lv.get("labels"))])
    return rows


def nodes_text(section: Mapping[str, Any]) -> str:
    """The nodes part of ``keelson status``: the NODE table, a legend, and the last node step
    (result, health, error, refusals, notes, moves, services left short).

    Args:
        section: ``/api/status``'s ``nodes`` section (not None).
    Returns:
        str: lines ending with a newline.
    """
    out = [table(NODE_COLUMNS, node_rows(section)), NODE_LEGEND + "\n"]
    line = (f"nodes ({section.get('file') or 'nodes file'}): last result "
            f"{section.get('result') or '-'}, health {section.get('health') or '-'}")
    if section.get("error"):
        line += f": {short(section['error'])}"
    out.append(line + "\n")
    for ref in section.get("refusals") or []:
        out.append(f"  refused [{ref.get('rule')}] {ref.get('node')}: "
                   f"{short(ref.get('message') or '')}\n")
    for note in section.get("notes") or []:
        out.append(f"  note: {short(note)}\n")
    for move in section.get("moves") or []:
        out.append(f"  moved: {short(move)}\n")
    for s in section.get("short") or []:
        out.append(f"  short: {s.get('service')} {s.get('running')}/{s.get('desired')}\n")
    return "".join(out)


def standby_line(snapshot: Mapping[str, Any]) -> str:
    """``standby: ...`` (with a newline) when ``lease.standby`` is true, else ""."""
    lease = snapshot.get("lease") or {}
    if not lease.get("standby"):
        return ""
    return (f"standby: another Keelson ({lease.get('holder') or 'unknown'}) holds the writer "
            "lease and writes; this one only reads\n")
