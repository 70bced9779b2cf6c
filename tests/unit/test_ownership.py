"""Ownership (issue 7, item 4): which stacks a Keelson may change, instance names that survive a
token rotation, and Keelson's own service read from its inspect JSON."""
import pytest

from controller.config import Settings, default_instance, repo_identity, settings_from_env
from controller.errors import ConfigError, ManifestError, OwnershipError
from controller.model import labels as L
from controller.model.identity import ControllerIdentity
from controller.model.live import LiveObject, LiveService, LiveStack, StackRecord
from controller.policy.guard import Guard
from controller.policy.ownership import (HAND_DEPLOYED, OwnershipRules, foreign_objects,
                                         ownership_problem)
from controller.render.compose.loader import load_text
from controller.swarm.identity import container_ids_from_mountinfo, identity_from

ME = "keelson-aaaaaaaaaa"


def keelson_labels(stack, instance=ME):
    return {**L.owner_labels(stack), L.INSTANCE: instance}


def stack(name="s", service_labels=None, network_labels=None, record=None):
    live = LiveStack(name, record=record)
    if service_labels is not None:
        live.services[f"{name}_web"] = LiveService("id1", f"{name}_web", 1, service_labels, {})
    if network_labels is not None:
        live.networks[f"{name}_default"] = LiveObject("n1", f"{name}_default", network_labels)
    return live


def test_own_and_new_stacks_are_fine():
    rules = OwnershipRules(ME)
    assert ownership_problem("s", None, rules, adopt=False) == ""
    assert ownership_problem("s", stack(service_labels=keelson_labels("s")), rules, False) == ""


def test_hand_deployed_stack_is_refused_with_its_owner_named_unless_adopted():
    live = stack(service_labels={L.NAMESPACE: "s"}, network_labels={L.NAMESPACE: "s"})
    rules = OwnershipRules(ME)
    msg = ownership_problem("s", live, rules, adopt=False)
    assert "service s_web, network s_default owned by hand-deployed / docker stack deploy" in msg
    assert "x-keelson: {adopt: true}" in msg and "nothing was changed" in msg
    assert ownership_problem("s", live, rules, adopt=True) == ""
    assert ownership_problem("s", live, OwnershipRules(ME, adopt_all=True), adopt=False) == ""


def test_another_instance_is_refused_even_with_adopt_unless_taken_over():
    other = "keelson-bbbbbbbbbb"
    live = stack(service_labels=keelson_labels("s", other),
                 record=StackRecord(applied_revision="x", instance=other))
    for adopt in (False, True):
        msg = ownership_problem("s", live, OwnershipRules(ME, adopt_all=adopt), adopt)
        assert f"service s_web, state record owned by Keelson instance {other}" in msg
        assert f"KEELSON_ADOPT_INSTANCES={other}" in msg
    assert ownership_problem("s", live, OwnershipRules(ME, frozenset({other})), False) == ""


def test_a_record_of_another_instance_alone_is_refused():
    live = stack(record=StackRecord(instance="keelson-cccccccccc"))
    assert foreign_objects(live, OwnershipRules(ME)) == {
        "Keelson instance keelson-cccccccccc": ["state record"]}


def test_keelson_labels_without_instance_are_adoptable_only():
    live = stack(service_labels=L.owner_labels("s"))
    msg = ownership_problem("s", live, OwnershipRules(ME), False)
    assert "earlier Keelson without instance labels" in msg
    assert ownership_problem("s", live, OwnershipRules(ME), True) == ""


def test_own_stack_is_never_changed_nor_pruned():
    rules = OwnershipRules(ME, adopt_all=True, self_stack="keelson")
    live = stack("keelson", service_labels=keelson_labels("keelson"))
    assert "the stack Keelson itself runs in" in ownership_problem("keelson", live, rules, True)
    guard = Guard(rules, Guard.from_settings(Settings(repo="r").validated()).admission)
    assert not guard.may_prune("keelson", live)
    assert guard.may_prune("other", stack("other", service_labels=keelson_labels("other")))
    assert not guard.may_prune("other", stack("other", service_labels={L.NAMESPACE: "other"}))


