// Podium dashboard: one small script for every page. It reads the page's JSON endpoint, builds the
// page from it with DOM calls (text only, never HTML from the data), and draws the charts the server
// rendered as SVG. The range and refresh live in the URL, so links and reloads keep them.
"use strict";

const KEY = "podium-dashboard-key";
const page = document.body.dataset.page;
const content = document.getElementById("content");
const statusLine = document.getElementById("status");
const params = new URLSearchParams(location.search);
const DEFAULT_RANGE = "24h";
const MIN_REFRESH = 5;  // seconds: a URL's ?refresh=0.001 must not flood the server (0 stays "off")
const MAX_REFRESH = 3600;  // the config's bound (dashboard.refresh_seconds)

// A refresh from the URL or the page: whole seconds only; 0 is off, anything else within
// MIN_REFRESH..MAX_REFRESH; what is not a whole number (-5, 0.001, "x") is the fallback.
function refreshOf(text, fallback) {
  if (text === null || text === undefined || !/^[0-9]{1,7}$/.test(text)) return fallback;
  const seconds = Number(text);
  return seconds === 0 ? 0 : Math.min(Math.max(seconds, MIN_REFRESH), MAX_REFRESH);
}

const state = {
  range: params.get("range") || DEFAULT_RANGE,
  refresh: refreshOf(params.get("refresh"), refreshOf(document.body.dataset.refresh, 30)),
  timer: null,
  authorized: false,
};

// --- small helpers --------------------------------------------------------------------------------
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "onclick" || name === "onsubmit") node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

const fmt = {
  int: (v) => (v === null || v === undefined ? "–" : Math.round(v).toLocaleString("en")),
  money: (v) => (v === null || v === undefined ? "–" : v === 0 ? "$0" : (v < 0 ? "-$" : "$") +
    (Math.abs(v) >= 1 ? Math.abs(v).toLocaleString("en", {minimumFractionDigits: 2, maximumFractionDigits: 2})
      : Math.abs(v).toFixed(Math.min(10, Math.max(2, 2 - Math.floor(Math.log10(Math.abs(v)))))))),
  pct: (v) => (v === null || v === undefined ? "–" : (v * 100).toFixed(1) + "%"),
  ms: (v) => (v === null || v === undefined ? "–" : v >= 1000 ? (v / 1000).toFixed(2) + " s" : v.toFixed(0) + " ms"),
  num: (v, d = 2) => (v === null || v === undefined ? "–" : Number(v).toFixed(d)),
  time: (t) => (t ? new Date(t * 1000).toISOString().replace("T", " ").slice(0, 19) + " UTC" : "–"),
};

function outcome(status) {
  // words and a symbol, never colour alone
  const bad = status === "error" || status === "cancelled";
  return el("span", {class: bad ? "state-bad" : "state-good"}, (bad ? "✗ " : "✓ ") + status);
}

function table(caption, columns, rows, empty = "Nothing in this range.") {
  if (!rows.length) return el("p", {class: "note"}, caption + ": " + empty);
  const head = el("tr", {}, columns.map((c) => el("th", {scope: "col", class: c.num ? "num" : null}, c.label)));
  const body = rows.map((row) => el("tr", {}, columns.map((c) => {
    const value = c.value(row);
    return el("td", {class: c.num ? "num" : null}, value instanceof Node ? value : String(value ?? "–"));
  })));
  return el("div", {class: "table-wrap"}, el("table", {}, el("caption", {}, caption), el("thead", {}, head),
    el("tbody", {}, body)));
}

function cards(items) {
  return el("dl", {class: "cards"}, items.map(([label, value, id]) =>
    el("div", {class: "card", "data-metric": id}, el("dt", {}, label), el("dd", {}, value))));
}

function chart(svgText, caption) {
  if (!svgText) return null;
  const doc = new DOMParser().parseFromString(svgText, "image/svg+xml");
  const svg = document.importNode(doc.documentElement, true);
  return el("figure", {}, svg, el("figcaption", {}, caption));
}

function query(extra = {}) {
  const q = new URLSearchParams({range: state.range});
  for (const [name, value] of Object.entries(extra)) if (value !== null && value !== "") q.set(name, value);
  return q;
}

