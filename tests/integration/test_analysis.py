"""Analysis after a rollout (issue 10.2) on the real swarm, with Debian's real Prometheus.

A busybox httpd service (published on a host-mode port) serves a static metrics file whose
value comes from the service's spec; a Prometheus on loopback (own config, data folder and
port) scrapes it every second. The service's healthcheck passes only once Prometheus has
scraped it, so Swarm's rollout completes only when Prometheus holds the new task's value.

- good metrics: the analysis passes, the stack is Synced;
- a commit whose metrics are bad (healthy for Swarm): the analysis fails, the service is rolled
  back to its previous spec, the stack is Failed, then Stalled, with reason AnalysisFailed and
  the query and value in its status and history;
- the HTTP probe form: 200 passes, a path that 404s fails and rolls back;
- the SSRF gate: a URL KEELSON_ANALYSIS_ALLOW does not list refuses the stack, nothing written.
"""
from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request

import pytest

from tests.integration.keelson_app import make_app, versions, writes

pytestmark = pytest.mark.integration

PROMETHEUS = shutil.which("prometheus")
UPDATE = """    deploy:
      replicas: 1
      update_config: {parallelism: 1, delay: 0s, monitor: 2s, failure_action: rollback}
      rollback_config: {parallelism: 0, delay: 0s, monitor: 1s}
"""


def free_port() -> int:
    """A TCP port free on this host right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def web_service(registry: str, port: int, ratio: str, analysis: str = "") -> str:
    """One httpd serving /index.html and /metrics (``app_error_ratio <ratio>``), healthy only
    once something (Prometheus) fetched /metrics."""
    return f"""  web:
    image: {registry}/library/busybox:latest
    command: ["sh", "-c", "mkdir -p /www && echo ok > /www/index.html && echo \\"app_error_ratio $$RATIO\\" > /www/metrics && exec httpd -f -vv -p 8080 -h /www 2>/tmp/httpd.log"]
    environment:
      RATIO: "{ratio}"
    ports:
      - {{target: 8080, published: {port}, mode: host}}
    healthcheck:
      test: ["CMD-SHELL", "grep -q url:/metrics /tmp/httpd.log"]
      interval: 1s
      timeout: 1s
      retries: 30
      start_period: 30s
{UPDATE}{analysis}"""


def status(app, stack: str) -> dict:
    return app.store.snapshot()["stacks"][stack]


def env_of(engine, service: str) -> list:
    return engine.services.get(service).attrs["Spec"]["TaskTemplate"]["ContainerSpec"]["Env"]


def analysis_counts(app, stack: str) -> dict:
    return {s.labels["result"]: s.value for m in app.metrics.registry.collect()
            if m.name == "keelson_analysis" for s in m.samples
            if s.name.endswith("_total") and s.labels["stack"] == stack}


@pytest.fixture
def prometheus(tmp_path):
    """Start Debian's prometheus on loopback; returns (base URL, start(target_port))."""
    if PROMETHEUS is None:
        pytest.fail("prometheus is not installed (scripts/dev-env.sh installs it)")
    procs = []

    def start(target_port: int) -> str:
        port = free_port()
        conf = tmp_path / "prometheus.yml"
        conf.write_text(f"""global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: kan
    static_configs:
      - targets: ['127.0.0.1:{target_port}']
""")
        log = open(tmp_path / "prometheus.log", "wb")
        procs.append(subprocess.Popen(
            [PROMETHEUS, f"--config.file={conf}", f"--storage.tsdb.path={tmp_path / 'data'}",
             f"--web.listen-address=127.0.0.1:{port}"], stdout=log, stderr=subprocess.STDOUT))
        url = f"http://127.0.0.1:{port}"
        for _ in range(120):
            try:
                with urllib.request.urlopen(f"{url}/-/ready", timeout=2) as r:
                    if r.status == 200:
                        return url
            except OSError:
                time.sleep(0.5)
        pytest.fail("prometheus did not become ready: "
                    + (tmp_path / "prometheus.log").read_text()[-2000:])

    yield start
    for p in procs:
        p.terminate()
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            p.kill()