def test_guard_reads_adopt_from_x_keelson_and_raises_ownership_error():
    settings = Settings(repo="r", instance=ME).validated()
    guard = Guard.from_settings(settings)
    live = stack(service_labels={L.NAMESPACE: "s"})
    plain = load_text("services: {web: {image: i}}\n", name="s", environ={})
    with pytest.raises(OwnershipError, match=HAND_DEPLOYED) as err:
        guard.check_owner(plain, live)
    assert err.value.reason == "NotOwned" and err.value.retryable
    adopting = load_text("services: {web: {image: i}}\nx-keelson: {adopt: true}\n", name="s",
                         environ={})
    guard.check_owner(adopting, live)
    bad = load_text("services: {web: {image: i}}\nx-keelson:\n  adopt: yes please\n", name="s",
                    environ={})
    with pytest.raises(OwnershipError, match=r"hand-deployed.*key x-keelson.adopt: adopt must"):
        guard.check_owner(bad, live)  # foreign stack: no failure record may be written there
    with pytest.raises(ManifestError, match=r"stack s: .*key x-keelson.adopt: adopt must be"):
        guard.check_owner(bad, None)


def test_x_keelson_must_be_a_mapping():
    with pytest.raises(ManifestError, match="x-keelson must be a mapping"):
        load_text("services: {web: {image: i}}\nx-keelson: [adopt]\n", environ={})


@pytest.mark.parametrize("url", [
    "https://git.example.com/org/deploy",
    "https://git.example.com/org/deploy.git",
    "https://git.example.com/org/deploy/",
    "https://x-access-token:ghp_secret1@git.example.com/org/deploy.git",
    "https://x-access-token:ghp_secret2@GIT.example.com/org/deploy.git/",
    "https://git.example.com/org/deploy.git?private_token=abc",
    "ssh://git@git.example.com/org/deploy.git",
    "git@git.example.com:org/deploy.git",
])
def test_instance_name_survives_credentials_and_respelling(url):
    assert repo_identity(url) == "git.example.com/org/deploy"
    assert Settings(repo=url).validated().instance == default_instance(
        "https://git.example.com/org/deploy", "manifests")


def test_instance_name_depends_on_repo_and_path():
    a = Settings(repo="https://h/org/a").validated().instance
    assert a != Settings(repo="https://h/org/b").validated().instance
    assert a != Settings(repo="https://h/org/a", path="other").validated().instance
    assert a == Settings(repo="https://h/org/a", path="manifests/").validated().instance
    assert repo_identity("/srv/deploy.git/") == "/srv/deploy"


def test_the_earlier_credentialed_name_is_taken_over():
    url = "https://u:tok@h/org/a.git"
    s = Settings(repo=url).validated()
    assert default_instance(url, "manifests", legacy=True) in s.adopt_instances
    assert s.instance not in s.adopt_instances
    explicit = Settings(repo=url, instance="mine").validated()
    assert explicit.instance == "mine" and explicit.adopt_instances == ()


def test_trust_settings_from_env():
    kw = settings_from_env({"KEELSON_REPO": "r", "KEELSON_ADOPT": "true",
                            "KEELSON_ADOPT_INSTANCES": "keelson-1, keelson-2",
                            "KEELSON_SELF_STACK": "ops", "KEELSON_POLICY": "restricted",
                            "KEELSON_PROTECTED_NAMES": "vault-*,db_root",
                            "KEELSON_ALLOWED_BIND_PATHS": "/srv,/data"})
    s = Settings(**kw).validated()
    assert (s.adopt, s.adopt_instances[:2], s.self_stack, s.policy.value) == (
        True, ("keelson-1", "keelson-2"), "ops", "restricted")
    assert s.protected_names == ("vault-*", "db_root") and s.allowed_bind_paths == ("/srv", "/data")
    with pytest.raises(ConfigError, match="KEELSON_ALLOWED_BIND_PATHS"):
        Settings(repo="r", allowed_bind_paths=("srv",)).validated()
    with pytest.raises(ConfigError, match="KEELSON_POLICY"):
        settings_from_env({"KEELSON_POLICY": "none"})
    with pytest.raises(ConfigError, match="KEELSON_SELF_STACK"):
        Settings(repo="r", self_stack="Bad Name").validated()


