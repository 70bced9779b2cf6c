"""preflight(): names Swarm refuses and rollouts that cannot succeed, before any write."""
import pathlib

import yaml

from controller.model.manifest import StackManifest
from controller.render.convert import to_desired
from controller.render.convert.preflight import Finding, name_problem, preflight

FIXTURES = pathlib.Path(__file__).parent / "fixtures" / "convert"


def check(text: str, stack: str = "s"):
    m = StackManifest(name=stack, file="/x/stack.yml", directory="/x", compose=yaml.safe_load(text))
    return preflight(m, to_desired(m, {}))


def test_c10_start_first_with_host_port_is_an_error():
    findings = check((FIXTURES / "c10-start-first-host-port" / "stack.yml").read_text())
    assert [(f.severity, f.service, f.key) for f in findings] == [
        ("error", "proxy", "services.proxy.deploy.update_config.order")]
    assert "8443" in findings[0].message and "Pending" in findings[0].message


def test_start_first_host_port_in_rollback_config_too():
    findings = check("services: {p: {image: i, ports: [{target: 1, published: 2, mode: host}],"
                     " deploy: {rollback_config: {order: start-first}}}}")
    assert [f.key for f in findings] == ["services.p.deploy.rollback_config.order"]


def test_start_first_with_ingress_port_is_fine():
    assert check("services: {p: {image: i, ports: ['80:80'], "
                 "deploy: {update_config: {order: start-first}}}}") == []


def test_dnsrr_with_ingress_port_is_an_error():
    findings = check("services: {p: {image: i, ports: ['80:80'], deploy: {endpoint_mode: dnsrr}}}")
    assert [(f.severity, f.key) for f in findings] == [("error", "services.p.deploy.endpoint_mode")]
    assert check("services: {p: {image: i, ports: [{target: 80, published: 80, mode: host}],"
                 " deploy: {endpoint_mode: dnsrr}}}") == []


def test_monitor_shorter_than_healthcheck_worst_case_warns():
    findings = check("services: {p: {image: i, healthcheck: {interval: 2s, retries: 3, "
                     "start_period: 5s}, deploy: {update_config: {monitor: 10s}}}}")
    assert [(f.severity, f.key) for f in findings] == [
        ("warning", "services.p.deploy.update_config.monitor")]
    assert "11s" in findings[0].message  # 5 + 2 x 3
    assert check("services: {p: {image: i, healthcheck: {interval: 2s, retries: 3}, "
                 "deploy: {update_config: {monitor: 6s}}}}") == []
    assert check("services: {p: {image: i, healthcheck: {disable: true}}}") == []


def test_long_names_including_versioned_configs_are_errors():
    stack = "a" * 40
    findings = check("services: {p: {image: i, configs: [c]}}\n"
                     "configs: {c_with_a_long_key_name: {content: x}, c: {content: y}}", stack=stack)
    assert any(f.key == "configs" and "63" in f.message for f in findings)
    assert not any(f.key.startswith("services") for f in findings)


def test_name_rules():
    assert name_problem("s_web") is None and name_problem("a" * 63) is None
    assert "63" in name_problem("a" * 64)
    assert name_problem("-x") and name_problem("x y") and name_problem("x_")


def test_finding_str():
    f = Finding("error", "s", "web", "services.web.ports", "bad")
    assert str(f) == "stack s service web key services.web.ports: bad"
