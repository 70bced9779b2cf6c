"""``keelson validate DIR``: load, convert and preflight every stack offline (no Docker)."""
from __future__ import annotations

import os
from typing import TYPE_CHECKING, Mapping, Optional, TextIO

from controller.errors import KeelsonError
from controller.model import ImageRef

if TYPE_CHECKING:
    from controller.render.sandbox import RepoLimits


def validate_dir(directory: str, environ: Mapping[str, str], out: TextIO, *,
                 limits: Optional["RepoLimits"] = None) -> int:
    """Check every stack under ``directory``: a manifests folder, a repo with manifests/, or one
    stack folder (holding a stack file; the stack is named after the folder).

    Args:
        directory: folder holding one sub-folder per stack. environ: interpolation variables,
            already filtered by the allow-list (``render.variables.allowed_variables``).
        out: where the report goes. limits: size caps (default: the Settings defaults).
    Returns:
        0 when every stack is valid (warnings allowed), 1 when any has an error.
    """
    from controller.render.convert import to_desired
    from controller.render.loader import STACK_FILE_NAMES, find_stacks, load_stack
    from controller.render.preflight import preflight

    if not os.path.isdir(directory):
        print(f"{directory}: not a folder", file=out)
        return 1
    own = [n for n in STACK_FILE_NAMES if os.path.isfile(os.path.join(directory, n))]
    try:
        if own:  # one stack folder
            folder = os.path.abspath(directory)
            stacks = {os.path.basename(folder): os.path.join(folder, own[0])}
            directory = os.path.dirname(folder)
        else:
            stacks = find_stacks(directory)
    except KeelsonError as exc:
        print(f"error: {exc}", file=out)
        return 1
    if not stacks and os.path.isdir(os.path.join(directory, "manifests")):
        directory = os.path.join(directory, "manifests")
        stacks = find_stacks(directory)
    if not stacks:
        print(f"{directory}: no stacks found (a sub-folder with stack.yml or compose.yml)", file=out)
        return 1
    bad = 0
    for name, file in stacks.items():
        try:
            manifest = load_stack(name, file, environ, root=directory, limits=limits)
            # built images do not exist offline: a placeholder stands in for each
            placeholders = {svc: ImageRef(f"registry.invalid/{name}_{svc}", "validate")
                            for svc in manifest.builds}
            desired = to_desired(manifest, placeholders, None)  # secrets read manifest.variables
            findings = preflight(manifest, desired)
        except KeelsonError as exc:
            bad += 1
            print(f"FAIL {name}: {exc}", file=out)
            continue
        errors = [f for f in findings if f.severity == "error"]
        bad += bool(errors)
        print(f"{'FAIL' if errors else 'ok  '} {name}: {len(desired.services)} service(s)", file=out)
        for w in manifest.warnings + desired.warnings:
            print(f"     warning: {w}", file=out)
        for f in findings:
            print(f"     {f.severity}: {f}", file=out)
    return 1 if bad else 0
