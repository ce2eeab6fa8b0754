// Airlock dashboard: a page per hash route, drawn from the admin API. No framework and no
// build step; every value from the API goes into the page as text (never as HTML).
"use strict";

// ---------- small helpers ----------

/** An element: h("td", {class: "num"}, "12"). Children are nodes or text. */
function h(tag, attrs, ...children) {
  const el = tag === "svg" || SVG_TAGS.has(tag)
    ? document.createElementNS("http://www.w3.org/2000/svg", tag)
    : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}
const SVG_TAGS = new Set(["rect", "line", "text", "title", "g"]);

const $ = (sel) => document.querySelector(sel);

/** Money arrives as integer nano-dollars; small amounts keep their precision. */
function usd(nanos) {
  const n = Number(nanos || 0);
  if (n === 0) return "$0";
  const dollars = n / 1e9;
  if (dollars >= 100) return "$" + dollars.toLocaleString(undefined, { maximumFractionDigits: 0 });
  if (dollars >= 1) return "$" + dollars.toFixed(2);
  if (dollars >= 0.01) return "$" + dollars.toFixed(4);
  return "$" + dollars.toPrecision(3);
}
const count = (n) => Number(n || 0).toLocaleString();
const when = (ts) => new Date(ts).toLocaleString([], { dateStyle: "short", timeStyle: "medium" });
const clock = (ts) => new Date(ts).toLocaleTimeString();

class SignedOut extends Error {}

