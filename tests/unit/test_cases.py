"""Every field case of tests/fixtures/cases/compose loads and converts with the values its
EXPECTED.md names (the pure part: load_stack -> to_desired -> preflight; the runtime parts of
c01/c02/c03/c09/c10 are covered by the integration tests)."""
from __future__ import annotations

import os
import pathlib
import shutil

import pytest

from controller.model.labels import NAMESPACE, REVISION, SPEC_HASH, STACK_IMAGE
from controller.model.manifest import ImageRef
from controller.model.source import Revision
from controller.render.convert import to_desired
from controller.render.compose.loader import load_stack
from controller.render.convert.preflight import ERROR, preflight

FIXTURE_CASES = pathlib.Path(__file__).resolve().parents[1] / "fixtures" / "cases" / "compose"
CASES = pathlib.Path(os.environ.get("KEELSON_CASES", FIXTURE_CASES))

SEC = 1_000_000_000
DIGEST = "sha256:" + "a" * 64


def convert(case: str, environ=None, images=None, revision=None, folder=None):
    path = (folder or CASES / case) / "stack.yml"
    manifest = load_stack("s", str(path), environ or {})
    return manifest, to_desired(manifest, images or {}, revision)


def spec(desired, svc: str) -> dict:
    return desired.services[f"s_{svc}"].spec


def cspec(desired, svc: str) -> dict:
    return spec(desired, svc)["TaskTemplate"]["ContainerSpec"]


def test_every_case_has_a_test_here():
    cases = sorted(p.name[:3] for p in CASES.iterdir() if p.is_dir())
    tested = {n[5:8] for n in globals() if n.startswith("test_c")}
    assert set(cases) <= tested, set(cases) - tested


def test_c01_config_gets_a_content_versioned_name(tmp_path):
    folder = tmp_path / "c01"
    shutil.copytree(CASES / "c01-config-rotation", folder)
    _, d1 = convert("", folder=folder)
    (cfg1,) = d1.configs.values()
    assert cfg1.name.startswith("s_site-") and len(cfg1.name) == len("s_site-") + 10
    assert cfg1.data == (folder / "files" / "site.conf").read_bytes()
    ref = cspec(d1, "web")["Configs"][0]
    assert ref["ConfigName"] == cfg1.name and ref["File"]["Name"] == "/etc/site/site.conf"
    (folder / "files" / "site.conf").write_text("server { listen 9090; }\n")
    _, d2 = convert("", folder=folder)
    (cfg2,) = d2.configs.values()
    assert cfg2.name != cfg1.name and cfg2.logical_name == cfg1.logical_name == "s_site"
    assert cspec(d2, "web")["Configs"][0]["ConfigName"] == cfg2.name


def test_c02_pinned_digest_and_same_digest_same_hash():
    ref = ImageRef("127.0.0.1:5000/team/api", "main", DIGEST)
    _, d = convert("c02-same-tag-rebuilt", images={"api": ref})
    s = spec(d, "api")
    assert s["TaskTemplate"]["ContainerSpec"]["Image"] == f"127.0.0.1:5000/team/api:main@{DIGEST}"
    assert s["Labels"][STACK_IMAGE] == "127.0.0.1:5000/team/api:main"
    _, same = convert("c02-same-tag-rebuilt", images={"api": ref})
    assert spec(same, "api")["Labels"][SPEC_HASH] == s["Labels"][SPEC_HASH]
    newer = ImageRef("127.0.0.1:5000/team/api", "main", "sha256:" + "b" * 64)
    _, moved = convert("c02-same-tag-rebuilt", images={"api": newer})
    assert spec(moved, "api")["Labels"][SPEC_HASH] != s["Labels"][SPEC_HASH]


def test_c03_sparse_specs_and_revision_only_on_service_labels():
    r1, r2 = Revision("1" * 40, "main"), Revision("2" * 40, "main")
    _, d1 = convert("c03-apply-twice", revision=r1)
    _, d2 = convert("c03-apply-twice", revision=r2)
    assert spec(d1, "plain")["Mode"] == {"Replicated": {}}
    assert spec(d1, "global")["Mode"] == {"Global": {}}
    for svc in ("plain", "global"):
        assert spec(d1, svc)["Labels"][REVISION] == r1.sha
        assert spec(d1, svc)["TaskTemplate"] == spec(d2, svc)["TaskTemplate"]
        assert cspec(d1, svc)["Labels"] == {NAMESPACE: "s"}
        assert spec(d1, svc)["Labels"][SPEC_HASH] == spec(d2, svc)["Labels"][SPEC_HASH]


