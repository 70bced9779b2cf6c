"""Per-stack options (pure): the ``x-keelson:`` mapping at the top of a stack file.

Compose ignores ``x-`` keys, so ``docker stack deploy`` reads the same file unchanged. Keys read
here (issue 8): ``drift: heal|report`` and ``recreate: [networks]``; (issue 9)
``follow_tags: true|false``; issue 10.2: ``analysis`` (also under a service's own
``x-keelson``; see ``analysis_options``); (issue 10) ``rollback: stack|service``. Other keys
are left to
the stages that own them (e.g. ``files``) and are not an error here.
"""
from __future__ import annotations

from typing import Any

from controller.model.drift import RECREATABLE, DriftMode, StackOptions
from controller.render.compose.analysis_options import analysis_specs
from controller.model.status import RollbackScope
from controller.render.compose.schema import Context

OPTIONS_KEY = "x-keelson"


def stack_options(doc: Any, ctx: Context) -> StackOptions:
    """Read ``x-keelson`` from a stack file's top-level mapping.

    Args:
        doc: the stack file's top-level mapping as loaded (before ``x-`` keys are dropped).
        ctx: the loading context (for line numbers in errors).
    Returns:
        StackOptions: ``drift`` None unless given; ``recreate`` empty unless given;
        ``analysis`` the checks of the stack and of its services (issue 10.2); ``rollback``
        None (stack scope) unless given.
    Raises:
        ManifestError: ``x-keelson`` is not a mapping, ``drift`` is not heal/report,
            ``recreate`` is not a list of known kinds, ``follow_tags`` is not a boolean, or
            ``rollback`` is not stack/service;
            located at the key's line.
    """
    raw = doc.get(OPTIONS_KEY) if isinstance(doc, dict) else None
    analysis = analysis_specs(doc, ctx)  # issue 10.2: top level and per service
    if raw is None:
        return StackOptions(analysis=analysis)
    if not isinstance(raw, dict):
        raise ctx.error(OPTIONS_KEY, f"{OPTIONS_KEY} must be a mapping")
    drift = None
    if raw.get("drift") is not None:
        try:
            drift = DriftMode(str(raw["drift"]))
        except ValueError:
            raise ctx.error(f"{OPTIONS_KEY}.drift", f"drift must be heal or report, got "
                                                  f"{raw['drift']!r}") from None
    recreate = raw.get("recreate") or []
    if isinstance(recreate, str):
        recreate = [recreate]
    if not isinstance(recreate, list) or not all(str(k) in RECREATABLE for k in recreate):
        raise ctx.error(f"{OPTIONS_KEY}.recreate",
                       f"recreate takes a list of {', '.join(sorted(RECREATABLE))}, got "
                       f"{recreate!r} (volumes are never recreated: their data would be lost)")
    follow = raw.get("follow_tags", True)
    if not isinstance(follow, bool):
        raise ctx.error(f"{OPTIONS_KEY}.follow_tags",
                        f"follow_tags must be true or false, got {follow!r}")
    rollback = None
    if raw.get("rollback") is not None:  # issue 10
        try:
            rollback = RollbackScope(str(raw["rollback"]))
        except ValueError:
            raise ctx.error(f"{OPTIONS_KEY}.rollback", f"rollback must be stack or service, got "
                                                     f"{raw['rollback']!r}") from None
    return StackOptions(drift=drift, recreate=frozenset(str(k) for k in recreate),
                        follow_tags=follow, analysis=analysis, rollback=rollback)
