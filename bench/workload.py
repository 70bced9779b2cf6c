"""The benchmark workload: N stacks x 3 services, the git repo Keelson follows, and the swarm.

Every stack name starts with ``PREFIX`` followed by a run id and a group letter, so that one
label query finds everything a run (or a killed earlier run) deployed, and nothing else.
The bench reads the swarm through the docker SDK on the default socket, never through the
counting proxy, so its own polling is not counted.
"""
from __future__ import annotations

import os
import pathlib
import subprocess
import time
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

import docker

PREFIX = "kbench"  # every stack the benchmarks deploy is named kbench<run><group>...
NAMESPACE = "com.docker.stack.namespace"
SERVICES_PER_STACK = 3
# task states of a task that has not ended yet (Swarm's TaskState values)
_ALIVE = ("new", "pending", "assigned", "accepted", "preparing", "ready", "starting", "running")
GIT_ENV = {"GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@example.com",
           "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@example.com"}


def stack_text(image: str, index: int, replicas: int, replicas_s0: Optional[int] = None) -> str:
    """One stack file: 3 image-only busybox services.

    Args:
        image: the image reference (``127.0.0.1:<registry proxy port>/library/busybox:latest``).
        index: written into each service's environment so that stacks differ.
        replicas: replicas of every service. replicas_s0: a different count for ``s0`` (the
            one-line change of the commit-to-converged figure).
    Returns:
        str: the YAML text (SIGKILL on stop, so removing tasks takes no grace period).
    """
    out = ["services:"]
    for j in range(SERVICES_PER_STACK):
        n = replicas_s0 if (j == 0 and replicas_s0 is not None) else replicas
        out.append(f"""  s{j}:
    image: {image}
    command: ["sleep", "86400"]
    stop_signal: SIGKILL
    environment:
      STACK: "{index}"
    deploy:
      replicas: {n}""")
    return "\n".join(out) + "\n"


def git(cwd: pathlib.Path, *args: str) -> str:
    """Run git in ``cwd`` with a fixed identity; returns stdout (raises on failure)."""
    return subprocess.run(["git", *args], cwd=cwd, env=dict(os.environ, **GIT_ENV), check=True,
                          capture_output=True, text=True).stdout.strip()


@dataclass(frozen=True)
class Workload:
    """One group of stacks deployed twice: by Keelson and by the docker loop.

    Attributes:
        keelson_names: Keelson's stack names (the repo's folder names).
        docker_names: the docker loop's stack names, same files, same order.
        remote: bare git repo Keelson follows (KEELSON_REPO). work: its clone (commits go here).
        files: one stack file per stack index (the docker loop deploys these).
    """

    keelson_names: Sequence[str]
    docker_names: Sequence[str]
    remote: pathlib.Path
    work: pathlib.Path
    files: Sequence[pathlib.Path]

    @property
    def services(self) -> int:
        """Services per side."""
        return len(self.keelson_names) * SERVICES_PER_STACK

    def commit_stack(self, index: int, text: str, message: str) -> None:
        """Write stack ``index``'s file in the clone and commit it (not pushed)."""
        path = self.work / "manifests" / self.keelson_names[index] / "stack.yml"
        path.write_text(text)
        git(self.work, "commit", "-qam", message)

    def push(self) -> None:
        """Push the clone's main branch to the remote Keelson follows."""
        git(self.work, "push", "-q", "origin", "main")


def make_workload(base: pathlib.Path, group: str, stacks: int, image: str,
                  replicas: int) -> Workload:
    """Create the repo (bare remote + clone) and the stack files for one group.

    Args:
        base: a fresh folder for this group. group: the stack name prefix of this group
            (``kbench<run><letter>``); Keelson's stacks get ``k``, docker's ``d`` and an index.
        stacks: number of stacks. image: image reference. replicas: replicas per service.
    """
    base.mkdir(parents=True)
    k_names = [f"{group}k{i:03d}" for i in range(stacks)]
    d_names = [f"{group}d{i:03d}" for i in range(stacks)]
    work = base / "work"
    files = []
    for i, name in enumerate(k_names):
        folder = work / "manifests" / name
        folder.mkdir(parents=True)
        (folder / "stack.yml").write_text(stack_text(image, i, replicas))
        files.append(folder / "stack.yml")
    remote = base / "remote.git"
    git(base, "init", "-q", "--bare", "-b", "main", str(remote))
    git(work, "init", "-q", "-b", "main")
    git(work, "add", "-A")
    git(work, "commit", "-qm", f"{stacks} stacks")
    git(work, "remote", "add", "origin", str(remote))
    git(work, "push", "-q", "origin", "main")
    # the docker loop deploys copies, so commits to Keelson's files never change docker's input
    docker_dir = base / "docker"
    docker_files = []
    for i, src in enumerate(files):
        dst = docker_dir / f"{d_names[i]}.yml"
        dst.parent.mkdir(exist_ok=True)
        dst.write_text(src.read_text())
        docker_files.append(dst)
    return Workload(k_names, d_names, remote, work, docker_files)


