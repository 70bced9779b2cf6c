"""controller.policy.admission: what each level refuses, on converted specs (issue 7, item 5)."""
import pytest

from controller.config import PolicyLevel
from controller.errors import PolicyError
from controller.model.identity import ControllerIdentity
from controller.policy.admission import AdmissionPolicy, bind_problem, check
from controller.policy.protected import ProtectedNames
from controller.render.convert import to_desired
from controller.render.compose.loader import load_text

BASELINE, RESTRICTED, PRIVILEGED = PolicyLevel.BASELINE, PolicyLevel.RESTRICTED, PolicyLevel.PRIVILEGED


def refused(text: str, level=BASELINE, stack: str = "app", **policy):
    m = load_text(text, name=stack, directory="/srv/repo/" + stack, environ={})
    d = to_desired(m, {})
    return check(d, AdmissionPolicy(level, **policy), m)


def rules(found):
    return [(v.service, v.key, v.rule) for v in found]


SAFE = """services:
  web:
    image: busybox:latest
    user: "1000:1000"
    read_only: true
    cap_add: [NET_BIND_SERVICE]
    ports: [{target: 8080, published: 8080, mode: host}]
    volumes: [{type: tmpfs, target: /tmp}]
"""


def test_a_plain_stack_passes_every_level():
    for level in PolicyLevel:
        assert refused(SAFE, level) == []


@pytest.mark.parametrize("level", list(PolicyLevel))
def test_own_secret_config_and_network_are_refused_at_every_level(level):
    text = """services:
  web:
    image: busybox:latest
    secrets: [tok]
    configs: [cfg]
    networks: [kn, mine]
secrets: {tok: {external: true, name: keelson_git_token}}
configs: {cfg: {external: true, name: ops_settings}}
networks: {kn: {external: true, name: ops_net}, mine: {driver: overlay}}
"""
    ident = ControllerIdentity(stack="ops", configs=frozenset({"ops_settings"}),
                               networks=frozenset({"ops_net"}))
    found = refused(text, level, protected=ProtectedNames.of(ident))
    own = [v for v in found if v.rule == "own-object"]
    assert [(v.key, v.message.split(" ")[1]) for v in own] == [
        ("services.web.secrets", "keelson_git_token"), ("services.web.configs", "ops_settings"),
        ("services.web.networks", "ops_net")]
    assert "reserved for Keelson" in own[0].message and "Keelson's own service" in own[1].message
    assert own[0].line == 4 and own[0].level == level.value


def test_protected_patterns_and_a_stacks_own_objects():
    text = """services:
  web:
    image: busybox:latest
    secrets: [db, vault]
secrets: {db: {file: ./db.txt}, vault: {external: true, name: corp-vault-root}}
"""
    m = load_text(text.replace("file: ./db.txt", "external: true, name: app_db"), name="app",
                  directory="/x", environ={})
    found = check(to_desired(m, {}), AdmissionPolicy(
        PRIVILEGED, ProtectedNames(patterns=("corp-vault-*",))), m)
    assert [v.message.split(" ")[1] for v in found] == ["corp-vault-root"]
    assert "KEELSON_PROTECTED_NAMES" in found[0].message


def test_a_stack_named_keelson_may_use_the_objects_it_creates():
    text = "services: {web: {image: busybox:latest}}\n"
    assert refused(text, stack="keelson") == []  # network keelson_default is its own


def test_policy_key_in_x_keelson_is_refused_even_when_privileged():
    found = refused(SAFE + "x-keelson: {policy: privileged}\n", PRIVILEGED)
    assert rules(found) == [("", "x-keelson.policy", "policy-level")]
    assert "KEELSON_POLICY" in found[0].message and found[0].line == 9


def test_baseline_refuses_docker_sock_root_and_paths_outside_the_allowed_list():
    text = """services:
  web:
    image: busybox:latest
    volumes:
      - /var/run/docker.sock:/var/run/docker.sock
      - /:/host
      - /srv/data:/data
      - /etc:/etc2
      - /var/run:/r
      - type: volume
        source: sneaky
        target: /s
volumes:
  sneaky: {driver: local, driver_opts: {type: none, o: bind, device: /etc}}
"""
    found = refused(text, allowed_bind_paths=("/srv",))
    assert rules(found) == [
        ("web", "services.web.volumes.0", "engine-socket"),
        ("web", "services.web.volumes.1", "host-root"),
        ("web", "services.web.volumes.3", "host-path"),
        ("web", "services.web.volumes.4", "engine-socket"),
        ("web", "services.web.volumes.5", "host-path")]
    assert "o: bind" in found[-1].message and "(/srv)" in found[-1].message
    assert refused(text, PRIVILEGED) == []