def test_identity_from_service_inspect():
    service = {"Spec": {"Name": "keelson_keelson", "Labels": {L.NAMESPACE: "keelson"},
                        "TaskTemplate": {"ContainerSpec": {
                            "Secrets": [{"SecretName": "git_token", "SecretID": "s1"}],
                            "Configs": [{"ConfigName": "keelson_cfg", "ConfigID": "c1"}]},
                            "Networks": [{"Target": "netid1"}]}},
               "PreviousSpec": {"TaskTemplate": {"ContainerSpec": {
                   "Secrets": [{"SecretName": "old_token"}]}}}}
    ident = identity_from(service, {"netid1": "keelson_default"})
    assert ident.stack == "keelson" and ident.service == "keelson_keelson"
    assert ident.secrets == {"git_token", "old_token"} and ident.configs == {"keelson_cfg"}
    assert ident.networks == {"keelson_default"}
    assert identity_from({"Spec": {}}, {}, {L.NAMESPACE: "ops"}).stack == "ops"


def test_container_ids_from_mountinfo():
    cid = "a" * 64
    text = (f"1 2 0:1 /var/lib/docker/containers/{cid}/hostname /etc/hostname rw - ext4 x\n"
            f"3 4 0:1 /var/lib/docker/containers/{cid}/hosts /etc/hosts rw - ext4 x\n")
    assert container_ids_from_mountinfo(text) == [cid]
    host = (f"832 45 0:147 / /var/lib/docker/containers/{'b' * 64}/mounts/secrets ro - tmpfs x\n"
            f"833 45 0:148 / /var/lib/docker/containers/{'c' * 64}/mounts/shm rw - tmpfs x\n")
    assert container_ids_from_mountinfo(host) == []  # a host sees other containers' mounts


def test_stack_named_keelson_is_keelsons_own_unless_another_is_known():
    settings = Settings(repo="r", instance=ME).validated()
    assert Guard.from_settings(settings).ownership.self_stack == "keelson"
    ident = ControllerIdentity(stack="ops")
    assert Guard.from_settings(settings, ident).ownership.self_stack == "ops"
    named = Settings(repo="r", instance=ME, self_stack="ctl").validated()
    assert Guard.from_settings(named, ident).ownership.self_stack == "ctl"
    adopting = load_text("services: {web: {image: i}}\nx-keelson: {adopt: true}\n",
                         name="keelson", environ={})
    with pytest.raises(OwnershipError, match="the stack Keelson itself runs in"):
        Guard.from_settings(settings).check_owner(adopting, None)


def test_a_hand_made_extra_object_in_an_owned_stack_is_left_to_the_drift_report():
    """A debug service someone started in a stack this Keelson owns is neither adopted nor a
    reason to refuse the stack (drift reports it as unmanaged); one the stack file names is."""
    rules = OwnershipRules(ME)
    live = stack(network_labels=keelson_labels("s"), service_labels={L.NAMESPACE: "s"})
    assert ownership_problem("s", live, rules, False, wanted={"network s_default"}) == ""
    assert "service s_web" in ownership_problem("s", live, rules, False,
                                                wanted={"network s_default", "service s_web"})
    # a stack this Keelson does not own at all is refused whatever it asks for
    foreign = stack(service_labels={L.NAMESPACE: "s"})
    assert ownership_problem("s", foreign, rules, False, wanted=set()) != ""
