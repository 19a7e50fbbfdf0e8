// Warden console. Plain ES modules, no dependencies. Everything shown comes
// from Warden's API, called with the session cookie; every change carries
// the session's CSRF token. Text from the server is only ever set as text,
// never parsed as HTML.

const state = { session: null, timer: null, drafts: new Map() };

// ---- small DOM helpers ----------------------------------------------------

function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") el.className = v;
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

function toast(message, bad = false) {
  const box = document.getElementById("toast");
  const item = h("div", { class: bad ? "bad" : "" }, message);
  box.append(item);
  setTimeout(() => item.remove(), 6000);
}

// "in 3 h 12 min", "5 min ago": the exact time goes in the title.
function relative(iso) {
  const ms = Date.parse(iso) - Date.now();
  const abs = Math.abs(ms);
  const units = [["d", 86400000], ["h", 3600000], ["min", 60000], ["s", 1000]];
  const parts = [];
  let rest = abs;
  for (const [u, size] of units) {
    if (rest >= size && parts.length < 2) {
      parts.push(`${Math.floor(rest / size)} ${u}`);
      rest %= size;
    }
  }
  if (!parts.length) return "just now";
  const text = parts.join(" ");
  return ms >= 0 ? `in ${text}` : `${text} ago`;
}

function time(iso) {
  return h("time", { datetime: iso, title: new Date(iso).toISOString() }, relative(iso));
}

// ---- the API --------------------------------------------------------------

class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail || `HTTP ${status}`);
    this.status = status;
    this.code = problem.code || "error";
  }
}

async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && state.session) headers["X-Warden-CSRF"] = state.session.csrf_token;
  const res = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "same-origin",
    cache: "no-store",
  });
  if (res.status === 204) return null;
  const text = await res.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = { detail: text };
  }
  if (!res.ok) {
    const err = new ApiError(res.status, data || {});
    if (res.status === 401 && path !== "/ui/session") signedOut(err.message);
    throw err;
  }
  return data;
}

function can(role) {
  return !!state.session && state.session.whoami.roles.includes(role);
}

// ---- sign in and out ------------------------------------------------------

function main() {
  return document.getElementById("main");
}

function show(...nodes) {
  const m = main();
  m.replaceChildren(...nodes);
}

function signedOut(why) {
  state.session = null;
  clearInterval(state.timer);
  document.getElementById("bar").hidden = true;
  renderSignIn(why);
}

function renderSignIn(message) {
  const error = h("p", { class: "error", id: "signin-error", role: "alert" }, message || "");
  const input = h("input", {
    id: "token", name: "token", type: "password", autocomplete: "off", spellcheck: "false",
    required: true, "aria-describedby": "signin-help signin-error",
  });
  const button = h("button", { type: "submit", class: "primary", id: "sign-in" }, "Sign in");
  const form = h(
    "form",
    {
      class: "signin", "aria-labelledby": "signin-title",
      onsubmit: async (e) => {
        e.preventDefault();
        button.disabled = true;
        error.textContent = "";
        try {
          state.session = await api("POST", "/ui/session", { token: input.value });
          input.value = "";
          start();
        } catch (err) {
          error.textContent = `${err.message} (${err.code})`;
          input.focus();
        } finally {
          button.disabled = false;
        }
      },
    },
    h("h1", { id: "signin-title" }, "Sign in to Warden"),
    h("p", { id: "signin-help" },
      "Paste a Warden token. The console acts with its roles only, and the session ends when you sign out, when it expires, or when the token is revoked."),
    h("label", { for: "token" }, "Token"),
    input,
    h("div", { class: "actions" }, button),
    error,
  );
  show(form);
  input.focus();
}

async function signOut() {
  try {
    await api("DELETE", "/ui/session");
  } catch (err) {
    if (err.status !== 401) toast(`Sign-out failed: ${err.message}`, true);
  }
  signedOut("Signed out.");
}

// ---- the shell ------------------------------------------------------------

// Which roles may read each section, as the API's action table says; a
// section the token may not read is not offered.
const SECTIONS = {
  reviews: ["admin", "compliance", "auditor", "reviewer"],
  runs: ["admin", "orchestrator", "agent", "compliance", "auditor", "reviewer"],
  policies: ["admin", "compliance", "auditor"],
  evidence: ["admin", "compliance", "auditor"],
  sinks: ["admin", "compliance", "auditor"],
};

function mayRead(section) {
  return (SECTIONS[section] || []).some(can);
}

function start() {
  const s = state.session;
  const bar = document.getElementById("bar");
  bar.hidden = false;
  for (const a of document.querySelectorAll("[data-nav]")) a.hidden = !mayRead(a.dataset.nav);
  const who = document.getElementById("who");
  who.replaceChildren(
    `${s.whoami.subject} · ${s.whoami.tenant_name} · ${s.whoami.roles.join(", ")} · session ends `,
    time(s.expires_at),
  );
  route();
}

const pages = {
  reviews: renderReviews,
  policies: renderPolicies,
  runs: renderRuns,
  execution: renderExecution,
  sinks: renderSinks,
  evidence: renderEvidence,
  ledger: renderLedger,
};

