"""Analysis after a rollout (issue 10.2): what a stack asks Keelson to check, and the verdict.

Pure data. A stack opts in with ``x-keelson: {analysis: ...}`` at the top of its stack file
(every service of the stack) or under one service (that service only); see
``controller.render.compose.analysis_options`` for the shapes and
``controller.health.analysis`` for the check itself.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

from controller.model.status import Word


class AnalysisKind(Word):
    """How a check looks at the service: a PromQL query against Prometheus' HTTP API, or an
    HTTP GET whose status code must be the expected one."""

    PROMETHEUS = "prometheus"
    HTTP = "http"


class AnalysisVerdict(Word):
    """How one stack's analysis ended (``keelson_analysis_total{result}``)."""

    PASSED = "passed"
    FAILED = "failed"


DEFAULT_FOR_S = 60.0  # seconds an analysis runs when ``for`` is not given
DEFAULT_INTERVAL_S = 5.0  # seconds between two samples when ``interval`` is not given


@dataclass(frozen=True)
class AnalysisSpec:
    """One check a stack asks for after its rollout completed.

    Attributes:
        kind: prometheus or http.
        url: the Prometheus base URL (``http://prometheus:9090``; the query goes to
            ``<url>/api/v1/query``) or the URL an HTTP probe GETs.
        query: the PromQL query (prometheus only; "" for http).
        max_value / min_value: a sample passes when ``value <= max_value`` and
            ``value >= min_value`` (prometheus only; at least one is set).
        status: the HTTP status code a probe expects (http only; default 200).
        for_s: seconds the check runs (samples are taken until this much time has passed).
        interval_s: seconds between two samples.
        service: the service (short name, as in the stack file) the check belongs to, or ""
            for a stack-level check (run when any service of the stack rolled out).
        key: where it is written (``x-keelson.analysis`` or
            ``services.web.x-keelson.analysis``), for messages.
    """

    kind: AnalysisKind
    url: str
    query: str = ""
    max_value: Optional[float] = None
    min_value: Optional[float] = None
    status: int = 200
    for_s: float = DEFAULT_FOR_S
    interval_s: float = DEFAULT_INTERVAL_S
    service: str = ""
    key: str = "x-keelson.analysis"

    def describe(self) -> str:
        """One line naming the check: ``query '<q>' (max 0.05)`` or ``GET <url> (expect 200)``."""
        if self.kind == AnalysisKind.PROMETHEUS:
            return f"query {self.query!r} ({threshold_text(self.max_value, self.min_value)})"
        return f"GET {self.url} (expect {self.status})"


def threshold_text(max_value: Optional[float], min_value: Optional[float]) -> str:
    """``max 0.05``, ``min 0.99`` or ``min 1, max 5``: the threshold as the stack wrote it."""
    parts = []
    if min_value is not None:
        parts.append(f"min {min_value:g}")
    if max_value is not None:
        parts.append(f"max {max_value:g}")
    return ", ".join(parts)


@dataclass(frozen=True)
class AnalysisResult:
    """What one check came to.

    Attributes:
        passed: True when every sample passed for the whole ``for`` window.
        reason: why it failed, naming the check, the value seen and the threshold ("" when
            passed).
        samples: the values seen, oldest first (for a query, the worst series of each sample;
            for a probe, the status codes; an error is not a sample).
        spec: the check that ran.
    """

    passed: bool
    reason: str = ""
    samples: Tuple[float, ...] = ()
    spec: Optional[AnalysisSpec] = None
