"""PURE: the waves a pass rolls a stack's services out in (issue 10).

A wave is a set of services rolled out in parallel; the next wave starts only once every
rollout of the previous one completed (and passed the post-rollout check, if any). Waves follow
``depends_on`` (``render.compose.depends.layers``): a service is in a later wave than every
service it depends on. Services the pass does not write are left out, so a wave may be empty
and is then dropped: a dependency that does not change is already running.
"""
from __future__ import annotations

from typing import Dict, List, Mapping, Tuple

from controller.model import DesiredStack, StackPlan
from controller.model.plan import CREATE, UPDATE
from controller.render.compose.depends import layers

Waves = Tuple[Tuple[str, ...], ...]


def plan_waves(plan: StackPlan, desired: DesiredStack,
               depends: Mapping[str, Mapping[str, str]]) -> Waves:
    """Group the services a plan creates or updates into waves.

    Args:
        plan: the stack's plan (``service`` changes with action create or update are rolled out).
        desired: the stack's desired objects (full service name -> compose name).
        depends: compose name -> {dependency: condition} (``StackManifest.depends``); a service
            missing from it has no dependencies.
    Returns:
        tuple of waves, each a sorted tuple of full service names; empty when the plan writes no
        service. Without any ``depends_on`` every written service is in the one wave.
    """
    layer = layers(depends)
    by_layer: Dict[int, List[str]] = {}
    for ch in plan.changes:
        if ch.kind != "service" or ch.action not in (CREATE, UPDATE):
            continue
        svc = desired.services.get(ch.name)
        compose = svc.compose_name if svc is not None else ""
        by_layer.setdefault(layer.get(compose, 0), []).append(ch.name)
    return tuple(tuple(sorted(by_layer[k])) for k in sorted(by_layer))


def short_name(name: str, stack: str = "") -> str:
    """A service's name without its ``<stack>_`` prefix (``web_api`` -> ``api``), as the
    compose file names it; unchanged when ``stack`` is "" or not its prefix."""
    return name[len(stack) + 1:] if stack and name.startswith(stack + "_") else name


def describe(waves: Waves, stack: str = "") -> str:
    """``1) db  2) api, web`` (service names without the ``<stack>_`` prefix when given)."""
    return "  ".join(f"{i}) {', '.join(short_name(n, stack) for n in wave)}"
                     for i, wave in enumerate(waves, 1))
