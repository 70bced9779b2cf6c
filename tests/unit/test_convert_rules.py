"""Conversion rules one by one: errors with key paths, Keelson's deliberate differences."""
from __future__ import annotations

import pytest
import yaml

from controller.errors import ManifestError
from controller.model.labels import REVISION, SPEC_HASH
from controller.model.manifest import ImageRef, StackManifest
from controller.model.source import Revision
from controller.render.convert import to_desired


def manifest(text: str, positions=None) -> StackManifest:
    return StackManifest(name="s", file="/stacks/s/stack.yml", directory="/stacks/s",
                         compose=yaml.safe_load(text), positions=positions or {})


def svc_spec(text: str, svc: str = "app", **kw) -> dict:
    return to_desired(manifest(text), kw.pop("images", {}), **kw).services[f"s_{svc}"].spec


@pytest.mark.parametrize("text,key", [
    ("services: {app: {image: i, deploy: {replicas: two}}}", "services.app.deploy.replicas"),
    ("services: {app: {image: i, deploy: {update_config: {delay: '30'}}}}",
     "services.app.deploy.update_config.delay"),
    ("services: {app: {image: i, deploy: {resources: {limits: {cpus: 'x'}}}}}",
     "services.app.deploy.resources.limits.cpus"),
    ("services: {app: {image: i, deploy: {mode: global, replicas: 2}}}", "services.app.deploy.replicas"),
    ("services: {app: {image: i, networks: [nope]}}", "services.app.networks.nope"),
    ("services: {app: {image: i, volumes: ['data:/d']}}", "services.app.volumes.0"),
    ("services: {app: {image: i, configs: [c]}}", "services.app.configs.0"),
    ("services: {app: {image: i, healthcheck: {test: [CMD, 'true'], disable: true}}}",
     "services.app.healthcheck"),
    ("services: {app: {image: i, ports: ['80/icmp']}}", "services.app.ports.0"),
    ("services: {app: {image: i, restart: sometimes}}", "services.app.restart"),
    ("services: {app: {build: .}}", "services.app"),
])
def test_values_swarm_cannot_express_raise_with_key_path(text, key):
    with pytest.raises(ManifestError) as err:
        to_desired(manifest(text), {})
    assert err.value.key == key and err.value.stack == "s"


def test_error_points_at_line_of_key_or_nearest_parent():
    m = manifest("services: {app: {image: i, deploy: {replicas: two}}}",
                 positions={"services.app": 2, "services.app.deploy": 4})
    with pytest.raises(ManifestError) as err:
        to_desired(m, {})
    assert err.value.line == 4
    assert "stack s: /stacks/s/stack.yml:4: key services.app.deploy.replicas:" in str(err.value)


def test_failure_action_defaults_to_rollback_keelson_difference():
    # Swarm's default is pause; Keelson rolls back unless the stack says otherwise
    assert svc_spec("services: {app: {image: i}}")["UpdateConfig"] == {
        "Parallelism": 1, "FailureAction": "rollback", "Monitor": 5_000_000_000}
    uc = svc_spec("services: {app: {image: i, deploy: {update_config: {order: start-first}}}}")
    assert uc["UpdateConfig"] == {"Parallelism": 1, "FailureAction": "rollback", "Order": "start-first"}
    uc = svc_spec("services: {app: {image: i, deploy: {update_config: {failure_action: pause}}}}")
    assert uc["UpdateConfig"]["FailureAction"] == "pause"
    rb = svc_spec("services: {app: {image: i, deploy: {rollback_config: {parallelism: 0}}}}")
    assert rb["RollbackConfig"] == {"Parallelism": 0}


def test_numeric_and_string_cpus_are_exact_keelson_difference():
    spec = svc_spec("services: {app: {image: i, deploy: {resources: "
                    "{limits: {cpus: 0.1}, reservations: {cpus: '0.3'}}}}}")
    assert spec["TaskTemplate"]["Resources"] == {"Limits": {"NanoCPUs": 100_000_000},
                                                 "Reservations": {"NanoCPUs": 300_000_000}}


def test_image_from_images_mapping_pins_digest_label_keeps_name():
    ref = ImageRef("127.0.0.1:5000/s_app", "abc", "sha256:" + "b" * 64)
    spec = svc_spec("services: {app: {image: 127.0.0.1:5000/app:1}}", images={"app": ref})
    assert spec["TaskTemplate"]["ContainerSpec"]["Image"] == ref.reference
    assert spec["Labels"]["com.docker.stack.image"] == "127.0.0.1:5000/app:1"


def test_revision_goes_on_service_labels_only_and_not_in_hash():
    text = "services: {app: {image: i, labels: {a: b}}}"
    one = svc_spec(text, revision=Revision("1" * 40))
    two = svc_spec(text, revision=Revision("2" * 40))
    assert one["Labels"][REVISION] == "1" * 40
    assert REVISION not in one["TaskTemplate"]["ContainerSpec"]["Labels"]
    assert one["TaskTemplate"] == two["TaskTemplate"]  # c03: no task replaced per revision
    assert one["Labels"][SPEC_HASH] == two["Labels"][SPEC_HASH]


def test_conversion_is_deterministic_c03():
    text = open("tests/unit/fixtures/convert/c03-apply-twice/stack.yml").read()
    assert to_desired(manifest(text), {}) == to_desired(manifest(text), {})


def test_config_name_changes_with_content_only():
    base = "services: {app: {image: i, configs: [c]}}\nconfigs: {c: {content: %s}}"
    a = to_desired(manifest(base % "one"), {})
    b = to_desired(manifest(base % "two"), {})
    (na,), (nb,) = a.configs, b.configs
    assert na.startswith("s_c-") and nb.startswith("s_c-") and na != nb and len(na) == len("s_c-") + 10
    assert to_desired(manifest(base % "one"), {}).configs.keys() == a.configs.keys()


def test_long_form_depends_on_and_compose_only_keys_are_accepted():
    spec = svc_spec("services: {app: {image: i, depends_on: {db: {condition: service_healthy}}},"
                    " db: {image: d}}")
    assert spec["Name"] == "s_app"


def test_command_string_is_shell_split_and_order_kept():
    spec = svc_spec("services: {app: {image: i, command: 'sh -c \"echo a b\"', entrypoint: [x, y]}}")
    cs = spec["TaskTemplate"]["ContainerSpec"]
    assert cs["Args"] == ["sh", "-c", "echo a b"] and cs["Command"] == ["x", "y"]