async function api(path, extra) {
  const response = await fetch("/dashboard/api/" + path + "?" + query(extra), {headers: authHeaders()});
  const data = await response.json().catch(() => ({error: {message: response.statusText}}));
  if (response.status === 401 || response.status === 403) {
    state.authorized = false;
    showLogin(data.error ? data.error.message : "");
    throw new Error("login");
  }
  if (!response.ok) throw new Error(data.error ? data.error.message : "HTTP " + response.status);
  return data;
}

function showLogin(why) {
  document.getElementById("login").hidden = false;
  if (why && sessionStorage.getItem(KEY)) document.getElementById("login-why").textContent = "Not accepted: " + why;
  content.replaceChildren();
  document.getElementById("key").focus();
}

// --- the pages ------------------------------------------------------------------------------------
const pages = {};

pages.overview = async () => {
  const data = await api("overview");
  const t = data.totals;
  const items = [
    ["Requests", fmt.int(t.requests), "requests"], ["Spend", fmt.money(t.total_cost), "cost"],
    [t.baseline_model ? "Saved against " + t.baseline_model : "Savings (no baseline)", fmt.money(t.savings), "savings"],
    ["Error rate", fmt.pct(t.error_rate), "error_rate"], ["Fallback rate", fmt.pct(t.fallback_rate), "fallback_rate"],
    ["Retry rate", fmt.pct(t.retry_rate), "retry_rate"], ["Cache hit rate", fmt.pct(t.cache_hit_rate), "cache_hit_rate"],
    ["Unfinished", fmt.int(t.requests_unfinished), "unfinished"],
    ["Satisfaction (mean of " + fmt.int(t.scored_requests) + " scored)",
      t.mean_score === null ? "–" : fmt.num(t.mean_score), "satisfaction"],
  ];
  const refused = data.live ? data.live.refused : null;
  if (refused) items.push(["Guardrail blocks (since start)", fmt.int(refused.guardrail || 0), "guardrail"]);
  const out = [cards(items)];
  const c = data.charts || {};
  out.push(el("div", {class: "charts"},
    chart(c.requests, "Requests, failures and cache hits per interval"),
    chart(c.spend, "What was spent, and what the same tokens would have cost on the baseline model"),
    chart(c.rates, "Error, fallback, retry and cache-hit rates per interval")));
  if (!data.series.length) out.push(el("p", {class: "note"}, "No requests in this range yet."));
  if (refused) {
    out.push(table("Refused before reaching a model, since the gateway started (not in the ledger)",
      [{label: "reason", value: (r) => r[0]}, {label: "requests", num: true, value: (r) => fmt.int(r[1])}],
      Object.entries(refused), "none."));
  }
  return out;
};

pages.models = async () => {
  const data = await api("models");
  const c = data.charts || {};
  const classes = (d) => Object.entries(d.errors_by_class).map(([k, v]) => k + " " + v).join(", ") || "none";
  return [
    el("div", {class: "charts"}, chart(c.latency, "p50 and p95 latency of successful calls"),
      chart(c.calls, "Calls per model per interval")),
    table("Deployments (model on a provider)", [
      {label: "model", value: (d) => d.model}, {label: "provider", value: (d) => d.provider},
      {label: "calls", num: true, value: (d) => fmt.int(d.calls)},
      {label: "p50", num: true, value: (d) => fmt.ms(d.p50_latency_ms)},
      {label: "p95", num: true, value: (d) => fmt.ms(d.p95_latency_ms)},
      {label: "TTFT p50", num: true, value: (d) => fmt.ms(d.p50_ttft_ms)},
      {label: "TTFT p95", num: true, value: (d) => fmt.ms(d.p95_ttft_ms)},
      {label: "streamed", num: true, value: (d) => fmt.int(d.streamed_calls)},
      {label: "tokens/s", num: true, value: (d) => fmt.num(d.tokens_per_second, 1)},
      {label: "cost", num: true, value: (d) => fmt.money(d.cost)},
      {label: "error rate", num: true, value: (d) => fmt.pct(d.error_rate)},
      {label: "errors by class", value: classes},
      {label: "circuit", value: (d) => d.circuit ? (d.circuit === "closed" ? "closed (healthy)" : d.circuit + " ⚠") : "–"},
    ], data.deployments),
    el("p", {class: "note"}, "p50 and p95 are the whole call's latency (successful calls). " +
      "TTFT, the time to first token, is of streamed calls only (\u201cstreamed\u201d counts them): a call " +
      "that is not streamed has no first token apart from its whole answer, so it shows \u2013 there; " +
      "calls recorded before ledger migration 9 have none either. " +
      "Circuit states come from the running gateway (" + (data.circuits && data.circuits.length ? "live" : "none here") + ")."),
    data.circuits && data.circuits.length ? table("Deployments now (live, from the gateway)", [
      {label: "deployment", value: (c) => c.id}, {label: "circuit", value: (c) => c.state === "closed" ? "closed (healthy)" : c.state + " ⚠"},
      {label: "in flight", num: true, value: (c) => fmt.int(c.in_flight)},
      {label: "recent latency", num: true, value: (c) => fmt.ms(c.latency_ewma_ms)},
    ], data.circuits) : null,
    table("Per model (as podium report)", [
      {label: "model", value: (g) => g.key}, {label: "calls", num: true, value: (g) => fmt.int(g.calls)},
      {label: "errors", num: true, value: (g) => fmt.int(g.errors)},
      {label: "tokens in", num: true, value: (g) => fmt.int(g.input_tokens)},
      {label: "tokens out", num: true, value: (g) => fmt.int(g.output_tokens)},
      {label: "cost", num: true, value: (g) => fmt.money(g.cost)},
      {label: "avg", num: true, value: (g) => fmt.ms(g.avg_latency_ms)},
      {label: "max", num: true, value: (g) => fmt.ms(g.max_latency_ms)},
    ], data.by_model),
  ];
};