/** The admin API, with the session cookie; writes carry the dashboard's CSRF header. */
async function api(path, { method = "GET", body } = {}) {
  const headers = {};
  if (method !== "GET") headers["x-airlock-dashboard"] = "1";
  if (body !== undefined) headers["content-type"] = "application/json";
  const res = await fetch(path, {
    method, headers, credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (res.status === 401) throw new SignedOut();
  const data = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(data.error?.message || `${res.status} ${res.statusText}`);
  return data;
}
const usage = (params) => api("/api/usage?" + new URLSearchParams(params)).then((d) => d.rows);

function badge(text, cls) { return h("span", { class: `badge ${cls || text}` }, text); }
function card(title, ...body) { return h("section", { class: "card" }, title && h("h2", {}, title), ...body); }
function empty(text) { return h("div", { class: "empty" }, text); }
function agentLink(id) { return id ? h("a", { href: `#/agents/${encodeURIComponent(id)}` }, id) : h("span", { class: "muted" }, "—"); }

function table(columns, rows, { onRow } = {}) {
  if (!rows.length) return empty("Nothing yet.");
  return h("table", {},
    h("thead", {}, h("tr", {}, columns.map((c) => h("th", { class: c.num ? "num" : null }, c.label)))),
    h("tbody", {}, rows.map((r) => {
      const tr = h("tr", { class: onRow ? "clickable" : null },
        columns.map((c) => h("td", { class: c.num ? "num" : null }, c.cell(r))));
      if (onRow) tr.addEventListener("click", (e) => { if (!e.target.closest("a,button")) onRow(r, tr); });
      return tr;
    })));
}

// ---------- pages ----------

/** Timers and streams of the page on screen, stopped when another is drawn. */
let cleanups = [];
function onLeave(fn) { cleanups.push(fn); }

const pages = {
  overview: overviewPage,
  live: livePage,
  agents: agentsPage,
  agent: agentPage,
  tools: toolsPage,
  events: eventsPage,
};

async function route() {
  cleanups.forEach((fn) => fn());
  cleanups = [];
  const path = location.hash.split("?")[0];
  const [, name = "", arg] = path.match(/^#\/([^/]*)\/?(.*)$/) || [];
  const page = name === "" ? "overview" : name === "agents" && arg ? "agent" : name;
  document.querySelectorAll("nav a").forEach((a) =>
    a.classList.toggle("active", a.dataset.page === (page === "agent" ? "agents" : page)));
  // Each visit draws into an element of its own: a page still loading when the person
  // moves on finishes into a detached element, never over the next page.
  const view = h("div", {});
  $("#view").replaceChildren(view);
  const draw = pages[page];
  if (!draw) { view.replaceChildren(empty("No such page.")); return; }
  try {
    await draw(view, decodeURIComponent(arg || ""));
  } catch (e) {
    if (e instanceof SignedOut) return showLogin();
    view.replaceChildren(card("Could not load this page", h("p", { class: "error" }, e.message)));
  }
}

// Overview: calls and spend, denials, top agents, how LLM calls arrive, spend over time;
// drawn again every 30 seconds while the tab is visible.
async function overviewPage(view) {
  const timer = setInterval(() => { if (!document.hidden) drawOverview(view).catch(report); }, 30000);
  onLeave(() => clearInterval(timer));
  await drawOverview(view);
}

/** The chart's window, kept across redraws. */
let chartSpan = "24h";
async function drawOverview(view) {
  const chartBox = h("div", {});
  const seg = h("div", { class: "segmented" },
    ["24h", "30d"].map((s) => h("button", {
      type: "button", class: s === chartSpan ? "on" : null,
      onclick: (e) => {
        chartSpan = s;
        seg.querySelectorAll("button").forEach((b) => b.classList.toggle("on", b === e.target));
        drawChart().catch(report);
      },
    }, s === "24h" ? "24 hours" : "30 days")));

  async function drawChart() {
    const hourly = chartSpan === "24h";
    const rows = await usage({ group_by: hourly ? "hour" : "day", since: chartSpan });
    const step = hourly ? 3600e3 : 86400e3;
    const now = Date.now();
    const last = now - (now % step);
    const buckets = [];
    for (let t = last - (hourly ? 23 : 29) * step; t <= last; t += step) buckets.push({ t, nanos: 0, n: 0 });
    for (const r of rows) {
      const b = buckets.find((x) => x.t === Number(r.key));
      if (b) { b.nanos = r.cost_nanos; b.n = r.requests; }
    }
    chartBox.replaceChildren(barChart(buckets, hourly));
  }

  const chartDrawn = drawChart();
  const [outcomes, today, month, reasons, routes, { alerts }] = await Promise.all([
    usage({ group_by: "outcome", since: "today" }),
    usage({ group_by: "agent", since: "today" }),
    usage({ group_by: "agent", since: "month" }),
    usage({ group_by: "reason", since: "24h" }),
    usage({ group_by: "route", since: "month", kind: "llm" }),
    api("/api/alerts?limit=8"),
  ]);
  const sum = (rows, f) => rows.reduce((a, r) => a + Number(r[f] || 0), 0);
  const denied = outcomes.find((r) => r.key === "denied")?.requests || 0;
  const failed = outcomes.find((r) => r.key === "failed")?.requests || 0;
  const stat = (label, value, sub) => h("div", { class: "card stat" },
    h("div", { class: "label" }, label), h("div", { class: "value" }, value), sub && h("div", { class: "sub" }, sub));

  const refusals = reasons.filter((r) => r.key);
  const mostRefused = Math.max(1, ...refusals.map((r) => r.requests));
  view.replaceChildren(
    h("div", { class: "head" }, h("h1", {}, "Overview"), h("span", { class: "muted" }, "Days and months are UTC.")),
    h("div", { class: "grid stats" },
      stat("Calls today", count(sum(outcomes, "requests")), `${count(failed)} failed`),
      stat("Denied today", count(denied), "by policy"),
      stat("Spend today", usd(sum(today, "cost_nanos")), `${count(sum(today, "output_tokens"))} output tokens`),
      stat("Spend this month", usd(sum(month, "cost_nanos")), month.length === 1 ? "1 agent" : `${month.length} agents`)),
    h("div", { class: "grid" }, card(null, h("div", { class: "head" }, h("h2", {}, "Spend over time"), seg), chartBox)),
    h("div", { class: "grid two" },
      card("Top agents this month", table([
        { label: "Agent", cell: (r) => agentLink(r.key) },
        { label: "Calls", num: true, cell: (r) => count(r.requests) },
        { label: "Denied", num: true, cell: (r) => count(r.denied) },
        { label: "Tokens", num: true, cell: (r) => count(r.input_tokens + r.output_tokens) },
        { label: "Spend", num: true, cell: (r) => usd(r.cost_nanos) },
      ], month.slice(0, 10))),
      card("Denials and failures by reason, last 24 hours", refusals.length
        ? h("div", { class: "rows" }, refusals.map((r) => barRow(r.key, r.requests, mostRefused, `#/events?reason=${encodeURIComponent(r.key)}`)))
        : empty("None.")),
      card("How LLM calls arrive this month", table([
        { label: "Route", cell: (r) => ROUTES[r.key] || r.key },
        { label: "Calls", num: true, cell: (r) => count(r.requests) },
        { label: "Spend", num: true, cell: (r) => usd(r.cost_nanos) },
      ], routes))),
    h("div", { class: "grid" }, card("Latest alerts", alerts.length ? table([
        { label: "Time", cell: (a) => h("span", { class: "nowrap" }, when(a.ts_ms)) },
        { label: "Alert", cell: (a) => h("span", { class: "mono" }, a.type) },
        { label: "Agent", cell: (a) => agentLink(a.agent) },
        { label: "What happened", cell: (a) => a.message },
      ], alerts) : empty("No alerts: budgets, loops, velocity and the kill switch raise them."))));
  await chartDrawn;
}

const ROUTES = {
  base_url: "Sent to Airlock (base URL)",
  intercepted: "Intercepted by the egress proxy",
  recognised: "Seen in egress, not read (shadow AI)",
};

function barRow(name, value, max, href) {
  const fill = h("div", {});
  fill.style.width = `${Math.max(2, (100 * value) / max)}%`;
  return h("div", { class: "row-bar" },
    h("a", { class: "name mono", href }, name),
    h("div", { class: "track" }, fill),
    h("div", { class: "num" }, count(value)));
}

/** Spend per bucket as SVG bars, with the amount and calls in each bar's tooltip. */
function barChart(buckets, hourly) {
  const W = 1200, H = 240, left = 96, bottom = 24, top = 10;
  const max = Math.max(...buckets.map((b) => b.nanos), 1);
  const bw = (W - left) / buckets.length;
  const y = (v) => H - bottom - ((H - bottom - top) * v) / max;
  const svg = h("svg", { class: "chart", viewBox: `0 0 ${W} ${H}`, role: "img",
    "aria-label": "Spend over time" });
  for (const frac of [0, 0.5, 1]) {
    svg.append(h("line", { class: "grid-line", x1: left, x2: W, y1: y(max * frac), y2: y(max * frac) }),
      h("text", { class: "axis", x: left - 6, y: y(max * frac) + 4, "text-anchor": "end" }, max === 1 && frac ? "" : usd(max * frac)));
  }
  buckets.forEach((b, i) => {
    const x = left + i * bw;
    const label = hourly ? new Date(b.t).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })
      : new Date(b.t).toLocaleDateString([], { month: "short", day: "numeric" });
    svg.append(h("rect", { class: "bar", x: x + 1, width: Math.max(1, bw - 2), y: y(b.nanos), height: H - bottom - y(b.nanos) },
      h("title", {}, `${label}: ${usd(b.nanos)}, ${count(b.n)} calls`)));
    if (i % (hourly ? 4 : 5) === 0) svg.append(h("text", { class: "axis", x: x + bw / 2, y: H - 6, "text-anchor": "middle" }, label));
  });
  return svg;
}

// The columns every list of calls shares.
const CALL_COLUMNS = [
  { label: "Time", cell: (e) => h("span", { title: e.ts }, clock(e.ts)) },
  { label: "Agent", cell: (e) => agentLink(e.agent) },
  { label: "Kind", cell: (e) => e.kind },
  { label: "Target", cell: (e) => h("span", { class: "mono" }, e.target || e.host || "—") },
  { label: "Operation", cell: (e) => h("span", { class: "mono" }, e.operation) },
  { label: "Outcome", cell: (e) => h("span", {}, badge(e.outcome), " ", e.reason ? h("span", { class: "mono" }, e.reason) : "") },
  { label: "Tokens", num: true, cell: (e) => count(e.input_tokens + e.output_tokens) },
  { label: "Cost", num: true, cell: (e) => usd(e.cost_nanos) },
  { label: "Latency", num: true, cell: (e) => `${e.latency_ms} ms` },
];

/** A row that opens onto the whole event as JSON. */
function toggleDetail(e, tr) {
  const next = tr.nextElementSibling;
  if (next?.classList.contains("detail-row")) { next.remove(); return; }
  tr.after(h("tr", { class: "detail-row" },
    h("td", { class: "detail", colspan: CALL_COLUMNS.length }, h("pre", {}, JSON.stringify(e, null, 2)))));
}

function callRow(e) {
  const tr = h("tr", { class: "clickable", "data-id": e.id },
    CALL_COLUMNS.map((c) => h("td", { class: c.num ? "num" : null }, c.cell(e))));
  tr.addEventListener("click", (ev) => { if (!ev.target.closest("a,button")) toggleDetail(e, tr); });
  return tr;
}

/** A table of calls around `body` (rows of `callRow`), which pages fill as calls come. */
function callTable(body, id) {
  return h("table", { class: "calls", id },
    h("thead", {}, h("tr", {}, CALL_COLUMNS.map((c) => h("th", { class: c.num ? "num" : null }, c.label)))),
    body);
}

// Live: the latest calls, then each new one as it settles (server-sent events).
async function livePage(view) {
  const filters = { agent: "", kind: "", outcome: "" };
  const state = h("span", { class: "badge offline" }, "connecting");
  const body = h("tbody", {});
  let paused = false;
  let source = null;
  const MAX_ROWS = 300;

  const pause = h("button", { type: "button", class: "quiet", onclick: () => {
    paused = !paused;
    pause.textContent = paused ? "Resume" : "Pause";
  } }, "Pause");

  function add(e) {
    if (paused) return;
    const row = callRow(e);
    row.classList.add("fresh");
    body.prepend(row);
    while (body.children.length > MAX_ROWS) body.lastElementChild.remove();
  }

  // The stream opens first and holds what arrives until the latest calls are listed, so
  // no call falls between the two; one in both is shown once.
  async function connect() {
    source?.close();
    const q = new URLSearchParams(Object.entries(filters).filter(([, v]) => v));
    const mine = new EventSource("/api/events/stream?" + q);
    source = mine;
    const held = [];
    let listed = null;
    mine.onopen = () => { state.className = "badge live"; state.textContent = "live"; };
    mine.onerror = () => {
      state.className = "badge offline";
      state.textContent = "reconnecting";
      // A closed stream is not retried by the browser: usually the session ended.
      if (mine.readyState === EventSource.CLOSED) {
        api("/api/session").then((s) => { if (!s.signed_in) showLogin(); }, report);
      }
    };
    mine.addEventListener("call", (msg) => {
      const e = JSON.parse(msg.data);
      if (listed) { if (!listed.has(e.id)) add(e); } else held.push(e);
    });
    const recent = await api("/api/events?" + new URLSearchParams([...q, ["limit", "50"]]));
    if (source !== mine) return;
    body.replaceChildren(...recent.events.map(callRow));
    listed = new Set(recent.events.map((e) => e.id));
    held.filter((e) => !listed.has(e.id)).forEach(add);
  }

  const select = (name, options) => h("select", { name, "aria-label": name, onchange: (e) => {
    filters[name] = e.target.value; connect().catch(report);
  } }, options.map(([v, label]) => h("option", { value: v }, label)));
  const agentInput = h("input", { name: "agent", placeholder: "agent", "aria-label": "agent", onchange: (e) => {
    filters.agent = e.target.value.trim(); connect().catch(report);
  } });

  view.replaceChildren(
    h("div", { class: "head" }, h("h1", {}, "Live"), state),
    h("div", { class: "toolbar" }, agentInput,
      select("kind", [["", "every kind"], ["llm", "llm"], ["mcp", "mcp"], ["a2a", "a2a"], ["egress", "egress"]]),
      select("outcome", [["", "every outcome"], ["served", "served"], ["denied", "denied"], ["failed", "failed"], ["cancelled", "cancelled"]]),
      pause),
    card(null, callTable(body, "live-calls")));
  onLeave(() => source?.close());
  await connect();
}

// Agents: each configured agent with today's and this month's use.
async function agentsPage(view) {
  const [{ agents }, today, month] = await Promise.all([
    api("/api/agents"),
    usage({ group_by: "agent", since: "today" }),
    usage({ group_by: "agent", since: "month" }),
  ]);
  const of = (rows, id) => rows.find((r) => r.key === id) || {};
  view.replaceChildren(
    h("div", { class: "head" }, h("h1", {}, "Agents")),
    card(null, table([
      { label: "Agent", cell: (a) => agentLink(a.id) },
      { label: "Team", cell: (a) => a.team || "—" },
      { label: "Status", cell: (a) => a.suspended ? badge("suspended") : badge("active") },
      { label: "Calls today", num: true, cell: (a) => count(of(today, a.id).requests) },
      { label: "Denied today", num: true, cell: (a) => count(of(today, a.id).denied) },
      { label: "Spend today", num: true, cell: (a) => usd(of(today, a.id).cost_nanos) },
      { label: "Spend this month", num: true, cell: (a) => usd(of(month, a.id).cost_nanos) },
    ], agents, { onRow: (a) => { location.hash = `#/agents/${encodeURIComponent(a.id)}`; } })));
}

// One agent: budgets against limits, what it used, its denials, the kill switch.
async function agentPage(view, id) {
  const since = "30d";
  const mine = (params) => usage({ agent: id, since, ...params });
  const [agent, models, tools, hosts, peers, reasons, recent] = await Promise.all([
    api(`/api/agents/${encodeURIComponent(id)}`),
    mine({ group_by: "target", kind: "llm" }),
    mine({ group_by: "target", kind: "mcp" }),
    mine({ group_by: "target", kind: "egress" }),
    mine({ group_by: "target", kind: "a2a" }),
    mine({ group_by: "reason" }),
    api(`/api/events?agent=${encodeURIComponent(id)}&limit=20`),
  ]);

  const reasonInput = h("input", { class: "reason-input", placeholder: "why (kept with the suspension)", "aria-label": "suspension reason" });
  const toggle = agent.suspended
    ? h("button", { type: "button", onclick: () => act("resume") }, "Resume")
    : h("button", { type: "button", class: "danger", onclick: () => act("suspend", { reason: reasonInput.value.trim() || undefined }) }, "Suspend");
  async function act(what, body) {
    toggle.disabled = true;
    try {
      await api(`/api/agents/${encodeURIComponent(id)}/${what}`, { method: "POST", body: body || {} });
      await agentPage(view, id);
    } catch (e) { report(e); toggle.disabled = false; }
  }

  const budgetRows = agent.budgets.map((b) => {
    const pct = b.spent_nanos === null ? null : (100 * b.spent_nanos) / Math.max(1, b.limit_nanos);
    const fill = h("div", { class: pct >= 100 ? "over" : pct >= 80 ? "high" : null });
    if (pct !== null) fill.style.width = `${Math.min(100, pct)}%`;
    return h("div", { class: "budget" },
      h("div", {}, h("strong", {}, `${b.scope === "team" ? `Team ${b.name}` : "Agent"} · ${b.period}`), " ",
        h("span", { class: "muted" }, pct === null ? `${usd(b.limit_nanos)} per run`
          : `${usd(b.spent_nanos)} of ${usd(b.limit_nanos)} (${pct.toFixed(1)}%)`)),
      pct !== null && h("div", { class: "meter" }, fill),
      b.resets_ms && h("div", { class: "muted" }, `resets ${when(b.resets_ms)}`));
  });
  const allow = Object.entries(agent.allow).map(([k, v]) =>
    h("div", {}, h("strong", {}, k), ": ", v === null ? h("span", { class: "muted" }, "any") : v.length ? h("span", { class: "mono" }, v.join(", ")) : h("span", { class: "error" }, "none")));
  const used = (title, rows, label) => card(title, table([
    { label, cell: (r) => h("span", { class: "mono" }, r.key || "—") },
    { label: "Calls", num: true, cell: (r) => count(r.requests) },
    { label: "Denied", num: true, cell: (r) => count(r.denied) },
    { label: "Spend", num: true, cell: (r) => usd(r.cost_nanos) },
  ], rows));
  const denials = reasons.filter((r) => r.key);

  view.replaceChildren(
    h("div", { class: "head" },
      h("h1", {}, `Agent ${agent.id}`),
      agent.team && h("span", { class: "muted" }, `team ${agent.team}`),
      agent.suspended ? badge("suspended") : badge("active"),
      !agent.suspended && reasonInput, toggle),
    agent.suspension ? h("p", { class: "error" }, `Suspended since ${when(agent.suspension.since_ms)}: ${agent.suspension.reason}`) : "",
    h("div", { class: "grid two" },
      card("Budgets", budgetRows.length ? h("div", { class: "rows" }, budgetRows) : empty("No budget set.")),
      card("Limits and allow lists",
        h("div", {}, h("strong", {}, "rate"), ": ",
          agent.limits.requests_per_minute ? `${agent.limits.requests_per_minute} requests/min` : "no request limit", ", ",
          agent.limits.tokens_per_minute ? `${agent.limits.tokens_per_minute} tokens/min` : "no token limit"),
        allow)),
    h("div", { class: "grid two" },
      used("Models, last 30 days", models, "Model"),
      used("MCP tools, last 30 days", tools, "Tool"),
      used("Hosts, last 30 days", hosts, "Host"),
      used("Agents called (A2A), last 30 days", peers, "Agent"),
      card("Denials and failures, last 30 days", denials.length ? table([
        { label: "Reason", cell: (r) => h("span", { class: "mono" }, r.key) },
        { label: "Calls", num: true, cell: (r) => count(r.requests) },
      ], denials) : empty("None."))),
    card("Latest calls", recent.events.length ? callTable(h("tbody", {}, recent.events.map(callRow))) : empty("No calls yet.")));
}

// MCP tools: every tool seen, pinned at its approved definition; changes wait here.
async function toolsPage(view) {
  const { tools } = await api("/api/tools");
  const order = { changed: 0, flagged: 1, approved: 2 };
  tools.sort((a, b) => order[a.status] - order[b.status] || a.server.localeCompare(b.server) || a.tool.localeCompare(b.tool));
  const pending = tools.filter((t) => t.status !== "approved").length;
  view.replaceChildren(
    h("div", { class: "head" }, h("h1", {}, "MCP tools"),
      h("span", { class: "muted" }, `${tools.length} tools, ${pending} need a look`)),
    card(null, table([
      { label: "Server", cell: (t) => h("span", { class: "mono" }, t.server) },
      { label: "Tool", cell: (t) => h("span", { class: "mono" }, t.tool) },
      { label: "Status", cell: (t) => badge(t.status) },
      { label: "Description", cell: (t) => t.pending_description && t.pending_description !== t.description
        ? h("div", { class: "definition" }, h("div", { class: "was" }, t.description || ""), h("div", { class: "now" }, t.pending_description))
        : h("span", {}, t.description || "") },
      { label: "Flags", cell: (t) => t.flags.length ? h("span", { class: "mono error" }, t.flags.join(", ")) : "" },
      { label: "Last seen", cell: (t) => when(t.last_seen) },
      { label: "", cell: (t) => t.status === "changed" ? h("button", {
        type: "button", class: "small", "data-approve": `${t.server}/${t.tool}`,
        onclick: async (e) => {
          e.target.disabled = true;
          try {
            await api(`/api/tools/${encodeURIComponent(t.server)}/${encodeURIComponent(t.tool)}/approve`, { method: "POST" });
            await toolsPage(view);
          } catch (err) { report(err); e.target.disabled = false; }
        },
      }, "Approve") : "" },
    ], tools)));
}

// Events: the ledger, filtered, newest first, a page at a time.
async function eventsPage(view) {
  const query = new URLSearchParams(location.hash.split("?")[1] || "");
  const filters = {
    agent: query.get("agent") || "", kind: query.get("kind") || "", outcome: query.get("outcome") || "",
    reason: query.get("reason") || "", since: query.get("since") || "",
  };
  const PAGE = 50;
  const body = h("tbody", {});
  const more = h("button", { type: "button", class: "quiet", hidden: true, onclick: () => {
    more.disabled = true;
    load(true).catch(report).finally(() => { more.disabled = false; });
  } }, "Older events");
  const status = h("span", { class: "muted" });

  async function load(older) {
    const q = new URLSearchParams(Object.entries(filters).filter(([, v]) => v));
    q.set("limit", PAGE);
    const last = [...body.querySelectorAll("tr[data-id]")].pop()?.dataset.id;
    if (older && last) q.set("before", last);
    const { events } = await api("/api/events?" + q);
    if (older) body.append(...events.map(callRow)); else body.replaceChildren(...events.map(callRow));
    more.hidden = events.length < PAGE;
    status.textContent = `${body.querySelectorAll("tr[data-id]").length} shown`;
  }

  const form = h("form", { class: "toolbar", onsubmit: (e) => {
    e.preventDefault();
    const data = new FormData(form);
    for (const k of Object.keys(filters)) filters[k] = (data.get(k) || "").trim();
    const q = new URLSearchParams(Object.entries(filters).filter(([, v]) => v));
    history.replaceState(null, "", "#/events" + (q.size ? "?" + q : ""));
    load(false).catch(report);
  } },
  h("input", { name: "agent", placeholder: "agent", value: filters.agent, "aria-label": "agent" }),
  selectOf("kind", filters.kind, [["", "every kind"], ["llm"], ["mcp"], ["a2a"], ["egress"]]),
  selectOf("outcome", filters.outcome, [["", "every outcome"], ["served"], ["denied"], ["failed"], ["cancelled"]]),
  h("input", { name: "reason", placeholder: "reason code", value: filters.reason, "aria-label": "reason" }),
  selectOf("since", filters.since, [["", "any time"], ["1h", "last hour"], ["today", "today (UTC)"], ["24h", "last 24 hours"], ["7d", "last 7 days"], ["30d", "last 30 days"]]),
  h("button", { type: "submit" }, "Filter"), status);

  view.replaceChildren(
    h("div", { class: "head" }, h("h1", {}, "Events")),
    form,
    card(null, callTable(body, "events"), more));
  await load(false);
}

/** A select of `options`; a value from the URL that is not among them stays chosen. */
function selectOf(name, value, options) {
  const all = options.some(([v]) => v === value) ? options : [...options, [value]];
  return h("select", { name, "aria-label": name },
    all.map(([v, label]) => h("option", { value: v, selected: v === value }, label || v)));
}

// ---------- sign-in ----------

function report(e) {
  if (e instanceof SignedOut) return showLogin();
  const box = h("div", { class: "card error", role: "alert" }, e.message);
  $("#view").prepend(box);
  setTimeout(() => box.remove(), 6000);
}

function showLogin() {
  cleanups.forEach((fn) => fn());
  cleanups = [];
  $("#app").hidden = true;
  $("#login").hidden = false;
  $("#token").focus();
}

function showApp() {
  $("#login").hidden = true;
  $("#app").hidden = false;
  route();
}

$("#login-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const err = $("#login-error");
  err.hidden = true;
  let res;
  try {
    res = await fetch("/api/session", {
      method: "POST", credentials: "same-origin",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ token: $("#token").value }),
    });
  } catch {
    err.textContent = "Airlock did not answer; is it running?";
    err.hidden = false;
    return;
  }
  $("#token").value = "";
  if (res.ok) return showApp();
  const data = await res.json().catch(() => ({}));
  err.textContent = data.error?.message || "Sign-in failed.";
  err.hidden = false;
});

$("#sign-out").addEventListener("click", async () => {
  await fetch("/api/session", { method: "DELETE", credentials: "same-origin" });
  showLogin();
});

window.addEventListener("hashchange", () => { if (!$("#app").hidden) route(); });

api("/api/session").then((s) => (s.signed_in ? showApp() : showLogin()), report);
