"""Numbers used as strings: Keelson keeps the spelling, and warns where docker would not."""
from __future__ import annotations

import pytest

from controller.render.compose.docker_numbers import docker_reading, go_float_text
from controller.render.compose.loader import load_text
from controller.render.compose.yaml_load import load_yaml, resolve_plain


@pytest.mark.parametrize("text, docker", [
    ("1.10", "1.1"), ("1e3", "1000"), ("0755", "493"), ("0x1F", "31"), ("+3", "3"),
    ("1.0", "1"), (".5", "0.5"), ("1234567.0", "1.234567e+06"), ("0.00001", "1e-05"),
    ("10", None), ("1.5", None), ("0.0001", None), ("08", None), ("abc", None),
])
def test_docker_reading_of_plain_scalars(text, docker):
    assert docker_reading(resolve_plain(text)) == docker


def test_quoted_values_mean_the_same_to_both():
    data, _ = load_yaml("a: '1.10'\nb: \"0755\"\n")
    assert docker_reading(data["a"]) is None and docker_reading(data["b"]) is None


@pytest.mark.parametrize("value, text", [(1e21, "1e+21"), (123456.0, "123456"), (-0.5, "-0.5"),
                                         (float("inf"), "+Inf"), (0.0, "0")])
def test_go_float_text(value, text):
    assert go_float_text(value) == text


def test_loader_keeps_the_spelling_and_warns_with_file_and_line():
    m = load_text("services:\n  a:\n    image: x\n    environment:\n      VERSION: 1.10\n"
                  "      MODE: 0755\n      N: 1e3\n      OK: '1.10'\n    labels: {n: 12}\n")
    assert m.services["a"]["environment"] == {"VERSION": "1.10", "MODE": "0755", "N": "1e3",
                                              "OK": "1.10"}
    assert m.warnings == [
        "stack.yml:5: key services.a.environment.VERSION: 1.10 is kept as the string '1.10'; "
        "docker stack deploy would send '1.1' (quote the value to make both agree)",
        "stack.yml:6: key services.a.environment.MODE: 0755 is kept as the string '0755'; "
        "docker stack deploy would send '493' (quote the value to make both agree)",
        "stack.yml:7: key services.a.environment.N: 1e3 is kept as the string '1e3'; "
        "docker stack deploy would send '1000' (quote the value to make both agree)",
    ]


def test_numeric_fields_do_not_warn():
    m = load_text("version: 3.10\nservices:\n  a:\n    image: x\n    deploy: {replicas: 1.0}\n"
                  "    configs: [{source: c, mode: 0440}]\nconfigs:\n  c: {content: x}\n")
    assert not [w for w in m.warnings if "docker stack deploy would send" in w]
