"""The benchmarks' pure parts: alternation, medians, targets, and request routes (no Docker)."""
from bench import figures as F
from bench.proxy import RequestCount, route_of


def test_pairs_alternate_who_goes_first():
    assert [F.pair_order(i) for i in range(3)] == [
        (F.KEELSON, F.DOCKER), (F.DOCKER, F.KEELSON), (F.KEELSON, F.DOCKER)]


def test_median_and_ratio_handle_missing_values():
    assert F.median([3.0, 1.0, 2.0]) == 2.0
    assert F.median([]) is None
    assert F.ratio(1.0, 4.0) == 0.25
    assert F.ratio(None, 4.0) is None and F.ratio(1.0, 0.0) is None


def test_targets_say_met_not_met_or_unknown():
    assert F.at_most(0.05, 0.05, "<= 0.05x").verdict == "met"
    assert F.at_most(0.06, 0.05, "<= 0.05x").verdict == "NOT met"
    assert F.below(None, 1.0, "< 1 %").verdict == "n/a"
    assert F.below(1.0, 1.0, "< 1 %").verdict == "NOT met"


def test_growth_is_judged_against_linear_within_tolerance():
    steps = F.growth([(20, 1.0), (100, 5.4), (300, 20.0)])
    assert [s[0] for s in steps] == ["20->100", "100->300"]
    assert steps[0][3].met is True  # 5.4 <= 5 x 1.1
    assert steps[1][3].met is False  # 3.7 > 3 x 1.1


def test_table_is_markdown():
    assert F.table(["a", "b"], [[1, "x"]]).splitlines() == ["| a | b |", "|---|---|", "| 1 | x |"]


def test_docker_routes_fold_ids_and_drop_the_api_version():
    assert route_of("GET", "/v1.41/services?filters=%7B%7D") == "GET /services"
    assert route_of("POST", "/v1.41/services/abc123/update?version=9") == "POST /services/*/update"
    assert route_of("GET", "/v1.41/distribution/127.0.0.1:5000/library/busybox:latest/json") == \
        "GET /distribution/*/json"
    assert route_of("HEAD", "/_ping") == "HEAD /_ping"


def test_registry_routes_fold_repository_and_reference():
    assert route_of("GET", "/v2/") == "GET /v2/"
    assert route_of("HEAD", "/v2/library/busybox/manifests/latest") == "HEAD /v2/*/manifests/*"
    assert route_of("GET", "/v2/a/b/c/blobs/sha256:00") == "GET /v2/*/blobs/*"


def test_request_counts_subtract():
    later = RequestCount(5, {"GET /services": 3, "GET /tasks": 2})
    earlier = RequestCount(2, {"GET /services": 2})
    assert later.minus(earlier) == RequestCount(3, {"GET /services": 1, "GET /tasks": 2})
