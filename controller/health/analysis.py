"""Analysis after a rollout (issue 10.2): sample a PromQL query or an HTTP probe for a while.

After Swarm says a rollout is done, a stack that asks for it (``x-keelson: {analysis: ...}``)
gets one more check, after Flagger's metric analysis: Keelson evaluates the query against
Prometheus' HTTP API (``GET <prometheus>/api/v1/query?query=...``, stdlib urllib) or GETs the
probe URL every ``interval`` until ``for`` has passed. The first sample that breaches the
threshold, an empty result, or an HTTP error fails the check at once.

Bounded by construction: every request has a timeout no longer than the interval (at most
REQUEST_TIMEOUT_S) and the time left until ``for`` + DEADLINE_MARGIN_S, reads at most
MAX_RESPONSE_BYTES, follows no redirect (a redirect could lead anywhere the operator's
allow-list does not), uses no proxy from the controller's environment, and sends no
credentials (no Authorization header, no cookie, no netrc).
"""
from __future__ import annotations

import http.client
import json
import math
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Callable, List, Optional, Sequence, Tuple

from controller.model.analysis import AnalysisKind, AnalysisResult, AnalysisSpec

REQUEST_TIMEOUT_S = 10.0  # longest single request, seconds
DEADLINE_MARGIN_S = 5.0  # the last request may end this long after ``for``, seconds
MAX_RESPONSE_BYTES = 1 << 20  # largest Prometheus answer read, bytes
MAX_PROBE_BYTES = 64 << 10  # largest probe body read (only its status matters), bytes
USER_AGENT = "keelson-analysis"


@dataclass(frozen=True)
class HttpResponse:
    """What one GET came to.

    Attributes:
        status: the HTTP status code, 0 when no answer came (refused, timed out, too large).
        body: the body, at most the size asked for. error: why there is no answer ("" if any).
    """

    status: int
    body: bytes = b""
    error: str = ""


# url, timeout (seconds), largest body (bytes) -> HttpResponse; never raises
HttpGet = Callable[[str, float, int], HttpResponse]


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Follow no redirect: a 3xx is the answer (it could point outside the allow-list)."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: D102
        """Follow no redirect (urllib's hook): the 3xx answer is the check's result, so a
        repo-given URL cannot bounce the controller to a host the allow-list never named."""
        return None


def urllib_get(url: str, timeout_s: float, max_bytes: int) -> HttpResponse:
    """GET ``url`` with nothing of the controller's: no proxy, no credentials, no redirect.

    Args:
        url: an http(s) URL (already checked against KEELSON_ANALYSIS_ALLOW).
        timeout_s: seconds for the whole request (connect, each read, and the body together:
            the body is read in chunks until this deadline).
        max_bytes: a longer body is an error (status 0), not truncated silently.
    Returns:
        HttpResponse: the status and body of any answer, 4xx/5xx included; status 0 with
        ``error`` when no answer came.
    Raises:
        Nothing.
    """
    deadline = time.monotonic() + timeout_s
    # no proxy from the environment, no redirects; urllib adds no credentials by itself
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect())
    req = urllib.request.Request(url, headers={"User-Agent": USER_AGENT,
                                               "Accept": "application/json, */*"})
    try:
        try:
            resp = opener.open(req, timeout=timeout_s)
        except urllib.error.HTTPError as err:
            resp = err  # 4xx/5xx/3xx: still an answer, with a body
        with resp:
            status = resp.status if hasattr(resp, "status") and resp.status else resp.code
            chunks: List[bytes] = []
            size = 0
            while True:
                if time.monotonic() > deadline:
                    return HttpResponse(0, error=f"no complete answer within {timeout_s:g}s")
                chunk = resp.read(min(64 << 10, max_bytes + 1 - size))
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
                if size > max_bytes:
                    return HttpResponse(0, error=f"answer larger than {max_bytes} bytes")
            return HttpResponse(int(status), b"".join(chunks))
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        return HttpResponse(0, error=f"{type(exc).__name__}: {reason}")


# -- pure parts --------------------------------------------------------------------------------
def query_values(body: bytes) -> List[float]:
    """The values of an instant query's answer (Prometheus HTTP API ``/api/v1/query``).

    Args:
        body: the JSON answer: ``{"status": "success", "data": {"resultType": "vector",
            "result": [{"metric": {...}, "value": [<time>, "<value>"]}, ...]}}``; a
            ``scalar`` result is ``[<time>, "<value>"]``.
    Returns:
        list of float, one per series (empty when the query matched nothing).
    Raises:
        ValueError: not JSON, ``status`` not success (with Prometheus' error text), or a
            result type that is not vector or scalar (matrix: a range query is not a sample).
    Source: https://prometheus.io/docs/prometheus/latest/querying/api/#instant-queries
    """
    try:
        doc = json.loads(body.decode("utf-8", "replace"))
    except ValueError:
        raise ValueError("the answer is not JSON") from None
    if not isinstance(doc, dict):
        raise ValueError("the answer is not a JSON object")
    if doc.get("status") != "success":
        raise ValueError(f"Prometheus said {doc.get('errorType', 'error')}: "
                         f"{str(doc.get('error', ''))[:300]}")
    data = doc.get("data") or {}
    kind, result = data.get("resultType"), data.get("result")
    try:
        if kind == "vector":
            return [float(series["value"][1]) for series in result or []]
        if kind == "scalar":
            return [float(result[1])]
    except (TypeError, KeyError, IndexError, ValueError):
        raise ValueError(f"a {kind} result of an unexpected shape") from None
    raise ValueError(f"result type {kind!r} is not a number per series (write an instant "
                     "query: a vector or a scalar)")