pages["task-types"] = async () => {
  const data = await api("task-types");
  const c = data.charts || {};
  return [
    el("div", {class: "charts"}, chart(c.cost, "Cost per task type")),
    table("Where a cheaper model would do", [
      {label: "task type", value: (s) => s.task_type}, {label: "now mostly", value: (s) => s.from_model},
      {label: "would do", value: (s) => s.to_model}, {label: "saving", num: true, value: (s) => fmt.money(s.saving)},
      {label: "evidence", value: (s) => s.evidence},
    ], data.suggestions, "no cheaper model did as well on enough requests."),
    table("Per task type and model", [
      {label: "task type", value: (r) => r.task_type}, {label: "model", value: (r) => r.model},
      {label: "requests", num: true, value: (r) => fmt.int(r.requests)},
      {label: "cost", num: true, value: (r) => fmt.money(r.cost)},
      {label: "per request", num: true, value: (r) => fmt.money(r.cost_per_request)},
      {label: "avg latency", num: true, value: (r) => fmt.ms(r.avg_latency_ms)},
      {label: "error rate", num: true, value: (r) => fmt.pct(r.error_rate)},
      {label: "mean score", num: true, value: (r) => r.mean_score === null ? "–" : fmt.num(r.mean_score)},
      {label: "scored", num: true, value: (r) => fmt.int(r.scored)},
    ], data.by_model),
    table("Per task type (as podium report)", [
      {label: "task type", value: (g) => g.key}, {label: "requests", num: true, value: (g) => fmt.int(g.calls)},
      {label: "errors", num: true, value: (g) => fmt.int(g.errors)},
      {label: "cost", num: true, value: (g) => fmt.money(g.cost)},
      {label: "avg", num: true, value: (g) => fmt.ms(g.avg_latency_ms)},
    ], data.by_task_type),
  ];
};

pages.routing = async () => {
  const data = await api("routing");
  const out = [
    table("By strategy", [
      {label: "strategy", value: (s) => s.strategy}, {label: "chosen by", value: (s) => s.routed ? "router" : "request"},
      {label: "requests", num: true, value: (s) => fmt.int(s.requests)},
      {label: "errors", num: true, value: (s) => fmt.int(s.errors)},
      {label: "fell back", num: true, value: (s) => fmt.int(s.fell_back)},
      {label: "cost", num: true, value: (s) => fmt.money(s.cost)},
      {label: "avg latency", num: true, value: (s) => fmt.ms(s.avg_latency_ms)},
    ], data.strategies),
    table("Why: the router's reasons (numbers folded) and what they chose", [
      {label: "reason", value: (r) => r.reason}, {label: "model", value: (r) => r.model},
      {label: "requests", num: true, value: (r) => fmt.int(r.requests)},
      {label: "cost", num: true, value: (r) => fmt.money(r.cost)},
    ], data.reasons),
  ];
  if (data.experiments !== null) {
    out.push(table("A/B experiments", [
      {label: "experiment", value: (e) => e.experiment}, {label: "arm", value: (e) => e.arm},
      {label: "requests", num: true, value: (e) => fmt.int(e.requests)},
      {label: "errors", num: true, value: (e) => fmt.int(e.errors)},
      {label: "cost", num: true, value: (e) => fmt.money(e.cost)},
      {label: "avg latency", num: true, value: (e) => fmt.ms(e.avg_latency_ms)},
      {label: "mean score", num: true, value: (e) => e.mean_score === null ? "–" : fmt.num(e.mean_score)},
    ], data.experiments, "no experiment ran in this range."));
  }
  if (data.shadow !== null) {
    out.push(table("Shadow trials", [
      {label: "trial", value: (s) => s.trial}, {label: "candidate", value: (s) => s.candidate},
      {label: "trials", num: true, value: (s) => fmt.int(s.trials)},
      {label: "agreement", num: true, value: (s) => fmt.pct(s.agreement)},
      {label: "served cost", num: true, value: (s) => fmt.money(s.served_cost)},
      {label: "candidate cost", num: true, value: (s) => fmt.money(s.candidate_cost)},
    ], data.shadow, "no shadow trial in this range."));
  }
  if (data.embeddings !== null) {
    out.push(el("p", {}, "Learned router: " + fmt.int(data.embeddings) +
      " requests in this range kept their prompt embedding (never the text) for training."));
  }
  return out;
};

