"""canonical() and spec_hash(): stable under reordering, blind to Keelson's own labels."""
from controller.render.convert.normalize import canonical, spec_hash

SPEC = {
    "Name": "s_app",
    "Labels": {"b": "2", "a": "1", "io.keelson.revision": "abc", "io.keelson.spec-hash": "x"},
    "TaskTemplate": {"ContainerSpec": {
        "Image": "i", "Env": ["B=2", "A=1"], "Command": ["z", "a"], "Args": ["2", "1"],
        "Healthcheck": {"Test": ["CMD", "b", "a"]},
        "Mounts": [{"Target": "/b", "Type": "bind"}, {"Target": "/a", "Type": "bind"}],
        "Configs": [{"ConfigName": "c2"}, {"ConfigName": "c1"}]},
        "Placement": {"Constraints": ["node.role==worker", "node.labels.x==1"],
                      "Preferences": [{"Spread": {"SpreadDescriptor": "b"}},
                                      {"Spread": {"SpreadDescriptor": "a"}}]}},
}


def test_canonical_sorts_sets_not_sequences():
    c = canonical(SPEC)
    cs = c["TaskTemplate"]["ContainerSpec"]
    assert cs["Env"] == ["A=1", "B=2"]
    assert [m["Target"] for m in cs["Mounts"]] == ["/a", "/b"]
    assert [x["ConfigName"] for x in cs["Configs"]] == ["c1", "c2"]
    assert c["TaskTemplate"]["Placement"]["Constraints"] == ["node.labels.x==1", "node.role==worker"]
    # order is meaning here
    assert cs["Command"] == ["z", "a"] and cs["Args"] == ["2", "1"]
    assert cs["Healthcheck"]["Test"] == ["CMD", "b", "a"]
    assert c["TaskTemplate"]["Placement"]["Preferences"][0]["Spread"]["SpreadDescriptor"] == "b"
    assert list(c) == sorted(c) and list(c["Labels"]) == sorted(c["Labels"])


def test_canonical_does_not_mutate():
    before = repr(SPEC)
    canonical(SPEC)
    assert repr(SPEC) == before


def test_hash_is_sha256_hex_and_stable_under_reordering():
    h = spec_hash(SPEC)
    assert len(h) == 64 and int(h, 16) >= 0
    shuffled = dict(reversed(list(SPEC.items())))
    shuffled["TaskTemplate"] = {**SPEC["TaskTemplate"], "ContainerSpec": {
        **SPEC["TaskTemplate"]["ContainerSpec"], "Env": ["A=1", "B=2"]}}
    assert spec_hash(shuffled) == h


def test_hash_ignores_keelson_labels_only():
    other = {**SPEC, "Labels": {"a": "1", "b": "2", "io.keelson.revision": "def"}}
    assert spec_hash(other) == spec_hash(SPEC)
    assert spec_hash({**SPEC, "Labels": {"a": "1"}}) != spec_hash(SPEC)


def test_hash_sees_meaningful_order():
    cs = SPEC["TaskTemplate"]["ContainerSpec"]
    other = {**SPEC, "TaskTemplate": {**SPEC["TaskTemplate"],
                                      "ContainerSpec": {**cs, "Args": ["1", "2"]}}}
    assert spec_hash(other) != spec_hash(SPEC)
