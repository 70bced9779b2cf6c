"""`keelson run` as a child process, observed only through its public surface.

The benchmarks start ``python3 -m controller run`` with ``KEELSON_*`` variables (from the
checkout the bench lives in), wake it with ``POST /hooks/git``, and read what a pass did from
``GET /metrics`` (``keelson_reconcile_total``, ``keelson_reconcile_duration_seconds``). CPU and
memory come from ``/proc/<pid>/stat`` and ``/proc/<pid>/status``. Nothing here imports Keelson's
code, so the benchmarks keep working while its insides change.
"""
from __future__ import annotations

import os
import pathlib
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from typing import Dict, Mapping, Optional

ROOT = pathlib.Path(__file__).resolve().parents[1]
CLK_TCK = os.sysconf("SC_CLK_TCK")
_SAMPLE = re.compile(r'^(keelson_reconcile_total|keelson_reconcile_duration_seconds_sum|'
                     r'keelson_reconcile_duration_seconds_count)(\{[^}]*\})?\s+(\S+)$')


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class PassCounters:
    """Keelson's own pass counters at one moment (from /metrics).

    Attributes:
        passes: finished passes. seconds: their summed duration (s).
        by_result: result label (success, noop, partial, failed) -> passes.
    """

    passes: int
    seconds: float
    by_result: Mapping[str, int]


@dataclass(frozen=True)
class PassRecord:
    """One pass, as the difference of two PassCounters.

    Attributes:
        seconds: the pass's duration as Keelson measured it (keelson_reconcile_duration_seconds).
        result: its result label; ``?`` if more than one pass ended in between.
        passes: how many passes ended in between (1 when nothing else woke Keelson).
    """

    seconds: float
    result: str
    passes: int


@dataclass(frozen=True)
class ProcSample:
    """CPU time and memory of a process at one moment (from /proc).

    Attributes:
        at: time.monotonic() of the sample (s). cpu_s: user+system CPU of the process (s).
        children_cpu_s: CPU of its waited-for children (git), in s. rss_kib: VmRSS (KiB).
        hwm_kib: VmHWM, the peak resident set so far (KiB).
    """

    at: float
    cpu_s: float
    children_cpu_s: float
    rss_kib: int
    hwm_kib: int


def proc_sample(pid: int) -> ProcSample:
    """Read /proc/<pid>/stat and /proc/<pid>/status (raises OSError if the process is gone)."""
    stat = pathlib.Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2:].split()  # after "pid (comm) "
    utime, stime, cutime, cstime = (int(x) for x in fields[11:15])
    status = pathlib.Path(f"/proc/{pid}/status").read_text()
    mem = {k: int(v.split()[0]) for k, v in
           (line.split(":", 1) for line in status.splitlines() if line.startswith("Vm"))}
    return ProcSample(time.monotonic(), (utime + stime) / CLK_TCK, (cutime + cstime) / CLK_TCK,
                      mem.get("VmRSS", 0), mem.get("VmHWM", 0))


