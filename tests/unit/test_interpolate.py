"""The Compose interpolation grammar."""
import pytest

from controller.errors import ManifestError
from controller.render.compose.interpolate import chain_lookup, substitute

ENV = {"SET": "v", "EMPTY": "", "B": "b"}
look = chain_lookup(ENV)


@pytest.mark.parametrize("text,expected", [
    ("plain", "plain"), ("$SET", "v"), ("${SET}", "v"), ("a${SET}b", "avb"), ("$SET.x", "v.x"),
    ("${SET:-d}", "v"), ("${EMPTY:-d}", "d"), ("${UNSET:-d}", "d"),
    ("${SET-d}", "v"), ("${EMPTY-d}", ""), ("${UNSET-d}", "d"),
    ("${SET:+r}", "r"), ("${EMPTY:+r}", ""), ("${UNSET:+r}", ""),
    ("${SET+r}", "r"), ("${EMPTY+r}", "r"), ("${UNSET+r}", ""),
    ("${SET:?e}", "v"), ("${EMPTY?e}", ""),
    ("${UNSET:-${B:-x}}", "b"), ("${UNSET:-${NOPE:-x}}", "x"), ("${UNSET:-a-${B}-c}", "a-b-c"),
    ("$$", "$"), ("$${SET}", "${SET}"), ("$$2y$$05$$abc", "$2y$05$abc"),
    ("{{.Node.ID}}", "{{.Node.ID}}"), ("${UNSET:-{{.Task.Slot}}}", "{{.Task.Slot}}"),
    ("${UNSET:-}", ""),
])
def test_grammar(text, expected):
    assert substitute(text, look)[0] == expected


def test_unset_without_default_is_empty_and_reported():
    assert substitute("x${A}y$B", chain_lookup({})) == ("xy", ["A", "B"])


@pytest.mark.parametrize("text,state", [("${UNSET:?need it}", "not set"),
                                        ("${EMPTY:?need it}", "unset or empty"),
                                        ("${UNSET?need it}", "not set")])
def test_required_variable_errors(text, state):
    with pytest.raises(ManifestError) as err:
        substitute(text, look, key="services.a.image", line=3)
    e = err.value
    assert e.key == "services.a.image" and e.line == 3
    assert e.message == f"required variable {text[2:text.index(':') if ':' in text else text.index('?')]} is {state}: need it"


@pytest.mark.parametrize("text", ["$", "a$", "$1", "${}", "${1A}", "${A", "${A:x}", "$(cmd)"])
def test_invalid_format(text):
    with pytest.raises(ManifestError, match="invalid interpolation format"):
        substitute(text, look)


def test_default_is_lazy():
    # The default is not evaluated when the variable is set, so its error never fires.
    assert substitute("${SET:-${X:?boom}}", look)[0] == "v"



def test_chain_lookup_first_source_wins():
    assert chain_lookup({"A": "1"}, {"A": "2", "B": "3"})("A") == "1"
    assert chain_lookup({"A": "1"}, {"A": "2", "B": "3"})("B") == "3"