function route() {
  clearInterval(state.timer);
  if (!state.session) return;
  const first = Object.keys(SECTIONS).find(mayRead) || "reviews";
  const [name, ...rest] = (location.hash.replace(/^#\//, "") || first).split("/");
  const page = pages[name] || pages[first];
  const args = rest.map(decodeURIComponent);
  for (const a of document.querySelectorAll("[data-nav]")) {
    const section = { execution: "runs", ledger: "evidence" }[name] || name;
    if (a.dataset.nav === section) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  page(...args);
}

function link(hash, text, attrs = {}) {
  return h("a", { href: hash, ...attrs }, text);
}

function problemText(err) {
  return `${err.message} (${err.code})`;
}

function failure(err) {
  return h("p", { class: "error", role: "alert" }, problemText(err));
}

function json(value) {
  return h("pre", { tabindex: "0" }, JSON.stringify(value, null, 2));
}

function badge(text, kind) {
  return h("span", { class: `badge ${kind || text}` }, text);
}

function table(headers, rows, attrs = {}) {
  return h("table", attrs,
    h("thead", {}, h("tr", {}, headers.map((x) => h("th", { scope: "col" }, x)))),
    h("tbody", {}, rows));
}

// ---- reviews --------------------------------------------------------------

async function renderReviews() {
  const list = h("div", { id: "reviews", "aria-live": "polite", "aria-busy": "true" });
  const status = h("span", { class: "note", id: "reviews-status" }, "Loading the queue…");
  const refresh = h("button", { type: "button", onclick: () => loadReviews(list, status) }, "Refresh");
  show(
    h("h1", {}, "Reviews waiting"),
    h("div", { class: "toolbar" }, status, refresh),
    list,
  );
  main().focus();
  await loadReviews(list, status);
  state.timer = setInterval(() => {
    // Never redraw under someone typing a reason.
    if (!list.contains(document.activeElement)) loadReviews(list, status);
  }, 5000);
}

async function loadReviews(list, status) {
  list.setAttribute("aria-busy", "true");
  let waiting;
  try {
    waiting = (await api("GET", "/v0/approvals")).waiting;
  } catch (err) {
    list.setAttribute("aria-busy", "false");
    status.textContent = "";
    list.replaceChildren(h("p", { class: "error", role: "alert" }, `${err.message} (${err.code})`));
    return;
  }
  waiting.sort((a, b) => (a.step.review?.expires_at || "").localeCompare(b.step.review?.expires_at || ""));
  status.textContent = waiting.length === 1 ? "1 step waits for review." : `${waiting.length} steps wait for review.`;
  if (!can("reviewer")) status.textContent += " Your roles may read the queue but not approve or reject.";
  list.replaceChildren(...(waiting.length ? waiting.map(reviewCard) : [h("p", { class: "note" }, "Nothing waits for review.")]));
  list.setAttribute("aria-busy", "false");
}

function reviewCard(w) {
  const step = w.step;
  const review = step.review || {};
  const key = step.id;
  const titleId = `review-${key}`;
  const soon = review.expires_at && Date.parse(review.expires_at) - Date.now() < 15 * 60000;
  const facts = h(
    "dl",
    { class: "facts" },
    h("dt", {}, "Execution"), h("dd", { class: "mono" }, link(`#/execution/${encodeURIComponent(w.execution_id)}`, w.execution_id)),
    w.workflow_run ? [h("dt", {}, "Workflow run"), h("dd", { class: "mono" }, link(`#/runs/${encodeURIComponent(w.workflow_run)}`, w.workflow_run))] : "",
    h("dt", {}, "Agent"), h("dd", {}, w.agent_id === "warden.review" ? "a workflow run's review gate" : w.agent_id),
    h("dt", {}, "Started by"), h("dd", {}, w.initiator),
    h("dt", {}, "Tool"), h("dd", { class: "mono" }, step.tool),
    h("dt", {}, "Arguments hash"), h("dd", { class: "mono args-hash" }, step.args_hash),
    h("dt", {}, "Approvals"),
    h("dd", { class: "approvals" },
      `${review.approvals ?? 0} of ${review.reviewers_required ?? 1}`,
      w.approved_subjects.length ? ` (by ${w.approved_subjects.join(", ")})` : ""),
    h("dt", {}, "Expires"),
    h("dd", {}, review.expires_at ? time(review.expires_at) : "never",
      review.on_expiry ? ` (then: ${review.on_expiry})` : ""),
  );
  const card = h(
    "article",
    { class: "card review", "aria-labelledby": titleId, "data-step": key, "data-execution": w.execution_id },
    h("header", {},
      h("h2", { id: titleId }, step.tool),
      h("span", { class: `badge ${soon ? "soon" : "waiting"}` }, soon ? "expires soon" : "waiting"),
    ),
    facts,
    h("h3", { class: "note" }, "Arguments"),
    h("pre", { class: "arguments", tabindex: "0", "aria-label": "arguments" }, JSON.stringify(step.arguments, null, 2)),
    step.reasons.length ? h("div", {}, h("h3", { class: "note" }, "Why policy asks for review"),
      h("ul", { class: "reasons" }, step.reasons.map((r) => h("li", {}, r)))) : null,
  );
  if (can("reviewer")) card.append(verdictForm(w, key));
  return card;
}

function verdictForm(w, key) {
  const step = w.step;
  const reasonId = `reason-${key}`;
  const reason = h("textarea", { id: reasonId, name: "reason", maxlength: "2000" });
  reason.value = state.drafts.get(key) || "";
  reason.addEventListener("input", () => state.drafts.set(key, reason.value));
  const approve = h("button", { type: "button", class: "approve" }, "Approve");
  const reject = h("button", { type: "button", class: "reject" }, "Reject");
  const send = async (decision) => {
    if (decision === "reject" && !reason.value.trim()) {
      toast("Say why you reject: the reason is recorded in the evidence.", true);
      reason.focus();
      return;
    }
    approve.disabled = reject.disabled = true;
    try {
      const out = await api("POST", `/v0/executions/${encodeURIComponent(w.execution_id)}/approvals`, {
        step_id: step.id,
        decision,
        reason: reason.value.trim(),
        args_hash: step.args_hash,
      });
      state.drafts.delete(key);
      const r = out.review || {};
      toast(decision === "approve"
        ? `Approved ${step.tool}: ${r.approvals} of ${r.reviewers_required}, review ${r.state}.`
        : `Rejected ${step.tool}.`);
    } catch (err) {
      toast(`${err.message} (${err.code})`, true);
    } finally {
      approve.disabled = reject.disabled = false;
    }
    loadReviews(document.getElementById("reviews"), document.getElementById("reviews-status"));
  };
  approve.addEventListener("click", () => send("approve"));
  reject.addEventListener("click", () => send("reject"));
  return h("div", { class: "verdict" },
    h("label", { for: reasonId }, "Reason (recorded with your verdict)"),
    reason,
    h("div", { class: "actions" }, approve, reject),
  );
}

// ---- policies: bundles, revisions, tests, activation, impact --------------

async function renderPolicies(name) {
  const body = h("div", { id: "policies" });
  show(h("h1", {}, name ? `Policy bundle ${name}` : "Policy bundles"), body);
  main().focus();
  try {
    if (!name) {
      const bundles = await api("GET", "/v1/bundles");
      body.replaceChildren(bundles.length
        ? table(["Bundle", "Active revision", "Versions"], bundles.map((b) => h("tr", {},
          h("td", {}, link(`#/policies/${encodeURIComponent(b.name)}`, b.name)),
          h("td", {}, b.active_revision ? badge(b.active_revision, "approved") : badge("none", "expired")),
          h("td", {}, String(b.versions)))), { class: "grid" })
        : h("p", { class: "note" }, "No bundle uploaded yet."));
      return;
    }
    const bundle = await api("GET", `/v1/bundles/${encodeURIComponent(name)}`);
    body.replaceChildren(...bundleView(bundle));
  } catch (err) {
    body.replaceChildren(failure(err));
  }
}

function bundleView(bundle) {
  const mayActivate = can("compliance") || can("admin");
  const mayImpact = mayActivate || can("auditor");
  const impactBox = h("section", { id: "impact", "aria-live": "polite" });
  const rows = [...bundle.versions].reverse().map((v) => {
    const active = v.revision === bundle.active_revision;
    const passed = v.tests.filter((t) => t.passed).length;
    const tests = h("details", {},
      h("summary", {}, `${passed} of ${v.tests.length} tests passed`),
      h("ul", { class: "reasons" }, v.tests.map((t) => h("li", {},
        badge(t.passed ? "passed" : "failed", t.passed ? "approved" : "rejected"), " ",
        h("span", { class: "mono" }, `${t.package}.${t.name}`), t.error ? ` — ${t.error}` : ""))));
    const actions = h("td", { class: "row-actions" });
    if (!active && mayImpact) {
      actions.append(h("button", {
        type: "button", class: "impact", "data-revision": v.revision,
        onclick: () => runImpact(bundle, v.revision, impactBox),
      }, "Impact"));
    }
    if (!active && mayActivate) {
      actions.append(h("button", {
        type: "button", class: "primary activate", "data-revision": v.revision,
        onclick: () => activate(bundle.name, v.revision, v.tests_passed),
      }, "Activate"));
    }
    return h("tr", { "data-revision": v.revision },
      h("td", {}, h("strong", {}, v.revision), " ", active ? badge("active", "approved") : ""),
      h("td", { class: "mono", title: v.digest }, v.digest.slice(0, 16) + "…"),
      h("td", {}, v.uploaded_by, h("br"), time(v.uploaded_at)),
      h("td", {}, v.tests.length ? tests : h("span", { class: "note" }, "no tests")),
      actions);
  });
  const out = [
    h("p", { class: "note" }, `Roots: ${bundle.versions.at(-1)?.roots.join(", ") || "—"}. Newest first.`),
    table(["Revision", "Digest", "Uploaded", "Rego tests", ""], rows, { class: "grid", id: "revisions" }),
  ];
  if (mayActivate && bundle.active_revision) {
    out.push(h("div", { class: "actions" }, h("button", {
      type: "button", class: "quiet-dark", onclick: () => rollback(bundle.name),
    }, "Roll back to the previous revision")));
  }
  if (bundle.versions.length > 1) out.push(diffPanel(bundle));
  out.push(impactBox);
  return out;
}

async function activate(name, revision, testsPassed) {
  const force = !testsPassed;
  if (force && !confirm(`Revision ${revision} failed its Rego tests. Activate it anyway?`)) return;
  try {
    await api("POST", `/v1/bundles/${encodeURIComponent(name)}/activate`, { revision, force });
    toast(`Revision ${revision} of ${name} is active.`);
  } catch (err) {
    toast(problemText(err), true);
  }
  renderPolicies(name);
}

async function rollback(name) {
  try {
    const out = await api("POST", `/v1/bundles/${encodeURIComponent(name)}/rollback`, {});
    toast(`Rolled back: revision ${out.active_revision ?? out.revision ?? "previous"} is active.`);
  } catch (err) {
    toast(problemText(err), true);
  }
  renderPolicies(name);
}

const CHANGE_TITLES = {
  allow_to_deny: "Allowed before, denied by this revision",
  deny_to_allow: "Denied before, allowed by this revision",
  other: "Other results changed",
};

// Pages through the recorded decisions (1,000 a call) so that a long
// history shows its progress; then groups what would change.
async function runImpact(bundle, revision, box) {
  const progress = h("progress", { max: "1", value: "0", "aria-label": "decisions scanned" });
  const status = h("p", { class: "note", id: "impact-status" }, "Evaluating recorded decisions with the candidate…");
  box.replaceChildren(h("h2", {}, `Impact of activating ${revision}`), status, progress);
  const totals = { considered: 0, unchanged: 0, failed: 0, not_served: 0, changed: { total: 0, allow_to_deny: 0, deny_to_allow: 0, other: 0 } };
  const decisions = [];
  const workflows = new Set();
  let after;
  let truncated = false;
  let first;
  try {
    for (;;) {
      const req = { bundle: bundle.name, revision, max_scan: 1000, limit: 1000 };
      if (after !== undefined) req.after = after;
      const page = await api("POST", "/v1/impact", req);
      if (first === undefined) first = page.scanned_to;
      totals.considered += page.considered;
      totals.unchanged += page.unchanged;
      totals.failed += page.failed;
      totals.not_served += page.not_served;
      for (const k of Object.keys(totals.changed)) totals.changed[k] += page.changed[k];
      decisions.push(...page.decisions);
      page.workflows.forEach((w) => workflows.add(w));
      truncated ||= page.truncated;
      status.textContent = `${totals.considered} decisions evaluated again…`;
      if (page.next_after === undefined || page.next_after === null) break;
      after = page.next_after;
      progress.removeAttribute("value");
    }
  } catch (err) {
    box.replaceChildren(h("h2", {}, `Impact of activating ${revision}`), failure(err));
    return;
  }
  progress.value = 1;
  status.textContent = `${totals.considered} recorded decisions evaluated again: ${totals.changed.total} would change, ` +
    `${totals.unchanged} would not, ${totals.failed} could not be evaluated. ` +
    `${totals.not_served} decisions of other bundles were left out.`;
  const groups = Object.keys(CHANGE_TITLES).map((kind) => {
    const items = decisions.filter((d) => d.change === kind);
    return h("section", { class: `impact-group ${kind}`, "data-change": kind },
      h("h3", {}, `${CHANGE_TITLES[kind]}: `, h("span", { class: "count" }, String(totals.changed[kind]))),
      items.length ? h("ul", { class: "flips" }, items.map(impactItem)) : h("p", { class: "note" }, "None."));
  });
  box.append(
    h("p", {}, workflows.size ? `Workflows affected: ${[...workflows].join(", ")}` : "No workflow affected."),
    ...groups,
    truncated ? h("p", { class: "note" }, "More decisions changed than are listed here; the counts cover all.") : "",
  );
}

function outcome(o) {
  return o.allow === undefined || o.allow === null ? "no allow" : o.allow ? "allow" : "deny";
}

function impactItem(d) {
  const detail = h("div", { class: "flip-detail" });
  const item = h("details", { "data-decision": d.decision_id },
    h("summary", {}, h("span", { class: "mono" }, d.decision_id), ` · ${d.path} · `, time(d.timestamp),
      ` · ${outcome(d.recorded)} → ${outcome(d.candidate)}`),
    detail);
  item.addEventListener("toggle", async () => {
    if (!item.open || detail.childElementCount) return;
    detail.append(h("p", { class: "note" }, "Loading the decision's input from the ledger…"));
    let input = null;
    try {
      const entry = await api("GET", `/v1/ledger/entries/${d.ledger_index}`);
      input = entry.entry.payload.input;
    } catch (err) {
      detail.replaceChildren(failure(err));
      return;
    }
    detail.replaceChildren(
      h("h4", {}, "Input"), input === undefined ? h("p", { class: "note" }, "none") : json(input),
      h("div", { class: "columns" },
        h("div", {}, h("h4", {}, "Recorded result"), json(d.recorded.result ?? null)),
        h("div", {}, h("h4", {}, "Candidate's result"), json(d.candidate.result ?? null))),
      h("p", {}, link(`#/ledger/${d.ledger_index}`, `Ledger entry ${d.ledger_index}`)),
    );
  });
  return h("li", {}, item);
}

// ---- revision diff: two bundle archives compared in the browser -------------

// The files of a bundle archive (.tar.gz): gunzip with the browser's
// DecompressionStream, then read the ustar headers (with pax paths).
async function bundleFiles(name, revision) {
  const res = await fetch(`/v1/bundles/${encodeURIComponent(name)}/revisions/${encodeURIComponent(revision)}/content`,
    { credentials: "same-origin", cache: "no-store" });
  if (!res.ok) {
    let problem = {};
    try { problem = await res.json(); } catch { /* not JSON */ }
    throw new ApiError(res.status, problem);
  }
  const tar = new Uint8Array(await new Response(res.body.pipeThrough(new DecompressionStream("gzip"))).arrayBuffer());
  const files = new Map();
  const text = (a, b) => new TextDecoder().decode(tar.subarray(a, b)).replace(/\0.*$/s, "");
  let at = 0;
  let paxPath = null;
  while (at + 512 <= tar.length) {
    if (tar.subarray(at, at + 512).every((b) => b === 0)) break;
    const size = parseInt(text(at + 124, at + 136).trim() || "0", 8);
    const type = String.fromCharCode(tar[at + 156] || 48);
    const prefix = text(at + 345, at + 500);
    let path = paxPath ?? (prefix ? `${prefix}/${text(at, at + 100)}` : text(at, at + 100));
    const body = tar.subarray(at + 512, at + 512 + size);
    paxPath = null;
    if (type === "x") {
      const m = new TextDecoder().decode(body).match(/\d+ path=([^\n]*)\n/);
      if (m) paxPath = m[1];
    } else if (type === "0" || type === "\0") {
      path = path.replace(/^\.?\//, "");
      files.set(path, new TextDecoder().decode(body));
    }
    at += 512 + Math.ceil(size / 512) * 512;
  }
  return files;
}

// Lines removed and added between two texts (longest common subsequence),
// as hunks with two lines of context.
function lineDiff(a, b) {
  const x = a.split("\n");
  const y = b.split("\n");
  if (x.length * y.length > 4_000_000) return null;
  const n = x.length, m = y.length;
  const lcs = Array.from({ length: n + 1 }, () => new Uint32Array(m + 1));
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      lcs[i][j] = x[i] === y[j] ? lcs[i + 1][j + 1] + 1 : Math.max(lcs[i + 1][j], lcs[i][j + 1]);
    }
  }
  const ops = [];
  let i = 0, j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && x[i] === y[j]) { ops.push([" ", x[i]]); i++; j++; }
    else if (i < n && (j === m || lcs[i + 1][j] >= lcs[i][j + 1])) { ops.push(["-", x[i]]); i++; }
    else { ops.push(["+", y[j]]); j++; }
  }
  const keep = ops.map((op, k) => op[0] !== " " || ops.slice(Math.max(0, k - 2), k + 3).some((o) => o[0] !== " "));
  const out = [];
  ops.forEach((op, k) => {
    if (keep[k]) out.push(op);
    else if (out.length && out.at(-1)[0] !== "…") out.push(["…", ""]);
  });
  return out;
}

