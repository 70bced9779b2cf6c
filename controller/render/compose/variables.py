"""Which controller variables a stack file may interpolate: only those the operator allows.

Rule (issue 7): a stack's variables are its own ``.env`` plus the controller variables whose
names match a pattern of ``KEELSON_ENV_ALLOW`` (comma list of ``fnmatch`` patterns, matched
case-sensitively; default empty, so none). ``KEELSON_*`` is never offered, whatever the pattern
(``*`` included): Keelson's own settings may carry credentials (``KEELSON_REPO`` with a token).
Where a name is in both, the allowed controller variable wins over ``.env``, as the shell does
for ``docker compose``: the operator's explicit choice overrides the repo's default.
"""
from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Dict, Iterable, Mapping

NEVER_PREFIX = "KEELSON_"  # Keelson's own settings: never interpolated


def allowed_variables(environ: Mapping[str, str], patterns: Iterable[str]) -> Dict[str, str]:
    """The controller variables stack files may use.

    Args:
        environ: the controller's environment (name -> value).
        patterns: ``fnmatch`` patterns (``APP_*``, ``DOMAIN``), from ``KEELSON_ENV_ALLOW``.
    Returns:
        dict name -> value of every variable matching some pattern, ``KEELSON_*`` excluded.
    """
    pats = [p for p in patterns if p]
    return {k: v for k, v in environ.items()
            if not k.startswith(NEVER_PREFIX) and any(fnmatchcase(k, p) for p in pats)}
