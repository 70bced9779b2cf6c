"""Keelson against looping ``docker stack deploy``: the figures of issue 12, in one run.

    PYTHONPATH=$PWD python3 -m bench.run --quick        # a few minutes: 20 stacks, 2 pairs
    PYTHONPATH=$PWD python3 -m bench.run --out bench/RESULTS-current.md   # full mode

What it measures (Keelson is always a ``keelson run`` child of this checkout, driven only by
``KEELSON_*`` variables, ``POST /hooks/git``, ``GET /metrics``, git pushes and /proc):

1. Control plane (replicas 0), at each scale (full: 20, 100, 300 stacks x 3 services):
   a full deploy (from no stack to every service created) and a no-op pass (nothing changed),
   against the docker loop (``docker stack deploy`` of every file, one after another).
   Keelson's time is its pass as ``keelson_reconcile_duration_seconds`` records it.
2. Full deploy with replicas 1 at 20 stacks, until every task runs (wall time, both sides).
3. Commit -> converged: a one-line commit (s0 replicas 1 -> 2) in the last stack of 20, pushed
   to the bare repo Keelson watches; from the push's return to the new task Running, against
   ``docker stack deploy`` of that stack's changed file (from its start to the same moment).
4. Requests to dockerd and to the registry per pass (both sides), counted by proxies:
   Keelson and the docker CLI use ``DOCKER_HOST=unix://<counting socket>``; stack files name
   the image ``127.0.0.1:<counting port>/library/busybox:latest`` and Keelson's
   KEELSON_REGISTRY is that port, so every digest look-up dockerd makes for either side goes
   through the registry proxy (dockerd treats 127.0.0.0/8 registries as plain HTTP).
5. Idle ``keelson run`` (KEELSON_INTERVAL=30s) with converged stacks (full: 100; 3 minutes):
   CPU % of one core and RSS from /proc, requests per minute; and RSS with 300 stacks.

Pairs alternate who goes first (Keelson in even pairs); figures are medians. Every stack is
named ``kbench<run id>...``; leftovers of a killed run are removed at start, everything at the
end. Any other ``KEELSON_*`` variable in the environment passes on to Keelson (e.g. try
``KEELSON_WORKERS=8``). Needs the dev environment (``bash scripts/dev-env.sh``) and busybox
pushed to 127.0.0.1:5000.
"""
from __future__ import annotations

import argparse
import dataclasses
import fcntl
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
import uuid
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

from bench import figures as F
from bench.keelson_proc import KeelsonProcess, PassCounters, keelson_env
from bench.proxy import CountingProxy, RequestCount
from bench.workload import (PREFIX, Swarm, Workload, docker_deploy, docker_loop,
                            make_workload, stack_prefixes_in_use, stack_text)

UPSTREAM_REGISTRY = ("127.0.0.1", 5000)
DOCKER_SOCKET = "/var/run/docker.sock"
LOCK_FILE = "/tmp/keelson-bench.lock"
IMAGE_PATH = "library/busybox:latest"
SETTLE_S = 1.0  # after removing a side's stacks, before timing its deploy (both sides alike)


@dataclass(frozen=True)
class Plan:
    """What one run measures.

    Attributes:
        scales: stack counts of the control-plane figures (replicas 0).
        pairs: alternating pairs per control-plane scale (same order as ``scales``).
        running_stacks: stacks of the replicas-1 full deploy and of the latency figure.
        running_pairs: pairs of the replicas-1 full deploy. latency_pairs: commit->converged pairs.
        idle_stacks: converged stacks (one of ``scales``) during the idle window of
            ``idle_s`` seconds at KEELSON_INTERVAL ``idle_interval``.
    """

    scales: Tuple[int, ...]
    pairs: Tuple[int, ...]
    running_stacks: int
    running_pairs: int
    latency_pairs: int
    idle_stacks: int
    idle_s: float
    idle_interval: str = "30s"


QUICK = Plan(scales=(20,), pairs=(2,), running_stacks=20, running_pairs=2, latency_pairs=2,
             idle_stacks=20, idle_s=60)
FULL = Plan(scales=(20, 100, 300), pairs=(5, 5, 3), running_stacks=20, running_pairs=3,
            latency_pairs=5, idle_stacks=100, idle_s=180)