function diffPanel(bundle) {
  const revisions = bundle.versions.map((v) => v.revision);
  const from = h("select", { id: "diff-from" }, revisions.map((r) => h("option", { value: r }, r)));
  const to = h("select", { id: "diff-to" }, revisions.map((r) => h("option", { value: r }, r)));
  if (revisions.length > 1) {
    from.value = revisions.at(-2);
    to.value = revisions.at(-1);
  }
  const out = h("div", { id: "diff", "aria-live": "polite" });
  const compare = async () => {
    out.replaceChildren(h("p", { class: "note" }, "Reading both archives…"));
    try {
      const [a, b] = await Promise.all([bundleFiles(bundle.name, from.value), bundleFiles(bundle.name, to.value)]);
      const paths = [...new Set([...a.keys(), ...b.keys()])].filter((p) => !p.startsWith(".signatures")).sort();
      const changed = paths.filter((p) => a.get(p) !== b.get(p));
      if (!changed.length) {
        out.replaceChildren(h("p", {}, `${from.value} and ${to.value} hold the same files.`));
        return;
      }
      out.replaceChildren(h("p", {}, `${changed.length} of ${paths.length} files differ between ${from.value} and ${to.value}.`),
        ...changed.map((p) => {
          const kind = !a.has(p) ? "added" : !b.has(p) ? "removed" : "changed";
          const lines = lineDiff(a.get(p) ?? "", b.get(p) ?? "");
          return h("section", { class: "file-diff", "data-path": p, "data-change": kind },
            h("h3", {}, h("span", { class: "mono" }, p), " ", badge(kind, kind === "removed" ? "rejected" : kind === "added" ? "approved" : "soon")),
            lines === null
              ? h("p", { class: "note" }, "Too large to compare line by line.")
              : h("pre", { class: "diff" }, lines.map(([op, line]) => h("span", { class: `d${op === "+" ? "add" : op === "-" ? "del" : "ctx"}` }, `${op} ${line}\n`))));
        }));
    } catch (err) {
      out.replaceChildren(failure(err));
    }
  };
  return h("section", { id: "compare" },
    h("h2", {}, "Compare two revisions"),
    h("div", { class: "toolbar" },
      h("label", { for: "diff-from", class: "inline" }, "From"), from,
      h("label", { for: "diff-to", class: "inline" }, "to"), to,
      h("button", { type: "button", id: "diff-button", onclick: compare }, "Compare")),
    out);
}

