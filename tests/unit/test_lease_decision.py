"""The writer lease's decision (pure): create, renew, keep, wait, take over."""
from controller.model.lease import LeaseAction, LeaseRecord, decide, lease_name


def rec(holder: str, version: int = 7) -> LeaseRecord:
    return LeaseRecord(holder=holder, version=version, renewed_at=0.0, object_id="x")


def test_no_lease_is_created():
    assert decide(None, "me", seen_for_s=0, since_renewal_s=0, ttl_s=30) is LeaseAction.CREATE


def test_holder_renews_every_third_of_the_ttl():
    assert decide(rec("me"), "me", seen_for_s=0, since_renewal_s=9.9, ttl_s=30) is LeaseAction.KEEP
    assert decide(rec("me"), "me", seen_for_s=0, since_renewal_s=10, ttl_s=30) is LeaseAction.RENEW


def test_other_holder_is_waited_for_until_seen_unchanged_for_a_whole_ttl():
    assert decide(rec("other"), "me", seen_for_s=29.9, since_renewal_s=0, ttl_s=30) is LeaseAction.WAIT
    assert decide(rec("other"), "me", seen_for_s=30, since_renewal_s=0, ttl_s=30) is LeaseAction.TAKE_OVER


def test_lease_name_is_a_valid_swarm_config_name_for_the_longest_instance():
    name = lease_name("a" * 63)
    assert len(name) <= 64 and name.startswith("keelson-lease.")
    assert lease_name("one") != lease_name("two")


def test_one_lease_per_configuration_shards_get_their_own():
    assert lease_name("i", ["b", "a"]) == lease_name("i", ["a", "b"])
    assert lease_name("i", ["a"]) != lease_name("i", ["b"]) != lease_name("i")
