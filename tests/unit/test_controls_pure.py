"""Per-stack controls (issue 13.3): the pure parts. Tree diff, status/history tables, diff text,
the hold rule, the coalescing of stack-selected triggers, the control API's routing and its
token rule. (The controls themselves run on the real swarm: tests/integration/test_controls.py.)
"""
from __future__ import annotations

import json
from http import HTTPStatus

from controller.deploy.fields import FieldChange, field_changes, stack_field_diff
from controller.errors import ControlError, StackNotFoundError
from controller.http import api
from controller.http.auth import ApiAccess, control_access
from controller.model import Change, DesiredStack, LiveStack, StackPlan, StackRecord
from controller.model.desired import DesiredService
from controller.model.live import LiveService
from controller.model.status import HealthStatus, SyncStatus
from controller.reconcile import outcome
from controller.reconcile.loop import Trigger
from controller import views


# -- tree diff -------------------------------------------------------------------------------
def test_field_changes_names_leaves_with_old_and_new():
    old = {"Env": ["A=1", "B=2"], "Labels": {"com.example.tier": "web"}, "Gone": 3}
    new = {"Env": ["A=1", "B=3"], "Labels": {"com.example.tier": "api"}, "Mode": {"R": {"N": 2}}}
    assert field_changes(old, new) == [
        FieldChange("Env[1]", "B=2", "B=3"),
        FieldChange("Gone", 3, None),
        FieldChange('Labels["com.example.tier"]', "web", "api"),
        FieldChange("Mode.R.N", None, 2),
    ]


def test_field_changes_lists_of_other_length_are_one_change_and_equal_is_empty():
    assert field_changes({"a": [1]}, {"a": [1, 2]}) == [FieldChange("a", [1], [1, 2])]
    assert field_changes({"a": {"b": [1, {"c": 2}]}}, {"a": {"b": [1, {"c": 2}]}}) == []


def test_stack_field_diff_compares_normalised_specs_of_updated_services():
    def spec(level):
        return {"Name": "s_app", "Labels": {"io.keelson.spec-hash": level},
                "TaskTemplate": {"ContainerSpec": {"Image": "busybox", "Env": [f"L={level}"]}},
                "Mode": {"Replicated": {"Replicas": 1}}}
    live = LiveStack("s", services={"s_app": LiveService("id", "s_app", 1, {}, spec("v1"))})
    desired = DesiredStack("s", services={"s_app": DesiredService("s_app", "app", spec("v2"))})
    plan = StackPlan("s", [Change("network", "s_default", "unchanged"),
                           Change("service", "s_app", "update", "spec changed")])
    [one] = stack_field_diff(plan, desired, live)
    assert (one.kind, one.name, one.action) == ("service", "s_app", "update")
    # Keelson's own labels are not a difference; the Env is
    assert one.fields == (FieldChange("TaskTemplate.ContainerSpec.Env[0]", "L=v1", "L=v2"),)


# -- tables and text -------------------------------------------------------------------------
def test_status_table_columns_and_rows():
    stacks = {"web": {"sync_status": "Synced", "health_status": "Healthy",
                      "last_applied_revision": "a" * 40, "services": {"web_a": "x", "web_b": "y"},
                      "updated_at": 1000.0, "reason": "Succeeded", "last_error": ""},
              "api": {"sync_status": "Suspended", "health_status": "Healthy",
                      "last_applied_revision": "", "last_attempted_revision": "b" * 40,
                      "services": {}, "updated_at": 1000.0 - 7200, "reason": "Suspended",
                      "last_error": "suspended at bbbb: no writes\nuntil resume " + "x" * 100}}
    lines = views.status_table(stacks, now=1012.0).splitlines()
    assert lines[0].split() == ["NAME", "SYNC", "HEALTH", "REVISION", "SERVICES", "LAST", "SYNC",
                                "MESSAGE"]
    assert lines[0].startswith("NAME   SYNC")  # columns three spaces apart, aligned
    assert lines[0].index("HEALTH") == lines[1].index("Healthy") == lines[2].index("Healthy")
    assert lines[1].split()[:6] == ["api", "Suspended", "Healthy", "b" * 12, "0", "2h"]
    assert lines[1].endswith("...") and "\n" not in lines[1]
    assert lines[2].split()[:6] == ["web", "Synced", "Healthy", "a" * 12, "2", "12s"]


