"""Issue 8.4 on the real swarm: drift on every field. A hand-made ``docker service update
--constraint-add/--publish-add/--mount-add/--limit-memory`` is seen by the next pass with its
field paths (status, plan, logs, metrics) and healed, or only reported in report mode; config
config and secret label drift likewise; services in the namespace that Keelson did not create are reported and
never removed."""
from __future__ import annotations

import io
import logging
import random
import subprocess

import pytest

from controller.report import print_plan
from tests.integration.keelson_app import make_app, writes

pytestmark = pytest.mark.integration

HAND_PATHS = ["EndpointSpec.Ports", "TaskTemplate.ContainerSpec.Mounts",
              "TaskTemplate.Placement.Constraints", "TaskTemplate.Resources.Limits.MemoryBytes"]


def stack_text(registry: str, options: str = "") -> str:
    return f"""{options}services:
  app:
    image: {registry}/library/busybox:latest
    command: ["sleep", "3600"]
    deploy:
      update_config: {{parallelism: 0, delay: 0s, monitor: 1s}}
    configs: [{{source: conf, target: /conf}}]
    secrets: [token]
configs:
  conf:
    content: "hello"
secrets:
  token:
    content: "s3cret"
"""


def hand_update(service: str) -> None:
    """What an operator does by hand, outside git."""
    port = random.randint(20000, 29000)
    subprocess.run(["docker", "service", "update", "-d", "--constraint-add", "node.role==manager",
                    "--publish-add", f"{port}:80", "--mount-add", "type=tmpfs,target=/scratch",
                    "--limit-memory", "64M", service], check=True, capture_output=True)


def metric(app, name: str, **labels) -> float:
    for fam in app.metrics.registry.collect():
        for s in fam.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return s.value
    return 0.0


def live_spec(engine, name: str) -> dict:
    return engine.services.get(name).attrs["Spec"]


def test_hand_changes_are_reported_with_paths_and_healed(engine, registry, manifest_repo,
                                                         stack_names, tmp_path, caplog):
    stack = stack_names("dh")
    manifest_repo.write(f"manifests/{stack}/stack.yml", stack_text(registry))
    manifest_repo.commit("one service")
    app = make_app(manifest_repo.url, tmp_path / "wd", registry, [stack])
    first = app.sync()
    assert first.converged, app.store.snapshot()
    assert first.runs[stack].plan.drift == []
    assert app.sync().result == "noop"  # zero drift right after apply

    svc = f"{stack}_app"
    hand_update(svc)
    plan = app.sync(dry_run=True)
    assert [(d.name, list(d.paths)) for d in plan.runs[stack].plan.drift] == [(svc, HAND_PATHS)]
    out = io.StringIO()
    print_plan(plan, out)
    assert f"~ service {svc}  (drift: {', '.join(HAND_PATHS)})" in out.getvalue(), out.getvalue()

    with caplog.at_level(logging.WARNING, logger="keelson.reconcile"):
        healed = app.sync()
    assert healed.converged, app.store.snapshot()
    assert f"drift service {svc}: {', '.join(HAND_PATHS)} (healing)" in caplog.text
    spec = live_spec(engine, svc)
    tmpl = spec["TaskTemplate"]
    assert not (tmpl.get("Placement") or {}).get("Constraints")
    assert not (spec.get("EndpointSpec") or {}).get("Ports")
    assert not tmpl["ContainerSpec"].get("Mounts")
    assert not ((tmpl.get("Resources") or {}).get("Limits") or {}).get("MemoryBytes")
    st = app.store.snapshot()["stacks"][stack]
    assert st["sync_status"] == "Synced", st
    assert f"drift healed: service {svc}: {', '.join(HAND_PATHS)}" in st["warnings"], st
    assert metric(app, "keelson_drift_detected_total", stack=stack, kind="service") == 1
    assert metric(app, "keelson_stack_drifted_objects", stack=stack) == 0
    w = writes(app)
    assert app.sync().result == "noop" and writes(app) == w  # healed: nothing left


