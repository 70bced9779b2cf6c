"""Per-stack ``x-keelson`` options and the operator settings for drift and recreation (issue 8)."""
import pytest

from controller.config import Settings, settings_from_env
from controller.errors import ConfigError, ManifestError
from controller.model.drift import DriftMode
from controller.render.compose.loader import load_text

BASE = """services:
  app:
    image: busybox:latest
"""


def test_defaults_when_absent():
    m = load_text(BASE)
    assert m.options.drift is None and m.options.recreate == frozenset()
    assert "x-keelson" not in m.compose


def test_drift_and_recreate_read():
    m = load_text("x-keelson:\n  drift: report\n  recreate: [networks]\n" + BASE)
    assert m.options.drift == DriftMode.REPORT and m.options.recreate == {"networks"}


@pytest.mark.parametrize("text, key, line", [
    ("x-keelson:\n  drift: sometimes\n", "x-keelson.drift", 2),
    ("x-keelson:\n  recreate: [volumes]\n", "x-keelson.recreate", 2),
    ("x-keelson: yes\n", "x-keelson", 1),
])
def test_bad_options_name_key_and_line(text, key, line):
    with pytest.raises(ManifestError) as err:
        load_text(text + BASE, filename="stack.yml")
    assert err.value.key == key and err.value.line == line, str(err.value)


def test_settings_from_environment():
    kw = settings_from_env({"KEELSON_DRIFT": "Report", "KEELSON_RECREATE": "networks"})
    s = Settings(repo="/x", **kw).validated()
    assert s.drift == "report" and s.recreate == ("networks",)
    with pytest.raises(ConfigError, match="KEELSON_DRIFT"):
        Settings(repo="/x", drift="maybe").validated()
    with pytest.raises(ConfigError, match="volumes are never recreated"):
        Settings(repo="/x", recreate=("volumes",)).validated()
