// Keelson's web page: polls /api/status and /api/swarm and draws them.
// Every string from the repo or the swarm is written with textContent or setAttribute (no HTML
// parsing of data anywhere), and links are built only from the server's repo web address and
// hex commit ids.
"use strict";

const POLL_MS = 2000;
const TOKEN_KEY = "keelson.token";
const state = { status: null, swarm: null, error: "", needToken: false, updatedAt: null };

// ---- token: "#token=..." once in the URL, then kept in localStorage -----------------------
function takeTokenFromUrl() {
  const m = /(?:^#|[#&?])token=([^&]*)/.exec(location.hash);
  if (!m) return;
  try { localStorage.setItem(TOKEN_KEY, decodeURIComponent(m[1])); } catch (e) { /* private mode */ }
  const rest = location.hash.replace(/[#&?]?token=[^&]*/, "").replace(/^#?&?/, "#");
  history.replaceState(null, "", location.pathname + (rest.length > 1 ? rest : "#/"));
}

function token() {
  try { return localStorage.getItem(TOKEN_KEY) || ""; } catch (e) { return ""; }
}

async function getJson(path) {
  const headers = { "Accept": "application/json" };
  const t = token();
  if (t) headers["Authorization"] = "Bearer " + t;
  const res = await fetch(path, { headers: headers, cache: "no-store", credentials: "omit" });
  if (res.status === 401) { const err = new Error("401"); err.unauthorized = true; throw err; }
  if (!res.ok) {
    let msg = path + ": HTTP " + res.status;
    try { const body = await res.json(); if (body && body.error) msg += ": " + body.error; } catch (e) { /* not JSON */ }
    throw new Error(msg);
  }
  return res.json();
}

// POST (or GET) with the token and the header the API's CSRF guard asks for; resolves to the
// JSON answer, rejects with an Error whose message is the answer's "error" text.
async function sendJson(method, path, body) {
  const headers = { "Accept": "application/json", "X-Keelson-Action": "1" };
  const t = token();
  if (t) headers["Authorization"] = "Bearer " + t;
  const init = { method: method, headers: headers, cache: "no-store", credentials: "omit" };
  if (body !== undefined) { headers["Content-Type"] = "application/json"; init.body = JSON.stringify(body); }
  const res = await fetch(path, init);
  const text = await res.text();
  let doc = null;
  try { doc = JSON.parse(text); } catch (e) { /* 401 answers are plain text */ }
  if (!res.ok) {
    const why = doc && doc.error ? doc.error : text.trim();
    const err = new Error("HTTP " + res.status + (why ? ": " + why : ""));
    err.unauthorized = res.status === 401;
    throw err;
  }
  return doc || {};
}

async function refresh() {
  // the two documents are independent: an Engine that cannot be read still leaves the stacks
  const [status, swarm] = await Promise.allSettled([getJson("/api/status"), getJson("/api/swarm")]);
  const failed = [status, swarm].filter(r => r.status === "rejected").map(r => r.reason);
  state.needToken = failed.some(e => e.unauthorized);
  state.error = failed.filter(e => !e.unauthorized).map(e => String(e.message || e)).join("; ");
  if (status.status === "fulfilled") state.status = status.value;
  if (swarm.status === "fulfilled") state.swarm = swarm.value;
  if (!failed.length) state.updatedAt = new Date();
  if (state.needToken) { state.status = null; state.swarm = null; }
  render();
}

async function poll() {
  try { await refresh(); } finally { setTimeout(poll, POLL_MS); }
}

// ---- DOM helpers ------------------------------------------------------------------------
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = String(v);
    else node.setAttribute(k, String(v));
  }
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    node.appendChild(typeof c === "string" || typeof c === "number" ? document.createTextNode(String(c)) : c);
  }
  return node;
}

function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); return node; }

const HEX = /^[0-9a-f]{7,64}$/;

