"""Image references: docker's grammar, and an unset variable that breaks one is an error."""
import pytest

from controller.errors import ManifestError
from controller.render.compose.loader import load_text
from controller.render.compose.reference import is_valid_reference


@pytest.mark.parametrize("ref", ["busybox", "busybox:1.36", "library/busybox:latest",
                                 "127.0.0.1:5000/team/api:main", "localhost/a_b/c-d:v1.2",
                                 "registry.example.com:443/x@sha256:" + "0" * 64,
                                 "host:5000/x:tag@sha256:" + "a" * 64])
def test_valid(ref):
    assert is_valid_reference(ref)


@pytest.mark.parametrize("ref", ["", "/x:1", "x:", "Foo", "x::1", "a/-b", "x@sha256:12",
                                 "x:" + "t" * 129])
def test_invalid(ref):
    assert not is_valid_reference(ref)


def test_unset_variable_is_a_warning_where_the_result_is_valid():
    m = load_text("services:\n  a:\n    image: x:1\n    environment:\n      A: ${NOPE}\n",
                  environ={})
    assert any("NOPE" in w for w in m.warnings)


def test_unset_variable_that_breaks_the_image_name_is_an_error():
    with pytest.raises(ManifestError) as err:
        load_text("services:\n  a:\n    image: ${REGISTRY}/api:1\n", environ={})
    msg = str(err.value)
    assert "services.a.image" in msg and "REGISTRY" in msg and "stack.yml:3" in msg


@pytest.mark.parametrize("text, key", [
    ('services:\n  a:\n    image: x\n    ports:\n      - "${PORT}:80"\n', "services.a.ports.0"),
    ('services:\n  a:\n    image: x\n    ports:\n      - "8080:${T}"\n', "services.a.ports.0"),
    ("services:\n  a:\n    image: x\n    networks: [n]\nnetworks:\n  n:\n    name: ${NET}\n",
     "networks.n.name"),
])
def test_unset_variable_that_breaks_a_port_or_name_is_an_error(text, key):
    with pytest.raises(ManifestError) as err:
        load_text(text, environ={})
    assert key in str(err.value) and "is not set" in str(err.value)
