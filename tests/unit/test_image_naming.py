"""Pure image naming rules: repository and content-derived tag."""
from __future__ import annotations

import pytest

from controller.images.naming import build_repository, build_tag, has_registry_host
from controller.model.manifest import BuildSpec

REV = "0123456789abcdef0123456789abcdef01234567"


@pytest.mark.parametrize("name,expected", [
    ("api", False), ("team/api", False), ("127.0.0.1:5000/api", True),
    ("registry.example.com/team/api", True), ("localhost/api", True), ("Host/api", True),
])
def test_has_registry_host(name, expected):
    assert has_registry_host(name) is expected


@pytest.mark.parametrize("image,expected", [
    (None, "reg:5000/shop_web"),
    ("team/api:main", "reg:5000/team/api"),
    ("api", "reg:5000/api"),
    ("127.0.0.1:5000/team/api:1.0", "127.0.0.1:5000/team/api"),
    ("registry.example.com/api@sha256:" + "a" * 64, "registry.example.com/api"),
])
def test_build_repository(image, expected):
    assert build_repository("reg:5000", "shop", "web", image) == expected


def test_build_repository_lowercases_and_allows_no_registry():
    assert build_repository("reg:5000", "Shop", "Web", None) == "reg:5000/shop_web"
    assert build_repository("", "shop", "web", None) == "shop_web"


def test_build_tag_default_is_revision_prefix():
    assert build_tag(REV, BuildSpec(context="/c")) == REV[:12]
    assert build_tag(REV.upper(), BuildSpec(context="/c", dockerfile="Dockerfile")) == REV[:12]


def test_build_tag_options_change_suffix_deterministically():
    a = build_tag(REV, BuildSpec(context="/c", args={"X": "1", "Y": "2"}))
    b = build_tag(REV, BuildSpec(context="/other", args={"Y": "2", "X": "1"}))
    assert a == b and a.startswith(REV[:12] + "-") and len(a) == 21
    tags = {a, build_tag(REV, BuildSpec(context="/c", args={"X": "2", "Y": "2"})),
            build_tag(REV, BuildSpec(context="/c", target="prod")),
            build_tag(REV, BuildSpec(context="/c", dockerfile="Dockerfile.prod"))}
    assert len(tags) == 4


@pytest.mark.parametrize("bad", ["", "not-hex", None])
def test_build_tag_rejects_bad_revision(bad):
    with pytest.raises(ValueError):
        build_tag(bad, BuildSpec(context="/c"))


def test_build_tag_labels_count_as_options():
    plain = build_tag(REV, BuildSpec(context="/c"))
    labelled = build_tag(REV, BuildSpec(context="/c", labels={"team": "a"}))
    assert plain == REV[:12] and labelled.startswith(plain + "-")
    assert labelled != build_tag(REV, BuildSpec(context="/c", labels={"team": "b"}))
