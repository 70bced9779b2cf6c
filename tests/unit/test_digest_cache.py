"""The digest cache (pure, with a fake look-up function standing in for the registry)."""
import threading
import time

import pytest

from controller.errors import ImageResolveError
from controller.images.digests import DigestCache


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_an_answer_is_reused_until_the_interval_passes():
    asked, clock = [], Clock()
    cache = DigestCache(lambda ref: asked.append(ref) or ("sha256:1", ()), 300, clock)
    assert cache.resolve("r/a:1") == ("sha256:1", ())
    assert cache.resolve("r/a:1") == ("sha256:1", ())
    assert asked == ["r/a:1"]
    clock.now += 301
    cache.resolve("r/a:1")
    assert asked == ["r/a:1", "r/a:1"] and cache.lookups == 2


def test_a_missing_tag_is_not_cached():
    asked = []
    cache = DigestCache(lambda ref: asked.append(ref) or None, 300, Clock())
    assert cache.resolve("r/a:1") is None and cache.resolve("r/a:1") is None
    assert len(asked) == 2


def test_seeded_digests_answer_without_asking():
    cache = DigestCache(lambda ref: pytest.fail("asked the registry"), 300, Clock())
    assert cache.seed([("r/a:1", "sha256:9", (("linux", "amd64"),)), ("", "sha256:x", ())]) == 1
    assert cache.resolve("r/a:1") == ("sha256:9", (("linux", "amd64"),))


def test_concurrent_callers_share_one_request_and_its_error():
    gate, calls = threading.Event(), []

    def lookup(ref):
        calls.append(ref)
        gate.wait(5)
        raise ImageResolveError("registry down")

    cache = DigestCache(lookup, 300)
    errors = []

    def ask():
        try:
            cache.resolve("r/a:1")
        except ImageResolveError as exc:
            errors.append(str(exc))

    threads = [threading.Thread(target=ask) for _ in range(5)]
    for t in threads:
        t.start()
    time.sleep(0.2)
    gate.set()
    for t in threads:
        t.join(5)
    assert calls == ["r/a:1"] and errors == ["registry down"] * 5


def test_forget_unused_keeps_memory_bounded():
    cache = DigestCache(lambda ref: ("sha256:1", ()), 300, Clock())
    for i in range(10):
        cache.resolve(f"r/a:{i}")
    cache.forget_unused(["r/a:3"])
    assert cache.fresh("r/a:3") is not None and cache.fresh("r/a:4") is None