@dataclass(frozen=True)
class Sample:
    """One measurement.

    Attributes:
        figure: ``noop``, ``full``, ``running`` or ``latency``. stacks: scale.
        side: keelson or docker. seconds: the time measured.
        dockerd, registry: requests counted through the proxies during it.
        note: e.g. the pass result when it was not the expected one.
    """

    figure: str
    stacks: int
    side: str
    seconds: float
    dockerd: Optional[RequestCount] = None
    registry: Optional[RequestCount] = None
    note: str = ""


@dataclass(frozen=True)
class IdleFigure:
    """``keelson run`` left alone with converged stacks.

    Attributes:
        stacks: converged stacks. window_s: seconds observed. passes: passes in the window.
        cpu_pct: CPU of the process, % of one core. cpu_children_pct: same incl. its git children.
        rss_max_mib: largest VmRSS sampled. dockerd_per_min, registry_per_min: requests/minute.
    """

    stacks: int
    window_s: float
    passes: int
    cpu_pct: float
    cpu_children_pct: float
    rss_max_mib: float
    dockerd_per_min: float
    registry_per_min: float


@dataclass(frozen=True)
class MemoryFigure:
    """Keelson's memory at one scale: VmRSS after its passes and VmHWM (peak), MiB."""

    stacks: int
    rss_mib: float
    hwm_mib: float


@dataclass
class Results:
    """Everything one run measured (filled as the run goes; printed at the end)."""

    samples: List[Sample] = field(default_factory=list)
    idle: Optional[IdleFigure] = None
    memory: Optional[MemoryFigure] = None
    push_s: List[float] = field(default_factory=list)
    routes: Dict[str, RequestCount] = field(default_factory=dict)
    notes: List[str] = field(default_factory=list)