def test_ago_and_history_table():
    assert [views.ago(t, 100000.0) for t in (None, 99999.0, 99000.0, 90000.0, 1.0)] == \
        ["-", "1s ago", "16m ago", "2h ago", "1d ago"]
    text = views.history_table({"history": [{"revision": "c" * 40, "result": "Succeeded",
                                             "at": 90.0, "message": ""}]}, now=100.0)
    assert text.splitlines()[0].split() == ["REVISION", "RESULT", "WHEN", "MESSAGE"]
    assert text.splitlines()[1].split() == ["c" * 12, "Succeeded", "10s", "ago"]


def test_diff_text_plain_and_coloured():
    doc = {"stack": "web", "revision": "d" * 40, "suspended": "suspend", "changes": [
        {"kind": "service", "name": "web_app", "action": "update", "reason": "spec changed",
         "fields": [{"path": "TaskTemplate.ContainerSpec.Env[0]", "old": "L=1", "new": None}]}]}
    plain = views.diff_text(doc)
    assert plain.splitlines() == [
        f"stack web: 1 change(s) to reach {'d' * 12} (suspended: suspend)",
        "  update service web_app (spec changed)",
        '    TaskTemplate.ContainerSpec.Env[0]: "L=1" -> (none)']
    coloured = views.diff_text(doc, color=True)
    assert views.RED + '"L=1"' + views.RESET in coloured and views.GREEN in coloured
    assert views.diff_text({"stack": "web", "revision": "e" * 40, "changes": []}) == \
        f"stack web: in sync with {'e' * 12}\n"


# -- the hold rule ---------------------------------------------------------------------------
def test_hold_released_only_by_a_commit_that_changes_a_rolled_back_stack():
    assert outcome.hold_released(StackRecord(), "h1")
    suspended = StackRecord(suspended="suspend", applied_revision="f" * 40)
    assert not outcome.hold_released(suspended, "h2")
    held = StackRecord(suspended="rollback", held_source="h1")
    assert not outcome.hold_released(held, "h1")
    assert outcome.hold_released(held, "h2")
    assert not outcome.hold_released(held, "")
    verdict = outcome.suspended(suspended, HealthStatus.HEALTHY)
    assert (verdict.sync, verdict.reason, verdict.attempted) == \
        (SyncStatus.SUSPENDED, "Suspended", "f" * 40)
    assert "keelson resume" in verdict.message


# -- triggers that name stacks ---------------------------------------------------------------
def test_trigger_selection_coalesces_and_a_full_trigger_wins():
    t = Trigger()
    t.set("api", ["a"])
    t.set("api", ["b"])
    assert t.wait(0) == ["api"] and t.selection == frozenset({"a", "b"})
    t.set("api", ["a"])
    t.set("webhook")
    assert t.wait(0) == ["api", "webhook"] and t.selection is None
    assert t.wait(0) is None


# -- the control API -------------------------------------------------------------------------
class FakeControls:
    """Stands in for StackControls (pure routing test): records calls, raises on demand."""

    def __init__(self, error=None):
        self.calls, self.error = [], error

    def _do(self, *call):
        self.calls.append(call)
        if self.error:
            raise self.error
        return {"stack": call[1], "action": call[0]}

    def sync_now(self, name):
        return self._do("sync", name)

    def suspend(self, name):
        return self._do("suspend", name)

    def resume(self, name):
        return self._do("resume", name)

    def rollback(self, name, to):
        return self._do("rollback", name, to)

    def diff(self, name):
        return self._do("diff", name)


ACT = {"X-Keelson-Action": "1", "Content-Type": "application/json"}


def test_api_routes_methods_and_bodies():
    c = FakeControls()
    assert api.answer(c, "POST", "/api/stacks/web/sync", b"", ACT).status == HTTPStatus.ACCEPTED
    assert api.answer(c, "POST", "/api/stacks/web/rollback",
                      json.dumps({"to": "abc1234"}).encode(), ACT).status == HTTPStatus.OK
    assert api.answer(c, "GET", "/api/stacks/web/diff", b"", ACT).status == HTTPStatus.OK
    assert c.calls == [("sync", "web"), ("rollback", "web", "abc1234"), ("diff", "web")]
    wrong = api.answer(c, "GET", "/api/stacks/web/suspend", b"", ACT)
    assert wrong.status == HTTPStatus.METHOD_NOT_ALLOWED and wrong.headers == {"Allow": "POST"}
    for path in ("/api/stacks/web", "/api/stacks/web/explode", "/api/stacks/../x/sync",
                 "/api/stacks/web/sync/more"):
        assert api.answer(c, "POST", path, b"", ACT).status == HTTPStatus.NOT_FOUND, path
    for body in (b"[1]", b"{", b'{"to": 5}', b'{"to": "a", "x": 1}'):
        assert api.answer(c, "POST", "/api/stacks/web/rollback", body, ACT).status == \
            HTTPStatus.BAD_REQUEST, body
    assert api.answer(None, "POST", "/api/stacks/web/sync", b"", ACT).status == \
        HTTPStatus.SERVICE_UNAVAILABLE