// ---- runs and executions ---------------------------------------------------

async function renderRuns(id) {
  if (id) return renderRun(id);
  const runs = h("div", { id: "runs" });
  const executions = h("div", { id: "executions" });
  const filter = h("input", { id: "run-filter", name: "workflow", placeholder: "workflow name" });
  const agent = h("input", { id: "exec-agent", name: "agent_id", placeholder: "agent id" });
  const state = h("select", { id: "exec-state", name: "state" },
    ["", "pending", "running", "blocked", "completed", "failed", "cancelled"].map((v) => h("option", { value: v }, v || "any state")));
  const find = h("input", { id: "execution-id", name: "execution", placeholder: "exe_…" });
  const loadExecs = () => loadExecutions(executions, state.value, agent.value.trim());
  show(
    h("h1", {}, "Runs and executions"),
    h("h2", {}, "Executions"),
    h("form", { class: "toolbar", onsubmit: (e) => { e.preventDefault(); loadExecs(); } },
      h("label", { for: "exec-state", class: "inline" }, "State"), state,
      h("label", { for: "exec-agent", class: "inline" }, "Agent"), agent,
      h("button", { type: "submit" }, "Filter")),
    h("form", { class: "toolbar", onsubmit: (e) => { e.preventDefault(); if (find.value.trim()) location.hash = `#/execution/${encodeURIComponent(find.value.trim())}`; } },
      h("label", { for: "execution-id", class: "inline" }, "Open an execution"), find,
      h("button", { type: "submit" }, "Open")),
    executions,
    h("h2", {}, "Workflow runs"),
    h("form", { class: "toolbar", onsubmit: (e) => { e.preventDefault(); loadRuns(runs, filter.value.trim()); } },
      h("label", { for: "run-filter", class: "inline" }, "Workflow"), filter,
      h("button", { type: "submit" }, "Filter")),
    runs,
  );
  main().focus();
  await Promise.all([loadExecs(), loadRuns(runs, "")]);
}

