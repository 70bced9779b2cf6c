"""ChangeWatcher's filters and debounce (no file system events needed)."""
import threading
import time

import pytest

from controller.errors import ConfigError
from controller.source.watch import ChangeWatcher, is_ref_path


@pytest.mark.parametrize("rel,want", [
    ("HEAD", True), ("packed-refs", True), ("refs/heads/main", True),
    ("refs/heads/team/feature", True), ("refs/heads/main.lock", False),
    ("packed-refs.lock", False), ("HEAD.lock", False), ("objects/ab/cdef", False),
    ("FETCH_HEAD", False), ("ORIG_HEAD", False), ("index", False), ("logs/HEAD", False),
])
def test_ref_paths(rel, want):
    assert is_ref_path(rel) is want


def test_a_burst_of_pokes_gives_one_call_after_quiet(tmp_path):
    calls = []
    done = threading.Event()

    def on_change():
        calls.append(time.monotonic())
        done.set()

    w = ChangeWatcher(str(tmp_path), on_change, debounce_s=0.2)
    w.start()
    try:
        t0 = time.monotonic()
        for _ in range(5):
            time.sleep(0.05)
            w._poke()
            last = time.monotonic()
        assert done.wait(3)
        time.sleep(0.4)
        assert len(calls) == 1
        assert calls[0] - last >= 0.19 and calls[0] - t0 < 2
    finally:
        w.stop()


def test_a_failing_callback_does_not_end_watching(tmp_path):
    calls = []

    def on_change():
        calls.append(1)
        raise RuntimeError("boom")

    w = ChangeWatcher(str(tmp_path), on_change, debounce_s=0.05)
    w.start()
    try:
        w._poke()
        time.sleep(0.3)
        w._poke()
        time.sleep(0.3)
        assert len(calls) == 2
    finally:
        w.stop()
        w.stop()  # idempotent


def test_missing_folder_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError):
        ChangeWatcher(str(tmp_path / "gone"), lambda: None)