def say(text: str) -> None:
    """Progress on stderr (the table goes to stdout)."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


class Bench:
    """One run: proxies, the swarm, a temp folder, and the results.

    Args:
        plan: what to measure. base: temp folder (removed at the end unless ``keep``).
    """

    def __init__(self, plan: Plan, base: pathlib.Path):
        self.plan = plan
        self.base = base
        self.run_id = uuid.uuid4().hex[:4]
        self.swarm = Swarm()
        self.docker_proxy = CountingProxy(str(base / "docker.sock"), DOCKER_SOCKET).start()
        self.registry_proxy = CountingProxy(("127.0.0.1", 0), UPSTREAM_REGISTRY).start()
        self.docker_host = f"unix://{self.docker_proxy.address}"
        self.registry = f"127.0.0.1:{self.registry_proxy.address[1]}"
        self.image = f"{self.registry}/{IMAGE_PATH}"
        self.results = Results()
        self._groups = 0

    # -- helpers -------------------------------------------------------------------------

    def counts(self) -> Tuple[RequestCount, RequestCount]:
        """(dockerd, registry) request counts so far."""
        return self.docker_proxy.snapshot(), self.registry_proxy.snapshot()

    def new_group(self, stacks: int, replicas: int) -> Tuple[str, Workload]:
        """A fresh stack-name prefix and its workload (repo + files)."""
        letter = "abcdefghijklmnopqrstuvwxyz"[self._groups]
        self._groups += 1
        group = f"{PREFIX}{self.run_id}{letter}"
        return group, make_workload(self.base / group, group, stacks, self.image, replicas)

    def start_keelson(self, group: str, w: Workload, interval: str = "1h") -> KeelsonProcess:
        """``keelson run`` following ``w``'s bare repo; returns after its first pass."""
        env = keelson_env(repo=str(w.remote), workdir=str(self.base / group / "keelson-wd"),
                          registry=self.registry, instance=f"{group}-keelson",
                          docker_host=self.docker_host, interval=interval)
        k = KeelsonProcess(env, self.base / group / f"keelson-{interval}.log")
        k.wait_counters()
        first = k.wait_pass(PassCounters(0, 0.0, {}))
        if first.result not in ("success", "noop"):
            raise RuntimeError(f"Keelson's first pass ended {first.result}; see {k.log_path}")
        return k

    def keelson_pass(self, k: KeelsonProcess, figure: str, stacks: int,
                     expect: Sequence[str]) -> Sample:
        """Trigger one pass; its own duration, and the requests it made."""
        d0, r0 = self.counts()
        rec = k.run_pass()
        d1, r1 = self.counts()
        note = "" if rec.result in expect else f"result {rec.result}"
        if rec.passes != 1:
            note = f"{rec.passes} passes"
        return Sample(figure, stacks, F.KEELSON, rec.seconds, d1.minus(d0), r1.minus(r0), note)

    def docker_run(self, w: Workload, figure: str, stacks: int) -> Sample:
        """The docker loop over ``w``'s files; wall time and the requests it made."""
        d0, r0 = self.counts()
        t0 = time.monotonic()
        docker_loop(w, self.docker_host)
        seconds = time.monotonic() - t0
        d1, r1 = self.counts()
        return Sample(figure, stacks, F.DOCKER, seconds, d1.minus(d0), r1.minus(r0))

    def record(self, s: Sample) -> None:
        """Keep a sample and print it as progress."""
        self.results.samples.append(s)
        say(f"{s.figure:<8} {s.stacks:>4} stacks {s.side:<8} {s.seconds:8.2f} s"
            f"  dockerd {s.dockerd.total if s.dockerd else '-'}"
            f"  registry {s.registry.total if s.registry else '-'} {s.note}")

    # -- the figures ---------------------------------------------------------------------

    def control_plane(self, stacks: int, pairs: int) -> None:
        """Full deploy and no-op pass at ``stacks`` x 3 services, replicas 0 (figures 1, 4, 5)."""
        group, w = self.new_group(stacks, replicas=0)
        say(f"control plane: {stacks} stacks, {pairs} pairs ({group}*)")
        k = self.start_keelson(group, w)  # warm-up: its first pass deploys everything
        docker_loop(w, self.docker_host)  # warm-up of the docker side
        try:
            for i in range(pairs):
                order = F.pair_order(i)
                for side in order:
                    self.swarm.remove_prefix(group + side[0])
                    time.sleep(SETTLE_S)
                    if side == F.KEELSON:
                        s = self.keelson_pass(k, "full", stacks, ("success",))
                        self.repair(k, group + "k", w.services)
                    else:
                        s = self.docker_run(w, "full", stacks)
                    self.record(s)
                for side in order:
                    if side == F.KEELSON:
                        s = self.keelson_pass(k, "noop", stacks, ("noop",))
                        self.results.routes[f"noop {stacks}"] = s.registry
                        self.results.routes[f"noop-dockerd {stacks}"] = s.dockerd
                    else:
                        s = self.docker_run(w, "noop", stacks)
                    self.record(s)
            sample = k.sample()
            if self.results.memory is None or stacks >= self.results.memory.stacks:
                self.results.memory = MemoryFigure(stacks, sample.rss_kib / 1024,
                                                   sample.hwm_kib / 1024)
        finally:
            k.stop()
        if stacks == self.plan.idle_stacks:
            self.swarm.remove_prefix(group + "d")
            self.idle(group, w, stacks)
        self.swarm.remove_prefix(group)

    def idle(self, group: str, w: Workload, stacks: int) -> None:
        """A fresh ``keelson run`` at the idle interval with ``stacks`` converged stacks."""
        say(f"idle: {stacks} converged stacks, {self.plan.idle_s:.0f} s at "
            f"KEELSON_INTERVAL={self.plan.idle_interval}")
        k = self.start_keelson(group, w, interval=self.plan.idle_interval)
        try:
            c0 = k.counters()
            d0, r0 = self.counts()
            s0 = k.sample()
            rss_max = s0.rss_kib
            end = s0.at + self.plan.idle_s
            while time.monotonic() < end:
                time.sleep(min(5.0, max(0.0, end - time.monotonic())))
                rss_max = max(rss_max, k.sample().rss_kib)
            s1 = k.sample()
            d1, r1 = self.counts()
            c1 = k.counters()
        finally:
            k.stop()
        window = s1.at - s0.at
        self.results.idle = IdleFigure(
            stacks, window, c1.passes - c0.passes,
            100 * (s1.cpu_s - s0.cpu_s) / window,
            100 * (s1.cpu_s + s1.children_cpu_s - s0.cpu_s - s0.children_cpu_s) / window,
            rss_max / 1024, d1.minus(d0).total * 60 / window, r1.minus(r0).total * 60 / window)
        say(f"idle: {self.results.idle}")

    def running_and_latency(self) -> None:
        """Full deploy until every task runs (replicas 1), then commit -> converged (2, 3)."""
        stacks, pairs = self.plan.running_stacks, self.plan.running_pairs
        group, w = self.new_group(stacks, replicas=1)
        say(f"replicas 1: {stacks} stacks, {pairs} pairs; latency {self.plan.latency_pairs} "
            f"pairs ({group}*)")
        k = self.start_keelson(group, w)
        try:
            self.swarm.wait_running(group + "k", w.services)
            docker_loop(w, self.docker_host)
            self.swarm.wait_running(group + "d", w.services)
            for i in range(pairs):
                for side in F.pair_order(i):
                    prefix = group + side[0]
                    self.swarm.remove_prefix(prefix)
                    time.sleep(SETTLE_S)
                    t0 = time.monotonic()
                    if side == F.KEELSON:
                        note = self.keelson_until_running(k, prefix, w.services)
                    else:
                        docker_loop(w, self.docker_host)
                        self.record(Sample("returned", stacks, F.DOCKER,
                                           time.monotonic() - t0))
                        self.swarm.wait_running(prefix, w.services)
                        note = ""
                    self.record(Sample("running", stacks, side, time.monotonic() - t0,
                                       note=note))
            self.latency(k, w)
        finally:
            k.stop()
        self.swarm.remove_prefix(group)

    def repair(self, k: KeelsonProcess, prefix: str, services: int, tries: int = 3) -> None:
        """After a failed full-deploy pass: more passes until every service exists again."""
        for _ in range(tries):
            if self.swarm.count_services(prefix) >= services:
                return
            k.run_pass()
        if self.swarm.count_services(prefix) < services:
            raise RuntimeError(f"Keelson did not deploy every {prefix}* service; see {k.log_path}")

    def keelson_until_running(self, k: KeelsonProcess, prefix: str, services: int,
                              tries: int = 3) -> str:
        """Trigger passes (at most ``tries``) until every task of ``prefix*`` runs.

        Returns:
            str: a note for the sample ("" when the first pass succeeded).
        """
        notes = []
        for attempt in range(tries):
            rec = k.run_pass()
            if rec.result == "success":
                break
            notes.append(f"pass {attempt + 1} {rec.result}")
        self.swarm.wait_running(prefix, services)
        return "; ".join(notes)

    def latency(self, k: KeelsonProcess, w: Workload) -> None:
        """Commit -> first new task Running, against ``docker stack deploy`` of that stack."""
        idx = len(w.keelson_names) - 1  # the last stack in name order
        k_service = f"{w.keelson_names[idx]}_s0"
        d_service = f"{w.docker_names[idx]}_s0"
        up_text = stack_text(self.image, idx, 1, replicas_s0=2)
        down_text = stack_text(self.image, idx, 1)
        up_file = self.base / "latency-up.yml"
        up_file.write_text(up_text)
        stacks = len(w.keelson_names)
        for i in range(self.plan.latency_pairs):
            for side in F.pair_order(i):
                if side == F.KEELSON:
                    self.wait_quiet(k)
                    before = k.counters()
                    w.commit_stack(idx, up_text, "s0: 2 replicas")
                    p0 = time.monotonic()
                    w.push()
                    t0 = time.monotonic()
                    self.results.push_s.append(t0 - p0)
                    t1 = self.swarm.wait_tasks(k_service, 2)
                    k.wait_pass(before)
                else:
                    t0 = time.monotonic()
                    docker_deploy(up_file, w.docker_names[idx], self.docker_host)
                    t1 = self.swarm.wait_tasks(d_service, 2)
                self.record(Sample("latency", stacks, side, t1 - t0))
            # back to 1 replica on both sides, and let it settle
            self.wait_quiet(k)
            before = k.counters()
            w.commit_stack(idx, down_text, "s0: 1 replica")
            w.push()
            k.wait_pass(before)
            docker_deploy(w.files[idx], w.docker_names[idx], self.docker_host)
            self.swarm.wait_tasks(k_service, 1, settled=True)
            self.swarm.wait_tasks(d_service, 1, settled=True)

    @staticmethod
    def wait_quiet(k: KeelsonProcess, quiet_s: float = 3.0, timeout_s: float = 300.0) -> None:
        """Wait until no pass has ended for ``quiet_s`` seconds (file events may queue one)."""
        deadline = time.monotonic() + timeout_s
        last, since = k.counters().passes, time.monotonic()
        while time.monotonic() - since < quiet_s and time.monotonic() < deadline:
            time.sleep(0.2)
            now = k.counters().passes
            if now != last:
                last, since = now, time.monotonic()

    def clean_up(self) -> bool:
        """Remove every stack of this run; False (and a note) if that failed."""
        try:
            self.swarm.remove_prefix(PREFIX + self.run_id)
            return True
        except Exception as exc:  # e.g. dockerd restarted under us; the next run removes them
            self.results.notes.append(f"removing {PREFIX}{self.run_id}* failed: {exc}; the "
                                      "next run removes the leftovers")
            return False

    def close(self) -> None:
        """Stop the proxies and the swarm client."""
        self.docker_proxy.stop()
        self.registry_proxy.stop()
        self.swarm.close()


