"""Human-readable output of ``keelson plan`` and ``keelson sync``."""
from __future__ import annotations

import os
from typing import TextIO

import yaml

from controller.telemetry.scrub import ScrubbingWriter


def print_plan(outcome, out: TextIO, show_merged: bool = False) -> None:
    """Print each stack's planned changes (``+`` create, ``~`` update, ``-`` remove, ``-/+``
    replace) and the drift it would leave (``!`` out of sync: report mode, unmanaged).

    Args:
        outcome: the PassResult of a dry-run pass. out: where to print.
        show_merged: also print each stack's merged document (see :func:`print_merged`).
    """
    from controller.deploy.drift import remaining_drift
    from controller.deploy.waves import describe as describe_waves
    out = ScrubbingWriter(out)  # issue 7: no credential in printed errors
    marks = {"create": "+", "update": "~", "remove": "-", "replace": "-/+"}
    rev = outcome.revision.short if outcome.revision else "?"
    print(f"revision {rev}", file=out)
    if outcome.error:
        print(f"error: {outcome.error}", file=out)
    print_node_plan(getattr(outcome, "nodes", None), out)
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
        if getattr(run, "waves", ()):  # issue 10: rollout order and rollback scope
            print(f"  waves: {describe_waves(run.waves, name)}", file=out)
            print(f"  rollback: {rollback_scope_text(run, name)}", file=out)
        for d in remaining_drift(run.plan) if run.plan else []:  # issue 8.4
            what = "unmanaged service (not created by keelson)" if d.kind.value == "unmanaged" \
                else f"{d.kind.value} out of sync: {', '.join(d.paths)}"
            print(f"  ! {d.name}: {what}", file=out)
        for w in run.warnings:
            print(f"  warning: {w}", file=out)
        if run.manifest is not None:
            print_merged(run.manifest, out, os.path.dirname(run.manifest.directory), show_merged,
                         indent="  ")


def print_node_plan(nodes, out: TextIO) -> None:
    """Print the node step of a pass (issue 11): ``~ node w1: +mem=max availability
    active->drain``, refusals (``refused:``), notes, and the moves of a drain.

    Args:
        nodes: the pass's NodeOutcome (None: the repo has no nodes file: nothing printed).
        out: where to print.
    """
    if nodes is None:
        return
    plan = nodes.plan
    file = plan.file if plan else "nodes file"
    if nodes.result == "invalid":
        print(f"nodes ({file}): invalid, no node changes: {nodes.error}", file=out)
        return
    changes = plan.changes if plan else ()
    count = f"{len(changes)} change(s)" if changes else "no changes"
    print(f"nodes ({file}): {count}" + (f", {nodes.result}" if nodes.result != "planned" else ""),
          file=out)
    for ch in changes:
        print(f"  ~ {ch.describe()}", file=out)
    for r in plan.refusals if plan else ():
        print(f"  refused ({r.rule}): {r.message}", file=out)
    if nodes.result == "failed":
        print(f"  error: {nodes.error}", file=out)
    for note in plan.notes if plan else ():
        print(f"  note: {note}", file=out)
    for move in nodes.drain.moves if nodes.drain else ():
        print(f"  moved {move.describe()}", file=out)
    for service, have, want in nodes.drain.short if nodes.drain else ():
        print(f"  Degraded: {service} runs {have} of {want} replicas", file=out)


