"""Issue 13, the stack page's action buttons, clicked in a real browser (headless Debian Chromium
over its DevTools pipe, see devtools.py) against a real ``keelson run`` on the real swarm.

Also the control API's guard against cross-site requests (http/api.py ``browser_guard``): a page
of another origin in the same browser cannot make a token-less Keelson act.
"""
from __future__ import annotations

import json
import os
import pathlib
import re
import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.integration.browser import CHROMIUM
from tests.integration.devtools import Chromium, Tab
from tests.integration.test_controls import app_stack, env_of, record_labels
from tests.integration.test_run_http_trust import non_loopback_ipv4
from tests.integration.test_run_loop import KeelsonRun, http, replicas, wait_for

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(CHROMIUM is None, reason="chromium missing: run scripts/dev-env.sh")]

TOKEN = "kbt-ui-action-token-7f3e"
LOADED = "!!document.body && document.body.getAttribute('data-loaded') === 'true'"


def page_sync(tab: Tab) -> str:
    """The sync status the actions bar was last drawn for."""
    return tab.evaluate("document.getElementById('stack-actions').getAttribute('data-sync') || ''")


def visible(tab: Tab, ident: str) -> bool:
    """Whether the element with ``ident`` is shown (not hidden, has a size)."""
    return tab.evaluate(f"(() => {{ const e = document.getElementById({json.dumps(ident)});"
                        " return !!e && !e.hidden && e.getClientRects().length > 0; })()")


def result(tab: Tab, what: str) -> str:
    """Wait until the last action finished (buttons enabled again, a result shown); its text."""
    tab.wait(what, "(() => { const r = document.getElementById('act-result');"
                   " return !document.getElementById('act-sync').disabled && !r.hidden &&"
                   " !r.textContent.endsWith('…'); })()", 240)
    return tab.evaluate("document.getElementById('act-result').getAttribute('data-ok') + ' ' +"
                        " document.getElementById('act-result').textContent")


def all_disabled(tab: Tab) -> bool:
    """Whether every action button and the revision input are disabled (an action in flight)."""
    return tab.evaluate("[...document.querySelectorAll('#stack-actions button.act, #act-rollback-to')]"
                        ".every(b => b.disabled)")


