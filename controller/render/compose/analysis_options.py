"""PURE: read the ``analysis`` option (issue 10.2) of a stack file.

Two places, both ignored by Compose and ``docker stack deploy`` (``x-`` keys):

- ``x-keelson: {analysis: ...}`` at the top of the stack file: checked after any service of the
  stack rolled out;
- ``services.<name>.x-keelson: {analysis: ...}``: checked after that service rolled out.

Each is one check, or a list of checks. A check is either a PromQL query::

    analysis:
      prometheus: http://prometheus:9090     # base URL; Keelson GETs <url>/api/v1/query
      query: sum(rate(http_errors_total[1m])) / sum(rate(http_requests_total[1m]))
      threshold: {max: 0.05}                 # and/or min: every sample must be <= max, >= min
      for: 60s                               # default 60s
      interval: 5s                           # default 5s

or an HTTP probe::

    analysis:
      http: {url: http://web.example:8080/healthz, status: 200}   # status defaults to 200
      for: 30s
      interval: 5s

Whether Keelson may call the URL at all is the operator's call (KEELSON_ANALYSIS_ALLOW,
``controller.policy.analysis``), not checked here.
"""
from __future__ import annotations

import math
from typing import Any, List, Optional, Tuple
from urllib.parse import urlsplit

from controller.model.analysis import (DEFAULT_FOR_S, DEFAULT_INTERVAL_S, AnalysisKind,
                                       AnalysisSpec)
from controller.render.compose.schema import Context
from controller.render.convert.units import parse_duration_ns

OPTIONS_KEY = "x-keelson"
MAX_FOR_S = 3600.0  # longest ``for``: the stack's worker waits this long
MIN_INTERVAL_S = 1.0  # shortest ``interval``: at most one request a second per check
MAX_QUERY_CHARS = 4096
MAX_URL_CHARS = 2048
CHECK_KEYS = ("prometheus", "query", "threshold", "http", "for", "interval")


def analysis_specs(doc: Any, ctx: Context) -> Tuple[AnalysisSpec, ...]:
    """Every analysis check a stack file asks for (stack level first, then per service).

    Args:
        doc: the stack file's top-level mapping as loaded (``x-`` keys still present).
        ctx: the loading context (line numbers and files for errors).
    Returns:
        tuple of AnalysisSpec; empty when the stack asks for none.
    Raises:
        ManifestError: a check of the wrong shape, located at its key (``x-keelson.analysis``
            or ``services.web.x-keelson.analysis.threshold``...).
    """
    if not isinstance(doc, dict):
        return ()
    specs: List[AnalysisSpec] = []
    top = doc.get(OPTIONS_KEY)
    if isinstance(top, dict) and top.get("analysis") is not None:
        specs += _checks(top["analysis"], f"{OPTIONS_KEY}.analysis", "", ctx)
    services = doc.get("services")
    for name, svc in (services.items() if isinstance(services, dict) else ()):
        opts = svc.get(OPTIONS_KEY) if isinstance(svc, dict) else None
        if opts is None:
            continue
        where = f"services.{name}.{OPTIONS_KEY}"
        if not isinstance(opts, dict):
            raise ctx.error(where, f"{OPTIONS_KEY} must be a mapping of Keelson options")
        if opts.get("analysis") is not None:
            specs += _checks(opts["analysis"], f"{where}.analysis", str(name), ctx)
    return tuple(specs)


def _checks(raw: Any, key: str, service: str, ctx: Context) -> List[AnalysisSpec]:
    """One check (a mapping) or a list of them."""
    if isinstance(raw, list):
        return [_check(item, f"{key}.{i}", service, ctx) for i, item in enumerate(raw)]
    return [_check(raw, key, service, ctx)]


