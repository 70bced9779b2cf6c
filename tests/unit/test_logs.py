"""telemetry.logs (logfmt and JSON lines) and images.progress (build steps as log lines)."""
from __future__ import annotations

import io
import json
import logging

import pytest

from controller.errors import ConfigError
from controller.images.progress import BuildProgress
from controller.telemetry.logs import JsonFormatter, LogfmtFormatter, setup_logging


@pytest.fixture
def capture():
    """(logger, stream, set formatter) on a private logger."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger = logging.getLogger("keelson.test.logs")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    yield logger, stream, handler.setFormatter
    logger.removeHandler(handler)


def test_json_line_has_typed_fields_and_scrubs(capture):
    logger, stream, use = capture
    use(JsonFormatter())
    logger.warning("stack reconciled", extra={"kv": {
        "stack": "web", "revision": "3f2c1a9b7e10", "result": "Failed", "writes": 2,
        "error": "fetch https://bob:hunter22@git.example.com/x.git failed"}})
    try:
        raise ValueError("boom")
    except ValueError:
        logger.exception("crash")
    first, second = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert first["level"] == "warning" and first["msg"] == "stack reconciled"
    assert first["stack"] == "web" and first["writes"] == 2 and first["result"] == "Failed"
    assert "hunter22" not in first["error"] and first["ts"].endswith("Z")
    assert "ValueError: boom" in second["exc"]


def test_logfmt_and_json_carry_the_same_keys(capture):
    logger, stream, use = capture
    use(LogfmtFormatter())
    logger.info("stack reconciled", extra={"kv": {"stack": "web", "result": "Synced"}})
    use(JsonFormatter())
    logger.info("stack reconciled", extra={"kv": {"stack": "web", "result": "Synced"}})
    text, obj = stream.getvalue().splitlines()
    assert text.endswith('msg="stack reconciled" stack=web result=Synced')
    assert list(json.loads(obj))[-2:] == ["stack", "result"]


def test_setup_logging_format_choice():
    root = logging.getLogger()
    before, level = list(root.handlers), root.level
    try:
        setup_logging("INFO", "JSON")
        [ours] = [h for h in root.handlers if h.get_name() == "keelson-logfmt"]
        assert isinstance(ours.formatter, JsonFormatter)
        setup_logging("INFO")
        [ours] = [h for h in root.handlers if h.get_name() == "keelson-logfmt"]
        assert isinstance(ours.formatter, LogfmtFormatter)
        with pytest.raises(ConfigError, match="KEELSON_LOG_FORMAT"):
            setup_logging("INFO", "xml")
    finally:
        for h in list(root.handlers):
            if h not in before:
                root.removeHandler(h)
        root.setLevel(level)


def test_build_steps_debug_and_slow_build_info(caplog):
    now = [0.0]
    progress = BuildProgress("reg/web:abc", info_after_s=5, clock=lambda: now[0])
    caplog.set_level(logging.DEBUG, logger="keelson.images.build")
    progress.text("Step 1/3 : FROM busybox\n ---> 1234\nStep 2/3 : RU")  # split mid-line
    now[0] = 6.0
    progress.text("N make\n")
    now[0] = 7.0
    progress.text("Step 3/3 : CMD x\n")  # within 5 s of the last info line: debug only
    progress.pushed("Pushed", "aa11")
    progress.pushed("Preparing", "aa11")
    steps = [(r.levelname, r.kv.get("step")) for r in caplog.records if r.msg == "build step"]
    assert steps == [("DEBUG", 1), ("DEBUG", 2), ("DEBUG", 3)]
    infos = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert infos == ["building reg/web:abc (step 2/3)"]
    assert [r.kv["layer"] for r in caplog.records if r.msg == "layer pushed"] == ["aa11"]