def docker_deploy(stack_file: pathlib.Path, name: str, docker_host: Optional[str]) -> None:
    """``docker stack deploy -c <file> <name>`` (defaults: --resolve-image always, no prune).

    Raises:
        RuntimeError: the command failed (its stderr in the message).
    """
    env = dict(os.environ)
    if docker_host:
        env["DOCKER_HOST"] = docker_host
    done = subprocess.run(["docker", "stack", "deploy", "-q", "-c", str(stack_file), name],
                          env=env, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"docker stack deploy {name}: {done.stderr.strip()}")


def docker_loop(w: Workload, docker_host: Optional[str]) -> None:
    """Deploy every stack of ``w`` with docker, one after another (what a CI job does)."""
    for path, name in zip(w.files, w.docker_names):
        docker_deploy(path, name, docker_host)


class Swarm:
    """The bench's own view of the swarm (docker SDK, default socket)."""

    def __init__(self):
        self.client = docker.from_env(timeout=300)

    def _owned(self, prefix: str, labels: Optional[Dict[str, str]]) -> bool:
        return bool(labels) and labels.get(NAMESPACE, "").startswith(prefix)

    def remove_prefix(self, prefix: str, timeout_s: float = 600.0) -> None:
        """Remove every service, network, config and secret whose stack starts with ``prefix``.

        Returns once a fresh listing shows none of them (networks, configs and secrets go only
        once the tasks using them are gone, and a removed network stays listed for a moment).
        Raises:
            RuntimeError: objects are left after ``timeout_s`` seconds.
        """
        api = self.client.api
        flt = {"label": NAMESPACE}
        deadline = time.monotonic() + timeout_s
        kinds = ((api.services, api.remove_service, False),
                 (api.networks, api.remove_network, True),
                 (api.configs, api.remove_config, False),
                 (api.secrets, api.remove_secret, False))
        while True:
            left = 0
            for lister, remover, top_level_labels in kinds:
                for obj in lister(filters=flt):
                    labels = obj.get("Labels") if top_level_labels else obj["Spec"].get("Labels")
                    if not self._owned(prefix, labels):
                        continue
                    left += 1
                    try:
                        remover(obj.get("Id") or obj["ID"])
                    except docker.errors.APIError:  # in use, or already gone
                        pass
            if not left:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"{left} objects of stacks {prefix}* are still there")
            time.sleep(0.5)

    def count_services(self, prefix: str) -> int:
        """Services whose stack starts with ``prefix``."""
        return sum(1 for s in self.client.api.services(filters={"label": NAMESPACE})
                   if self._owned(prefix, s["Spec"].get("Labels")))

    def running_services(self, prefix: str) -> int:
        """Services of stacks ``prefix*`` whose every replica has a running task."""
        services = {s["ID"]: s["Spec"].get("Mode", {}).get("Replicated", {}).get("Replicas", 0)
                    for s in self.client.api.services(filters={"label": NAMESPACE})
                    if self._owned(prefix, s["Spec"].get("Labels"))}
        running: Dict[str, int] = {}
        for t in self.client.api.tasks(filters={"desired-state": "running"}):
            if t["ServiceID"] in services and t["Status"]["State"] == "running":
                running[t["ServiceID"]] = running.get(t["ServiceID"], 0) + 1
        return sum(1 for sid, want in services.items() if running.get(sid, 0) >= want)

    def wait_running(self, prefix: str, services: int, timeout_s: float = 300.0,
                     poll_s: float = 0.25) -> None:
        """Wait until ``services`` services of ``prefix*`` have all their replicas running."""
        deadline = time.monotonic() + timeout_s
        while self.running_services(prefix) < services:
            if time.monotonic() > deadline:
                raise RuntimeError(f"services {prefix}* not all running after {timeout_s:.0f} s")
            time.sleep(poll_s)

    def wait_tasks(self, service: str, want: int, settled: bool = False,
                   timeout_s: float = 120.0, poll_s: float = 0.05) -> float:
        """Wait until ``service`` has ``want`` running tasks; returns time.monotonic() then.

        Args:
            service: full service name. want: running tasks to wait for (at least).
            settled: also wait until no other task is still starting or stopping (after a
                scale-down, the removed task must be gone).
        Raises:
            RuntimeError: not reached within ``timeout_s`` seconds.
        """
        deadline = time.monotonic() + timeout_s
        while True:
            tasks = self.client.api.tasks(filters={"service": service})
            running = sum(1 for t in tasks if t["DesiredState"] == "running"
                          and t["Status"]["State"] == "running")
            alive = sum(1 for t in tasks if t["Status"]["State"] in _ALIVE)
            if running >= want and (not settled or alive == want):
                return time.monotonic()
            if time.monotonic() > deadline:
                raise RuntimeError(f"{service}: not {want} running tasks after {timeout_s:.0f} s")
            time.sleep(poll_s)

    def close(self) -> None:
        self.client.close()


def stack_prefixes_in_use(swarm: Swarm) -> List[str]:
    """Stack names starting with PREFIX that exist now (leftovers of a killed run)."""
    names = {s["Spec"].get("Labels", {}).get(NAMESPACE, "")
             for s in swarm.client.api.services(filters={"label": NAMESPACE})}
    return sorted(n for n in names if n.startswith(PREFIX))
