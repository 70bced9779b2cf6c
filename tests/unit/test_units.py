"""Units: Go durations, docker RAMInBytes sizes, exact NanoCPUs."""
import pytest

from controller.render.convert.units import parse_bytes, parse_duration_ns, parse_nano_cpus

S = 1_000_000_000


@pytest.mark.parametrize("text,ns", [
    ("1m30s", 90 * S), ("500ms", 500_000_000), ("1h", 3600 * S), ("1.5s", 1_500_000_000),
    ("0", 0), (0, 0), ("10us", 10_000), ("10\u00b5s", 10_000), ("3ns", 3), ("2h45m", 9900 * S),
    ("-5s", -5 * S), (".5s", 500_000_000),
])
def test_duration(text, ns):
    assert parse_duration_ns(text) == ns


@pytest.mark.parametrize("bad", ["30", 30, "", "5x", "1m30", "s", "1.2.3s", True, None])
def test_duration_rejects_like_go(bad):
    # Go's time.ParseDuration (used by docker stack deploy) wants a unit on every number but 0
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration_ns(bad)


@pytest.mark.parametrize("text,n", [
    ("64M", 64 << 20), ("1g", 1 << 30), ("256m", 256 << 20), ("256M", 268435456),
    ("1024", 1024), (512, 512), ("10b", 10), ("1kb", 1024), ("1KiB", 1024), ("1.5g", 3 << 29),
    ("2 m", 2 << 20),
])
def test_bytes(text, n):
    assert parse_bytes(text) == n


@pytest.mark.parametrize("bad", ["", "M", "-1m", "1x", "1mbb", "1mab", -5, "1.2.3m"])
def test_bytes_rejects(bad):
    with pytest.raises(ValueError, match="invalid size"):
        parse_bytes(bad)


@pytest.mark.parametrize("value,nano", [
    ("0.5", 500_000_000), (0.25, 250_000_000), (2, 2 * S), ("1.000000001", 1_000_000_001),
    (0.1, 100_000_000), ("3", 3 * S),
])
def test_nano_cpus_exact(value, nano):
    assert parse_nano_cpus(value) == nano


@pytest.mark.parametrize("bad", ["abc", "-1", "0.0000000001", True, "nan"])
def test_nano_cpus_rejects(bad):
    with pytest.raises(ValueError, match="invalid cpus"):
        parse_nano_cpus(bad)