async function loadExecutions(body, state, agent) {
  const q = new URLSearchParams({ limit: "200" });
  if (state) q.set("state", state);
  if (agent) q.set("agent_id", agent);
  try {
    const list = await api("GET", `/v0/executions?${q}`);
    body.replaceChildren(list.length
      ? table(["Execution", "Agent", "State", "Started by", "Created", "Updated"], list.map((e) => h("tr", { "data-execution": e.id },
        h("td", {}, link(`#/execution/${encodeURIComponent(e.id)}`, e.id, { class: "mono" })),
        h("td", {}, e.agent_id, e.workflow_run ? [h("br"), link(`#/runs/${encodeURIComponent(e.workflow_run)}`, "its run", { class: "note" })] : ""),
        h("td", {}, badge(e.state, statusKind(e.state)), e.waiting_on ? ` (${e.waiting_on})` : ""),
        h("td", {}, e.initiator),
        h("td", {}, time(e.created_at)),
        h("td", {}, time(e.updated_at)))), { class: "grid" })
      : h("p", { class: "note" }, "No execution matches."));
  } catch (err) {
    body.replaceChildren(failure(err));
  }
}

async function loadRuns(body, workflow) {
  try {
    const q = workflow ? `?workflow=${encodeURIComponent(workflow)}&limit=200` : "?limit=200";
    const runs = await api("GET", `/v1/workflow-runs${q}`);
    body.replaceChildren(runs.length
      ? table(["Run", "Workflow", "Status", "Transitions", "Started", "Updated"], runs.map((r) => h("tr", {},
        h("td", {}, link(`#/runs/${encodeURIComponent(r.id)}`, r.id, { class: "mono" })),
        h("td", {}, `${r.workflow} v${r.version}`),
        h("td", {}, badge(r.status, statusKind(r.status))),
        h("td", {}, String(r.transitions)),
        h("td", {}, time(r.created_at)),
        h("td", {}, time(r.updated_at)))), { class: "grid" })
      : h("p", { class: "note" }, "No workflow run."));
  } catch (err) {
    body.replaceChildren(failure(err));
  }
}

function statusKind(s) {
  return { running: "waiting", pending: "waiting", blocked: "soon", succeeded: "approved", completed: "approved",
    dispatched: "waiting", failed: "rejected", timed_out: "rejected", cancelled: "expired" }[s] || "waiting";
}

async function renderRun(id) {
  const body = h("div", { id: "run" });
  show(h("h1", {}, `Run ${id}`), body);
  main().focus();
  try {
    const run = await api("GET", `/v1/workflow-runs/${encodeURIComponent(id)}`);
    const [version, history] = await Promise.all([
      api("GET", `/v1/workflows/${encodeURIComponent(run.workflow)}/versions/${run.version}`),
      api("GET", `/v1/workflow-runs/${encodeURIComponent(id)}/history`),
    ]);
    body.replaceChildren(
      h("dl", { class: "facts" },
        h("dt", {}, "Workflow"), h("dd", {}, `${run.workflow} v${run.version}`),
        h("dt", {}, "Status"), h("dd", {}, badge(run.status, statusKind(run.status))),
        h("dt", {}, "Started by"), h("dd", {}, run.initiator),
        h("dt", {}, "Started"), h("dd", {}, time(run.created_at)),
        h("dt", {}, "Transitions"), h("dd", {}, String(run.transitions))),
      h("h2", {}, "State graph"),
      stateGraph(version.definition, history, run.position),
      h("h2", {}, "History"),
      timeline(history.map((e) => ({ index: e.index, kind: e.kind, at: e.at, actor: e.actor, payload: e.payload }))),
    );
  } catch (err) {
    body.replaceChildren(failure(err));
  }
}

