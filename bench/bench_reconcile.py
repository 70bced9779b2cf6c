"""Benchmark: Keelson vs looping `docker stack deploy` over the same 20 stacks x 3 services.

Prints, in one run, wall time and ratio (Keelson / docker) of:
  - full deploy: from nothing to every service created (Keelson's pass also waits until every
    task runs; docker's loop is measured twice: as it returns, and until every task runs);
  - peak resident memory of Keelson's process vs the largest docker CLI process;
  - no-op pass: the same files again (Keelson: fetch + load + resolve digests + plan, no writes;
    docker: `docker stack deploy` of unchanged files, which re-sends every service).
Needs the dev environment (scripts/dev-env.sh). Usage: python bench/bench_reconcile.py [--stacks N]
"""
from __future__ import annotations

import argparse
import os
import resource
import pathlib
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from controller.app import App  # noqa: E402
from controller.config import Settings  # noqa: E402

REGISTRY = os.environ.get("KEELSON_TEST_REGISTRY", "127.0.0.1:5000")


def stack_text(i: int) -> str:
    svcs = "".join(f"""  s{j}:
    image: {REGISTRY}/library/busybox:latest
    command: ["sleep", "3600"]
    environment:
      STACK: "{i}"
    deploy:
      replicas: 1
""" for j in range(3))
    return "services:\n" + svcs


DOCKER_MAX_RSS_KIB: list = []  # per `docker stack deploy` run, from GNU time (%M, KiB)
GNU_TIME = "/usr/bin/time" if os.path.exists("/usr/bin/time") else ""


def docker_deploy(stack_file: pathlib.Path, name: str) -> None:
    """`docker stack deploy` one stack file; records the CLI's peak RSS when GNU time exists."""
    cmd = ["docker", "stack", "deploy", "-q", "-c", str(stack_file), name]
    if GNU_TIME:
        cmd = [GNU_TIME, "-f", "%M", *cmd]
    done = subprocess.run(cmd, check=True, capture_output=True, text=True)
    if GNU_TIME:
        DOCKER_MAX_RSS_KIB.append(int(done.stderr.strip().splitlines()[-1]))


def git(cwd, *args):
    subprocess.run(["git", "-c", "user.name=b", "-c", "user.email=b@b", *args], cwd=cwd,
                   check=True, capture_output=True)


def wait_running(prefix: str, count: int, timeout_s: float = 300) -> None:
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        out = subprocess.run(["docker", "service", "ls", "--format", "{{.Name}} {{.Replicas}}"],
                             capture_output=True, text=True).stdout.split("\n")
        done = [l for l in out if l.startswith(prefix) and l.split()[-1] == "1/1"]
        if len(done) >= count:
            return
        time.sleep(0.5)
    raise SystemExit(f"timeout waiting for {count} services {prefix}*")


def remove_stacks(names) -> None:
    subprocess.run(["docker", "stack", "rm", *names], capture_output=True)
    deadline = time.time() + 120
    while time.time() < deadline:
        left = subprocess.run(["docker", "network", "ls", "-q", "--filter",
                               f"label=com.docker.stack.namespace={names[0]}"],
                              capture_output=True, text=True).stdout.strip()
        if not left:
            break
        time.sleep(1)
    time.sleep(2)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--stacks", type=int, default=20)
    n = ap.parse_args().stacks
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="keelson-bench-"))
    work = tmp / "work"
    (work / "manifests").mkdir(parents=True)
    k_names = [f"bk{i:02d}" for i in range(n)]
    d_names = [f"bd{i:02d}" for i in range(n)]
    for i, name in enumerate(k_names):
        (work / "manifests" / name).mkdir()
        (work / "manifests" / name / "stack.yml").write_text(stack_text(i))
    git(work, "init", "-q", "-b", "main")
    git(work, "add", "-A")
    git(work, "commit", "-qm", "bench")
    remove_stacks(k_names + d_names)

    settings = Settings(repo=str(work), registry=REGISTRY, workdir=str(tmp / "wd"), listen="",
                        stacks=tuple(k_names)).validated()
    app = App(settings)
    t0 = time.perf_counter()
    out = app.sync()
    k_full = time.perf_counter() - t0
    assert out.converged, out.result
    t0 = time.perf_counter()
    out = app.sync()
    k_noop = time.perf_counter() - t0
    assert out.result == "noop", out.result

    t0 = time.perf_counter()
    for i, name in enumerate(d_names):
        docker_deploy(work / "manifests" / k_names[i] / "stack.yml", name)
    d_full_returned = time.perf_counter() - t0
    wait_running("bd", 3 * n)
    d_full_running = time.perf_counter() - t0
    t0 = time.perf_counter()
    for i, name in enumerate(d_names):
        docker_deploy(work / "manifests" / k_names[i] / "stack.yml", name)
    d_noop = time.perf_counter() - t0

    print(f"{n} stacks x 3 services (image-only, digest-pinned by both)")
    print(f"{'measure':<34}{'keelson s':>10}{'docker s':>10}{'ratio':>8}")
    rows = [("full deploy (until all running)", k_full, d_full_running),
            ("full deploy (docker: as returned)", k_full, d_full_returned),
            ("no-op pass / redeploy unchanged", k_noop, d_noop)]
    for label, k, d in rows:
        print(f"{label:<34}{k:>10.2f}{d:>10.2f}{k / d:>8.2f}")
    # peak resident memory: this process (Keelson runs in it) vs the largest `docker stack
    # deploy` process, as GNU time reports it (a child's own rusage would include the fork)
    k_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if DOCKER_MAX_RSS_KIB:
        d_rss = max(DOCKER_MAX_RSS_KIB) / 1024
        print(f"{'peak RSS MiB (keelson / docker CLI)':<34}{k_rss:>10.1f}{d_rss:>10.1f}"
              f"{k_rss / d_rss:>8.2f}")
    else:
        print(f"peak RSS MiB: keelson {k_rss:.1f}; docker CLI not measured (no /usr/bin/time)")
    remove_stacks(k_names + d_names)
    return 0


if __name__ == "__main__":
    sys.exit(main())