def test_bind_problem_normalises_paths():
    assert bind_problem("/srv/../var/run/docker.sock", ("/srv",))[0] == "engine-socket"
    assert bind_problem("//", ())[0] == "host-root"
    assert bind_problem("/srv/data/../../etc", ("/srv",))[0] == "host-path"
    assert bind_problem("/srv/x/docker.sock", ("/srv",))[0] == "engine-socket"
    assert bind_problem("~/x", ("/srv",))[0] == "host-path"
    assert bind_problem("/srv", ("/srv/",)) is None
    assert bind_problem("/srvx", ("/srv",))[0] == "host-path"
    assert bind_problem("/anything", ("/",)) is None


@pytest.mark.parametrize("cap", ["SYS_ADMIN", "NET_ADMIN", "ALL", "SYS_PTRACE", "SYS_MODULE",
                                 "cap_sys_admin", "NET_RAW", "BPF"])
def test_baseline_refuses_dangerous_capabilities(cap):
    found = refused(f"services: {{web: {{image: busybox:latest, cap_add: [{cap}, CHOWN]}}}}\n")
    assert rules(found) == [("web", "services.web.cap_add", "capabilities")]
    assert cap.upper().replace("CAP_", "") in found[0].message
    assert "CHOWN, " not in found[0].message.split(";")[0]


def test_baseline_allows_default_capabilities_restricted_only_net_bind_service():
    text = "services: {web: {image: busybox:latest, cap_add: [CHOWN, KILL]}}\n"
    assert refused(text) == []
    found = refused(text, RESTRICTED)
    assert ("web", "services.web.cap_add", "capabilities") in rules(found)


def test_host_network_sysctls_and_privileges():
    text = """services:
  web:
    image: busybox:latest
    networks: [hostnet]
    sysctls: {net.ipv4.tcp_syncookies: 1, kernel.core_pattern: x, net.core.somaxconn: 1024}
networks: {hostnet: {external: true, name: host}}
"""
    assert rules(refused(text)) == [
        ("web", "services.web.networks", "host-network"),
        ("web", "services.web.sysctls.kernel.core_pattern", "sysctls"),
        ("web", "services.web.sysctls.net.core.somaxconn", "sysctls")]
    m = load_text("services: {web: {image: busybox:latest}}\n", name="s", directory="/x", environ={})
    d = to_desired(m, {})
    cs = d.services["s_web"].spec["TaskTemplate"]["ContainerSpec"]
    cs["Privileges"] = {"SELinuxContext": {"Disable": True}, "Seccomp": {"Mode": "unconfined"},
                        "AppArmor": {"Mode": "disabled"}}
    found = check(d, AdmissionPolicy(BASELINE), m)
    assert rules(found) == [("web", "services.web", "privileges")]
    assert "SELinux labelling, seccomp, AppArmor" in found[0].message


def test_restricted_refuses_low_host_ports_root_and_writable_root():
    text = """services:
  web:
    image: busybox:latest
    user: root
    ports:
      - {target: 80, published: 80, mode: host}
      - {target: 81, published: 81}
"""
    found = refused(text, RESTRICTED)
    assert rules(found) == [("web", "services.web.ports", "privileged-port"),
                            ("web", "services.web.user", "run-as-root"),
                            ("web", "services.web.read_only", "read-only-root")]
    assert "runs as root" in found[1].message
    assert rules(refused(text)) == []  # baseline allows all three
    for user in ("0", "0:0", "root:staff"):
        assert "run-as-root" in [v.rule for v in refused(
            f"services: {{w: {{image: i, read_only: true, user: '{user}'}}}}\n", RESTRICTED)]


def test_violation_text_names_stack_service_key_line_and_rule():
    v = refused("services:\n  web:\n    image: busybox:latest\n    cap_add: [SYS_ADMIN]\n")[0]
    assert str(v).startswith("stack app service web key services.web.cap_add (line 4): adds")
    assert str(v).endswith("[policy baseline, rule capabilities]")
    err = PolicyError("; ".join(map(str, [v])), [v])
    assert err.reason == "PolicyDenied" and err.retryable and err.violations == (v,)


def test_level_parse():
    assert PolicyLevel.parse(" Restricted ") is RESTRICTED
    from controller.errors import ConfigError
    with pytest.raises(ConfigError, match="KEELSON_POLICY"):
        PolicyLevel.parse("lax")