// The states of a parsed definition (as `GET /v1/workflows/{name}/versions/
// {version}` serves it) and their edges: every `next` and `default`, in
// choices and catchers too, but not inside a Parallel state's branches.
function graphOf(def) {
  const { states, startAt: start } = def.spec;
  const edges = [];
  for (const [name, st] of Object.entries(states)) {
    const targets = new Set();
    const walk = (v, key) => {
      if (v === null || typeof v !== "object") {
        if (typeof v === "string" && (key === "next" || key === "default") && states[v]) targets.add(v);
        return;
      }
      for (const [k, x] of Object.entries(v)) {
        if (k === "branches") continue;
        walk(x, k);
      }
    };
    walk(st, "");
    for (const t of targets) edges.push([name, t]);
  }
  return { states, start, edges };
}

function stateGraph(def, history, position) {
  if (!def) return h("p", { class: "note" }, "The definition is not available.");
  const { states, start, edges } = graphOf(def);
  const names = Object.keys(states);
  // Layers by breadth-first distance from the start.
  const layer = new Map([[start, 0]]);
  const queue = [start];
  while (queue.length) {
    const n = queue.shift();
    for (const [a, b] of edges) if (a === n && !layer.has(b)) { layer.set(b, layer.get(n) + 1); queue.push(b); }
  }
  for (const n of names) if (!layer.has(n)) layer.set(n, Math.max(0, ...layer.values()) + 1);
  const rows = new Map();
  for (const n of names) {
    const l = layer.get(n);
    rows.set(l, [...(rows.get(l) || []), n]);
  }
  const W = 190, H = 46, GX = 40, GY = 54;
  const widest = Math.max(...[...rows.values()].map((r) => r.length));
  const width = widest * (W + GX) + GX;
  const height = rows.size * (H + GY) + GY;
  const at = new Map();
  for (const [l, r] of rows) {
    const offset = (width - r.length * (W + GX) + GX) / 2;
    r.forEach((n, i) => at.set(n, { x: offset + i * (W + GX), y: GY / 2 + l * (H + GY) }));
  }
  const visited = new Set(history.filter((e) => e.kind === "workflow.state.entered").map((e) => e.payload?.state));
  const retried = new Map();
  const caught = new Set();
  for (const e of history) {
    if (e.kind === "workflow.state.retrying") retried.set(e.payload?.state, (retried.get(e.payload?.state) || 0) + 1);
    if (e.kind === "workflow.state.caught") caught.add(e.payload?.state);
  }
  const current = new Set();
  const walkPos = (p) => {
    if (Array.isArray(p)) p.forEach(walkPos);
    else if (p && typeof p === "object") {
      if (typeof p.state === "string") current.add(p.state);
      Object.values(p).forEach((v) => typeof v === "object" && walkPos(v));
    }
  };
  walkPos(position);
  const NS = "http://www.w3.org/2000/svg";
  const svg = (tag, attrs, ...kids) => {
    const el = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
    for (const c of kids) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
    return el;
  };
  const root = svg("svg", { viewBox: `0 0 ${width} ${height}`, width, height, role: "img", class: "graph",
    "aria-label": `State graph: ${names.length} states; visited: ${[...visited].join(", ") || "none"}; now at: ${[...current].join(", ") || "none"}` });
  root.append(svg("defs", {}, svg("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 10, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" },
    svg("path", { d: "M 0 0 L 10 5 L 0 10 z", fill: "#57606a" }))));
  for (const [a, b] of edges) {
    const p = at.get(a), q = at.get(b);
    const walked = visited.has(a) && visited.has(b);
    const down = q.y > p.y;
    root.append(svg("line", {
      x1: p.x + W / 2, y1: down ? p.y + H : p.y, x2: q.x + W / 2, y2: down ? q.y : q.y + H,
      stroke: walked ? "#1a7f37" : "#8c959f", "stroke-width": walked ? 2.5 : 1.2, "marker-end": "url(#arrow)",
    }));
  }
  for (const n of names) {
    const p = at.get(n);
    const cls = current.has(n) ? "current" : visited.has(n) ? "visited" : "unvisited";
    const g = svg("g", { class: `state ${cls}`, "data-state": n });
    g.append(svg("title", {}, `${n} (${states[n].type})${current.has(n) ? ", here now" : visited.has(n) ? ", visited" : ""}`));
    g.append(svg("rect", { x: p.x, y: p.y, width: W, height: H, rx: 8 }));
    g.append(svg("text", { x: p.x + W / 2, y: p.y + 19, "text-anchor": "middle", class: "name" }, n));
    const notes = [states[n].type];
    if (retried.get(n)) notes.push(`retried ${retried.get(n)}×`);
    if (caught.has(n)) notes.push("error caught");
    g.append(svg("text", { x: p.x + W / 2, y: p.y + 36, "text-anchor": "middle", class: "kind" }, notes.join(" · ")));
    root.append(g);
  }
  return h("div", { class: "graph-box" }, root,
    h("p", { class: "note legend" }, "Green: the run's path. Outlined: where it is now."));
}

function timeline(entries) {
  return h("ol", { class: "timeline" }, entries.map((e) => h("li", { "data-kind": e.kind },
    h("div", { class: "when" }, time(e.at)),
    h("div", {},
      h("strong", {}, e.kind), " ",
      link(`#/ledger/${e.index}`, `entry ${e.index}`, { class: "ledger-link" }),
      e.actor ? h("div", { class: "note" }, e.actor) : "",
      e.payload && Object.keys(e.payload).length ? h("details", {}, h("summary", {}, "payload"), json(e.payload)) : ""))));
}

async function renderExecution(id) {
  const body = h("div", { id: "execution" });
  show(h("h1", {}, `Execution ${id}`), body);
  main().focus();
  try {
    const [exe, history] = await Promise.all([
      api("GET", `/v0/executions/${encodeURIComponent(id)}`),
      api("GET", `/v0/executions/${encodeURIComponent(id)}/history`),
    ]);
    const steps = exe.steps;
    body.replaceChildren(
      h("dl", { class: "facts" },
        h("dt", {}, "Agent"), h("dd", {}, exe.agent_id),
        h("dt", {}, "State"), h("dd", {}, badge(exe.state, statusKind(exe.state))),
        h("dt", {}, "Created"), h("dd", {}, time(exe.created_at))),
      h("h2", {}, "Steps"),
      steps.length ? table(["Tool", "State", "Attempt", "Review", "Arguments hash"], steps.map((s) => h("tr", {},
        h("td", { class: "mono" }, s.tool), h("td", {}, badge(s.state, statusKind(s.state))),
        h("td", {}, `${s.attempt} of ${s.max_attempts}`),
        h("td", {}, s.review ? `${s.review.state}, ${s.review.approvals} of ${s.review.reviewers_required}` : "—"),
        h("td", { class: "mono" }, s.args_hash))), { class: "grid" }) : h("p", { class: "note" }, "No step."),
      h("h2", {}, "History"),
      timeline(history.entries.map((e) => ({ index: e.ledger_index, kind: e.kind, at: e.at, actor: e.actor, payload: e.payload }))),
    );
  } catch (err) {
    body.replaceChildren(failure(err));
  }
}