def test_api_errors_map_to_statuses():
    missing = api.answer(FakeControls(StackNotFoundError("no stack 'web'")), "POST",
                         "/api/stacks/web/suspend", b"", ACT)
    assert missing.status == HTTPStatus.NOT_FOUND and missing.payload["reason"] == "StackNotFound"
    refused = api.answer(FakeControls(ControlError("a plain folder")), "POST",
                         "/api/stacks/web/rollback", b"", ACT)
    assert refused.status == HTTPStatus.CONFLICT and "plain folder" in refused.payload["error"]


def test_control_post_needs_the_action_header_and_a_json_body():
    """CSRF guard: a POST a cross-site form or no-cors fetch could send is refused before the
    control runs; GET (diff) needs no header."""
    c = FakeControls()
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    for headers, body in (({}, b""), (form, b"to=abc"), ({"X-Keelson-Action": ""}, b""),
                          ({"Content-Type": "text/plain"}, b'{"to": "abc1234"}')):
        got = api.answer(c, "POST", "/api/stacks/web/suspend", body, headers)
        assert got.status == HTTPStatus.FORBIDDEN, headers
        assert got.payload["reason"] == "ActionHeaderMissing"
    for ctype in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data", ""):
        got = api.answer(c, "POST", "/api/stacks/web/rollback", b'{"to": "abc1234"}',
                         {"x-keelson-action": "1", "content-type": ctype})
        assert got.status == HTTPStatus.UNSUPPORTED_MEDIA_TYPE, ctype
    assert c.calls == []
    ok = {"x-keelson-action": "1", "Content-Type": "application/json; charset=utf-8"}
    assert api.answer(c, "POST", "/api/stacks/web/rollback", b'{"to": "abc1234"}', ok).status \
        == HTTPStatus.OK
    assert api.answer(c, "POST", "/api/stacks/web/suspend", b"", {"X-Keelson-Action": "1"}).status \
        == HTTPStatus.OK
    assert api.answer(c, "GET", "/api/stacks/web/diff", b"", {}).status == HTTPStatus.OK
    assert c.calls == [("rollback", "web", "abc1234"), ("suspend", "web"), ("diff", "web")]


def test_control_token_only_from_the_authorization_header():
    """The token is never taken from a cookie or the query string (a browser sends cookies
    cross-site; a URL leaks to logs)."""
    for headers in ({"Cookie": "token=t0k; keelson.token=t0k"}, {"X-Token": "t0k"},
                    {"Authorization": "Basic t0k"}, {"Authorization": "t0k"}):
        assert control_access(headers, "t0k", loopback_bind=True) is ApiAccess.DENIED, headers


def test_control_access_needs_a_configured_token_even_on_loopback():
    good, bad = {"Authorization": "Bearer t0k"}, {"Authorization": "Bearer nope"}
    assert control_access(good, "t0k", loopback_bind=True) is ApiAccess.ALLOWED
    assert control_access({}, "t0k", loopback_bind=True) is ApiAccess.DENIED
    assert control_access(bad, "t0k", loopback_bind=False) is ApiAccess.DENIED
    assert control_access({}, "", loopback_bind=True) is ApiAccess.ALLOWED
    assert control_access({}, "", loopback_bind=False) is ApiAccess.NO_TOKEN_CONFIGURED


def test_loop_runs_a_stack_selected_pass_for_a_trigger_that_names_stacks():
    import threading
    from controller.reconcile.loop import ReconcileLoop
    calls, seen = [], threading.Event()

    def full():
        calls.append("full")

    def some(names):
        calls.append(tuple(names))
        seen.set()

    loop = ReconcileLoop(full, interval_s=3600, reconcile_stacks=some)
    loop.start()
    try:
        loop.trigger.set("api", ["b", "a"])
        assert seen.wait(30)
    finally:
        loop.stop()
    assert calls[:2] == ["full", ("a", "b")]
