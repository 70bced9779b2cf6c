"""Human-readable output of ``keelson plan`` and ``keelson sync``."""
from __future__ import annotations

from typing import TextIO


def print_plan(outcome, out: TextIO) -> None:
    """Print each stack's planned changes (``+`` create, ``~`` update, ``-`` remove, ``-/+``
    replace) and the drift it would leave (``!`` out of sync: report mode, unmanaged)."""
    from controller.deploy.drift import remaining_drift
    marks = {"create": "+", "update": "~", "remove": "-", "replace": "-/+"}
    rev = outcome.revision.short if outcome.revision else "?"
    print(f"revision {rev}", file=out)
    if outcome.error:
        print(f"error: {outcome.error}", file=out)
    for name, run in sorted(outcome.runs.items()):
        if run.error is not None or (run.status and run.status.sync_status in ("Failed", "Stalled")):
            msg = str(run.error) if run.error else run.status.last_error
            print(f"stack {name}: cannot plan: {msg}", file=out)
            continue
        writes = run.plan.writes if run.plan else []
        builds = f" (would build: {', '.join(run.to_build)})" if run.to_build else ""
        count = f"{len(writes)} change(s)" if writes or builds else "no changes"
        print(f"stack {name}: {count}{builds}", file=out)
        for ch in writes:
            why = f"  ({ch.reason})" if ch.reason else ""
            print(f"  {marks.get(ch.action, '?')} {ch.kind} {ch.name}{why}", file=out)
        for d in remaining_drift(run.plan) if run.plan else []:  # issue 8.4
            what = "unmanaged service (not created by keelson)" if d.kind.value == "unmanaged" \
                else f"{d.kind.value} out of sync: {', '.join(d.paths)}"
            print(f"  ! {d.name}: {what}", file=out)
        for w in run.warnings:
            print(f"  warning: {w}", file=out)


def print_summary(outcome, out: TextIO) -> None:
    """Print one line per stack after a pass: state, revision, error."""
    rev = outcome.revision.short if outcome.revision else "?"
    print(f"revision {rev}: {outcome.result}" + (f": {outcome.error}" if outcome.error else ""),
          file=out)
    for name, run in sorted(outcome.runs.items()):
        st = run.status
        if st is None:
            print(f"  {name}: removed" if name in outcome.removed else f"  {name}: -", file=out)
            continue
        line = f"  {name}: {st.sync_status} / {st.health_status}"
        if st.last_error:
            line += f": {st.last_error}"
        print(line, file=out)
        for w in st.warnings:
            print(f"    warning: {w}", file=out)
    for name in outcome.removed:
        if name not in outcome.runs or outcome.runs[name].status is None:
            continue
