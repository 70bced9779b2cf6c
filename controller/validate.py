"""``keelson validate DIR``: load, convert and preflight every stack offline (no Docker)."""
from __future__ import annotations

import os
from dataclasses import replace
from typing import TYPE_CHECKING, Mapping, Optional, TextIO

from controller.config import PolicyLevel, settings_from_env
from controller.errors import KeelsonError
from controller.policy.admission import AdmissionPolicy, check
from controller.policy.guard import placeholder_refs
from controller.policy.protected import ProtectedNames

if TYPE_CHECKING:
    from controller.render.compose.sandbox import RepoLimits

def validate_dir(directory: str, environ: Mapping[str, str], out: TextIO, *,
                 limits: Optional["RepoLimits"] = None, level: Optional[str] = None,
                 show_merged: bool = False,
                 settings_env: Optional[Mapping[str, str]] = None) -> int:
    """Check every stack under ``directory``: a manifests folder, a repo with manifests/, or one
    stack folder (holding a stack file; the stack is named after the folder).

    Args:
        directory: folder holding one sub-folder per stack. environ: interpolation variables,
            already filtered by the allow-list (``render.variables.allowed_variables``).
        out: where the report goes. limits: size caps (default: the Settings defaults).
        level: admission level to check against (``--policy``); None reads KEELSON_POLICY
            (default baseline). What stricter levels would refuse is printed as notes.
        show_merged: also print each stack's document after merging its files, interpolation
            and casting (what Keelson converts), as YAML.
        settings_env: the process environment the ``KEELSON_*`` settings are read from
            (KEELSON_POLICY, KEELSON_PROTECTED_NAMES, KEELSON_ALLOWED_BIND_PATHS,
            KEELSON_BIND_ROOT); default ``environ``.
    Returns:
        0 when every stack is valid (warnings allowed), 1 when any has an error (a policy
        refusal included).
    Raises:
        ConfigError: a bad level or policy setting.
    """
    from controller.render.convert import to_desired
    from controller.render.compose.files import STACK_FOLDER_MARKERS as STACK_FILE_NAMES
    from controller.render.compose.files import find_stacks
    from controller.render.compose.loader import load_stack
    from controller.render.convert.preflight import preflight
    from controller.report import print_merged
    from controller.secrets.sops import SopsDecryptor

    settings_env = environ if settings_env is None else settings_env
    policy = _admission(settings_env, level)  # issue 7
    if not os.path.isdir(directory):
        print(f"{directory}: not a folder", file=out)
        return 1
    bad_nodes = validate_nodes(directory, settings_env, out, limits)  # issue 11
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
    if not stacks and not os.path.isdir(os.path.join(directory, "manifests")) and bad_nodes >= 0:
        return bad_nodes  # a repo holding only a nodes file
    if not stacks and os.path.isdir(os.path.join(directory, "manifests")):
        directory = os.path.join(directory, "manifests")
        stacks = find_stacks(directory)
    if not stacks:
        print(f"{directory}: no stacks found (a sub-folder with stack.yml or compose.yml)", file=out)
        return 1
    key_file = settings_env.get("KEELSON_SOPS_AGE_KEY_FILE", "")
    decryptor = SopsDecryptor(key_file) if key_file else None  # issue 9: SOPS files
    bad = 0
    for name, file in stacks.items():
        try:
            manifest = load_stack(name, file, environ, root=directory, limits=limits,
                                  decryptor=decryptor)
            # built images do not exist offline: a placeholder stands in for each
            desired = to_desired(manifest, placeholder_refs(manifest), None,  # secrets read
                                 bind_root=settings_env.get("KEELSON_BIND_ROOT", ""))  # .variables
            findings = preflight(manifest, desired)
            refused = check(desired, policy, manifest)  # issue 7: admission policy
        except KeelsonError as exc:
            bad += 1
            print(f"FAIL {name}: {exc}", file=out)
            continue
        errors = [f for f in findings if f.severity == "error"] + refused
        bad += bool(errors)
        print(f"{'FAIL' if errors else 'ok  '} {name}: {len(desired.services)} service(s)", file=out)
        print_merged(manifest, out, directory, show_merged)
        for w in manifest.warnings + desired.warnings:
            print(f"     warning: {w}", file=out)
        for f in findings:
            print(f"     {f.severity}: {f}", file=out)
        for v in refused:
            print(f"     refused: {v}", file=out)
        shown = {(v.key, v.rule) for v in refused}
        for stricter in _STRICTER[policy.level]:
            for v in check(desired, replace(policy, level=stricter), manifest):
                if (v.key, v.rule) not in shown:
                    shown.add((v.key, v.rule))
                    print(f"     note: {stricter.value} would refuse: {v}", file=out)
    return 1 if bad or bad_nodes > 0 else 0


def validate_nodes(directory: str, settings_env: Mapping[str, str], out: TextIO,
                   limits: Optional["RepoLimits"] = None) -> int:
    """Check the nodes file (``KEELSON_NODES_FILE``, default ``cluster/nodes.yml``) of the repo
    that ``directory`` is (or is the manifests folder or a stack folder of).

    Args:
        directory: the folder given to ``keelson validate``. settings_env: for
            KEELSON_NODES_FILE. out: where the report goes. limits: size caps.
    Returns:
        1 when the file is invalid, 0 when it is valid, -1 when there is none.
    """
    from controller.nodes.spec import read_nodes_file

    relpath = settings_env.get("KEELSON_NODES_FILE") or "cluster/nodes.yml"
    folder = os.path.abspath(directory)
    for root in (folder, os.path.dirname(folder), os.path.dirname(os.path.dirname(folder))):
        if not os.path.lexists(os.path.join(root, relpath)):
            continue
        try:
            spec = read_nodes_file(root, relpath, limits)
        except KeelsonError as exc:
            print(f"FAIL nodes: {exc}", file=out)
            return 1
        print(f"ok   nodes ({relpath}): {len(spec.nodes)} node(s), {len(spec.groups)} group(s)",
              file=out)
        return 0
    return -1


_STRICTER = {PolicyLevel.PRIVILEGED: (PolicyLevel.BASELINE, PolicyLevel.RESTRICTED),
             PolicyLevel.BASELINE: (PolicyLevel.RESTRICTED,), PolicyLevel.RESTRICTED: ()}


def _admission(environ: Mapping[str, str], level: Optional[str]) -> AdmissionPolicy:
    """The admission policy ``validate`` checks: ``level`` or KEELSON_POLICY, with the
    operator's protected names and allowed bind paths (Keelson's own service is not known
    offline: the ``keelson_`` prefix and KEELSON_PROTECTED_NAMES stand for it)."""
    kw = settings_from_env(environ)
    chosen = PolicyLevel.parse(level) if level else kw.get("policy", PolicyLevel.BASELINE)
    return AdmissionPolicy(chosen, ProtectedNames(patterns=kw.get("protected_names", ())),
                           kw.get("allowed_bind_paths", ()))