pages.keys = async () => {
  const data = await api("keys");
  const c = data.charts || {};
  const budget = (r) => r.budget === null || r.budget === undefined ? "none"
    : fmt.money(r.period_spent) + " of " + fmt.money(r.budget) + " (" + r.budget_period + ", " + fmt.pct(r.budget_used) + ")";
  return [
    el("div", {class: "charts"}, chart(c.spend, "Spend per key in the range")),
    table("Keys (by id and name; never the key)", [
      {label: "key id", value: (k) => k.key_id || "(no key)"}, {label: "name", value: (k) => k.name},
      {label: "team", value: (k) => k.team}, {label: "requests", num: true, value: (k) => fmt.int(k.requests)},
      {label: "spend", num: true, value: (k) => fmt.money(k.cost)}, {label: "budget this period", value: budget},
      {label: "stopped by a limit", num: true, value: (k) => fmt.int(k.limited)},
      {label: "state", value: (k) => k.revoked ? "revoked" : "active"},
    ], data.keys),
    table("Teams", [
      {label: "team", value: (t) => t.team}, {label: "keys", num: true, value: (t) => fmt.int(t.keys)},
      {label: "requests", num: true, value: (t) => fmt.int(t.requests)},
      {label: "spend", num: true, value: (t) => fmt.money(t.cost)}, {label: "budget this period", value: budget},
      {label: "stopped by a limit", num: true, value: (t) => fmt.int(t.limited)},
    ], data.teams, "no teams."),
  ];
};

// --- the request explorer --------------------------------------------------------------------------
const FIELDS = [["id", "request id"], ["user", "user"], ["tag", "tag"], ["key", "key id"], ["model", "model"],
  ["task_type", "task type"], ["status", "status"]];

function treeNode(node) {
  const bits = [el("span", {class: "kind"}, node.kind), node.label];
  if (node.kind === "call") {
    bits.push(" — ", outcome(node.status), " · " + fmt.int(node.input_tokens) + " in / " + fmt.int(node.output_tokens) +
      " out · " + fmt.money(node.cost) + " · " + fmt.ms(node.latency_ms));
    if (node.error) bits.push(" · " + node.error);
  } else if (node.kind === "step") {
    bits.push(" — " + node.calls + " call(s), " + fmt.money(node.cost));
  } else {
    bits.push(" → " + (node.model || "–") + " · " + fmt.money(node.cost) + " · " + fmt.ms(node.latency_ms));
    if (node.rationale) bits.push(el("div", {class: "note"}, "why: " + node.rationale));
  }
  const children = node.children && node.children.length ? el("ul", {}, node.children.map(treeNode)) : null;
  return el("li", {}, ...bits, children);
}

