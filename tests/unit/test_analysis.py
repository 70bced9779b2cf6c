"""Analysis after a rollout (issue 10.2): options, the URL gate, the judgement, the check loop.

Pure functions only; the real Prometheus, service and swarm are in
tests/integration/test_analysis.py.
"""
import json

import pytest

from controller.config import Settings, settings_from_env
from controller.errors import ConfigError, ManifestError, PolicyError
from controller.health.analysis import HttpResponse, judge, query_values, run_analysis
from controller.model.analysis import AnalysisKind, AnalysisResult, AnalysisSpec
from controller.policy.analysis import check_analysis_allowed, url_allowed
from controller.reconcile.analysis_step import AnalysisStep, applicable
from controller.render.compose.loader import load_text
from controller.telemetry.metrics import MetricsRecorder

PROM = """x-keelson:
  analysis:
    prometheus: http://prom:9090
    query: sum(rate(errors_total[1m]))
    threshold: {max: 0.05}
    for: 30s
    interval: 2s
services:
  web:
    image: busybox:latest
    x-keelson:
      analysis:
        http: {url: "http://web.example:8080/healthz", status: 204}
  db:
    image: busybox:latest
"""


def test_options_read_stack_and_service_checks():
    m = load_text(PROM)
    top, web = m.options.analysis
    assert (top.kind, top.url, top.query, top.max_value, top.min_value) == (
        AnalysisKind.PROMETHEUS, "http://prom:9090", "sum(rate(errors_total[1m]))", 0.05, None)
    assert (top.for_s, top.interval_s, top.service, top.key) == (30, 2, "", "x-keelson.analysis")
    assert (web.kind, web.url, web.status, web.service) == (
        AnalysisKind.HTTP, "http://web.example:8080/healthz", 204, "web")
    assert (web.for_s, web.interval_s) == (60, 5)  # defaults
    assert web.key == "services.web.x-keelson.analysis"
    assert "x-keelson" not in m.compose["services"]["web"]  # Compose never sees it


def test_no_analysis_by_default():
    assert load_text("services:\n  a:\n    image: busybox\n").options.analysis == ()


@pytest.mark.parametrize("analysis, key, line, words", [
    ("    prometheus: http://p:9090\n    query: up\n", "x-keelson.analysis.threshold", 2,
     "threshold must be a mapping"),
    ("    prometheus: http://p:9090\n    query: up\n    threshold: {max: high}\n",
     "x-keelson.analysis.threshold.max", 5, "max must be a number"),
    ("    prometheus: ftp://p\n    query: up\n    threshold: {max: 1}\n",
     "x-keelson.analysis.prometheus", 3, "http:// or https://"),
    ("    prometheus: http://u:pw@p:9090\n    query: up\n    threshold: {max: 1}\n",
     "x-keelson.analysis.prometheus", 3, "credentials"),
    ("    http: {url: http://x/}\n    for: 2h\n", "x-keelson.analysis.for", 4, "at most 3600s"),
    ("    http: {url: http://x/}\n    for: 10s\n    interval: 20s\n",
     "x-keelson.analysis.interval", 5, "at most for"),
    ("    http: {url: http://x/}\n    for: soon\n", "x-keelson.analysis.for", 4,
     "invalid duration"),
    ("    http: {url: http://x/, status: 999}\n", "x-keelson.analysis.http.status", 3,
     "HTTP status code"),
    ("    http: {url: http://x/}\n    prometheus: http://p\n", "x-keelson.analysis", 2,
     "exactly one of"),
    ("    http: {url: http://x/}\n    treshold: {max: 1}\n", "x-keelson.analysis.treshold", 4,
     "unknown analysis key 'treshold'"),
])
def test_bad_analysis_names_key_and_line(analysis, key, line, words):
    text = "x-keelson:\n  analysis:\n" + analysis + "services:\n  a:\n    image: busybox\n"
    with pytest.raises(ManifestError) as err:
        load_text(text, filename="stack.yml")
    assert (err.value.key, err.value.line) == (key, line), str(err.value)
    assert words in str(err.value) and "stack.yml" in str(err.value)


def test_bad_service_analysis_is_located():
    text = ("services:\n  web:\n    image: busybox\n    x-keelson:\n      analysis:\n"
            "        http: {url: 'http://x/', status: ok}\n")
    with pytest.raises(ManifestError) as err:
        load_text(text, filename="stack.yml")
    assert err.value.key == "services.web.x-keelson.analysis.http.status"
    assert err.value.line == 6


