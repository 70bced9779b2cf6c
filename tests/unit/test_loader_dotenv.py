"""``.env`` / ``env_file`` parsing."""
import pytest

from controller.errors import ManifestError
from controller.render.compose.dotenv import parse_dotenv


def test_dotenv_forms():
    text = ("# comment\n\nA=1\nexport B = two \nC=x # trailing comment\nD=a#b\n"
            "E='single $X # kept'\nF=\"dq \\\"q\\\" \\n end\" # c\nG=\"multi\nline\"\nH=\nA=3\n")
    assert parse_dotenv(text) == {"A": "3", "B": "two", "C": "x", "D": "a#b",
                                  "E": "single $X # kept", "F": 'dq "q" \n end',
                                  "G": "multi\nline", "H": ""}


def test_bare_key_takes_lookup_or_is_skipped():
    assert parse_dotenv("A\nB\n", lookup={"A": "1"}.get) == {"A": "1"}
    assert parse_dotenv("A\n") == {}


@pytest.mark.parametrize("text,line", [("A=1\n=2\n", 2), ("A='open\n", 1), ("A 1\n", 1),
                                       ("A='x' y\n", 1)])
def test_bad_lines(text, line):
    with pytest.raises(ManifestError) as e:
        parse_dotenv(text)
    assert e.value.line == line
