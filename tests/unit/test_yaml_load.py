"""Strict YAML reading: 1.2 scalars, merge keys, duplicate keys, positions."""
import pytest

from controller.errors import ManifestError
from controller.render.compose.yaml_load import PlainText, YamlFloat, YamlInt, load_yaml, resolve_plain


@pytest.mark.parametrize("text,expected", [
    ("on", "on"), ("yes", "yes"), ("no", "no"), ("off", "off"), ("y", "y"),
    ("true", True), ("False", False), ("~", None), ("null", None), ("", None),
    ("0755", "0755"), ("8080:80", "8080:80"), ("1:30", "1:30"),
    ("12", 12), ("-3", -3), ("0x1F", 31), ("0o17", 15),
    ("1e3", 1000.0), ("0.5", 0.5), (".5", 0.5), ("1_000", "1_000"),
])
def test_plain_scalars_follow_yaml_1_2(text, expected):
    value = resolve_plain(text)
    assert value == expected and type(value) in (type(expected), YamlInt, YamlFloat, PlainText)


def test_numbers_remember_their_text():
    data, _ = load_yaml("a: 1.10\nb: 0x1F\n")
    assert data["a"].text == "1.10" and data["b"].text == "0x1F"


def test_quoted_scalars_stay_strings():
    data, _ = load_yaml("a: 'true'\nb: \"12\"\nc: !!str 3\nd: !!int '4'\n")
    assert data == {"a": "true", "b": "12", "c": "3", "d": 4}


def test_positions_are_one_based_lines_of_keys_and_items():
    data, pos = load_yaml("services:\n  web:\n    ports:\n      - 80\n      - 443\n")
    assert pos["services"] == 1 and pos["services.web.ports"] == 3
    assert pos["services.web.ports.0"] == 4 and pos["services.web.ports.1"] == 5


def test_merge_single_and_list_form_explicit_keys_win():
    text = ("a: &a {x: 1, y: 1}\nb: &b {y: 2, z: 2}\n"
            "one:\n  <<: *a\n  x: 9\n"
            "two:\n  <<: [*a, *b]\n")
    data, pos = load_yaml(text)
    assert data["one"] == {"x": 9, "y": 1}
    assert data["two"] == {"x": 1, "y": 1, "z": 2}  # earlier source wins
    assert pos["one.x"] == 5 and pos["one.y"] == 1  # merged key points at its anchor line


def test_repeated_key_is_an_error_at_the_repeat():
    with pytest.raises(ManifestError) as err:
        load_yaml("services:\n  web:\n    image: a\n    image: b\n")
    assert err.value.line == 4 and err.value.key == "services.web.image"
    assert "first at line 3" in err.value.message


def test_two_merge_keys_are_an_error():
    with pytest.raises(ManifestError) as err:
        load_yaml("a: &a {x: 1}\nb: &b {y: 1}\nc:\n  <<: *a\n  <<: *b\n")
    assert err.value.line == 5 and err.value.key == "c.<<"


def test_merge_of_a_scalar_is_an_error():
    with pytest.raises(ManifestError, match="merges mappings"):
        load_yaml("a: &a 1\nb:\n  <<: *a\n")


@pytest.mark.parametrize("text,needle", [
    ("a: [\n", "invalid YAML"),
    ("a: 1\n---\nb: 2\n", "single document"),
    ("a: !Ref x\n", "unsupported YAML tag"),
    ("a: &x [*x]\n", "recursive"),
    ("? [a]\n: 1\n", "plain strings"),
])
def test_bad_documents(text, needle):
    with pytest.raises(ManifestError, match=needle):
        load_yaml(text)


def test_alias_bomb_is_stopped(monkeypatch):
    import controller.render.compose.yaml_load as yl
    monkeypatch.setattr(yl, "MAX_VALUES", 1000)
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 6):
        lines.append(f"a{i}: &a{i} [{', '.join([f'*a{i-1}'] * 10)}]")
    with pytest.raises(ManifestError, match="alias bomb"):
        load_yaml("\n".join(lines) + "\n")


def test_empty_document():
    assert load_yaml("") == (None, {})