async function showRequest(id) {
  const data = await api("requests/" + encodeURIComponent(id));
  const r = data.request;
  const facts = [["request id", r.request_id], ["started", fmt.time(r.started_at)], ["status", outcome(r.status)],
    ["requested", r.requested_model || "(routed)"], ["answered by", r.model], ["strategy", r.strategy],
    ["task type", r.task_type], ["user", r.user_id], ["key id", r.key_id], ["team", r.team],
    ["tags", (r.tags || []).join(", ")], ["cost", fmt.money(r.cost)], ["latency", fmt.ms(r.latency_ms)],
    ["retries / fallbacks", r.retries + " / " + r.fallbacks], ["deployment", r.deployment]];
  if ("experiment" in r) facts.push(["experiment / arm", (r.experiment || "–") + " / " + (r.arm || "–")]);
  if (r.error) facts.push(["error", r.error]);
  return el("section", {id: "request-detail", "aria-labelledby": "detail-title"},
    el("h2", {id: "detail-title", tabindex: "-1"}, "Request " + r.request_id),
    table("Ledger row", [{label: "field", value: (f) => f[0]}, {label: "value", value: (f) => f[1]}], facts),
    el("h2", {}, "Trace"), el("ul", {class: "tree", id: "trace-tree"}, treeNode(data.tree)),
    data.notes.length ? el("ul", {}, data.notes.map((n) => el("li", {}, n))) : null,
    table("Calls", [
      {label: "#", num: true, value: (c) => c.seq}, {label: "step", value: (c) => c.step},
      {label: "model", value: (c) => c.model}, {label: "provider", value: (c) => c.provider},
      {label: "status", value: (c) => outcome(c.status)},
      {label: "tokens in", num: true, value: (c) => fmt.int(c.input_tokens)},
      {label: "tokens out", num: true, value: (c) => fmt.int(c.output_tokens)},
      {label: "cost", num: true, value: (c) => fmt.money(c.cost)},
      {label: "latency", num: true, value: (c) => fmt.ms(c.latency_ms)},
      {label: "first token", num: true, value: (c) => fmt.ms(c.ttft_ms)},
    ], data.calls, "no model calls (answered from the cache, or refused)."),
    table("Feedback", [
      {label: "when", value: (f) => fmt.time(f.created_at)}, {label: "score", num: true, value: (f) => f.score},
      {label: "label", value: (f) => f.label}, {label: "comment", value: (f) => f.comment},
    ], data.feedback, "none yet."),
    data.shadow.length ? table("Shadow trials", [
      {label: "trial", value: (s) => s.trial}, {label: "candidate", value: (s) => s.candidate},
      {label: "status", value: (s) => s.status}, {label: "agreed", value: (s) => s.agreed === null ? "–" : s.agreed ? "yes" : "no"},
    ], data.shadow) : null,
    data.embedding ? el("p", {}, "Prompt embedding kept (" + data.embedding.dims + " dims, " + data.embedding.model + ").") : null);
}

pages.requests = async () => {
  const form = el("form", {class: "search", id: "search", role: "search"},
    FIELDS.map(([name, label]) => el("label", {}, label, el("input", {name, value: params.get(name) || ""}))),
    el("button", {type: "submit"}, "Find"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    for (const [name] of FIELDS) {
      const value = form.elements[name].value.trim();
      if (value) params.set(name, value); else params.delete(name);
    }
    params.delete("show");
    params.delete("before");
    params.delete("before_id");
    history.replaceState(null, "", "?" + params);
    load().then(() => document.getElementById("results")?.focus());
  });
  const wanted = Object.fromEntries(FIELDS.map(([name]) => [name, params.get(name)]));
  wanted.before = params.get("before");
  wanted.before_id = params.get("before_id");
  const found = await api("requests", wanted);
  const rows = table("Requests, newest first", [
    {label: "request id", value: (r) => el("a", {href: "?" + new URLSearchParams({...Object.fromEntries(params),
      show: r.request_id}), "data-id": r.request_id}, r.request_id)},
    {label: "started", value: (r) => fmt.time(r.started_at)}, {label: "status", value: (r) => outcome(r.status)},
    {label: "model", value: (r) => r.model}, {label: "strategy", value: (r) => r.strategy},
    {label: "task type", value: (r) => r.task_type}, {label: "user", value: (r) => r.user_id},
    {label: "key id", value: (r) => r.key_id}, {label: "tags", value: (r) => r.tags.join(", ")},
    {label: "cost", num: true, value: (r) => fmt.money(r.cost)},
    {label: "latency", num: true, value: (r) => fmt.ms(r.latency_ms)},
  ], found.requests, "no request matches.");
  rows.id = "results";
  rows.tabIndex = -1;  // where focus goes after a search (not <body>)
  const paging = el("p", {class: "paging"});
  if (params.get("before")) {
    const newest = new URLSearchParams(params);
    newest.delete("before");
    newest.delete("before_id");
    newest.delete("show");
    paging.append(el("a", {href: "?" + newest}, "← Newest"), " ");
  }
  if (found.next_before) {
    const older = new URLSearchParams(params);
    older.set("before", String(found.next_before));
    older.set("before_id", found.next_before_id);
    older.delete("show");
    paging.append(el("a", {href: "?" + older, id: "older"}, "Older requests →"));
  }
  const out = [form, rows, paging];
  const show = params.get("show") || (found.requests.length === 1 && params.get("id") ? found.requests[0].request_id : null);
  if (show) {
    // a request that is not there (a stale or mistyped ?show=) leaves the list in place and says so
    out.push(await showRequest(show).catch((error) => {
      if (error.message === "login") throw error;
      return el("p", {class: "error", role: "alert", id: "request-detail"}, "Request " + show + ": " + error.message);
    }));
  }
  return out;
};