function revisionLink(sha) {
  if (!sha) return el("span", { class: "muted", text: "–" });
  const short = String(sha).slice(0, 7);
  const base = state.status && state.status.source ? state.status.source.web_url : "";
  if (base && /^https?:\/\//.test(base) && HEX.test(sha)) {
    return el("a", { class: "mono rev", href: base + "/commit/" + sha, title: sha,
                     target: "_blank", rel: "noopener noreferrer", text: short });
  }
  return el("span", { class: "mono rev", title: String(sha), text: short });
}

function badge(kind, value) {
  return el("span", { class: "badge " + kind + "-" + String(value).replace(/[^A-Za-z]/g, ""),
                      ["data-" + kind]: value, text: value });
}

function ago(unix) {
  if (!unix) return "";
  const s = Math.max(0, Math.round(Date.now() / 1000 - unix));
  if (s < 90) return s + "s ago";
  if (s < 5400) return Math.round(s / 60) + "m ago";
  return Math.round(s / 3600) + "h ago";
}

// ---- swarm view -------------------------------------------------------------------------
function taskBox(t) {
  const gen = t.generation === "current" ? "" : (t.generation === "previous" ? "old" : "?");
  const title = [t.service + (t.slot ? "." + t.slot : ""), "state: " + t.state + " (desired " + t.desired_state + ")",
                 t.message, t.error, t.image, t.revision ? "revision " + t.revision : ""]
    .filter(Boolean).join("\n");
  return el("div", { class: "task look-" + t.look + " gen-" + t.generation, title: title,
                     "data-task-id": t.id, "data-service": t.service, "data-stack": t.stack,
                     "data-look": t.look, "data-state": t.state, "data-generation": t.generation,
                     "data-revision": t.revision },
    el("span", { class: "svc", text: t.service + (t.slot ? "." + t.slot : "") }),
    " ",
    t.revision ? el("span", { class: "rev", text: "@" + t.revision.slice(0, 7) }) : null,
    gen ? el("span", { class: "gen", text: gen }) : null,
    el("div", { class: "state", text: t.state + (t.error ? ": " + t.error : "") }));
}

// issue 11: what cluster/nodes.yml declares for this node (hostname), or null
function declaredOf(n) {
  const sec = state.status ? state.status.nodes : null;
  const entry = sec && sec.nodes ? sec.nodes[n.hostname] : null;
  return entry ? entry.declared : null;
}

// declared vs live labels: one item per key, its state in data-label-state
// (same / missing: declared, not live yet / differs: other live value / undeclared: live only)
function labelItems(declared, live) {
  const keys = new Set(Object.keys(declared || {}));
  for (const k of Object.keys(live)) if (!k.startsWith("io.keelson.")) keys.add(k);
  return Array.from(keys).sort().map(k => {
    const d = declared ? declared[k] : undefined;
    const l = live[k];
    let st = "same", text = k + "=" + (d === undefined ? l : d);
    if (d === undefined) st = "undeclared";
    else if (l === undefined) { st = "missing"; text += " (declared, not live yet)"; }
    else if (l !== d) { st = "differs"; text += " (live " + l + ")"; }
    return el("li", { class: "label-" + st, "data-label-key": k, "data-label-state": st, text: text });
  });
}

function declaredBox(n, d) {
  if (!d) return null;
  const diffs = [];
  for (const field of ["role", "availability"]) {
    if (d[field] && d[field] !== n[field]) {
      diffs.push(el("div", { class: "flag node-diff", "data-field": field, "data-declared": d[field],
                             "data-live": n[field], text: field + ": declared " + d[field] + ", live " + n[field] }));
    }
  }
  return el("div", { class: "declared", "data-declared-role": d.role || "",
                     "data-declared-availability": d.availability || "" },
    el("div", { class: "meta", text: "declared: role " + (d.role || "–") + " · availability " +
                (d.availability || "–") }),
    ...diffs);
}