def query(prom: str, q: str) -> list:
    url = f"{prom}/api/v1/query?" + urllib.parse.urlencode({"query": q})
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.load(r)["data"]["result"]


def test_promql_analysis_passes_then_fails_and_rolls_back(engine, registry, manifest_repo,
                                                          stack_names, tmp_path, prometheus):
    name = stack_names("kan")
    port = free_port()
    prom = prometheus(port)
    q = 'max_over_time(app_error_ratio{job="kan"}[20s])'
    analysis = f"""x-keelson:
  analysis:
    prometheus: {prom}
    query: '{q}'
    threshold: {{max: 0.1}}
    for: 3s
    interval: 1s
"""
    manifest_repo.write(f"manifests/{name}/stack.yml",
                        analysis + "services:\n" + web_service(registry, port, "0.01"))
    good = manifest_repo.commit("good metrics")
    app = make_app(manifest_repo.url, tmp_path / "wd", registry, [name],
                   analysis_allow=(prom.split("//")[1],))
    assert app.sync().converged, app.store.snapshot()
    st = status(app, name)
    assert (st["sync_status"], st["last_applied_revision"]) == ("Synced", good), st
    assert analysis_counts(app, name) == {"passed": 1, "failed": 0}
    assert [float(s["value"][1]) for s in query(prom, q)] == [0.01]  # Prometheus saw it

    manifest_repo.write(f"manifests/{name}/stack.yml",
                        analysis + "services:\n" + web_service(registry, port, "0.5"))
    bad = manifest_repo.commit("bad metrics, healthy for Swarm")
    assert not app.sync().converged
    st = status(app, name)
    assert (st["sync_status"], st["reason"], st["health_status"]) == (
        "Failed", "AnalysisFailed", "RolledBack"), st
    # the failed check fails the wave; the stack is rolled back (issue 10)
    assert st["last_error"].startswith(f"failed at revision {bad[:12]}: {name}_web: failed "
                                       "(query returned 0.5, above max 0.1 (after "), st
    assert f"s of 3s): {q!r}" in st["last_error"]
    assert f"stack rolled back: {name}_web returned to {good[:12]}" in st["last_error"], st
    assert st["last_applied_revision"] == good
    assert st["history"][0]["result"] == "AnalysisFailed"
    assert "returned 0.5" in st["history"][0]["message"]
    assert "RATIO=0.01" in env_of(engine, f"{name}_web")  # back on the previous spec
    assert engine.services.get(f"{name}_web").attrs["UpdateStatus"]["State"] in (
        "rollback_completed", "completed")
    assert analysis_counts(app, name) == {"passed": 1, "failed": 1}

    v, w = versions(engine, name), writes(app)
    app.sync()  # same inputs: Stalled, nothing applied, no analysis
    st = status(app, name)
    assert (st["sync_status"], st["reason"]) == ("Stalled", "AnalysisFailed"), st
    assert "returned 0.5" in st["last_error"]
    assert versions(engine, name) == v and writes(app) == w
    assert analysis_counts(app, name) == {"passed": 1, "failed": 1}


def probe_stack(registry: str, port: int, env: str, path: str) -> str:
    return f"""services:
  web:
    image: {registry}/library/busybox:latest
    command: ["sh", "-c", "mkdir -p /www && echo ok > /www/index.html && exec httpd -f -p 8080 -h /www"]
    environment:
      VERSION: "{env}"
    ports:
      - {{target: 8080, published: {port}, mode: host}}
    healthcheck:
      test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/index.html"]
      interval: 1s
      timeout: 1s
      retries: 5
      start_period: 5s
{UPDATE}    x-keelson:
      analysis:
        http: {{url: "http://127.0.0.1:{port}{path}", status: 200}}
        for: 2s
        interval: 1s
"""