def judge(values: Sequence[float], max_value: Optional[float],
          min_value: Optional[float]) -> Optional[str]:
    """Judge one sample of a query against its threshold.

    Args:
        values: the sample's value per series. max_value / min_value: the bounds (None = no
            bound); a value passes when ``value <= max_value`` and ``value >= min_value``.
    Returns:
        None when every value passes; otherwise why not: ``no data`` (empty result),
        ``NaN``, or ``0.5 > max 0.1`` for the worst offending value.
    """
    if not values:
        return "returned no data"
    if any(math.isnan(v) for v in values):
        return "returned NaN"
    if max_value is not None:
        worst = max(values)
        if worst > max_value:
            return f"returned {worst:g}, above max {max_value:g}"
    if min_value is not None:
        worst = min(values)
        if worst < min_value:
            return f"returned {worst:g}, below min {min_value:g}"
    return None


def worst_value(values: Sequence[float], max_value: Optional[float]) -> float:
    """The value a sample is remembered by: the largest when a max is set, else the smallest."""
    return max(values) if max_value is not None else min(values)


# -- the check ---------------------------------------------------------------------------------
def query_url(spec: AnalysisSpec) -> str:
    """``<prometheus>/api/v1/query?query=<query>`` for a prometheus check."""
    return (spec.url.rstrip("/") + "/api/v1/query?"
            + urllib.parse.urlencode({"query": spec.query}))


def _sample(spec: AnalysisSpec, get: HttpGet, timeout_s: float) -> Tuple[Optional[float], str]:
    """Take one sample: (value, "") or (None, what went wrong, value and threshold first; the
    query itself is added by the caller, last, as it may be long)."""
    if spec.kind == AnalysisKind.HTTP:
        resp = get(spec.url, timeout_s, MAX_PROBE_BYTES)
        if resp.status == 0:
            return None, f"GET {spec.url} got no answer: {resp.error}"
        if resp.status != spec.status:
            return None, f"GET {spec.url} answered {resp.status}, expected {spec.status}"
        return float(resp.status), ""
    resp = get(query_url(spec), timeout_s, MAX_RESPONSE_BYTES)
    if resp.status == 0:
        return None, f"query got no answer from {spec.url}: {resp.error}"
    try:
        values = query_values(resp.body)
    except ValueError as exc:
        return None, f"query got HTTP {resp.status} from {spec.url}: {exc}"
    if resp.status != 200:
        return None, f"query got HTTP {resp.status} from {spec.url}"
    bad = judge(values, spec.max_value, spec.min_value)
    if bad:
        return None, f"query {bad}"
    return worst_value(values, spec.max_value), ""


def run_analysis(spec: AnalysisSpec, *, http_get: HttpGet = urllib_get,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> AnalysisResult:
    """Run one check for its whole window, or until a sample fails.

    Args:
        spec: the check (URL already allowed by the operator; see ``policy.analysis``).
        http_get: does one GET (``urllib_get``; a recorder in unit tests).
        clock / sleep: a monotonic time source in seconds and a sleeper (fakes in unit tests).
    Returns:
        AnalysisResult: passed when every sample taken from the start until ``for_s`` seconds
        later passed (a first sample at once, then one every ``interval_s``, the last at the
        end of the window); otherwise failed at the first bad sample, with a reason giving
        the value or status seen and the threshold or expected status first, then the
        query (``query returned 0.5, above max 0.1 (after 4s of 60s): 'rate(...)'``) or the
        URL (``GET <url> answered 404, expected 200 (after 0s of 30s)``).
    Raises:
        Nothing: network errors are failed samples. Returns at most ``for_s`` +
        DEADLINE_MARGIN_S seconds after it was called.
    """
    start = clock()
    end = start + spec.for_s
    samples: List[float] = []
    while True:
        left = end + DEADLINE_MARGIN_S - clock()
        timeout_s = max(0.5, min(REQUEST_TIMEOUT_S, spec.interval_s, left))
        value, why = _sample(spec, http_get, timeout_s)
        if value is None:
            at = clock() - start
            why += f" (after {at:.0f}s of {spec.for_s:g}s)"
            if spec.kind == AnalysisKind.PROMETHEUS:
                why += f": {spec.query!r}"
            return AnalysisResult(False, why, tuple(samples), spec)
        samples.append(value)
        now = clock()
        if now >= end:
            return AnalysisResult(True, "", tuple(samples), spec)
        sleep(min(spec.interval_s, end - now))
