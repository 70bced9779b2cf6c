"""ReconcileLoop (issue 7): triggers are held for the minimum gap and never skip the failure
backoff. Real threads and a fake pass (no Docker involved: the loop only calls a callable)."""
import threading
import time

import pytest

from controller.reconcile.loop import ReconcileLoop, trigger_hold_s


class Pass:
    """A fake pass recording its start times; fails while ``fail`` is true."""

    def __init__(self, fail=False):
        self.fail = fail
        self.starts = []
        self.event = threading.Event()

    def __call__(self):
        self.starts.append(time.monotonic())
        self.event.set()
        return type("Outcome", (), {"result": "failed" if self.fail else "success"})()

    def wait_for(self, n, timeout_s=10):
        deadline = time.monotonic() + timeout_s
        while len(self.starts) < n and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(self.starts) >= n, self.starts


@pytest.fixture
def run_loop():
    loops = []

    def start(p, **kw):
        loop = ReconcileLoop(p, **kw)
        loop.start()
        loops.append(loop)
        return loop
    yield start
    for loop in loops:
        loop.stop(5)


def test_hold_rule():
    assert trigger_hold_s(0.0, 5.0, 30.0) == 5.0
    assert trigger_hold_s(4.0, 1.0, 30.0) == 4.0  # the backoff, even when longer than the gap
    assert trigger_hold_s(0.0, 60.0, 30.0) == 30.0  # never past the next poll
    assert trigger_hold_s(0.0, -1.0, 30.0) == 0.0


def test_burst_of_triggers_gives_one_pass_after_the_gap(run_loop):
    p = Pass()
    loop = run_loop(p, interval_s=60, min_gap_s=0.8)
    p.wait_for(1)
    time.sleep(0.05)
    for _ in range(20):
        loop.trigger.set("webhook")
    p.wait_for(2)
    assert p.starts[1] - p.starts[0] >= 0.8
    for _ in range(5):
        loop.trigger.set("file")
    time.sleep(1.2)
    assert len(p.starts) == 3, p.starts  # the second burst is one more pass, also held
    assert p.starts[2] - p.starts[1] >= 0.8


def test_trigger_does_not_skip_failure_backoff(run_loop):
    p = Pass(fail=True)
    loop = run_loop(p, interval_s=60, min_backoff_s=1.0, min_gap_s=0.0)
    p.wait_for(1)
    loop.trigger.set("webhook")
    p.wait_for(2)
    assert p.starts[1] - p.starts[0] >= 1.0  # not at once: the backoff holds
    loop.trigger.set("webhook")
    p.wait_for(3)
    assert p.starts[2] - p.starts[1] >= 2.0  # doubled


def test_stop_is_not_held_by_the_gap(run_loop):
    p = Pass()
    loop = run_loop(p, interval_s=60, min_gap_s=30)
    p.wait_for(1)
    loop.trigger.set("webhook")
    time.sleep(0.1)
    t0 = time.monotonic()
    loop.stop(5)
    assert time.monotonic() - t0 < 2
    assert len(p.starts) == 1
