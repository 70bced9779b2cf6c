"""PURE: a stack's ``depends_on`` graph (issue 10): read, checked for cycles, layered.

``docker stack deploy`` ignores ``depends_on``; Keelson uses it to order a pass's rollouts in
waves (``deploy.waves``): a service is rolled out only after the services it depends on are
healthy. Both forms of the Compose Specification are read: the short form (a list of names,
condition ``service_started``) and the long form (a mapping name -> ``{condition, ...}``).
Every condition orders the same way: the dependent waits until its dependency's rollout
completed (tasks running, and healthy where a healthcheck exists). Source: Compose
Specification, services.depends_on.
"""
from __future__ import annotations

from typing import Dict, List, Mapping, Optional, Tuple

from controller.errors import ManifestError
from controller.render.compose.schema import Context

STARTED, HEALTHY, COMPLETED = ("service_started", "service_healthy",
                               "service_completed_successfully")


def read_depends(services: Mapping[str, dict],
                 ctx: Optional[Context] = None) -> Tuple[Dict[str, Dict[str, str]], List[str]]:
    """Read every service's ``depends_on``.

    Args:
        services: compose service name -> service mapping (after type checks).
        ctx: the loading context, for the line of a cycle (None: no line).
    Returns:
        (depends, warnings): compose name -> {dependency: condition} for every service (empty
        when it has none), and a warning for each dependency that is not a service of the
        stack (ignored, as ``docker stack deploy`` ignores the whole key).
    Raises:
        ManifestError: the dependencies form a cycle; the message names every service on it,
            located at the first one's ``depends_on``.
    """
    depends: Dict[str, Dict[str, str]] = {}
    warnings: List[str] = []
    for name, svc in services.items():
        raw = (svc or {}).get("depends_on") or {}
        pairs = ([(str(d), STARTED) for d in raw] if isinstance(raw, list) else
                 [(str(d), str((opts or {}).get("condition") or STARTED))
                  for d, opts in raw.items()])
        deps: Dict[str, str] = {}
        for dep, cond in pairs:
            if dep not in services:
                warnings.append(f"service {name}: depends_on names {dep}, which is not a "
                                "service of this stack: ignored")
            else:
                deps[dep] = cond
        depends[name] = deps
    cycle = find_cycle(depends)
    if cycle:
        message = f"depends_on forms a cycle: {' -> '.join(cycle)}"
        key = f"services.{cycle[0]}.depends_on"
        if ctx is None:
            raise ManifestError(message, key=key)
        raise ctx.error(key, message)
    return depends, warnings


def find_cycle(depends: Mapping[str, Mapping[str, str]]) -> List[str]:
    """A dependency cycle, or [] when there is none.

    Args:
        depends: name -> its dependencies (names not in ``depends`` are ignored).
    Returns:
        list[str]: the names on the cycle, the first repeated at the end
        (``["a", "b", "a"]``; a service depending on itself is ``["a", "a"]``); the search
        starts from names in sorted order, so the answer is stable.
    """
    state: Dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: List[str] = []

    def visit(name: str) -> List[str]:
        """Depth-first walk from ``name``; returns a cycle's path, or [] when none."""
        state[name] = 1
        path.append(name)
        for dep in sorted(depends.get(name) or {}):
            if dep not in depends:
                continue
            if state.get(dep) == 1:
                return path[path.index(dep):] + [dep]
            if dep not in state:
                found = visit(dep)
                if found:
                    return found
        path.pop()
        state[name] = 2
        return []

    for name in sorted(depends):
        if name not in state:
            found = visit(name)
            if found:
                return found
    return []


def layers(depends: Mapping[str, Mapping[str, str]]) -> Dict[str, int]:
    """Each service's layer: 0 without dependencies, else one more than its deepest dependency.

    Args:
        depends: name -> its dependencies, free of cycles (``read_depends`` checked).
    Returns:
        dict: name -> layer (int >= 0).
    """
    out: Dict[str, int] = {}

    def layer(name: str) -> int:
        """``name``'s wave index: 0 without dependencies, else one past its deepest one."""
        if name not in out:
            deps = [d for d in depends.get(name) or {} if d in depends and d != name]
            out[name] = 1 + max(layer(d) for d in deps) if deps else 0
        return out[name]

    for name in depends:
        layer(name)
    return out
