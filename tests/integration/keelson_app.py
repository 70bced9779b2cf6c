"""Builds a Keelson App the way `keelson` does, for tests on the real swarm."""
from __future__ import annotations

import os
import pathlib

from controller.app import App
from controller.config import Settings


def make_app(repo: str, workdir: pathlib.Path, registry: str, stacks, **overrides) -> App:
    """An App for ``repo`` limited to ``stacks`` (so tests never prune each other's stacks).

    ``identity`` (a ControllerIdentity) stands for Keelson's own service; other keyword
    arguments are Settings fields."""
    identity = overrides.pop("identity", None)
    settings = Settings(repo=repo, registry=registry, workdir=str(workdir),
                        listen=overrides.pop("listen", ""),
                        stacks=tuple(stacks), rollout_timeout_s=overrides.pop("rollout_timeout_s", 120),
                        pending_timeout_s=overrides.pop("pending_timeout_s", 20), **overrides)
    return App(settings.validated(), environ=dict(os.environ), identity=identity)


def writes(app: App) -> float:
    """Total Swarm writes recorded by the app's metrics (keelson_swarm_writes_total)."""
    total = 0.0
    for metric in app.metrics.registry.collect():
        if metric.name == "keelson_swarm_writes":
            total += sum(s.value for s in metric.samples if s.name.endswith("_total"))
    return total


def versions(engine, stack: str) -> dict:
    """Service name -> Swarm Version.Index for every service of ``stack``."""
    flt = {"label": f"com.docker.stack.namespace={stack}"}
    return {s.name: s.attrs["Version"]["Index"] for s in engine.services.list(filters=flt)}


WEB_DOCKERFILE = """FROM busybox:latest
ARG KEELSON_REVISION=unknown
RUN mkdir -p /www && echo "revision ${KEELSON_REVISION}" > /www/index.html
CMD ["httpd", "-f", "-p", "8080", "-h", "/www"]
"""

BROKEN_DOCKERFILE = """FROM busybox:latest
ARG KEELSON_REVISION=unknown
# serves nothing on 8080: the healthcheck fails
CMD ["sh", "-c", "sleep 3600"]
"""


def web_stack(replicas: int = 2, env: str = "v1", extra: str = "") -> str:
    """A built, health-checked service with a config and an overlay network."""
    return f"""services:
  web:
    build: ./site
    environment:
      MESSAGE: {env}
    healthcheck:
      test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/"]
      interval: 1s
      timeout: 1s
      retries: 2
      start_period: 1s
    networks: [front]
    configs:
      - source: page
        target: /etc/page.conf
    deploy:
      replicas: {replicas}
      update_config:
        parallelism: 1
        delay: 0s
        monitor: 4s
        failure_action: rollback
      rollback_config:
        parallelism: 0
        delay: 0s
        monitor: 1s
{extra}
networks:
  front:
    driver: overlay
configs:
  page:
    file: ./page.conf
"""


def tools_stack(registry: str, replicas: int = 1) -> str:
    """An image-only stack running the registry's busybox."""
    return f"""services:
  ticker:
    image: {registry}/library/busybox:latest
    command: ["sh", "-c", "sleep 3600"]
    deploy:
      replicas: {replicas}
  other:
    image: {registry}/library/busybox:latest
    command: ["sh", "-c", "sleep 3600"]
"""
