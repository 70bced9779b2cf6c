"""Issue 10 (pure): depends_on read and checked, waves of a plan, the rollback scope option."""
import pytest

from controller.deploy.waves import describe, plan_waves
from controller.errors import ManifestError
from controller.model import Change, DesiredService, DesiredStack, StackPlan
from controller.model.status import RollbackScope
from controller.render.compose.depends import find_cycle, layers, read_depends
from controller.render.compose.loader import load_text


def svc(image="busybox:latest", **extra):
    return {"image": image, **extra}


def test_short_and_long_forms_are_read_with_their_conditions():
    deps, warnings = read_depends({
        "db": svc(), "cache": svc(),
        "api": svc(depends_on=["db"]),
        "web": svc(depends_on={"api": {"condition": "service_healthy"}, "cache": None}),
    })
    assert deps == {"db": {}, "cache": {}, "api": {"db": "service_started"},
                    "web": {"api": "service_healthy", "cache": "service_started"}}
    assert warnings == []


def test_an_unknown_dependency_is_a_warning_and_ignored():
    deps, warnings = read_depends({"web": svc(depends_on=["db"])})
    assert deps == {"web": {}}
    assert warnings == ["service web: depends_on names db, which is not a service of this "
                        "stack: ignored"]


def test_a_cycle_names_every_service_on_it():
    assert find_cycle({"a": {"b": ""}, "b": {"c": ""}, "c": {"a": ""}, "d": {}}) == [
        "a", "b", "c", "a"]
    assert find_cycle({"a": {"a": ""}}) == ["a", "a"]
    assert find_cycle({"a": {"b": ""}, "b": {}}) == []


def test_a_cycle_in_a_stack_file_is_a_manifest_error_at_its_line():
    text = ("services:\n"
            "  web:\n    image: busybox:latest\n    depends_on: [api]\n"
            "  api:\n    image: busybox:latest\n    depends_on:\n      web: {condition: service_healthy}\n")
    with pytest.raises(ManifestError) as err:
        load_text(text, name="cyc")
    assert "depends_on forms a cycle: api -> web -> api" in err.value.message
    assert err.value.key == "services.api.depends_on" and err.value.line == 7


def test_depends_on_is_no_longer_warned_as_ignored_and_lands_in_the_manifest():
    m = load_text("services:\n  web:\n    image: busybox:latest\n    depends_on: [db]\n"
                  "  db:\n    image: busybox:latest\n")
    assert m.warnings == []
    assert m.depends == {"web": {"db": "service_started"}, "db": {}}


def test_layers_follow_the_longest_dependency_chain():
    assert layers({"db": {}, "api": {"db": ""}, "web": {"api": "", "db": ""}, "x": {}}) == {
        "db": 0, "api": 1, "web": 2, "x": 0}


def desired(*names):
    return DesiredStack("s", services={f"s_{n}": DesiredService(f"s_{n}", n, {}) for n in names})


def test_waves_hold_only_the_services_the_plan_writes():
    deps = {"db": {}, "api": {"db": "service_healthy"}, "web": {"api": ""}, "tool": {}}
    plan = StackPlan("s", [Change("service", "s_api", "update"),
                           Change("service", "s_db", "unchanged"),
                           Change("service", "s_tool", "create"),
                           Change("service", "s_web", "update"),
                           Change("service", "s_old", "remove")])
    waves = plan_waves(plan, desired("db", "api", "web", "tool"), deps)
    assert waves == (("s_tool",), ("s_api",), ("s_web",))
    assert describe(waves, "s") == "1) tool  2) api  3) web"


def test_without_depends_on_every_service_is_in_one_wave():
    plan = StackPlan("s", [Change("service", "s_b", "update"), Change("service", "s_a", "create")])
    assert plan_waves(plan, desired("a", "b"), {"a": {}, "b": {}}) == (("s_a", "s_b"),)
    assert plan_waves(StackPlan("s", []), desired(), {}) == ()


@pytest.mark.parametrize("value, want", [("stack", RollbackScope.STACK),
                                         ("service", RollbackScope.SERVICE)])
def test_rollback_option_is_read(value, want):
    m = load_text(f"x-keelson:\n  rollback: {value}\nservices:\n  a:\n    image: busybox:latest\n")
    assert m.options.rollback == want


def test_rollback_option_default_and_bad_value():
    assert load_text("services:\n  a:\n    image: busybox:latest\n").options.rollback is None
    with pytest.raises(ManifestError) as err:
        load_text("x-keelson:\n  rollback: sometimes\nservices:\n  a:\n    image: b:1\n")
    assert err.value.key == "x-keelson.rollback" and err.value.line == 2
    assert "stack or service" in err.value.message


def test_plan_prints_the_waves_and_the_rollback_scope():
    import io
    from types import SimpleNamespace

    from controller.reconcile.stack import StackResult
    from controller.report import print_plan
    plan = StackPlan("s", [Change("service", "s_db", "update", "spec changed"),
                           Change("service", "s_api", "update", "spec changed"),
                           Change("service", "s_new", "create"),
                           Change("service", "s_old", "remove", "not in the repo")])
    runs = {"s": StackResult("s", plan=plan, waves=(("s_db",), ("s_api", "s_new")),
                             rollback_scope="stack", last_good="a" * 40),
            "f": StackResult("f", plan=StackPlan("f", [Change("service", "f_a", "create")]),
                             waves=(("f_a",),), rollback_scope="stack"),
            "t": StackResult("t", plan=StackPlan("t", [Change("service", "t_a", "update")]),
                             waves=(("t_a",),), rollback_scope="service")}
    out = io.StringIO()
    print_plan(SimpleNamespace(revision=None, error="", runs=runs), out)
    text = out.getvalue()
    assert "  waves: 1) db  2) api, new\n" in text
    assert ("  rollback: stack (on a failed rollout: db, api return to the running spec; new "
            "would be removed); old removed only once every wave is healthy\n") in text
    assert "  rollback: service (a failing service is rolled back alone" in text
    assert "  rollback: stack (first deploy: no last good revision" in text


def test_sync_summary_lists_what_a_stack_rollback_returned():
    import io
    from types import SimpleNamespace

    from controller.model import StackStatus
    from controller.model.status import SyncStatus
    from controller.reconcile.stack import StackResult
    from controller.report import print_summary
    st = StackStatus("s", sync_status=SyncStatus.FAILED, last_error="failed at revision r",
                     rolled_back=["s_a returned to r1 (img)", "s_n removed (created by ...)"])
    out = io.StringIO()
    print_summary(SimpleNamespace(revision=None, error="", result="partial", removed=[],
                                  runs={"s": StackResult("s", status=st)}), out)
    assert "    rolled back: s_a returned to r1 (img)\n    rolled back: s_n removed" in out.getvalue()