# -- the report ------------------------------------------------------------------------------

def _med(samples: Sequence[Sample], figure: str, stacks: int, side: str,
         value=lambda s: s.seconds) -> Optional[float]:
    return F.median([value(s) for s in samples
                     if s.figure == figure and s.stacks == stacks and s.side == side])


def _count(samples: Sequence[Sample], figure: str, stacks: int, side: str,
           which: str) -> Optional[float]:
    chosen = [s for s in samples if s.figure == figure and s.stacks == stacks and s.side == side
              and getattr(s, which) is not None]
    return F.median([getattr(s, which).total for s in chosen])


def report(plan: Plan, res: Results, elapsed_s: float, mode: str, context: str = "") -> str:
    """The Markdown report of one run (tables with targets); ``context`` goes in the header."""
    s = res.samples
    out = [f"Keelson vs `docker stack deploy`, {mode} mode, "
           f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, run took "
           f"{elapsed_s / 60:.1f} min, {os.cpu_count()} CPUs. {context} Medians of alternating "
           "pairs; ratio = Keelson / docker.", ""]

    rows = []
    noop_times = []
    for stacks, pairs in zip(plan.scales, plan.pairs):
        for figure, label, limit, target_scale in (("noop", "no-op pass", 0.05, 100),
                                                   ("full", "full deploy", 0.8, None)):
            k = _med(s, figure, stacks, F.KEELSON)
            d = _med(s, figure, stacks, F.DOCKER)
            r = F.ratio(k, d)
            if figure == "noop" and k is not None:
                noop_times.append((stacks, k))
            t = F.at_most(r, limit, f"<= {limit}x")
            target, verdict = t.text, t.verdict
            if target_scale is not None and stacks != target_scale:
                target, verdict = f"{t.text} at {target_scale}", ""
            notes = sorted({x.note for x in s if x.figure == figure and x.stacks == stacks
                            and x.note})
            rows.append([stacks, label, F.fmt(k), F.fmt(d), F.fmt(r), target, verdict,
                         pairs, "; ".join(notes)])
    out += ["### Control plane (replicas 0; 3 services per stack)", "",
            "Keelson: its pass as `keelson_reconcile_duration_seconds` records it. docker: "
            "wall time of `docker stack deploy` over every file, one after another.", "",
            F.table(["stacks", "measure", "keelson s", "docker s", "ratio", "target", "",
                     "pairs", "notes"], rows), ""]
    if len(noop_times) > 1:
        grow_rows = [[step, F.fmt(f), F.fmt(lin, 1), t.verdict]
                     for step, f, lin, t in F.growth(noop_times)]
        per_stack = ", ".join(f"{n}: {1000 * t / n:.1f} ms" for n, t in noop_times)
        out += [f"No-op pass per stack: {per_stack}. Target: grows no faster than linearly "
                "(within 10 %).", "",
                F.table(["stacks", "no-op time grew", "linear", ""], grow_rows), ""]

    n = plan.running_stacks
    k, d = _med(s, "running", n, F.KEELSON), _med(s, "running", n, F.DOCKER)
    ret = _med(s, "returned", n, F.DOCKER)
    t = F.at_most(F.ratio(k, d), 0.8, "<= 0.8x")
    lk, ld = _med(s, "latency", n, F.KEELSON), _med(s, "latency", n, F.DOCKER)
    tl = F.at_most(F.ratio(lk, ld), 1.5, "<= 1.5x")
    out += ["### Until tasks run (replicas 1)", "",
            F.table(["measure", "keelson s", "docker s", "ratio", "target", ""], [
                [f"full deploy, {n} stacks, until every task runs", F.fmt(k), F.fmt(d),
                 F.fmt(F.ratio(k, d)), t.text, t.verdict],
                [f"(docker loop as its CLI returns, tasks not yet running)", "", F.fmt(ret),
                 F.fmt(F.ratio(k, ret)), "", ""],
                [f"commit -> first new task Running (1 of {n} stacks, replicas 1 -> 2)",
                 F.fmt(lk), F.fmt(ld), F.fmt(F.ratio(lk, ld)), tl.text, tl.verdict]]), "",
            f"Latency: Keelson from the return of `git push` to the bare repo it watches "
            f"(the push itself took {F.fmt(F.median(res.push_s), 3)} s, median) to the new "
            "task's state Running; docker from the start of `docker stack deploy` of the "
            f"changed file to the same state. {plan.latency_pairs} pairs; the changed stack "
            "is the last in name order.", ""]

    rows = []
    for stacks in plan.scales:
        for figure, label in (("noop", "no-op pass"), ("full", "full deploy")):
            kd = _count(s, figure, stacks, F.KEELSON, "dockerd")
            kr = _count(s, figure, stacks, F.KEELSON, "registry")
            dd = _count(s, figure, stacks, F.DOCKER, "dockerd")
            dr = _count(s, figure, stacks, F.DOCKER, "registry")
            target = F.at_most(kr, 0, "0 registry") if figure == "noop" else F.Target("", None)
            rows.append([stacks, label, F.fmt(kd, 0), F.fmt(kr, 0), F.fmt(dd, 0), F.fmt(dr, 0),
                         target.text, target.verdict if target.text else ""])
    out += ["### Requests per pass (replicas 0; counted by proxies in front of dockerd and "
            "the registry)", "",
            F.table(["stacks", "measure", "keelson dockerd", "keelson registry",
                     "docker dockerd", "docker registry", "target", ""], rows), ""]
    biggest = max(plan.scales)
    for key, label in ((f"noop-dockerd {biggest}", "dockerd"), (f"noop {biggest}", "registry")):
        rc = res.routes.get(key)
        if rc is not None and rc.total:
            top = sorted(rc.by_route.items(), key=lambda kv: -kv[1])[:8]
            out.append(f"Keelson's last no-op pass at {biggest} stacks, {label}: "
                       + ", ".join(f"`{r}` {c}" for r, c in top))
    out.append("")

    out += ["### Idle and memory", ""]
    rows = []
    if res.idle:
        i = res.idle
        tc = F.below(i.cpu_children_pct, 1.0, "< 1 % of a core")
        rows += [[f"idle CPU, {i.stacks} converged stacks, {i.window_s:.0f} s at "
                  f"KEELSON_INTERVAL={plan.idle_interval} ({i.passes} passes)",
                  f"{i.cpu_pct:.2f} % (with git children {i.cpu_children_pct:.2f} %)",
                  tc.text, tc.verdict],
                 [f"idle RSS, {i.stacks} stacks (largest sample)", f"{i.rss_max_mib:.1f} MiB",
                  "", ""],
                 ["idle requests per minute", f"dockerd {i.dockerd_per_min:.0f}, registry "
                  f"{i.registry_per_min:.0f}", "", ""]]
    if res.memory:
        m = res.memory
        tm = F.below(m.hwm_mib, 80, "< 80 MiB at 300 stacks") if m.stacks >= 300 else \
            F.Target("< 80 MiB at 300 stacks (not measured at this scale)", None)
        rows.append([f"RSS of `keelson run` after its passes at {m.stacks} stacks "
                     "(VmRSS; peak VmHWM)", f"{m.rss_mib:.1f} MiB; peak {m.hwm_mib:.1f} MiB",
                     tm.text, tm.verdict])
    out += [F.table(["measure", "keelson", "target", ""], rows), ""]
    out += [f"- {n}" for n in res.notes]
    return "\n".join(out).rstrip() + "\n"