// ---- sinks ---------------------------------------------------------------------

async function renderSinks() {
  const body = h("div", { id: "sinks" });
  show(h("h1", {}, "Audit sinks"), body);
  main().focus();
  try {
    const sinks = await api("GET", "/v1/sinks");
    body.replaceChildren(sinks.length ? h("div", {}, sinks.map(sinkCard)) : h("p", { class: "note" }, "No sink delivers this tenant's events."));
  } catch (err) {
    body.replaceChildren(failure(err));
  }
}

function sinkCard(s) {
  const letters = h("div", { class: "dead-letters" });
  const card = h("article", { class: "card sink", "data-sink": s.name },
    h("header", {}, h("h2", {}, s.name), badge(s.kind, "waiting"), " ",
      s.enabled ? badge("delivering", "approved") : badge("stopped", "rejected"), " ", h("span", { class: "note" }, s.scope)),
    h("dl", { class: "facts" },
      h("dt", {}, "Lag"), h("dd", { class: "lag" }, `${s.lag} entries`),
      h("dt", {}, "Delivered up to"), h("dd", {}, s.cursor === null || s.cursor === undefined ? "nothing yet" : `entry ${s.cursor}`),
      h("dt", {}, "Last error"), h("dd", { class: "last-error" }, s.last_error ? [s.last_error, " (", time(s.last_error_at), ")"] : "none"),
      s.disabled_reason ? [h("dt", {}, "Stopped because"), h("dd", {}, s.disabled_reason)] : "",
      h("dt", {}, "Dead letters"), h("dd", { class: "dead-count" }, String(s.dead_letters))),
    letters);
  if (s.dead_letters > 0) {
    letters.append(h("button", { type: "button", onclick: () => loadDeadLetters(s.name, letters) }, "Show dead letters"));
    if (can("admin")) {
      letters.append(" ", h("button", { type: "button", class: "primary redrive", onclick: () => redrive(s.name) }, "Redrive"));
    }
  }
  return card;
}

async function loadDeadLetters(name, box) {
  try {
    const rows = await api("GET", `/v1/sinks/${encodeURIComponent(name)}/dead-letters`);
    box.replaceChildren(table(["Event", "Entry", "Why", "When"], rows.map((d) => h("tr", {},
      h("td", { class: "mono" }, d.event_id), h("td", {}, link(`#/ledger/${d.index}`, String(d.index))),
      h("td", {}, d.reason), h("td", {}, time(d.dead_lettered_at)))), { class: "grid" }));
  } catch (err) {
    box.replaceChildren(failure(err));
  }
}

async function redrive(name) {
  try {
    const out = await api("POST", `/v1/sinks/${encodeURIComponent(name)}/redrive`);
    toast(`Redrive of ${name}: ${out.delivered} delivered, ${out.failed} still refused.`, out.failed > 0);
  } catch (err) {
    toast(problemText(err), true);
  }
  renderSinks();
}

// ---- evidence: checkpoint, entries, replay, export, verification -------------

async function renderEvidence() {
  const head = h("div", { id: "checkpoint" }, h("p", { class: "note" }, "Loading the latest checkpoint…"));
  const recent = h("div", { id: "entries" });
  show(
    h("h1", {}, "Evidence"),
    h("section", {}, h("h2", {}, "Latest checkpoint"), head),
    h("section", {}, h("h2", {}, "Latest entries"), recent),
    h("section", {}, h("h2", {}, "Export"),
      h("p", {}, "The whole log as one file, to verify here or with ", h("code", {}, "warden verify"), " offline. ",
        h("a", { href: "/v1/ledger/export", download: "warden-ledger-export.ndjson", id: "export-link" }, "Download the export"))),
    verifyPanel(),
  );
  main().focus();
  try {
    const c = await api("GET", "/v1/ledger/checkpoint");
    head.replaceChildren(
      h("dl", { class: "facts" },
        h("dt", {}, "Log"), h("dd", { class: "mono" }, c.log),
        h("dt", {}, "Entries"), h("dd", { id: "tree-size" }, String(c.size)),
        h("dt", {}, "Root"), h("dd", { class: "mono" }, c.root),
        h("dt", {}, "Signed"), h("dd", {}, time(c.timestamp))),
      h("details", {}, h("summary", {}, "The signed note"), h("pre", {}, c.checkpoint)));
    const first = Math.max(0, c.size - 25);
    const indexes = [];
    for (let i = c.size - 1; i >= first; i--) indexes.push(i);
    const views = await Promise.all(indexes.map((i) => api("GET", `/v1/ledger/entries/${i}`)));
    recent.replaceChildren(table(["Entry", "Kind", "Actor", "When"], views.map((v) => h("tr", {},
      h("td", {}, link(`#/ledger/${v.index}`, String(v.index))),
      h("td", {}, v.entry.kind), h("td", {}, v.entry.actor), h("td", {}, time(new Date(v.entry.ts).toISOString())))), { class: "grid" }));
  } catch (err) {
    head.replaceChildren(failure(err));
  }
}