def _check(raw: Any, key: str, service: str, ctx: Context) -> AnalysisSpec:
    """One check mapping -> AnalysisSpec."""
    if not isinstance(raw, dict):
        raise ctx.error(key, "analysis must be a mapping with prometheus/query/threshold or "
                             "http (or a list of such mappings)")
    unknown = sorted(str(k) for k in raw if k not in CHECK_KEYS)
    if unknown:
        raise ctx.error(f"{key}.{unknown[0]}", f"unknown analysis key {unknown[0]!r} (allowed: "
                                               f"{', '.join(CHECK_KEYS)})")
    for_s = _duration(raw.get("for"), f"{key}.for", DEFAULT_FOR_S, ctx)
    interval_s = _duration(raw.get("interval"), f"{key}.interval", DEFAULT_INTERVAL_S, ctx)
    if not 0 < for_s <= MAX_FOR_S:
        raise ctx.error(f"{key}.for", f"for must be more than 0s and at most {MAX_FOR_S:g}s, "
                                      f"got {raw.get('for')!r}")
    if not MIN_INTERVAL_S <= interval_s <= for_s:
        raise ctx.error(f"{key}.interval", f"interval must be at least {MIN_INTERVAL_S:g}s and "
                                           f"at most for ({for_s:g}s), got "
                                           f"{raw.get('interval')!r}")
    if ("prometheus" in raw) == ("http" in raw):
        raise ctx.error(key, "analysis takes exactly one of prometheus (with query and "
                             "threshold) or http")
    common = dict(for_s=for_s, interval_s=interval_s, service=service, key=key)
    if "http" in raw:
        for extra in ("query", "threshold"):
            if extra in raw:
                raise ctx.error(f"{key}.{extra}", f"{extra} belongs to the prometheus form, "
                                                  "not to an http probe")
        return _http(raw["http"], f"{key}.http", common, ctx)
    url = _url(raw["prometheus"], f"{key}.prometheus", ctx)
    query = raw.get("query")
    if not isinstance(query, str) or not query.strip():
        raise ctx.error(f"{key}.query", "query must be a non-empty PromQL string")
    if len(query) > MAX_QUERY_CHARS:
        raise ctx.error(f"{key}.query", f"query is longer than {MAX_QUERY_CHARS} characters")
    max_value, min_value = _threshold(raw.get("threshold"), f"{key}.threshold", ctx)
    return AnalysisSpec(AnalysisKind.PROMETHEUS, url, query=query.strip(), max_value=max_value,
                        min_value=min_value, **common)


def _http(raw: Any, key: str, common: dict, ctx: Context) -> AnalysisSpec:
    """``http: {url: ..., status: 200}`` -> AnalysisSpec."""
    if not isinstance(raw, dict):
        raise ctx.error(key, "http must be a mapping with url and status")
    unknown = sorted(str(k) for k in raw if k not in ("url", "status"))
    if unknown:
        raise ctx.error(f"{key}.{unknown[0]}", f"unknown http key {unknown[0]!r} (allowed: "
                                               "url, status)")
    url = _url(raw.get("url"), f"{key}.url", ctx)
    status = raw.get("status", 200)
    if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
        raise ctx.error(f"{key}.status", f"status must be an HTTP status code (100-599), got "
                                         f"{status!r}")
    return AnalysisSpec(AnalysisKind.HTTP, url, status=status, **common)


def _url(raw: Any, key: str, ctx: Context) -> str:
    """An http(s) URL with a host and no credentials."""
    if not isinstance(raw, str) or not raw.strip():
        raise ctx.error(key, "must be an http:// or https:// URL")
    url = raw.strip()
    if len(url) > MAX_URL_CHARS:
        raise ctx.error(key, f"URL is longer than {MAX_URL_CHARS} characters")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        raise ctx.error(key, f"not a URL: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ctx.error(key, f"must be an http:// or https:// URL with a host, got {url!r}")
    if parts.username is not None or parts.password is not None:
        raise ctx.error(key, "credentials in an analysis URL are not supported (Keelson sends "
                             "no credentials to analysis endpoints)")
    return url


def _duration(raw: Any, key: str, default: float, ctx: Context) -> float:
    """``30s``, ``1m30s`` (Go durations) or a number of seconds -> seconds."""
    if raw is None:
        return default
    if isinstance(raw, (int, float)) and not isinstance(raw, bool):
        value = float(raw)
    else:
        try:
            value = parse_duration_ns(raw) / 1e9
        except ValueError as exc:
            raise ctx.error(key, str(exc)) from None
    if not math.isfinite(value) or value < 0:
        raise ctx.error(key, f"must be a duration >= 0, got {raw!r}")
    return value


def _threshold(raw: Any, key: str, ctx: Context) -> Tuple[Optional[float], Optional[float]]:
    """``{max: N}``, ``{min: N}`` or both -> (max, min)."""
    if not isinstance(raw, dict) or not raw:
        raise ctx.error(key, "threshold must be a mapping with max and/or min, e.g. "
                             "{max: 0.05}")
    unknown = sorted(str(k) for k in raw if k not in ("max", "min"))
    if unknown:
        raise ctx.error(f"{key}.{unknown[0]}", f"unknown threshold key {unknown[0]!r} "
                                               "(allowed: max, min)")
    out = []
    for bound in ("max", "min"):
        value = raw.get(bound)
        if value is None:
            out.append(None)
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) \
                or not math.isfinite(value):
            raise ctx.error(f"{key}.{bound}", f"{bound} must be a number, got {value!r}")
        out.append(float(value))
    if out[0] is not None and out[1] is not None and out[1] > out[0]:
        raise ctx.error(key, f"min {out[1]:g} is above max {out[0]:g}: no value could pass")
    return out[0], out[1]