# -- main ------------------------------------------------------------------------------------

def loadavg() -> str:
    """The 1-minute load average now (/proc/loadavg)."""
    return pathlib.Path("/proc/loadavg").read_text().split()[0]


def checkout_revision() -> str:
    """The commit of the checkout Keelson runs from (``+dirty`` with uncommitted changes)."""
    root = pathlib.Path(__file__).resolve().parents[1]

    def git_out(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=root, capture_output=True,
                              text=True).stdout.strip()

    dirty = "+dirty" if git_out("status", "--porcelain") else ""
    return git_out("rev-parse", "--short=12", "HEAD") + dirty


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python3 -m bench.run", description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="20 stacks, 2 pairs, 60 s idle")
    ap.add_argument("--only", default="control,running,idle",
                    help="comma list of: control (incl. requests), running (incl. latency), "
                         "idle (needs control at its scale)")
    ap.add_argument("--scales", help="override the control-plane scales, e.g. 20,100")
    ap.add_argument("--pairs", type=int, help="override every pair count")
    ap.add_argument("--out", help="also write the report to this file")
    ap.add_argument("--keep", action="store_true", help="keep the temp folder (logs, repos)")
    return ap.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    plan = QUICK if args.quick else FULL
    only = set(args.only.split(","))
    if args.scales:
        scales = tuple(int(x) for x in args.scales.split(","))
        plan = dataclasses.replace(plan, scales=scales, pairs=(plan.pairs[-1],) * len(scales),
                                   running_stacks=min(plan.running_stacks, scales[0]),
                                   idle_stacks=scales[min(1, len(scales) - 1)])
    if args.pairs:
        plan = dataclasses.replace(plan, pairs=(args.pairs,) * len(plan.scales),
                                   running_pairs=args.pairs, latency_pairs=args.pairs)
    if "idle" not in only:
        plan = dataclasses.replace(plan, idle_stacks=-1)
    lock = open(LOCK_FILE, "w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        print(f"another benchmark holds {LOCK_FILE}", file=sys.stderr)
        return 2
    base = pathlib.Path(tempfile.mkdtemp(prefix="keelson-bench-"))
    bench = Bench(plan, base)
    started = time.monotonic()
    load_start, revision = loadavg(), checkout_revision()
    leftovers = stack_prefixes_in_use(bench.swarm)
    if leftovers:
        say(f"removing {len(leftovers)} leftover {PREFIX}* stacks of an earlier run")
        bench.swarm.remove_prefix(PREFIX)
    say(f"run {bench.run_id}: docker via {bench.docker_host}, registry via {bench.registry}, "
        f"files in {base}")
    phases = []
    if "control" in only:
        phases += [(f"control plane at {n} stacks", bench.control_plane, (n, p))
                   for n, p in zip(plan.scales, plan.pairs)]
    if "running" in only:  # before the largest scale, the longest phase
        at = len(phases) - 1 if len(phases) > 1 else len(phases)
        phases.insert(at, ("replicas 1 and latency", bench.running_and_latency, ()))
    ok = True
    try:
        for label, phase, phase_args in phases:
            try:
                phase(*phase_args)
            except Exception as exc:  # report what the other phases measured
                ok = False
                traceback.print_exc()
                bench.results.notes.append(f"{label} stopped: {exc}")
                ok = bench.clean_up() and ok
    finally:
        ok = bench.clean_up() and ok
        bench.close()
        if ok and not args.keep:
            shutil.rmtree(base, ignore_errors=True)
        else:
            say(f"logs and repos kept in {base}")
    context = (f"Keelson at {revision}; load average (1 min) {load_start} at the "
               f"start, {loadavg()} at the end (the machine is shared).")
    text = report(plan, bench.results, time.monotonic() - started,
                  "quick" if args.quick else "full", context)
    print(text)
    if args.out:
        pathlib.Path(args.out).write_text(text)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