class KeelsonProcess:
    """One ``keelson run`` child.

    Args:
        env: KEELSON_* settings (and DOCKER_HOST) for the child; KEELSON_LISTEN is chosen here.
        log_path: file that receives the child's stdout and stderr.
    The child runs the code of this checkout (PYTHONPATH is set to it).
    """

    def __init__(self, env: Mapping[str, str], log_path: pathlib.Path):
        self.port = free_port()
        self.log_path = log_path
        full = dict(os.environ)
        full.update(env)
        full["KEELSON_LISTEN"] = f"127.0.0.1:{self.port}"
        full["PYTHONPATH"] = str(ROOT) + (os.pathsep + full["PYTHONPATH"]
                                          if full.get("PYTHONPATH") else "")
        self._log = open(log_path, "ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "controller", "run"], env=full,
                                     cwd=str(ROOT), stdout=self._log, stderr=subprocess.STDOUT)
        self.pid = self.proc.pid

    def _get(self, path: str, timeout_s: float = 10.0) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}",
                                    timeout=timeout_s) as r:
            return r.read().decode()

    def counters(self) -> PassCounters:
        """Keelson's pass counters now (raises OSError while the server is not up)."""
        passes, seconds, by_result = 0, 0.0, {}
        for line in self._get("/metrics").splitlines():
            m = _SAMPLE.match(line)
            if not m:
                continue
            name, labels, value = m.group(1), m.group(2) or "", float(m.group(3))
            if name == "keelson_reconcile_total":
                res = re.search(r'result="([^"]*)"', labels)
                by_result[res.group(1) if res else ""] = int(value)
            elif name.endswith("_sum"):
                seconds = value
            else:
                passes = int(value)
        return PassCounters(passes, seconds, by_result)

    def alive(self) -> bool:
        """True while the child runs."""
        return self.proc.poll() is None

    def _check_alive(self) -> None:
        if not self.alive():
            raise RuntimeError(f"keelson run exited with {self.proc.returncode}; "
                               f"see {self.log_path}")

    def wait_counters(self, timeout_s: float = 60.0) -> PassCounters:
        """Wait until the HTTP server answers; returns the counters then."""
        deadline = time.monotonic() + timeout_s
        while True:
            self._check_alive()
            try:
                return self.counters()
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"keelson's HTTP server did not answer; see {self.log_path}")
                time.sleep(0.1)

    def wait_pass(self, before: PassCounters, timeout_s: float = 900.0,
                  poll_s: float = 0.2) -> PassRecord:
        """Wait until a pass has ended after ``before``; returns what it recorded.

        Raises:
            RuntimeError: the child died, or no pass ended within ``timeout_s`` seconds.
        """
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self._check_alive()
            try:
                now = self.counters()
            except OSError:
                now = before
            if now.passes > before.passes:
                changed = [r for r, n in now.by_result.items() if n > before.by_result.get(r, 0)]
                result = changed[0] if len(changed) == 1 else "?"
                return PassRecord(now.seconds - before.seconds, result, now.passes - before.passes)
            time.sleep(poll_s)
        raise RuntimeError(f"no pass ended within {timeout_s:.0f} s; see {self.log_path}")

    def trigger(self) -> None:
        """Wake the loop (``POST /hooks/git``, no webhook secret set)."""
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}/hooks/git", data=b"{}",
                                     method="POST", headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            r.read()

    def run_pass(self, timeout_s: float = 900.0) -> PassRecord:
        """Trigger one pass and wait for it (see ``wait_pass``)."""
        before = self.counters()
        self.trigger()
        return self.wait_pass(before, timeout_s)

    def sample(self) -> ProcSample:
        """CPU and memory of the child now."""
        return proc_sample(self.pid)

    def stop(self, timeout_s: float = 60.0) -> None:
        """SIGTERM, wait (the current pass finishes first), then SIGKILL if needed."""
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


def keelson_env(repo: str, workdir: str, registry: str, instance: str,
                docker_host: Optional[str], interval: str) -> Dict[str, str]:
    """The KEELSON_* variables the benchmarks set (any other KEELSON_* of the caller passes on).

    Args:
        repo: KEELSON_REPO. workdir: KEELSON_WORKDIR. registry: KEELSON_REGISTRY (host:port).
        instance: KEELSON_INSTANCE (its stacks are the only ones it prunes).
        docker_host: DOCKER_HOST for the child, None for the default socket.
        interval: KEELSON_INTERVAL (``1h`` for timed passes, ``30s`` for the idle figure).
    """
    env = {"KEELSON_REPO": repo, "KEELSON_WORKDIR": workdir, "KEELSON_REGISTRY": registry,
           "KEELSON_INSTANCE": instance, "KEELSON_INTERVAL": interval,
           # the bench wakes Keelson with an unsigned POST /hooks/git on loopback
           "KEELSON_WEBHOOK_ALLOW_UNSIGNED": "true"}
    if docker_host:
        env["DOCKER_HOST"] = docker_host
    return env
