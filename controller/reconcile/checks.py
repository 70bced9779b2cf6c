"""Checks against the live swarm around a stack's plan (I/O through SwarmClient only).

``live_preflight``: the pure preflight findings plus what only the swarm can tell (external
networks, configs and secrets exist; networks are swarm-scoped), before the first write.
``kept_while_referenced``: what ``keelson plan`` shows for config/secret removals that prune
would skip while a service still references them.
"""
from __future__ import annotations

from typing import List, Optional

from controller.errors import PreflightError
from controller.model import Change, DesiredStack, LiveStack, StackManifest, StackPlan
from controller.render.convert.preflight import preflight


def live_preflight(client, manifest: StackManifest, desired: DesiredStack) -> List[str]:
    """Checks that must pass before the first write: preflight findings plus external
    networks (existing, swarm-scoped), configs and secrets (existing).

    Returns:
        the warnings. Raises: PreflightError naming every error found.
    """
    findings = preflight(manifest, desired)
    errors = [str(f) for f in findings if f.severity == "error"]
    warnings = [str(f) for f in findings if f.severity != "error"]
    for name, net in desired.networks.items():
        if net.external:
            found = client.network(name)
            if found is None:
                errors.append(f"external network {name} does not exist")
            elif found.get("Scope") != "swarm":
                errors.append(f"external network {name} is not swarm-scoped "
                              f"(scope {found.get('Scope')})")
    for kind, objs, lookup in (("config", desired.configs, client.config),
                               ("secret", desired.secrets, client.secret)):
        for name, obj in objs.items():
            if obj.external and lookup(name) is None:
                errors.append(f"external {kind} {name} does not exist")
    if errors:
        raise PreflightError("; ".join(errors))
    return warnings

def kept_while_referenced(client, plan: StackPlan, live: Optional[LiveStack]) -> StackPlan:
    """For ``plan`` output: a config/secret removal that prune would skip (a service's Spec
    or PreviousSpec still references it) is shown as kept, as the real pass does."""
    removals = plan.of("remove", "config") + plan.of("remove", "secret")
    if not removals or live is None:
        return plan
    used = client.referenced_config_ids() | client.referenced_secret_ids()
    changes = []
    for ch in plan.changes:
        objs = live.configs if ch.kind == "config" else live.secrets
        if ch in removals and objs[ch.name].id in used:
            ch = Change(ch.kind, ch.name, "unchanged", "kept while a service references it")
        changes.append(ch)
    return StackPlan(plan.stack, changes)