def test_c04_interpolation_values():
    _, d = convert("c04-interpolation")
    c = cspec(d, "exporter")
    assert set(c["Env"]) == {"NODE_ID={{.Node.ID}}", "ADMIN_HASH=$2y$05$abcdefghijklmnopqrstuv",
                             "LEVEL=warn", "REQUIRED=platform", "FLAG=enabled"}
    assert c["Args"] == ["--path.ignore=^/(sys|proc|dev)($|/)"]
    assert c["Image"] == "127.0.0.1:5000/exporter:1"


def test_c05_exact_numbers():
    _, d = convert("c05-types-after-interpolation")
    s = spec(d, "app")
    assert s["Mode"] == {"Replicated": {"Replicas": 2}}
    assert s["TaskTemplate"]["Placement"]["MaxReplicas"] == 1
    res = s["TaskTemplate"]["Resources"]
    assert res["Limits"] == {"NanoCPUs": 500_000_000, "MemoryBytes": 268_435_456}
    assert res["Reservations"] == {"NanoCPUs": 250_000_000}
    assert s["UpdateConfig"]["Delay"] == 90 * SEC


def test_c06_merge_keys_in_list_form():
    _, d = convert("c06-anchors-and-merge")
    s = spec(d, "api")
    assert s["Mode"] == {"Replicated": {"Replicas": 2}}
    assert s["TaskTemplate"]["RestartPolicy"]["Condition"] == "any"
    assert s["UpdateConfig"]["Parallelism"] == 1 and s["UpdateConfig"]["Order"] == "start-first"
    assert s["TaskTemplate"]["LogDriver"] == {"Name": "json-file", "Options": {"max-size": "10m"}}


def test_c07_healthcheck_forms():
    _, d = convert("c07-healthcheck-forms")
    assert cspec(d, "off")["Healthcheck"] == {"Test": ["NONE"]}
    timing = cspec(d, "timing-only")["Healthcheck"]
    assert "Test" not in timing and timing["Interval"] == 2 * SEC and timing["Retries"] == 2
    shell = cspec(d, "shell")["Healthcheck"]
    assert shell["Test"] == ["CMD-SHELL", "wget -q -O- http://127.0.0.1:8080/ || exit 1"]
    assert shell["StartPeriod"] == 10 * SEC


def test_c08_compose_only_keys_warn_and_deploy():
    m, d = convert("c08-compose-only-keys")
    assert sorted(d.services) == ["s_db", "s_web"]
    web = [w for w in m.warnings if "service web" in w]
    db = [w for w in m.warnings if "service db" in w]
    assert len(web) == 1 and "container_name" in web[0]
    assert "depends_on" not in web[0]  # issue 10: it orders the rollout waves
    assert m.depends["web"] == {"db": "service_healthy"}
    assert len(db) == 1 and "links" in db[0]
    assert spec(d, "web")["TaskTemplate"]["RestartPolicy"]["Condition"] == "any"  # restart: always


def test_c09_rollback_settings():
    _, d = convert("c09-rollback-is-failure")
    s = spec(d, "web")
    assert s["UpdateConfig"]["FailureAction"] == "rollback"
    assert s["UpdateConfig"]["Monitor"] == 10 * SEC
    assert s["Mode"] == {"Replicated": {"Replicas": 2}}
    hc = s["TaskTemplate"]["ContainerSpec"]["Healthcheck"]
    assert hc["Test"][0] == "CMD" and hc["Interval"] == 2 * SEC and hc["Retries"] == 2
    _, d2 = convert("c09-rollback-is-failure", environ={"VERSION": "2"})
    assert cspec(d2, "web")["Image"] == "127.0.0.1:5000/web:2"


def test_c10_start_first_with_host_port_is_a_preflight_error():
    m, d = convert("c10-start-first-host-port")
    errors = [f for f in preflight(m, d) if f.severity == ERROR]
    assert [f.key for f in errors] == ["services.proxy.deploy.update_config.order"]
    assert "8443" in errors[0].message


# Faults the corpus (tests/corpus) found, kept here as pure checks.
def test_jobs_get_no_update_config_and_refuse_one(tmp_path):
    """Swarm refuses an UpdateConfig on a job ("Jobs may not have an update config")."""
    from controller.errors import ManifestError
    from controller.render.compose.loader import load_text
    text = """services:
  once:
    image: busybox
    deploy: {mode: replicated-job, replicas: 1}
"""
    d = to_desired(load_text(text, name="s", directory=str(tmp_path)), {})
    s = spec(d, "once")
    assert s["Mode"] == {"ReplicatedJob": {"MaxConcurrent": 1, "TotalCompletions": 1}}
    assert "UpdateConfig" not in s
    bad = text.replace("replicas: 1}", "replicas: 1, update_config: {parallelism: 1}}")
    with pytest.raises(ManifestError) as err:
        to_desired(load_text(bad, name="s", directory=str(tmp_path)), {})
    assert err.value.key == "services.once.deploy.update_config"
