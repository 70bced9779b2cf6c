"""PURE: which analysis URLs the operator lets a stack make Keelson call (issue 10.2).

The URL of an analysis comes from the deploy repo, which is only semi-trusted: a controller
that GETs whatever a stack names is a server-side request forgery (it could probe the
manager's network or a cloud metadata endpoint). So the operator lists what may be called in
``KEELSON_ANALYSIS_ALLOW``, a comma list whose entries are either

- a host or ``host:port`` (``prometheus``, ``prometheus:9090``, ``10.0.0.5``): any http(s) URL
  on that host (and that port, when one is given); or
- a URL prefix (``http://prometheus:9090``, ``https://status.example.com/probe/``): same
  scheme, host and port, and a path that starts with the prefix's path at a ``/`` boundary.

The default is empty: a stack that asks for analysis is refused (PolicyError) before anything
is written, and nothing is called.
"""
from __future__ import annotations

from typing import Iterable, Optional, Sequence, Tuple
from urllib.parse import urlsplit

from controller.config import analysis_allow_entry_error
from controller.errors import PolicyError
from controller.model.analysis import AnalysisSpec

SETTING = "KEELSON_ANALYSIS_ALLOW"
_DEFAULT_PORTS = {"http": 80, "https": 443}


def _port(scheme: str, port: Optional[int]) -> Optional[int]:
    """The effective port of a URL (its scheme's default when none is written)."""
    return port if port is not None else _DEFAULT_PORTS.get(scheme)


def url_allowed(url: str, allow: Iterable[str]) -> bool:
    """True when ``url`` matches an entry of ``allow`` (see the module doc for the rules).

    Args:
        url: an http(s) URL as the stack wrote it.
        allow: the KEELSON_ANALYSIS_ALLOW entries.
    Returns:
        bool; False for a URL that does not parse, and for every URL when ``allow`` is empty.
    """
    try:
        u = urlsplit(url)
        u_port = _port(u.scheme, u.port)
    except ValueError:
        return False
    if u.scheme not in ("http", "https") or not u.hostname or u.username or u.password:
        return False
    for entry in allow:
        entry = entry.strip()
        if analysis_allow_entry_error(entry):
            continue
        if "://" not in entry:  # host or host:port
            e = urlsplit(f"//{entry}")
            if e.hostname == u.hostname and (e.port is None or e.port == u_port):
                return True
            continue
        e = urlsplit(entry)
        if (e.scheme, e.hostname, _port(e.scheme, e.port)) != (u.scheme, u.hostname, u_port):
            continue
        prefix = e.path or "/"
        path = u.path or "/"
        if path == prefix or path.startswith(prefix if prefix.endswith("/") else prefix + "/"):
            return True
    return False


def refused_urls(specs: Sequence[AnalysisSpec], allow: Sequence[str]) -> Tuple[AnalysisSpec, ...]:
    """The checks whose URL ``allow`` does not let Keelson call."""
    return tuple(s for s in specs if not url_allowed(s.url, allow))


def check_analysis_allowed(stack: str, specs: Sequence[AnalysisSpec],
                           allow: Sequence[str]) -> None:
    """Refuse a stack whose analysis would make Keelson call a URL the operator did not allow.

    Args:
        stack: the stack's name (for the message).
        specs: the stack's analysis checks (``StackOptions.analysis``).
        allow: the KEELSON_ANALYSIS_ALLOW entries (empty: analysis is off).
    Returns:
        None when every URL is allowed (or the stack asks for no analysis).
    Raises:
        PolicyError (reason PolicyDenied, retryable, nothing recorded): naming the stack, the
            key and the URL of each refused check, and the setting that would allow it.
    """
    refused = refused_urls(specs, allow)
    if not refused:
        return
    why = ("KEELSON_ANALYSIS_ALLOW is empty, so analysis is off" if not allow else
           f"not in KEELSON_ANALYSIS_ALLOW ({','.join(allow)})")
    detail = "; ".join(f"{s.key}: {s.url}" for s in refused)
    raise PolicyError(f"stack {stack}: analysis URL refused ({why}): {detail}")