// --- loading, refreshing, controls -------------------------------------------------------------------
async function load() {
  content.setAttribute("aria-busy", "true");
  statusLine.textContent = "Loading…";
  try {
    const parts = await pages[page]();
    document.getElementById("login").hidden = true;
    content.replaceChildren(...parts.filter(Boolean));
    statusLine.textContent = "Updated " + new Date().toLocaleTimeString("en-GB") +
      (state.refresh ? " · refreshes every " + state.refresh + " s" : "");
  } catch (error) {
    if (error.message !== "login") {
      content.replaceChildren(el("p", {class: "error", role: "alert"}, "Could not load this page: " + error.message));
      statusLine.textContent = "Failed to load";
    } else {
      statusLine.textContent = "A key is needed";
    }
  } finally {
    content.setAttribute("aria-busy", "false");
  }
}

function schedule() {
  clearInterval(state.timer);
  state.timer = state.refresh > 0 ? setInterval(() => { if (!document.hidden && state.authorized) load(); }, state.refresh * 1000) : null;
}

function keepInLinks() {
  for (const link of document.querySelectorAll("nav a")) {
    const url = new URL(link.href);
    url.search = new URLSearchParams({range: state.range, refresh: String(state.refresh)}).toString();
    link.href = url.toString();
  }
}

function setParam(name, value) {
  params.set(name, value);
  history.replaceState(null, "", "?" + params);
  keepInLinks();
}

function start() {
  const range = document.getElementById("range");
  const refresh = document.getElementById("refresh");
  if (![...range.options].some((o) => o.value === state.range)) {
    state.range = DEFAULT_RANGE;  // ?range=bogus: the default range, shown as selected, not a blank box
    params.set("range", state.range);
    history.replaceState(null, "", "?" + params);
  }
  range.value = state.range;
  if (![...refresh.options].some((o) => Number(o.value) === state.refresh)) {
    refresh.append(el("option", {value: state.refresh}, "every " + state.refresh + " s"));
  }
  refresh.value = String(state.refresh);
  range.addEventListener("change", () => { state.range = range.value; setParam("range", state.range); load(); });
  refresh.addEventListener("change", () => {
    state.refresh = Number(refresh.value); setParam("refresh", refresh.value); schedule(); load();
  });
  document.getElementById("reload").addEventListener("click", () => (state.authorized ? load() : begin()));
  document.getElementById("login-form").addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem(KEY, document.getElementById("key").value);
    document.getElementById("key").value = "";
    begin().then(() => document.getElementById("main").focus());  // keyboard users land on the content
  });
  keepInLinks();
  schedule();
  begin();
}

function authHeaders() {
  const key = sessionStorage.getItem(KEY);
  return key ? {Authorization: "Bearer " + key} : {};
}

async function begin() {
  // Ask first whether this tab's key (if any) may read the dashboard: the session endpoint always answers
  // 200, so a tab without a key shows the key form without a failed request in the console.
  const session = await fetch("/dashboard/api/session", {headers: authHeaders()}).then((r) => r.json())
    .catch(() => ({authorized: false, reason: "the server did not answer"}));
  if (!session.authorized) {
    statusLine.textContent = "A key is needed";
    content.setAttribute("aria-busy", "false");
    showLogin(session.reason);
    return;
  }
  state.authorized = true;
  document.getElementById("source").textContent = "Ledger: " + session.ledger +
    (session.mode === "gateway" ? " · served by the gateway" : " · podium dashboard");
  await load();
}

start();