# -- the SSRF gate -----------------------------------------------------------------------------
@pytest.mark.parametrize("url, allow, ok", [
    ("http://prom:9090/", (), False),  # default: nothing
    ("http://prom:9090", ("prom",), True),  # host: any port
    ("http://prom:9090", ("prom:9090",), True),
    ("http://prom:9091", ("prom:9090",), False),
    ("http://prom.evil.com:9090", ("prom",), False),
    ("http://prom:9090", ("http://prom:9090",), True),  # URL prefix
    ("https://prom:9090", ("http://prom:9090",), False),  # scheme differs
    ("http://prom:90901", ("http://prom:9090",), False),
    ("http://prom:9090/api/v1/query", ("http://prom:9090/api",), True),
    ("http://prom:9090/apix", ("http://prom:9090/api",), False),  # not at a / boundary
    ("http://status.example.com/probe/web", ("https://status.example.com/probe/",), False),
    ("https://status.example.com/probe/web", ("https://status.example.com/probe/",), True),
    ("https://status.example.com:443/probe/x", ("https://status.example.com/probe/",), True),
    ("http://169.254.169.254/latest/meta-data/", ("prom", "127.0.0.1"), False),
])
def test_url_allowed(url, allow, ok):
    assert url_allowed(url, allow) is ok


def test_gate_refuses_with_a_clear_policy_error():
    specs = load_text(PROM).options.analysis
    with pytest.raises(PolicyError) as err:
        check_analysis_allowed("shop", specs, ())
    text = str(err.value)
    assert "stack shop" in text and "KEELSON_ANALYSIS_ALLOW is empty" in text
    assert "x-keelson.analysis: http://prom:9090" in text
    assert err.value.reason == "PolicyDenied" and err.value.retryable
    with pytest.raises(PolicyError, match="services.web.x-keelson.analysis: http://web.exa"):
        check_analysis_allowed("shop", specs, ("prom:9090",))
    check_analysis_allowed("shop", specs, ("prom:9090", "http://web.example:8080/"))


def test_allow_setting_is_validated():
    kw = settings_from_env({"KEELSON_ANALYSIS_ALLOW": "prom:9090, http://web:8080/probe"})
    assert Settings(repo="/x", **kw).validated().analysis_allow == (
        "prom:9090", "http://web:8080/probe")
    for bad in ("ftp://x", "u:p@prom", "prom/path", "prom:port"):
        with pytest.raises(ConfigError, match="KEELSON_ANALYSIS_ALLOW"):
            Settings(repo="/x", analysis_allow=(bad,)).validated()


# -- pure judgement ----------------------------------------------------------------------------
@pytest.mark.parametrize("values, mx, mn, verdict", [
    ([0.01, 0.04], 0.05, None, None),
    ([0.05], 0.05, None, None),  # equal passes
    ([0.01, 0.2], 0.05, None, "returned 0.2, above max 0.05"),
    ([0.99], None, 0.99, None),
    ([0.5, 0.995], None, 0.99, "returned 0.5, below min 0.99"),
    ([3], 5, 1, None),
    ([], 1, None, "returned no data"),
    ([float("nan")], 1, None, "returned NaN"),
])
def test_judge(values, mx, mn, verdict):
    assert judge(values, mx, mn) == verdict


def answer(kind, result, status="success"):
    return json.dumps({"status": status, "data": {"resultType": kind, "result": result}}).encode()


def test_query_values():
    assert query_values(answer("vector", [{"metric": {}, "value": [1, "0.5"]},
                                          {"metric": {"a": "b"}, "value": [1, "2"]}])) == [0.5, 2]
    assert query_values(answer("scalar", [1, "7"])) == [7]
    assert query_values(answer("vector", [])) == []
    with pytest.raises(ValueError, match="instant query"):
        query_values(answer("matrix", []))
    with pytest.raises(ValueError, match="bad_data: parse error"):
        query_values(json.dumps({"status": "error", "errorType": "bad_data",
                                 "error": "parse error"}).encode())
    with pytest.raises(ValueError, match="not JSON"):
        query_values(b"<html>")


# -- the check loop, with a fake clock and fake HTTP -------------------------------------------
class Fake:
    """A clock that advances only when slept, and a GET that answers from a list."""

    def __init__(self, answers):
        self.now, self.answers, self.calls = 1000.0, list(answers), []

    def clock(self):
        return self.now

    def sleep(self, s):
        self.now += s

    def get(self, url, timeout_s, max_bytes):
        self.calls.append((url, timeout_s, self.now))
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]


def prom_spec(**kw):
    base = dict(kind=AnalysisKind.PROMETHEUS, url="http://prom:9090/", query="rate(e[1m])",
                max_value=0.1, for_s=10, interval_s=2)
    base.update(kw)
    return AnalysisSpec(**base)


def test_passes_after_sampling_the_whole_window():
    f = Fake([HttpResponse(200, answer("vector", [{"metric": {}, "value": [1, "0.01"]}]))])
    res = run_analysis(prom_spec(), http_get=f.get, clock=f.clock, sleep=f.sleep)
    assert res.passed and res.reason == "" and res.samples == (0.01,) * 6
    assert [c[2] - 1000 for c in f.calls] == [0, 2, 4, 6, 8, 10]
    assert f.calls[0][0] == "http://prom:9090/api/v1/query?query=rate%28e%5B1m%5D%29"
    assert all(c[1] <= 2 for c in f.calls)  # a request never outlasts the interval