def test_http_probe_analysis(engine, registry, manifest_repo, stack_names, tmp_path):
    name = stack_names("kan")
    port = free_port()
    manifest_repo.write(f"manifests/{name}/stack.yml", probe_stack(registry, port, "1",
                                                                   "/index.html"))
    manifest_repo.commit("probe finds the page")
    app = make_app(manifest_repo.url, tmp_path / "wd", registry, [name],
                   analysis_allow=(f"http://127.0.0.1:{port}/",))
    assert app.sync().converged, app.store.snapshot()
    assert status(app, name)["sync_status"] == "Synced"
    assert analysis_counts(app, name) == {"passed": 1, "failed": 0}

    manifest_repo.write(f"manifests/{name}/stack.yml", probe_stack(registry, port, "2",
                                                                   "/missing"))
    manifest_repo.commit("probe a path that 404s")
    assert not app.sync().converged
    st = status(app, name)
    assert (st["sync_status"], st["reason"]) == ("Failed", "AnalysisFailed"), st
    assert (f"GET http://127.0.0.1:{port}/missing answered 404, expected 200"
            in st["last_error"]), st
    assert "(service web)" in st["last_error"]
    assert "VERSION=1" in env_of(engine, f"{name}_web")


def test_analysis_url_not_allowed_refuses_the_stack(engine, registry, manifest_repo,
                                                    stack_names, tmp_path):
    name = stack_names("kan")
    manifest_repo.write(f"manifests/{name}/stack.yml", f"""x-keelson:
  analysis:
    prometheus: http://169.254.169.254/latest
    query: up
    threshold: {{min: 1}}
services:
  app:
    image: {registry}/library/busybox:latest
    command: ["sleep", "3600"]
""")
    manifest_repo.commit("analysis against a URL the operator did not allow")
    app = make_app(manifest_repo.url, tmp_path / "wd", registry, [name],
                   analysis_allow=("prometheus:9090",))
    assert not app.sync().converged
    st = status(app, name)
    assert (st["sync_status"], st["reason"]) == ("Failed", "PolicyDenied"), st
    assert st["last_error"] == (
        f"stack {name}: analysis URL refused (not in KEELSON_ANALYSIS_ALLOW "
        "(prometheus:9090)): x-keelson.analysis: http://169.254.169.254/latest"), st
    assert versions(engine, name) == {} and writes(app) == 0
    assert engine.configs.list(filters={"label": f"com.docker.stack.namespace={name}"}) == []


def test_requests_are_bounded_and_carry_nothing_of_the_controller(monkeypatch):
    """The real urllib GET against a loopback server: no redirect followed, a too large
    answer refused, 4xx returned as a status, no proxy from the environment, no credentials."""
    import http.server
    import threading

    from controller.health.analysis import urllib_get

    seen = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's name
            seen.append(dict(self.headers))
            if self.path == "/redirect":
                self.send_response(302)
                self.send_header("Location", "http://169.254.169.254/")
                self.end_headers()
            elif self.path == "/big":
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"x" * 5000)
            elif self.path == "/ok":
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"fine")
            else:
                self.send_error(404)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")  # would refuse every request
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    try:
        assert urllib_get(f"{base}/ok", 5, 100) == urllib_get(f"{base}/ok", 5, 100)
        ok = urllib_get(f"{base}/ok", 5, 100)
        assert (ok.status, ok.body, ok.error) == (200, b"fine", "")
        assert urllib_get(f"{base}/redirect", 5, 100).status == 302
        big = urllib_get(f"{base}/big", 5, 1000)
        assert big.status == 0 and "larger than 1000 bytes" in big.error
        assert urllib_get(f"{base}/missing", 5, 10000).status == 404
        assert urllib_get("http://127.0.0.1:9/", 2, 100).status == 0  # refused: no answer
    finally:
        server.shutdown()
    assert len(seen) == 6  # the redirect was not followed
    assert not any(k.lower() in ("authorization", "cookie", "proxy-authorization")
                   for h in seen for k in h)
    assert {h["User-Agent"] for h in seen} == {"keelson-analysis"}