async function renderLedger(index) {
  if (index === undefined) return renderEvidence();
  const body = h("div", { id: "entry" });
  show(h("h1", {}, `Ledger entry ${index}`), body);
  main().focus();
  try {
    const v = await api("GET", `/v1/ledger/entries/${encodeURIComponent(index)}`);
    const e = v.entry;
    const parts = [
      h("dl", { class: "facts" },
        h("dt", {}, "Kind"), h("dd", {}, e.kind),
        h("dt", {}, "Actor"), h("dd", {}, e.actor),
        h("dt", {}, "Time"), h("dd", {}, time(new Date(e.ts).toISOString())),
        h("dt", {}, "Entry hash"), h("dd", { class: "mono" }, v.entry_hash),
        h("dt", {}, "Previous"), h("dd", { class: "mono" }, e.prev),
        h("dt", {}, "Proved in a tree of"), h("dd", {}, `${v.tree_size} entries`)),
      h("h2", {}, "Payload"), json(e.payload),
      h("details", {}, h("summary", {}, `Inclusion proof (${v.inclusion.length} hashes)`),
        h("ol", { class: "mono" }, v.inclusion.map((x) => h("li", {}, x)))),
      v.checkpoint ? h("details", {}, h("summary", {}, "Checkpoint"), h("pre", {}, v.checkpoint)) : "",
      h("details", {}, h("summary", {}, "Exact bytes, as hashed"), h("pre", {}, v.bytes)),
    ];
    if (e.kind === "decision" && e.payload?.decision_id && (can("compliance") || can("auditor") || can("admin"))) {
      const out = h("div", { id: "replay", "aria-live": "polite" });
      parts.push(h("div", { class: "actions" }, h("button", {
        type: "button", onclick: async () => {
          out.replaceChildren(h("p", { class: "note" }, "Evaluating again with the pinned bundle…"));
          try {
            const r = await api("POST", `/v1/decisions/${encodeURIComponent(e.payload.decision_id)}/replay`, {});
            out.replaceChildren(
              h("p", {}, r.match ? badge("same result", "approved") : badge("different result", "rejected"),
                ` against ${r.bundle.name} revision ${r.bundle.revision}`),
              r.differences.length ? json(r.differences) : "");
          } catch (err) {
            out.replaceChildren(failure(err));
          }
        },
      }, "Replay this decision")), out);
    }
    body.replaceChildren(...parts);
  } catch (err) {
    body.replaceChildren(failure(err));
  }
}

// Verification in the browser: nothing the server says is trusted. The
// file or receipt and the keys are the auditor's; the code that checks
// them is verify.js, which follows docs/ledger-format.md.
function verifyPanel() {
  const keys = h("textarea", { id: "verify-keys", name: "keys", spellcheck: "false",
    placeholder: "warden.local+1a2b3c4d+AQID… (one verifier key per line)" });
  const file = h("input", { id: "verify-file", type: "file", accept: ".ndjson,.jsonl,.json,application/x-ndjson" });
  const receipt = h("textarea", { id: "verify-receipt", name: "receipt", spellcheck: "false", placeholder: "{\"receipt\": …}" });
  const progress = h("progress", { id: "verify-progress", max: "1", value: "0", hidden: true, "aria-label": "entries verified" });
  const result = h("div", { id: "verify-result", role: "status", "aria-live": "polite" });
  const drop = h("div", { class: "drop", id: "verify-drop" }, "Drop an export file here, or choose one: ", file);
  let dropped = null;
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    dropped = e.dataTransfer.files[0] || null;
    if (dropped) drop.firstChild.textContent = `Dropped: ${dropped.name}. `;
  });
  const keyList = () => keys.value.split("\n").map((k) => k.trim()).filter(Boolean);
  const report = (ok, text) => result.replaceChildren(h("p", { class: ok ? "verified" : "error" },
    ok ? badge("verified", "approved") : badge("failed", "rejected"), " ", text));
  const run = async (what) => {
    result.replaceChildren();
    if (!keyList().length) return report(false, "Give the verifier key(s) you trust.");
    let verify;
    try {
      verify = await import("/ui/assets/verify.js");
    } catch (err) {
      return report(false, `The verifier could not load: ${err}`);
    }
    try {
      if (what === "export") {
        const f = dropped || file.files[0];
        if (!f) return report(false, "Choose or drop an export file.");
        progress.hidden = false;
        progress.value = 0;
        const r = await verify.verifyExport(f, keyList(), (done, total) => { progress.max = total || 1; progress.value = done; });
        report(true, `${r.entries} entries (${r.from_index} to ${r.to_index}), tree of ${r.tree_size}, root ${r.root}, ` +
          `${r.checkpoints} checkpoints: every hash, proof, checkpoint and signature holds.`);
      } else {
        let parsed;
        try {
          parsed = JSON.parse(receipt.value);
        } catch {
          return report(false, "The receipt is not JSON.");
        }
        const r = await verify.verifyReceipt(parsed, keyList());
        report(true, `entry ${r.index} is in the tree of ${r.tree_size} entries signed by ${r.signed_by.join(", ")}.`);
      }
    } catch (err) {
      // A refusal of the evidence, or a browser that cannot check it.
      const refused = err && ["VerificationError", "CanonicalError", "ProofError"].includes(err.name);
      report(false, refused ? err.message : `this browser cannot verify here: ${err && err.message ? err.message : err}`);
    } finally {
      progress.hidden = true;
    }
  };
  const fill = h("button", {
    type: "button", class: "quiet-dark", onclick: async () => {
      try {
        const ks = await api("GET", "/v1/ledger/keys");
        keys.value = ks.map((k) => k.verifier).join("\n");
      } catch (err) {
        toast(problemText(err), true);
      }
    },
  }, "Fill with the keys this server publishes");
  return h("section", { id: "verify" },
    h("h2", {}, "Verify in this browser"),
    h("p", { class: "note" }, "The check runs here, on the file and the keys you give it: hashes, the Merkle tree, checkpoints and their Ed25519 signatures. Trust only keys you obtained elsewhere; the button below shows the server's, for comparison."),
    h("label", { for: "verify-keys" }, "Verifier keys you trust"), keys, h("div", { class: "actions" }, fill),
    h("label", { for: "verify-file" }, "An export"), drop,
    h("div", { class: "actions" }, h("button", { type: "button", class: "primary", id: "verify-export", onclick: () => run("export") }, "Verify the export")),
    h("label", { for: "verify-receipt" }, "Or a receipt (the JSON an append answered with)"), receipt,
    h("div", { class: "actions" }, h("button", { type: "button", class: "primary", id: "verify-receipt-button", onclick: () => run("receipt") }, "Verify the receipt")),
    progress, result);
}

// ---- boot -----------------------------------------------------------------

window.addEventListener("hashchange", route);
document.getElementById("sign-out").addEventListener("click", signOut);

(async () => {
  try {
    state.session = await api("GET", "/ui/session");
    start();
  } catch {
    renderSignIn();
  }
})();