function nodeColumn(n, tasks) {
  const down = n.state !== "ready";
  const cls = "node" + (down ? " node-down" : "") + (n.availability !== "active" ? " node-" + n.availability : "");
  const live = n.labels || {};
  const d = declaredOf(n);
  const items = d ? labelItems(d.labels || {}, live)
    : Object.entries(live).map(([k, v]) => el("li", { "data-label-key": k, text: k + "=" + v }));
  return el("div", { class: cls, "data-node-id": n.id, "data-hostname": n.hostname,
                     "data-state": n.state, "data-availability": n.availability,
                     "data-declared": d ? "true" : "false" },
    el("h3", { text: n.hostname || n.id }),
    el("div", { class: "meta", text: n.role + (n.leader ? " (leader)" : "") + " · " + n.state +
                " · " + n.availability + (n.engine_version ? " · engine " + n.engine_version : "") }),
    down ? el("div", { class: "flag", text: "node " + n.state }) : null,
    n.availability !== "active" ? el("div", { class: "flag", text: n.availability }) : null,
    declaredBox(n, d),
    items.length ? el("ul", { class: "labels" }, ...items) : null,
    ...tasks.map(taskBox));
}

// issue 11: the last node step (plan, result, refusals, notes, moves) under the swarm view
function renderNodesPanel() {
  const box = clear(document.getElementById("nodes-panel"));
  const sec = state.status ? state.status.nodes : null;
  box.hidden = !sec;
  if (!sec) return;
  box.setAttribute("data-result", sec.result || "");
  box.appendChild(el("h3", { text: "Nodes (" + (sec.file || "nodes file") + ")" }));
  box.appendChild(el("p", { id: "nodes-result" }, "last node step: ", badge("sync", sec.result || "–"),
    " ", badge("health", sec.health || "–")));
  if (sec.error) box.appendChild(el("p", { class: "error-text", id: "nodes-error", text: sec.error }));
  const list = (id, title, items, make) => {
    if (!items || !items.length) return;
    box.appendChild(el("h4", { text: title }));
    box.appendChild(el("ul", { id: id, class: "compact" }, ...items.map(i => make(i))));
  };
  list("nodes-refusals", "Refused", sec.refusals, r => el("li", { class: "refusal",
    "data-rule": r.rule, "data-node": r.node, text: "[" + r.rule + "] " + r.node + ": " + r.message }));
  list("nodes-notes", "Notes", sec.notes, t => el("li", { class: "note", text: t }));
  list("nodes-plan", "Plan", sec.plan, t => el("li", { class: "mono", text: t }));
  list("nodes-moves", "Tasks moved", sec.moves, t => el("li", { text: t }));
  list("nodes-short", "Services left short", sec.short, s => el("li", { text: s.service + " " + s.running + "/" + s.desired }));
}

