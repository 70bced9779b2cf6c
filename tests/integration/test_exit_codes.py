"""Exit codes people script against, and freshness metrics (issue 8, kind 9), on the real swarm:
``plan --detailed-exitcode`` (0 no changes, 1 error, 2 changes), a load failure is non-zero
always, a bad setting is one line and exit 2, and one failing stack neither freezes the
controller's "last successful reconcile" nor hides the others' last-synced time.
"""
from __future__ import annotations

import pytest

from tests.integration.keelson_app import make_app, tools_stack
from tests.integration.test_cli import clean_env, describe, keelson

pytestmark = pytest.mark.integration


def test_plan_detailed_exitcode(engine, registry, manifest_repo, stack_names, tmp_path):
    """fresh stack: plan 0 / --detailed-exitcode 2; after sync: 0 / 0; a stack that fails to
    load: 1 with and without the flag, the good stack still planned."""
    good, bad = stack_names("exg"), stack_names("exb")
    manifest_repo.write(f"manifests/{good}/stack.yml", tools_stack(registry))
    manifest_repo.commit("good")
    env = clean_env(tmp_path)
    args = ["--repo", manifest_repo.url, "--registry", registry, "--stack", good, "--stack", bad]
    assert keelson(["plan", *args], env, module=True).returncode == 0
    proc = keelson(["plan", "--detailed-exitcode", *args], env, module=True)
    assert proc.returncode == 2, describe(proc)
    assert f"stack {good}: 3 change(s)" in proc.stdout, proc.stdout
    proc = keelson(["sync", *args], env, module=True)
    assert proc.returncode == 0, describe(proc)
    proc = keelson(["plan", "--detailed-exitcode", *args], env, module=True)
    assert proc.returncode == 0, describe(proc)
    assert f"stack {good}: no changes" in proc.stdout, proc.stdout

    manifest_repo.write(f"manifests/{bad}/stack.yml", "services:\n  a:\n    image: [oops\n")
    manifest_repo.commit("bad")
    for flag in ([], ["--detailed-exitcode"]):
        proc = keelson(["plan", *flag, *args], env, module=True)
        assert proc.returncode == 1, describe(proc)
        assert f"stack {good}: no changes" in proc.stdout, proc.stdout
        assert f"stack {bad}: cannot plan: stack {bad}: manifests/{bad}/stack.yml:4: invalid " \
               "YAML" in proc.stdout, proc.stdout


@pytest.mark.parametrize("argv, extra, message", [
    (["plan", "--log-level", "loud"], {},
     "keelson: --log-level (KEELSON_LOG_LEVEL): unknown level 'loud'; use DEBUG, INFO, WARNING "
     "or ERROR"),
    (["sync"], {"KEELSON_LOG_LEVEL": "chatty"},
     "keelson: --log-level (KEELSON_LOG_LEVEL): unknown level 'chatty'; use DEBUG, INFO, "
     "WARNING or ERROR"),
    (["sync"], {"KEELSON_LOG_FORMAT": "xml"},
     "keelson: --log-format (KEELSON_LOG_FORMAT): unknown format 'xml'; use logfmt or json"),
    (["plan"], {"KEELSON_PRUNE": "maybe"},
     "keelson: KEELSON_PRUNE: not a boolean: 'maybe' (use true or false)"),
    (["sync"], {"KEELSON_ROLLOUT_TIMEOUT": "-1"},
     "keelson: KEELSON_ROLLOUT_TIMEOUT: must be a finite number of seconds >= 0, got '-1'"),
    (["plan"], {"KEELSON_BIND_ROOT": "relative/path"},
     "keelson: KEELSON_BIND_ROOT must be an absolute path, got 'relative/path'"),
    (["validate", "--log-level", "nope", "manifests"], {},
     "keelson: --log-level (KEELSON_LOG_LEVEL): unknown level 'nope'; use DEBUG, INFO, WARNING "
     "or ERROR"),
])
def test_bad_setting_is_one_line_and_exit_2(tmp_path, argv, extra, message):
    """A bad --log-level or KEELSON_* value: exactly one stderr line, exit 2, no traceback."""
    env = clean_env(tmp_path, KEELSON_REPO=str(tmp_path), **extra)
    proc = keelson(argv, env, module=True, timeout_s=60)
    assert proc.returncode == 2, describe(proc)
    assert proc.stderr.splitlines() == [message], describe(proc)
    assert "Traceback" not in proc.stderr and proc.stdout == ""


def metric(app, name: str, **labels):
    return app.metrics.registry.get_sample_value(name, labels)


def test_one_failing_stack_freezes_no_freshness_metric(engine, registry, manifest_repo,
                                                       stack_names, tmp_path):
    """A pass with one good and one broken stack is ``partial``: it still sets
    keelson_last_successful_reconcile_timestamp_seconds, the good stack gets
    keelson_stack_last_synced_timestamp_seconds and the broken one has no series."""
    good, bad = stack_names("fmg"), stack_names("fmb")
    manifest_repo.write(f"manifests/{good}/stack.yml", tools_stack(registry))
    manifest_repo.write(f"manifests/{bad}/stack.yml", "services:\n  a: {image: busybox, x: 1}\n")
    manifest_repo.commit("one good, one bad")
    app = make_app(manifest_repo.url, tmp_path / "wd", registry, [good, bad])
    first = app.sync()
    assert first.result == "partial"
    assert metric(app, "keelson_reconcile_total", result="partial") == 1
    t1 = metric(app, "keelson_last_successful_reconcile_timestamp_seconds")
    g1 = metric(app, "keelson_stack_last_synced_timestamp_seconds", stack=good)
    assert t1 > 1.6e9 and g1 > 1.6e9
    assert metric(app, "keelson_stack_last_synced_timestamp_seconds", stack=bad) is None
    second = app.sync()  # nothing new: the good stack is judged again, the bad one fails again
    assert second.result == "partial"
    assert metric(app, "keelson_last_successful_reconcile_timestamp_seconds") > t1
    assert metric(app, "keelson_stack_last_synced_timestamp_seconds", stack=good) > g1
    assert metric(app, "keelson_stack_last_synced_timestamp_seconds", stack=bad) is None