def test_fails_at_the_first_bad_sample_naming_query_value_threshold():
    good = HttpResponse(200, answer("vector", [{"metric": {}, "value": [1, "0.01"]}]))
    bad = HttpResponse(200, answer("vector", [{"metric": {}, "value": [1, "0.5"]}]))
    f = Fake([good, good, bad, good])
    res = run_analysis(prom_spec(), http_get=f.get, clock=f.clock, sleep=f.sleep)
    assert not res.passed and res.samples == (0.01, 0.01) and len(f.calls) == 3
    assert res.reason == "query returned 0.5, above max 0.1 (after 4s of 10s): 'rate(e[1m])'"


@pytest.mark.parametrize("resp, words", [
    (HttpResponse(200, answer("vector", [])), "returned no data"),
    (HttpResponse(0, error="URLError: refused"),
     "got no answer from http://prom:9090/: URLError: refused"),
    (HttpResponse(400, json.dumps({"status": "error", "errorType": "bad_data",
                                   "error": "parse error"}).encode()),
     "got HTTP 400 from http://prom:9090/: Prometheus said bad_data: parse error"),
    (HttpResponse(502, b"<html>bad gateway</html>"), "got HTTP 502 from http://prom:9090/: "
                                                     "the answer is not JSON"),
])
def test_empty_result_or_http_error_fails(resp, words):
    f = Fake([resp])
    res = run_analysis(prom_spec(), http_get=f.get, clock=f.clock, sleep=f.sleep)
    assert not res.passed and words in res.reason and res.reason.endswith(": 'rate(e[1m])'")


def test_http_probe_expects_its_status():
    spec = AnalysisSpec(AnalysisKind.HTTP, "http://web:8080/missing", status=200, for_s=4,
                        interval_s=1)
    f = Fake([HttpResponse(200), HttpResponse(404)])
    res = run_analysis(spec, http_get=f.get, clock=f.clock, sleep=f.sleep)
    assert not res.passed and res.samples == (200,)
    assert res.reason == "GET http://web:8080/missing answered 404, expected 200 (after 1s of 4s)"
    f = Fake([HttpResponse(200)])
    assert run_analysis(spec, http_get=f.get, clock=f.clock, sleep=f.sleep).passed


# -- the step and the outcome ------------------------------------------------------------------
def test_applicable_checks():
    specs = load_text(PROM).options.analysis
    assert applicable(specs, "shop", []) == []
    assert [s.service for s in applicable(specs, "shop", ["shop_db"])] == [""]
    assert [s.service for s in applicable(specs, "shop", ["shop_web"])] == ["", "web"]


def samples(metrics, stack):
    return {s.labels["result"]: s.value for m in metrics.registry.collect()
            if m.name == "keelson_analysis" for s in m.samples
            if s.name.endswith("_total") and s.labels["stack"] == stack}


def test_post_check_counts_and_never_calls_a_refused_url():
    specs = load_text(PROM).options.analysis
    called = []

    def run(spec):
        called.append(spec)
        return AnalysisResult(spec.service != "web", "GET ... answered 404, expected 204", (),
                              spec)

    metrics = MetricsRecorder()
    step = AnalysisStep(("prom", "web.example"), metrics, run=run)
    assert step.post_check("shop", ["shop_db"], specs) is None
    why = step.post_check("shop", ["shop_web"], specs)
    assert why == "GET ... answered 404, expected 204 (service web)"
    assert samples(metrics, "shop") == {"passed": 1, "failed": 1}
    called.clear()
    refused = AnalysisStep((), metrics, run=run).post_check("shop", ["shop_db"], specs)
    assert called == [] and "not allowed by KEELSON_ANALYSIS_ALLOW" in refused
    metrics.forget_stack("shop")
    assert samples(metrics, "shop") == {}


def test_a_list_of_checks_and_a_crashing_check():
    m = load_text("x-keelson:\n  analysis:\n    - http: {url: 'http://a/'}\n"
                  "    - http: {url: 'http://b/', status: 204}\n"
                  "services:\n  s:\n    image: busybox\n")
    assert [(s.url, s.status, s.key) for s in m.options.analysis] == [
        ("http://a/", 200, "x-keelson.analysis.0"), ("http://b/", 204, "x-keelson.analysis.1")]

    def run(spec):
        if spec.url == "http://b/":
            raise RuntimeError("boom")
        return AnalysisResult(True, "", (200.0,), spec)

    why = AnalysisStep(("a", "b"), MetricsRecorder(), run=run).post_check(
        "st", ["st_s"], m.options.analysis)
    assert why == "internal error: boom"