def test_report_mode_reports_out_of_sync_and_writes_nothing(engine, registry, manifest_repo,
                                                            stack_names, tmp_path):
    stack = stack_names("dr")
    manifest_repo.write(f"manifests/{stack}/stack.yml",
                        stack_text(registry, "x-keelson: {drift: report}\n"))
    manifest_repo.commit("report only")
    app = make_app(manifest_repo.url, tmp_path / "wd", registry, [stack])
    assert app.sync().converged, app.store.snapshot()
    svc = f"{stack}_app"
    hand_update(svc)
    # a config's labels changed by hand (the Engine lets only labels change)
    conf = engine.configs.list(filters={"label": f"com.docker.stack.namespace={stack}",
                                        "name": f"{stack}_conf"})[0]
    attrs = conf.attrs
    engine.api._raise_for_status(engine.api._post_json(
        engine.api._url("/configs/{0}/update", conf.id), params={"version": attrs["Version"]["Index"]},
        data=dict(attrs["Spec"], Labels={**attrs["Spec"]["Labels"], "team": "ops"})))
    secret = engine.secrets.list(filters={"label": f"com.docker.stack.namespace={stack}"})[0]
    sattrs = secret.attrs
    engine.api._raise_for_status(engine.api._post_json(
        engine.api._url("/secrets/{0}/update", secret.id), params={"version": sattrs["Version"]["Index"]},
        data=dict(sattrs["Spec"], Labels={**sattrs["Spec"]["Labels"], "owner": "me"})))
    w = writes(app)
    out = app.sync()
    assert not out.converged
    st = app.store.snapshot()["stacks"][stack]
    assert st["sync_status"] == "OutOfSync" and st["reason"] == "DriftDetected", st
    assert f"secret {secret.name}: Labels.owner" in st["last_error"], st
    assert f"service {svc}: {', '.join(HAND_PATHS)}" in st["last_error"], st
    assert f"config {conf.name}: Labels.team" in st["last_error"], st
    assert writes(app) == w, "report mode must not write"
    assert (live_spec(engine, svc)["TaskTemplate"]["Placement"]["Constraints"]
            == ["node.role==manager"])  # left as the operator made it
    assert metric(app, "keelson_stack_drifted_objects", stack=stack) == 3
    text = io.StringIO()
    print_plan(app.sync(dry_run=True), text)
    assert f"! {svc}: service out of sync: {', '.join(HAND_PATHS)}" in text.getvalue(), text.getvalue()
    assert metric(app, "keelson_drift_detected_total", stack=stack, kind="config") == 1

    # the operator setting heals every stack that does not choose for itself
    manifest_repo.write(f"manifests/{stack}/stack.yml", stack_text(registry))
    manifest_repo.commit("drift: default")
    report_all = make_app(manifest_repo.url, tmp_path / "wd2", registry, [stack], drift="report")
    report_all.sync()
    assert report_all.store.snapshot()["stacks"][stack]["sync_status"] == "OutOfSync"
    healed = make_app(manifest_repo.url, tmp_path / "wd3", registry, [stack])
    assert healed.sync().converged, healed.store.snapshot()
    assert not (live_spec(engine, svc)["TaskTemplate"].get("Placement") or {}).get("Constraints")
    assert "team" not in engine.configs.get(conf.id).attrs["Spec"]["Labels"]
    assert "owner" not in engine.secrets.get(secret.id).attrs["Spec"]["Labels"]


def test_unmanaged_service_in_namespace_is_reported_never_removed(engine, registry, manifest_repo,
                                                                  stack_names, tmp_path):
    stack = stack_names("du")
    manifest_repo.write(f"manifests/{stack}/stack.yml", stack_text(registry))
    manifest_repo.commit("one service")
    app = make_app(manifest_repo.url, tmp_path / "wd", registry, [stack])
    assert app.sync().converged
    subprocess.run(["docker", "service", "create", "-d", "--name", f"{stack}_manual", "--label",
                    f"com.docker.stack.namespace={stack}", f"{registry}/library/busybox:latest",
                    "sleep", "3600"], check=True, capture_output=True)
    out = app.sync()
    st = app.store.snapshot()["stacks"][stack]
    assert not out.converged and st["sync_status"] == "OutOfSync", st
    assert f"unmanaged service {stack}_manual (not created by keelson)" in st["last_error"]
    assert engine.services.get(f"{stack}_manual") is not None  # never removed
    assert metric(app, "keelson_drift_detected_total", stack=stack, kind="unmanaged") == 1
    text = io.StringIO()
    print_plan(app.sync(dry_run=True), text)
    assert f"! {stack}_manual: unmanaged service (not created by keelson)" in text.getvalue()