def test_stack_page_buttons_suspend_diff_resume_sync_rollback(engine, registry, manifest_repo,
                                                              stack_names, tmp_path):
    """Chromium opens the stack page with the token and clicks: Suspend (confirmed inline) ->
    Suspended in the page and /api/status, and a new commit is not deployed; Diff lists the held
    field with its old and new value; Resume -> the commit deploys; Sync now heals a hand-made
    change at once (the poll is 300 s away); Rollback to the first revision (typed in the
    revision box, confirmed) -> its spec runs, held; a bad revision shows the API's error. The
    buttons are disabled while an action is in flight. No CSP violation or script error."""
    a = stack_names("kbtui")
    manifest_repo.write(f"manifests/{a}/stack.yml", app_stack(registry, "v1"))
    sha1 = manifest_repo.commit("v1")
    token_file = tmp_path / "api_token"
    token_file.write_text(TOKEN + "\n")
    run = KeelsonRun(manifest_repo.url, [a], tmp_path, listen_host=non_loopback_ipv4() or "0.0.0.0",
                     token=TOKEN, env_extra={"KEELSON_API_TOKEN_FILE": str(token_file)})
    try:
        st = run.wait_ready()
        assert st["stacks"][a]["sync_status"] == "Synced", st["stacks"].get(a)
        # the token counts only in Authorization: not in the query string, not in a cookie
        act = {"X-Keelson-Action": "1"}
        assert http("POST", f"{run.base}/api/stacks/{a}/suspend?token={TOKEN}",
                    headers=dict(act, Cookie=f"token={TOKEN}; keelson.token={TOKEN}"))[0] == 401
        assert http("POST", f"{run.base}/api/stacks/{a}/suspend")[0] == 401
        with Chromium() as browser:
            tab = browser.open(f"{run.base}/#/stack/{a}&token={TOKEN}")
            tab.wait("the stack page", LOADED + " && !!document.getElementById('act-sync')")
            tab.wait("Synced on the page", f"document.getElementById('stack-actions')"
                                           f".getAttribute('data-sync') === 'Synced'")
            assert visible(tab, "act-suspend") and not visible(tab, "act-resume")
            assert visible(tab, "act-sync") and visible(tab, "act-rollback") and visible(tab, "act-diff")

            # Suspend asks first; Cancel does nothing
            tab.click("#act-suspend")
            assert visible(tab, "act-confirm") and "Suspend" in tab.evaluate(
                "document.getElementById('act-confirm-text').textContent")
            tab.click("#act-confirm-no")
            assert not visible(tab, "act-confirm")
            assert run.status()["stacks"][a]["sync_status"] == "Synced"

            # Suspend, confirmed: the page and /api/status say Suspended
            tab.click("#act-suspend")
            tab.click("#act-confirm-yes")
            assert result(tab, "suspend").startswith("true Suspended"), tab.problems()
            wait_for("Suspended in /api/status",
                     lambda: run.status()["stacks"][a]["sync_status"] == "Suspended", 60)
            tab.wait("Suspended on the page", "document.getElementById('stack-actions')"
                                              ".getAttribute('data-sync') === 'Suspended'", 30)
            assert visible(tab, "act-resume") and not visible(tab, "act-suspend")
            assert record_labels(engine, a)["io.keelson.suspended"] == "suspend"

            # a commit while suspended is not deployed
            manifest_repo.write(f"manifests/{a}/stack.yml", app_stack(registry, "v2"))
            sha2 = manifest_repo.commit("v2")
            wait_for("a pass at v2", lambda: (lambda st: st["source"]["revision"] == sha2 and
                                              not st["pass"]["running"])(run.status()), 120)
            assert env_of(engine, f"{a}_app") == ["LEVEL=v1"]
            assert run.status()["stacks"][a]["sync_status"] == "Suspended"
            tab.wait("the page polls the new revision",
                     f"document.getElementById('source').textContent.includes('{sha2[:7]}')", 30)

            # Diff: the held change, field by field
            tab.click("#act-diff")
            tab.wait("the diff table", "!!document.getElementById('diff-table')", 120)
            rows = tab.evaluate("[...document.querySelectorAll('#diff-table tr.diff-row')].map(r =>"
                                " [r.getAttribute('data-object'), r.getAttribute('data-action'),"
                                " r.getAttribute('data-path'), r.textContent])")
            assert [r[:3] for r in rows] == [[f"{a}_app", "update",
                                              "TaskTemplate.ContainerSpec.Env[0]"]], rows
            assert '"LEVEL=v1" → "LEVEL=v2"' in rows[0][3], rows
            assert "suspended" in tab.evaluate("document.getElementById('stack-diff').textContent")
            shot = tab.screenshot(tmp_path / "ui-stack-actions.png")
            if os.environ.get("KEELSON_SCREENSHOT_DIR"):
                target = pathlib.Path(os.environ["KEELSON_SCREENSHOT_DIR"])
                target.mkdir(parents=True, exist_ok=True)
                shutil.copy(shot, target / "ui-stack-actions.png")

            # Resume: the held commit deploys
            tab.click("#act-resume")
            assert result(tab, "resume").startswith("true Resumed")
            wait_for("v2 deployed", lambda: env_of(engine, f"{a}_app") == ["LEVEL=v2"], 120)
            wait_for("Synced at v2", lambda: (lambda s: s["sync_status"] == "Synced" and
                                              s["last_applied_revision"] == sha2)(
                run.status()["stacks"][a]), 120)
            tab.wait("Suspend offered again", "document.getElementById('stack-actions')"
                                              ".getAttribute('data-sync') === 'Synced'", 30)
            assert visible(tab, "act-suspend") and not visible(tab, "act-resume")
            assert not visible(tab, "stack-diff")  # a diff is stale once an action ran

            # Sync now: a pass for this stack at once heals a hand-made change
            engine.services.get(f"{a}_app").scale(2)
            wait_for("scaled by hand", lambda: replicas(engine, f"{a}_app") == 2, 30)
            tab.click("#act-sync")
            assert result(tab, "sync").startswith("true Sync queued")
            wait_for("drift healed by the pass", lambda: replicas(engine, f"{a}_app") == 1, 120)

            # Rollback to the first revision, typed in the box, confirmed; in flight: disabled
            tab.type("#act-rollback-to", sha1[:10])
            tab.click("#act-rollback")
            assert sha1[:10] in tab.evaluate("document.getElementById('act-confirm-text').textContent")
            tab.click("#act-confirm-yes")
            busy = all_disabled(tab)
            text = result(tab, "rollback")
            assert busy, "buttons stay enabled while the rollback runs"
            assert text.startswith(f"true Rolled back to {sha1[:12]}"), text
            assert env_of(engine, f"{a}_app") == ["LEVEL=v1"]
            wait_for("held at v1", lambda: (lambda s: s["sync_status"] == "Suspended" and
                                            s["last_applied_revision"] == sha1)(
                run.status()["stacks"][a]), 60)
            tab.wait("Resume offered", "document.getElementById('stack-actions')"
                                       ".getAttribute('data-sync') === 'Suspended'", 30)

            # a revision that is not on the branch: the API's error, shown as text
            tab.type("#act-rollback-to", "0123456789abcdef")
            tab.click("#act-rollback")
            tab.click("#act-confirm-yes")
            text = result(tab, "bad rollback")
            assert text.startswith("false rollback failed: HTTP 409") and \
                "not found in branch" in text, text
            assert env_of(engine, f"{a}_app") == ["LEVEL=v1"]

            # everything stayed in app.js/app.css: no CSP report, no script error
            problems = [p for p in tab.problems() if "Failed to load resource" not in p]
            assert problems == [], problems
    finally:
        assert run.terminate() == 0, run.log()[-3000:]
        run.close()