def rollback_scope_text(run, stack: str) -> str:
    """What a failed rollout of this plan would return (issue 10), for ``keelson plan``.

    Args:
        run: a StackResult of a dry-run pass (``rollback_scope``, ``plan``). stack: its name.
    Returns:
        ``stack: on failure <services> return to the running revision, <created> are removed;
        removals wait until every wave is healthy`` or ``service: ...``.
    """
    from controller.deploy.waves import short_name

    def short(n: str) -> str:
        """``n`` without the stack prefix."""
        return short_name(n, stack)
    if run.rollback_scope == "service":
        return "service (a failing service is rolled back alone; the others keep the new spec)"
    if not run.last_good:  # a first deploy: no last good revision to return to
        return ("stack (first deploy: no last good revision, a failed rollout leaves the stack "
                "as the pass made it)")
    updated = [short(c.name) for c in run.plan.of("update", "service")] if run.plan else []
    created = [short(c.name) for c in run.plan.of("create", "service")] if run.plan else []
    removed = [short(c.name) for c in run.plan.of("remove", "service")] if run.plan else []
    parts = []
    if updated:
        parts.append(f"{', '.join(updated)} return to the running spec")
    if created:
        parts.append(f"{', '.join(created)} would be removed")
    text = "stack (on a failed rollout: " + ("; ".join(parts) or "nothing to return") + ")"
    if removed:
        text += f"; {', '.join(removed)} removed only once every wave is healthy"
    return text


def plan_exit_code(outcome, detailed: bool) -> int:
    """The exit status of ``keelson plan``.

    Args:
        outcome: the PassResult of a dry-run pass.
        detailed: ``--detailed-exitcode`` (as ``terraform plan``): 2 when there are changes.
    Returns:
        1 when the pass failed (fetch, listing) or any stack cannot be planned (it failed to
        load, convert or pass preflight, or it is stalled at a failed input), whatever
        ``detailed`` says; else 2 when ``detailed`` and some stack would change (a write or a
        build), else 0.
    """
    if outcome.result in ("failed", "standby"):  # standby: another Keelson holds the lease
        return 1
    nodes = getattr(outcome, "nodes", None)
    if nodes is not None and nodes.failed:
        return 1
    changes = bool(nodes and nodes.plan and nodes.plan.changes)
    for run in outcome.runs.values():
        if run.error is not None or (run.status and run.status.sync_status in ("Failed", "Stalled")):
            return 1
        changes = changes or bool(run.plan and run.plan.writes) or bool(run.to_build)
    return 2 if detailed and changes else 0


def print_summary(outcome, out: TextIO) -> None:
    """Print one line per stack after a pass: state, revision, error."""
    out = ScrubbingWriter(out)  # issue 7: no credential in printed errors
    rev = outcome.revision.short if outcome.revision else "?"
    print(f"revision {rev}: {outcome.result}" + (f": {outcome.error}" if outcome.error else ""),
          file=out)
    print_node_plan(getattr(outcome, "nodes", None), out)
    for name, run in sorted(outcome.runs.items()):
        st = run.status
        if st is None:
            print(f"  {name}: removed" if name in outcome.removed else f"  {name}: -", file=out)
            continue
        line = f"  {name}: {st.sync_status} / {st.health_status}"
        if st.last_error:
            line += f": {st.last_error}"
        print(line, file=out)
        for r in st.rolled_back:  # issue 10: what the stack rollback returned
            print(f"    rolled back: {r}", file=out)
        for w in st.warnings:
            print(f"    warning: {w}", file=out)
    for name in outcome.removed:
        if name not in outcome.runs or outcome.runs[name].status is None:
            continue


def print_merged(manifest, out: TextIO, root: str, show_merged: bool, indent: str = "     ") -> None:
    """Print the files a stack was merged from (when more than one) and, with ``show_merged``,
    the merged document as YAML (after interpolation and casting: what Keelson converts).

    Args:
        manifest: a loaded StackManifest. out: where to print. root: files are shown relative
            to it. show_merged: print the document too.
    """
    if len(manifest.files) > 1 or show_merged:
        shown = [os.path.relpath(f, root) for f in manifest.files] or [manifest.file]
        print(f"{indent}files: {' + '.join(shown)}", file=out)
    if show_merged:
        text = yaml.safe_dump(manifest.compose, sort_keys=False, default_flow_style=False,
                              allow_unicode=True)
        for line in text.rstrip().splitlines():
            print(f"{indent}  {line}", file=out)