// "#/?filter=word": only tasks and stacks whose stack or service name contains word
function filterWord() {
  const m = /[#&?]filter=([^&]*)/.exec(location.hash);
  try { return m ? decodeURIComponent(m[1]) : ""; } catch (e) { return ""; }
}

function matches(...names) {
  const word = filterWord();
  return !word || names.some(n => String(n || "").includes(word));
}

function renderSwarm() {
  const box = clear(document.getElementById("swarm"));
  const sw = state.swarm;
  if (!sw) return;
  const byNode = new Map();
  for (const t of sw.tasks) {
    if (!matches(t.stack, t.service)) continue;
    const key = t.node_id || "";
    if (!byNode.has(key)) byNode.set(key, []);
    byNode.get(key).push(t);
  }
  for (const n of sw.nodes) box.appendChild(nodeColumn(n, byNode.get(n.id) || []));
  const unassigned = byNode.get("") || [];
  if (unassigned.length) {
    box.appendChild(el("div", { class: "node node-unassigned", "data-node-id": "" },
      el("h3", { text: "not assigned" }),
      el("div", { class: "meta", text: "tasks no node accepts (yet)" }), ...unassigned.map(taskBox)));
  }
}

// ---- stacks view ------------------------------------------------------------------------
function servicesOf(stack) {
  return state.swarm ? state.swarm.services.filter(s => s.stack === stack) : [];
}

function serviceList(stack) {
  const services = servicesOf(stack);
  if (!services.length) return el("span", { class: "muted", text: "none" });
  return el("ul", { class: "compact" }, ...services.map(s => el("li", { "data-service": s.name },
    s.name + " ", el("span", { class: "mono", text: s.running + "/" + (s.replicas === null ? "global" : s.replicas) }),
    s.update_state ? el("span", { class: "muted", text: " " + s.update_state }) : null)));
}

function historyList(entries, limit) {
  if (!entries || !entries.length) return el("span", { class: "muted", text: "–" });
  return el("ul", { class: "compact" }, ...entries.slice(0, limit).map(h => el("li", {},
    revisionLink(h.revision), " " + h.result + " ", el("span", { class: "muted", text: ago(h.at) }))));
}

function renderStacks() {
  const body = clear(document.querySelector("#stacks tbody"));
  const stacks = state.status ? state.status.stacks || {} : {};
  const names = Object.keys(stacks).sort().filter(n => matches(n));
  if (!names.length) body.appendChild(el("tr", {}, el("td", { colspan: 8, class: "muted", text: "no stacks yet" })));
  for (const name of names) {
    const s = stacks[name];
    body.appendChild(el("tr", { class: "stack", "data-stack": name, "data-sync": s.sync_status,
                                "data-health": s.health_status },
      el("td", {}, el("a", { href: "#/stack/" + encodeURIComponent(name), text: name })),
      el("td", {}, badge("sync", s.sync_status)),
      el("td", {}, badge("health", s.health_status)),
      el("td", {}, revisionLink(s.last_applied_revision)),
      el("td", {}, revisionLink(s.last_attempted_revision)),
      el("td", {}, serviceList(name)),
      el("td", { class: "error-text", text: s.last_error || "" }),
      el("td", {}, historyList(s.history, 3))));
  }
}

// ---- stack page -------------------------------------------------------------------------
function table(headers, rows, emptyText) {
  if (!rows.length) return el("p", { class: "muted", text: emptyText });
  return el("table", { class: "grid" },
    el("thead", {}, el("tr", {}, ...headers.map(h => el("th", { text: h })))),
    el("tbody", {}, ...rows.map(r => el("tr", {}, ...r.map(c =>
      (c instanceof Node) ? el("td", {}, c) : el("td", { text: c === null || c === undefined ? "" : c }))))));
}

// ---- stack actions: sync, suspend/resume, rollback, diff ---------------------------------
// The bar is built once per stack (so a typed revision, a pending confirmation, a result and a
// diff survive the 2 s redraws) and only its enabled/visible state is updated on each poll.
const act = { stack: "", busy: false, confirm: null, sync: "" };

function stackPath(name, action) {
  return "/api/stacks/" + encodeURIComponent(name) + "/" + action;
}

function actionButton(id, label, onClick) {
  const b = el("button", { type: "button", id: id, class: "act", text: label });
  b.addEventListener("click", onClick);
  return b;
}

function buildActions(name) {
  const box = clear(document.getElementById("stack-actions"));
  box.setAttribute("data-stack", name);
  Object.assign(act, { stack: name, busy: false, confirm: null });
  const to = el("input", { id: "act-rollback-to", type: "text", class: "mono", size: 26, spellcheck: "false",
                           autocomplete: "off", placeholder: "revision (default: last good)",
                           "aria-label": "revision to roll back to" });
  box.appendChild(el("div", { class: "buttons" },
    actionButton("act-sync", "Sync now", () => runAction("sync")),
    actionButton("act-suspend", "Suspend", () => askConfirm("suspend")),
    actionButton("act-resume", "Resume", () => runAction("resume")),
    el("span", { class: "group" }, actionButton("act-rollback", "Rollback", () => askConfirm("rollback")), to),
    actionButton("act-diff", "Diff", showDiff)));
  const confirmBox = el("div", { id: "act-confirm", class: "confirm", hidden: "hidden" },
    el("span", { id: "act-confirm-text" }), " ",
    actionButton("act-confirm-yes", "Confirm", () => { const c = act.confirm; act.confirm = null; runAction(c.action, c.to); }),
    actionButton("act-confirm-no", "Cancel", () => { act.confirm = null; updateActions(); }));
  box.appendChild(confirmBox);
  box.appendChild(el("div", { id: "act-result", role: "status", "aria-live": "polite", hidden: "hidden" }));
  box.appendChild(el("div", { id: "stack-diff", hidden: "hidden" }));
}

function updateActions() {
  const suspended = act.sync === "Suspended";
  document.getElementById("act-suspend").hidden = suspended;
  document.getElementById("act-resume").hidden = !suspended;
  for (const b of document.querySelectorAll("#stack-actions button.act")) b.disabled = act.busy;
  document.getElementById("act-rollback-to").disabled = act.busy;
  const box = document.getElementById("act-confirm");
  box.hidden = !act.confirm;
  if (act.confirm) {
    const what = act.confirm.action === "suspend"
      ? "Suspend " + act.stack + "? Keelson will not deploy, prune or heal it until Resume."
      : "Roll " + act.stack + " back to " + (act.confirm.to || "the last good revision") +
        " and hold it there until a commit changes it (or Resume)?";
    document.getElementById("act-confirm-text").textContent = what;
    document.getElementById("act-confirm-yes").textContent = act.confirm.action === "suspend" ? "Yes, suspend" : "Yes, roll back";
  }
}

function askConfirm(action) {
  act.confirm = { action: action, to: action === "rollback" ? document.getElementById("act-rollback-to").value.trim() : "" };
  updateActions();
}

function showResult(ok, text) {
  const box = document.getElementById("act-result");
  box.hidden = false;
  box.className = ok ? "result-ok" : "result-error";
  box.setAttribute("data-ok", ok ? "true" : "false");
  box.textContent = text;
}

function describe(action, doc) {
  if (action === "sync") return "Sync queued: a pass for " + act.stack + " runs now.";
  if (action === "suspend") return doc.changed === false ? "Already suspended." : "Suspended: no deploys, prunes or drift heals until Resume.";
  if (action === "resume") return doc.changed === false ? "Was not suspended; a pass is queued." : "Resumed: a pass is queued.";
  return "Rolled back to " + String(doc.revision || "").slice(0, 12) + "; held there until a commit changes the stack (or Resume).";
}

async function runAction(action, to) {
  if (act.busy) return;
  const name = act.stack;
  act.busy = true;
  const button = document.getElementById("act-" + action);
  button.setAttribute("aria-busy", "true");
  updateActions();
  showResult(true, action + "…");
  try {
    const doc = await sendJson("POST", stackPath(name, action), action === "rollback" && to ? { to: to } : undefined);
    if (act.stack === name) { showResult(true, describe(action, doc)); document.getElementById("stack-diff").hidden = true; }
  } catch (e) {
    if (e.unauthorized) state.needToken = true;
    if (act.stack === name) showResult(false, action + " failed: " + String(e.message || e));
  } finally {
    button.removeAttribute("aria-busy");
    act.busy = false;
    await refresh().catch(() => {});
    if (act.stack === name) updateActions();
  }
}

function diffValue(v) {
  return v === null || v === undefined ? "(none)" : JSON.stringify(v);
}

function renderDiff(doc) {
  const box = clear(document.getElementById("stack-diff"));
  box.hidden = false;
  const changes = doc.changes || [];
  box.appendChild(el("h3", { text: "Diff: what a pass would change now" }));
  box.appendChild(el("p", {}, "at ", revisionLink(doc.revision),
    doc.suspended ? " · suspended (" + doc.suspended + "): held back until Resume" : ""));
  if (doc.warnings && doc.warnings.length) box.appendChild(el("ul", {}, ...doc.warnings.map(w => el("li", { text: w }))));
  if (!changes.length) { box.appendChild(el("p", { id: "diff-in-sync", text: "In sync: a pass would change nothing." })); return; }
  const rows = [];
  for (const c of changes) {
    const fields = c.fields && c.fields.length ? c.fields : [null];
    for (const f of fields) {
      rows.push(el("tr", { class: "diff-row", "data-object": c.name, "data-action": c.action, "data-path": f ? f.path : "" },
        el("td", { text: c.kind + " " + c.name }),
        el("td", { text: c.action + (c.reason ? " (" + c.reason + ")" : "") }),
        el("td", { class: "mono", text: f ? f.path : "" }),
        el("td", { class: "mono" }, f ? el("span", { class: "old", text: diffValue(f.old) }) : "",
           f ? " → " : "", f ? el("span", { class: "new", text: diffValue(f.new) }) : "")));
    }
  }
  box.appendChild(el("table", { class: "grid", id: "diff-table" },
    el("thead", {}, el("tr", {}, ...["Object", "Action", "Field", "Old → new"].map(h => el("th", { text: h })))),
    el("tbody", {}, ...rows)));
}

async function showDiff() {
  if (act.busy) return;
  const name = act.stack;
  act.busy = true;
  const button = document.getElementById("act-diff");
  button.setAttribute("aria-busy", "true");
  updateActions();
  try {
    const doc = await getJson(stackPath(name, "diff"));
    if (act.stack === name) { document.getElementById("act-result").hidden = true; renderDiff(doc); }
  } catch (e) {
    if (e.unauthorized) state.needToken = true;
    if (act.stack === name) showResult(false, "diff failed: " + String(e.message || e));
  } finally {
    button.removeAttribute("aria-busy");
    act.busy = false;
    if (act.stack === name) updateActions();
  }
}

function renderActions(name, s) {
  const box = document.getElementById("stack-actions");
  if (box.getAttribute("data-stack") !== name) buildActions(name);
  box.hidden = !s;
  act.sync = s ? s.sync_status : "";
  box.setAttribute("data-sync", act.sync);
  updateActions();
}

// issue 10: the waves of the last pass, its rollback scope, and what it rolled back
function rolloutOrder(s) {
  const box = el("div", { id: "stack-rollout-order" });
  const waves = s.waves || [];
  if (waves.length) {
    box.appendChild(el("h3", { text: "Rollout waves" }));
    box.appendChild(el("ol", { id: "stack-waves", class: "compact" }, ...waves.map((w, i) =>
      el("li", { class: "wave", "data-wave": i + 1, text: w.join(", ") }))));
  }
  if (s.rollback_scope) {
    box.appendChild(el("p", { id: "stack-rollback-scope", "data-scope": s.rollback_scope,
                              text: "rollback scope: " + s.rollback_scope }));
  }
  if (s.rolled_back && s.rolled_back.length) {
    box.appendChild(el("p", { id: "stack-rolled-back", class: "error-text",
                              text: "rolled back: " + s.rolled_back.join(", ") }));
  }
  return box;
}

function renderStackPage(name) {
  document.getElementById("stack-name").textContent = name;
  const badges = clear(document.getElementById("stack-badges"));
  const body = clear(document.getElementById("stack-body"));
  const s = state.status && state.status.stacks ? state.status.stacks[name] : null;
  renderActions(name, s);
  if (!s) { body.appendChild(el("p", { class: "muted", text: state.status ? "no such stack" : "loading…" })); return; }
  badges.appendChild(badge("sync", s.sync_status));
  badges.appendChild(document.createTextNode(" "));
  badges.appendChild(badge("health", s.health_status));
  body.appendChild(el("p", {}, "applied ", revisionLink(s.last_applied_revision), " · attempted ",
    revisionLink(s.last_attempted_revision), " · reason " + (s.reason || "–") + " · updated " + ago(s.updated_at)));
  if (s.last_error) body.appendChild(el("p", { class: "error-text", id: "stack-error", text: s.last_error }));
  body.appendChild(el("h3", { text: "Conditions" }));
  body.appendChild(table(["Type", "Status", "Reason", "Message", "Since"],
    (s.conditions || []).map(c => [c.type, c.status, c.reason, c.message, ago(c.last_transition)]), "none"));
  body.appendChild(el("h3", { text: "Plan of the last pass" }));
  const plan = table(["Kind", "Name", "Action", "Why"],
    (s.plan || []).map(c => [c.kind, c.name, c.action, c.reason]), "nothing to change");
  plan.id = "stack-plan";
  body.appendChild(plan);
  body.appendChild(rolloutOrder(s));
  if (s.drift && s.drift.length) {
    body.appendChild(el("h3", { text: "Drift (fields that differ from git)" }));
    body.appendChild(table(["Kind", "Name", "Fields"], s.drift.map(d => [d.kind, d.name, (d.paths || []).join(", ")]), ""));
  }
  body.appendChild(el("h3", { text: "Services" }));
  body.appendChild(table(["Service", "Image", "Running/desired", "Revision", "Update"],
    servicesOf(name).map(v => [v.name, v.image, v.running + "/" + (v.replicas === null ? "global" : v.replicas),
                              revisionLink(v.revision), v.update_state]), "none"));
  if (s.rollouts && s.rollouts.length) {
    body.appendChild(el("h3", { text: "Rollouts" }));
    body.appendChild(table(["Service", "Outcome", "Reason", "Message", "Seconds"],
      s.rollouts.map(r => [r.service, r.outcome, r.reason, r.message, Math.round(r.duration_s)]), ""));
  }
  if (s.warnings && s.warnings.length) {
    body.appendChild(el("h3", { text: "Warnings" }));
    body.appendChild(el("ul", {}, ...s.warnings.map(w => el("li", { text: w }))));
  }
  body.appendChild(el("h3", { text: "History" }));
  body.appendChild(table(["Revision", "Result", "When", "Message"],
    (s.history || []).map(h => [revisionLink(h.revision), h.result, ago(h.at), h.message]), "none"));
  const tasks = state.swarm ? state.swarm.tasks.filter(t => t.stack === name) : [];
  body.appendChild(el("h3", { text: "Tasks" }));
  body.appendChild(el("div", { class: "swarm-tasks" }, ...tasks.map(taskBox)));
}

// ---- page -------------------------------------------------------------------------------
function route() {
  const m = /^#\/stack\/(.+)$/.exec(location.hash);
  return m ? { page: "stack", name: decodeURIComponent(m[1]) } : { page: "overview" };
}

function render() {
  const err = document.getElementById("error");
  err.hidden = !state.error;
  err.textContent = state.error;
  document.getElementById("token-form").hidden = !state.needToken;
  const lease = state.status ? state.status.lease : null;
  const standby = document.getElementById("standby");
  standby.hidden = !(lease && lease.standby);
  standby.textContent = lease && lease.standby ? "standby: another Keelson (" + (lease.holder || "unknown") + ") writes" : "";
  const src = clear(document.getElementById("source"));
  if (state.status && state.status.source) {
    const so = state.status.source;
    src.appendChild(document.createTextNode((so.ref || "") + " "));
    src.appendChild(revisionLink(so.revision));
  }
  document.getElementById("updated").textContent = state.updatedAt
    ? "updated " + state.updatedAt.toLocaleTimeString() : (state.needToken ? "token needed" : "loading…");
  const r = route();
  document.getElementById("overview").hidden = r.page !== "overview";
  document.getElementById("stack-page").hidden = r.page !== "stack";
  if (r.page === "stack") renderStackPage(r.name);
  else { renderSwarm(); renderNodesPanel(); renderStacks(); }
  document.body.setAttribute("data-loaded", state.updatedAt ? "true" : "false");
}

function start() {
  takeTokenFromUrl();
  document.getElementById("token-form").addEventListener("submit", ev => {
    ev.preventDefault();
    try { localStorage.setItem(TOKEN_KEY, document.getElementById("token-input").value.trim()); } catch (e) { /* */ }
    document.getElementById("token-input").value = "";
  });
  const filter = document.getElementById("filter");
  filter.value = filterWord();
  filter.addEventListener("input", () => {
    const word = filter.value.trim();
    history.replaceState(null, "", location.pathname + "#/" + (word ? "?filter=" + encodeURIComponent(word) : ""));
    render();
  });
  window.addEventListener("hashchange", () => { takeTokenFromUrl(); filter.value = filterWord(); render(); });
  poll();
}

document.addEventListener("DOMContentLoaded", start);