ATTACK_PAGE = """<!DOCTYPE html><html><body>
<iframe name="sink"></iframe>
<form id="f" method="POST" target="sink" action="{target}/suspend"><input name="x" value="1"></form>
<script>
const target = {target_js};
const done = [];
document.getElementById("f").submit();
document.querySelector("iframe").addEventListener("load", () => done.push("form"));
fetch(target + "/suspend", {{method: "POST", mode: "no-cors", body: "{{}}",
                             headers: {{"Content-Type": "text/plain"}}}})
  .then(() => done.push("no-cors"), () => done.push("no-cors failed"));
fetch(target + "/suspend", {{method: "POST", headers: {{"X-Keelson-Action": "1"}}}})
  .then(() => done.push("cors sent"), () => done.push("cors blocked"));
setInterval(() => {{ document.title = done.slice().sort().join(","); }}, 100);
</script></body></html>"""


def test_cross_site_page_cannot_make_a_tokenless_keelson_act(engine, registry, manifest_repo,
                                                            stack_names, tmp_path):
    """A token-less Keelson on 127.0.0.1 (controls open there): a page of another origin, open
    in the same Chromium, POSTs a form, a no-cors fetch and a fetch with the action header to
    /api/stacks/NAME/suspend. The first two reach Keelson and get 403 (no X-Keelson-Action);
    the third is stopped by the browser at its CORS preflight. The stack stays Synced; the
    same POST with the header (as the page and the CLI send it) suspends it."""
    a = stack_names("kbtcsrf")
    manifest_repo.write(f"manifests/{a}/stack.yml", app_stack(registry, "c1"))
    manifest_repo.commit("c1")
    run = KeelsonRun(manifest_repo.url, [a], tmp_path, extra_args=["--log-level", "debug"])
    attack = None
    try:
        assert run.wait_ready()["stacks"][a]["sync_status"] == "Synced"
        target = f"{run.base}/api/stacks/{a}"
        page = ATTACK_PAGE.format(target=target, target_js=json.dumps(target)).encode()

        class Attacker(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(page)))
                self.end_headers()
                self.wfile.write(page)

            def log_message(self, *args):
                pass

        attack = ThreadingHTTPServer(("127.0.0.1", 0), Attacker)
        threading.Thread(target=attack.serve_forever, daemon=True).start()
        with Chromium() as browser:
            tab = browser.open(f"http://127.0.0.1:{attack.server_address[1]}/")
            tab.wait("the three requests settled",
                     "document.title === 'cors blocked,form,no-cors'", 60)
        # the form and the no-cors fetch reached Keelson and were refused; the preflight of the
        # third got no CORS grant, so its POST was never sent
        log = run.log()
        seen = re.findall(rf'"(POST|OPTIONS) /api/stacks/{a}/suspend HTTP/1.1\\?" (\d+)', log)
        assert sorted(seen) == [("OPTIONS", "405"), ("POST", "403"), ("POST", "403")], log[-3000:]

        # non-browser clients: no header is refused before anything runs, a form body too
        assert http("POST", f"{target}/suspend")[0] == 403
        assert http("POST", f"{target}/rollback", b'{"to": "abc1234"}',
                    headers={"X-Keelson-Action": "1", "Content-Type": "text/plain"})[0] == 415
        assert run.status()["stacks"][a]["sync_status"] == "Synced"
        assert "io.keelson.suspended" not in record_labels(engine, a)
        assert f"stack={a} suspended" not in run.log()

        # the same request with the header is what the page sends: it acts
        code, body = http("POST", f"{target}/suspend", headers={"X-Keelson-Action": "1"})
        assert code == 200 and json.loads(body)["suspended"] == "suspend", body
        assert record_labels(engine, a)["io.keelson.suspended"] == "suspend"
    finally:
        if attack is not None:
            attack.shutdown()
            attack.server_close()
        assert run.terminate() == 0, run.log()[-3000:]
        run.close()
