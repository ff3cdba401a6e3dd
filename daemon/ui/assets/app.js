// gatewayd control UI: one ES module, no dependencies, no build step.
//
// It speaks the Gateway WebSocket protocol v4 to the gateway that served
// it (same host, path "/"), as client id "openclaw-control-ui", mode "ui",
// role operator. The token (or password) is pasted once, or arrives in the
// URL's fragment from `gatewayctl dashboard`, and is kept in this browser's
// localStorage. Everything is rendered with DOM APIs and
// textContent only, so gateway data cannot inject markup; the
// page's Content-Security-Policy forbids inline script and style anyway.

const PROTOCOL = 4;
const CLIENT_ID = "openclaw-control-ui";
const AUTH_KEY = "gatewayd.controlUi.auth";
const INSTANCE_KEY = "gatewayd.controlUi.instanceId";
const SCOPES = ["operator.read", "operator.write", "operator.admin", "operator.approvals", "operator.pairing"];
const BACKOFF_MIN_MS = 250;
const BACKOFF_MAX_MS = 10000;
const LOG_POLL_MS = 1000;
const LOG_KEEP = 500;
const REQUEST_TIMEOUT_MS = 15000;

const VERSION = document.querySelector('meta[name="gatewayd-version"]')?.content || "0.0.0-dev";
const $ = (id) => document.getElementById(id);

// h builds an element: h("td", {class: "x"}, "text", child...).
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(el.dataset, v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

// uuid works in insecure contexts too (a LAN address over plain http),
// where crypto.randomUUID is missing.
function uuid() {
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const x = [...b].map((v) => v.toString(16).padStart(2, "0")).join("");
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
}

function instanceId() {
  try {
    let id = sessionStorage.getItem(INSTANCE_KEY);
    if (!id) { id = uuid(); sessionStorage.setItem(INSTANCE_KEY, id); }
    return id;
  } catch { return uuid(); }
}

function loadAuth() {
  try {
    const a = JSON.parse(localStorage.getItem(AUTH_KEY) || "null");
    return a && typeof a.secret === "string" && a.secret ? a : null;
  } catch { return null; }
}
function saveAuth(a) { localStorage.setItem(AUTH_KEY, JSON.stringify(a)); }
function clearAuth() { localStorage.removeItem(AUTH_KEY); }

const st = {
  ws: null,
  hello: null,
  methods: new Set(),
  pending: new Map(),
  nextId: 1,
  lastSeq: 0,
  lastFrameAt: 0,
  attempt: 0,
  reconnectTimer: 0,
  restartHint: null,
  stopped: true, // no (re)connects: logged out or auth failed
  presence: new Map(), // key → {entry, n}
  health: null,
  healthAt: 0,
  logCursor: null,
  logTimer: 0,
  logBusy: false,
  logsOff: false,
  runs: new Map(), // runId → {el, text, seq}
  refreshTimer: 0,
};
const INSTANCE = instanceId();

function setState(state, detail) {
  document.body.dataset.state = state;
  $("conn-state").textContent = state;
  $("conn-detail").textContent = detail || "";
}

// ---- connection ---------------------------------------------------------

function connect() {
  clearTimeout(st.reconnectTimer);
  const auth = loadAuth();
  if (!auth) { showLogin(""); return; }
  st.stopped = false;
  if (st.ws) { const old = st.ws; st.ws = null; old.close(1000, "reconnect"); }
  const url = `${location.protocol === "https:" ? "wss:" : "ws:"}//${location.host}/`;
  let ws;
  try { ws = new WebSocket(url); } catch (e) { scheduleReconnect(`cannot open ${url}: ${e.message}`); return; }
  st.ws = ws;
  st.lastSeq = 0;
  st.lastFrameAt = Date.now();
  setState(st.attempt ? "reconnecting" : "connecting", `opening ${url}`);
  ws.addEventListener("message", (ev) => { if (ws === st.ws) onFrame(ev.data); });
  ws.addEventListener("close", (ev) => { if (ws === st.ws) onClosed(ev.code, ev.reason); });
}

// drop abandons a socket that went silent and handles it as closed now
// (a dead TCP connection may take minutes to report its close).
function drop(reason) {
  const ws = st.ws;
  if (!ws) return;
  st.ws = null;
  try { ws.close(4000, reason); } catch { /* already closing */ }
  onClosed(1006, reason);
}

function onFrame(data) {
  let f;
  try { f = JSON.parse(data); } catch { return; }
  st.lastFrameAt = Date.now();
  if (f.type === "event") {
    if (f.event === "connect.challenge") { sendConnect(); return; }
    if (typeof f.seq === "number") {
      if (st.lastSeq && f.seq > st.lastSeq + 1) scheduleRefresh(`missed events ${st.lastSeq + 1}..${f.seq - 1}`);
      st.lastSeq = Math.max(st.lastSeq, f.seq);
    }
    onEvent(f.event, f.payload ?? {});
  } else if (f.type === "res") {
    st.pending.get(f.id)?.onRes(f);
  }
}

function protoError(e) {
  const err = new Error(e?.message || "request failed");
  err.code = e?.code || "UNAVAILABLE";
  err.details = e?.details;
  err.retryAfterMs = e?.retryAfterMs;
  err.retryable = Boolean(e?.retryable);
  return err;
}

// rpc sends a request and resolves with the first response's payload.
// opts.more(payload) says whether more responses follow (two-stage
// methods); each later response goes to opts.onLater(frame) (frame null and
// an error when the connection ends first).
function rpc(method, params, opts = {}) {
  return new Promise((resolve, reject) => {
    const ws = st.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN || (!st.hello && method !== "connect")) {
      reject(protoError({ code: "UNAVAILABLE", message: "not connected to the gateway" }));
      return;
    }
    const id = `ui:${st.nextId++}`;
    let first = true;
    const timer = setTimeout(() => {
      st.pending.delete(id);
      reject(protoError({ code: "TIMEOUT", message: `${method}: no answer within ${(opts.timeoutMs || REQUEST_TIMEOUT_MS) / 1000} s` }));
    }, opts.timeoutMs || REQUEST_TIMEOUT_MS);
    st.pending.set(id, {
      onRes(f) {
        if (!first) { st.pending.delete(id); opts.onLater?.(f, null); return; }
        first = false;
        clearTimeout(timer);
        if (!f.ok) { st.pending.delete(id); reject(protoError(f.error)); return; }
        if (!(opts.more && opts.more(f.payload))) st.pending.delete(id);
        resolve(f.payload);
      },
      fail(err) {
        st.pending.delete(id);
        if (first) { clearTimeout(timer); reject(err); } else opts.onLater?.(null, err);
      },
    });
    const frame = { type: "req", id, method };
    if (params !== undefined) frame.params = params;
    ws.send(JSON.stringify(frame));
  });
}

function sendConnect() {
  const auth = loadAuth();
  if (!auth) { showLogin(""); return; }
  const params = {
    minProtocol: PROTOCOL, maxProtocol: PROTOCOL,
    client: {
      id: CLIENT_ID, version: VERSION, mode: "ui", displayName: "Control UI", instanceId: INSTANCE,
      platform: navigator.userAgentData?.platform || navigator.platform || "web",
      timeZone: Intl.DateTimeFormat().resolvedOptions().timeZone || undefined,
    },
    role: "operator", scopes: SCOPES, caps: [],
    auth: auth.kind === "password" ? { password: auth.secret } : { token: auth.secret },
    locale: navigator.language || undefined, userAgent: navigator.userAgent || undefined,
  };
  rpc("connect", params).then(onHello, onConnectError);
}

function onHello(hello) {
  st.hello = hello;
  st.attempt = 0;
  st.restartHint = null;
  st.methods = new Set(hello.features?.methods || []);
  setPresence(hello.snapshot?.presence || []);
  setHealth(hello.snapshot?.health);
  document.body.dataset.connId = hello.server?.connId || "";
  setState("connected", `gateway ${hello.server?.version || "?"} · connection ${hello.server?.connId || "?"} · ${hello.auth?.role || "operator"}`);
  $("login").hidden = true;
  $("dash").hidden = false;
  $("logout-btn").hidden = false;
  fillConsole();
  renderChatAvailability();
  loadChatHistory();
  refreshNodes();
  refreshPairing();
  startLogs();
}

function onConnectError(err) {
  const code = err.details?.code || err.code;
  if (code === "AUTH_RATE_LIMITED") {
    st.restartHint = err.retryAfterMs || 60000;
    setState("reconnecting", `too many failed attempts; retrying in ${Math.round(st.restartHint / 1000)} s`);
    return;
  }
  if (String(code).startsWith("AUTH_") || code === "PROTOCOL_MISMATCH" || code === "FORBIDDEN") {
    st.stopped = true;
    showLogin(`${err.message}${code !== err.code ? ` (${code})` : ""}`);
    setState("auth-failed", err.message);
  }
  // Anything else: the server closes the socket and we retry with backoff.
}

function onClosed(code, reason) {
  st.ws = null;
  st.hello = null;
  stopLogs();
  for (const p of [...st.pending.values()]) p.fail(protoError({ code: "UNAVAILABLE", message: `connection closed (${code}${reason ? ` ${reason}` : ""})` }));
  for (const run of st.runs.values()) finishRun(run, "interrupted", "the connection closed before the run finished");
  if (st.stopped) return;
  scheduleReconnect(`closed ${code}${reason ? ` ${reason}` : ""}`);
}

function scheduleReconnect(why) {
  clearTimeout(st.reconnectTimer);
  let delay;
  if (st.restartHint !== null) {
    delay = Math.min(st.restartHint, BACKOFF_MAX_MS);
    st.restartHint = null;
  } else {
    delay = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** st.attempt) * (0.75 + Math.random() * 0.5);
  }
  st.attempt++;
  setState("reconnecting", `${why}; reconnecting in ${(delay / 1000).toFixed(1)} s (attempt ${st.attempt})`);
  st.reconnectTimer = setTimeout(connect, delay);
}

// The gateway ticks every tickIntervalMs; two silent intervals mean the
// connection is dead.
setInterval(() => {
  if (!st.hello || !st.ws) return;
  const limit = 2 * (st.hello.policy?.tickIntervalMs || 30000);
  if (Date.now() - st.lastFrameAt > limit) drop(`no frame for ${Math.round(limit / 1000)} s`);
}, 2000);

window.addEventListener("online", () => { if (!st.ws && !st.stopped) connect(); });

// ---- events ---------------------------------------------------------------

function onEvent(name, p) {
  switch (name) {
    case "presence": {
      // The whole (bounded) list, as in OpenClaw: replace ours with it.
      const nodes = nodePresence();
      setPresence(p.presence);
      if (nodePresence() !== nodes) refreshNodesSoon();
      break;
    }
    case "health":
      setHealth(p);
      break;
    case "shutdown":
      // A restart: reconnect soon after the close (1012), with backoff if
      // the gateway is not back yet.
      st.restartHint = Math.min(p.restartExpectedMs || BACKOFF_MIN_MS, 2000);
      setState("reconnecting", `gateway ${p.reason || "shutting down"}`);
      break;
    case "agent":
      onAgentEvent(p);
      break;
    case "node.pair.requested":
    case "node.pair.resolved":
      refreshPairing();
      refreshNodesSoon();
      break;
    default:
      break;
  }
}

// scheduleRefresh re-reads health and presence after missed events
// (events are never replayed).
function scheduleRefresh(why) {
  clearTimeout(st.refreshTimer);
  st.refreshTimer = setTimeout(() => refreshState(why), 50);
}

async function refreshState(why) {
  try {
    const [health, presence] = await Promise.all([rpc("health", {}), rpc("system-presence", {})]);
    setHealth(health);
    setPresence(presence);
    document.body.dataset.refreshed = why;
  } catch { /* a closed connection reconnects and renders from its snapshot */ }
  refreshNodes();
  refreshPairing();
}

// ---- health ---------------------------------------------------------------

function setHealth(hl) {
  if (!hl) return;
  st.health = hl;
  st.healthAt = Date.now();
  renderHealth();
}

function fmtDuration(ms) {
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${s % 60}s`;
  const hr = Math.floor(m / 60);
  if (hr < 48) return `${hr}h ${m % 60}m`;
  return `${Math.floor(hr / 24)}d ${hr % 24}h`;
}

function renderHealth() {
  const hl = st.health;
  if (!hl) return;
  const badge = $("health-ok");
  badge.textContent = hl.ok ? "ok" : "degraded";
  badge.className = `badge ${hl.ok ? "ok" : "bad"}`;
  const c = hl.components || {};
  const rows = [
    ["version", hl.version],
    ["profile", hl.profile || "default"],
    ["pid", hl.pid],
    ["uptime", hl.uptimeMs !== undefined ? fmtDuration(hl.uptimeMs + (Date.now() - st.healthAt)) : undefined],
    ["connections", hl.connections],
    ["listeners", (hl.listeners || []).map((l) => `${l.addr} (${l.source})`).join(", ")],
    ["restarts", c.server?.restarts],
    ["config", c.config ? `${c.config.ok ? "ok" : "invalid"} · ${c.config.path || ""}${c.config.lastError ? ` · ${c.config.lastError}` : ""}` : undefined],
    ["checked", hl.ts ? new Date(hl.ts).toLocaleTimeString() : undefined],
  ];
  for (const [k, v] of Object.entries(c)) {
    if (["server", "config"].includes(k) || !v || typeof v !== "object") continue;
    rows.push([k, v.ok === undefined ? JSON.stringify(v) : (v.ok ? "ok" : `failing ${JSON.stringify(v)}`)]);
  }
  $("health").replaceChildren(...rows.filter(([, v]) => v !== undefined && v !== "")
    .flatMap(([k, v]) => [h("dt", null, k), h("dd", { dataset: { key: k } }, v)]));
}
setInterval(() => { if (st.hello) renderHealth(); }, 5000);

// ---- presence -------------------------------------------------------------

// Entries without an instanceId are keyed by what identifies them; equal
// ones are counted, so two identical clients show as one row "×2".
function presenceKey(e) {
  if (e.instanceId) return `i:${e.instanceId}`;
  if (e.reason === "self" || e.mode === "gateway") return `g:${e.host || ""}`;
  return `c:${[e.mode, e.host, e.ip, e.platform, e.version].join("|")}`;
}

function setPresence(list) {
  st.presence.clear();
  for (const e of list || []) {
    const k = presenceKey(e);
    const cur = st.presence.get(k);
    st.presence.set(k, { entry: e, n: cur ? cur.n + 1 : 1 });
  }
  renderPresence();
}

// nodePresence sums up the node entries, to see whether an event changed
// them (then the nodes table is re-read).
function nodePresence() {
  return JSON.stringify([...st.presence.values()].filter(({ entry }) => entry.mode === "node")
    .map(({ entry, n }) => [JSON.stringify(entry), n]).sort());
}

function ago(ts) {
  if (!ts) return "";
  return `${fmtDuration(Math.max(0, Date.now() - ts))} ago`;
}

function renderPresence() {
  const rows = [...st.presence.values()].sort((a, b) => {
    const rank = (e) => (e.mode === "gateway" ? 0 : e.mode === "node" ? 1 : 2);
    return rank(a.entry) - rank(b.entry) || (b.entry.ts || 0) - (a.entry.ts || 0);
  });
  $("presence-count").textContent = `${rows.reduce((n, r) => n + r.n, 0)} entries`;
  $("presence").tBodies[0].replaceChildren(...rows.map(({ entry: e, n }) => {
    const self = e.instanceId === INSTANCE;
    return h("tr", { class: self ? "self" : undefined, dataset: { mode: e.mode || "", instance: e.instanceId || "" } },
      h("td", null, e.mode || "?", n > 1 ? ` ×${n}` : ""),
      h("td", null, e.host || "", self ? " (this browser)" : "", e.text ? h("div", { class: "muted" }, e.text) : null),
      h("td", { class: "mono" }, e.ip || ""),
      h("td", null, [e.platform, e.deviceFamily, e.modelIdentifier].filter(Boolean).join(" · ")),
      h("td", null, e.version || ""),
      h("td", { title: e.ts ? new Date(e.ts).toISOString() : "" }, `${e.reason || ""} ${ago(e.ts)}`.trim()));
  }));
}
setInterval(() => { if (st.hello) renderPresence(); }, 10000);

// ---- nodes and pairing ----------------------------------------------------

function unavailable(el, method, what) {
  el.replaceChildren(h("p", { class: "muted unavailable", dataset: { method } },
    `${what} unavailable: this gateway does not offer ${method}.`));
}

// listOf accepts the shapes a list method may answer with: an array, or an
// object holding one under a known key.
function listOf(p, ...keys) {
  if (Array.isArray(p)) return p;
  for (const k of keys) if (Array.isArray(p?.[k])) return p[k];
  return [];
}

// shortId shortens a 64-hex device id for display (the full id is the
// element's title).
function shortId(id) { return id && id.length > 16 ? `${id.slice(0, 12)}…` : (id || ""); }

let nodesTimer = 0;
function refreshNodesSoon() { clearTimeout(nodesTimer); nodesTimer = setTimeout(refreshNodes, 300); }

async function refreshNodes() {
  const el = $("nodes");
  if (!st.methods.has("node.list")) { unavailable(el, "node.list", "Nodes"); return; }
  try {
    const nodes = listOf(await rpc("node.list", {}), "nodes");
    if (!nodes.length) { el.replaceChildren(h("p", { class: "muted" }, "No nodes are paired or connected.")); return; }
    el.replaceChildren(h("table", null,
      h("thead", null, h("tr", null, ["node", "platform", "paired", "connected", "commands"].map((t) => h("th", null, t)))),
      h("tbody", null, nodes.map((n) => h("tr", { dataset: { node: n.nodeId || n.id || "" } },
        h("td", null, n.displayName || shortId(n.nodeId || n.id) || "?", h("div", { class: "muted mono", title: n.nodeId || n.id || "" }, shortId(n.nodeId || n.id))),
        h("td", null, [n.platform, n.deviceFamily, n.modelIdentifier].filter(Boolean).join(" · ")),
        h("td", null, n.paired ? "yes" : "no"),
        h("td", null, n.connected ? "yes" : "no"),
        h("td", { class: "mono" }, (n.commands || []).join(", ")))))));
  } catch (err) {
    el.replaceChildren(h("p", { class: "error" }, `node.list: ${err.message}`));
  }
}

async function refreshPairing() {
  const el = $("pairing");
  if (!st.methods.has("node.pair.list")) { unavailable(el, "node.pair.list", "Pairing"); return; }
  try {
    const reqs = listOf(await rpc("node.pair.list", {}), "pending", "requests");
    if (!reqs.length) { el.replaceChildren(h("p", { class: "muted" }, "No pending pairing requests.")); return; }
    const canDecide = st.methods.has("node.pair.approve") && st.methods.has("node.pair.reject");
    el.replaceChildren(h("table", null,
      h("thead", null, h("tr", null, ["node", "platform", "from", "requested", ""].map((t) => h("th", null, t)))),
      h("tbody", null, reqs.map((r) => {
        const id = r.requestId || r.id;
        return h("tr", { dataset: { request: id || "" } },
          h("td", null, r.displayName || shortId(r.nodeId) || "?", h("div", { class: "muted mono", title: r.nodeId || "" }, shortId(r.nodeId))),
          h("td", null, [r.platform, r.deviceFamily, r.modelIdentifier].filter(Boolean).join(" · ")),
          h("td", { class: "mono" }, r.remoteIp || r.ip || ""),
          h("td", null, ago(r.ts || r.createdAt || r.requestedAt)),
          h("td", { class: "actions" }, canDecide && id ? [
            h("button", { type: "button", class: "approve", onclick: () => decide("node.pair.approve", id) }, "Approve"),
            h("button", { type: "button", class: "reject secondary", onclick: () => decide("node.pair.reject", id) }, "Reject"),
          ] : null));
      }))));
  } catch (err) {
    el.replaceChildren(h("p", { class: "error" }, `node.pair.list: ${err.message}`));
  }
}

async function decide(method, requestId) {
  try {
    await rpc(method, { requestId });
  } catch (err) {
    $("pairing").prepend(h("p", { class: "error" }, `${method}: ${err.message}`));
    return;
  }
  refreshPairing();
  refreshNodesSoon();
}

// ---- log tail -------------------------------------------------------------

function startLogs() {
  stopLogs();
  if (!st.methods.has("logs.tail")) { $("logs-note").textContent = "logs.tail is not offered by this gateway."; return; }
  st.logsOff = false;
  pollLogs();
}
function stopLogs() { clearTimeout(st.logTimer); st.logTimer = 0; }

async function pollLogs() {
  st.logTimer = 0;
  if (!st.hello || st.logsOff) return;
  if (!st.logBusy && !$("logs-pause").checked && !document.hidden) {
    st.logBusy = true;
    try {
      const res = await rpc("logs.tail", st.logCursor === null ? { limit: 200 } : { cursor: st.logCursor, limit: 500 });
      if (res.reset) $("logs").replaceChildren();
      appendLogs(res.lines || []);
      st.logCursor = res.cursor;
      $("logs-note").textContent = res.file ? `${res.file}${res.truncated ? " (some lines skipped)" : ""}` : "";
    } catch (err) {
      if (err.code === "UNAVAILABLE" && st.hello && !err.retryable) {
        st.logsOff = true;
        $("logs-note").textContent = `log tail unavailable: ${err.message}`;
      }
    } finally {
      st.logBusy = false;
    }
  }
  if (st.hello && !st.logsOff && !st.logTimer) st.logTimer = setTimeout(pollLogs, LOG_POLL_MS);
}

function appendLogs(lines) {
  if (!lines.length) return;
  const box = $("logs");
  const atEnd = box.scrollTop + box.clientHeight >= box.scrollHeight - 4;
  box.append(...lines.map(logLine));
  while (box.childElementCount > LOG_KEEP) box.firstElementChild.remove();
  if (atEnd) box.scrollTop = box.scrollHeight;
}

function logLine(line) {
  let r;
  try { r = JSON.parse(line); } catch { return h("div", { class: "log" }, line); }
  if (!r || typeof r !== "object") return h("div", { class: "log" }, line);
  const { time, level, msg, ...rest } = r;
  const t = time ? new Date(time) : null;
  const attrs = Object.entries(rest).map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`).join(" ");
  return h("div", { class: `log ${level || ""}` },
    h("span", { class: "muted" }, t && !isNaN(t) ? `${t.toLocaleTimeString()} ` : ""),
    h("span", { class: "lvl" }, level || ""), " ", msg || "", attrs ? h("span", { class: "muted" }, ` ${attrs}`) : null);
}

// ---- method console -------------------------------------------------------

const TEMPLATES = {
  "logs.tail": { limit: 20 },
  "system-event": { text: "hello from the control UI" },
  "agent": () => ({ message: "hello", idempotencyKey: uuid() }),
  "agent.wait": { runId: "" },
  "node.describe": { nodeId: "" },
  "node.invoke": { nodeId: "", command: "", params: {} },
  "node.pair.approve": { requestId: "" },
  "node.pair.reject": { requestId: "" },
  "send": () => ({ to: "", message: "", idempotencyKey: uuid() }),
};

function fillConsole() {
  const sel = $("console-method");
  const keep = sel.value;
  sel.replaceChildren(...[...st.methods].filter((m) => m !== "connect").sort().map((m) => h("option", { value: m }, m)));
  if (keep && st.methods.has(keep)) { sel.value = keep; return; }
  if (st.methods.has("health")) sel.value = "health";
  applyTemplate();
}

function applyTemplate() {
  const t = TEMPLATES[$("console-method").value];
  $("console-params").value = JSON.stringify(typeof t === "function" ? t() : (t || {}), null, 2);
}
$("console-method").addEventListener("change", applyTemplate);

$("console-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const out = $("console-out");
  const method = $("console-method").value;
  const text = $("console-params").value.trim();
  let params;
  try { params = text === "" ? undefined : JSON.parse(text); } catch (err) {
    out.dataset.state = "error";
    out.textContent = `params are not valid JSON: ${err.message}`;
    return;
  }
  out.dataset.state = "pending";
  out.textContent = `${method} …`;
  const show = (label, payload) => `${label}\n${JSON.stringify(payload, null, 2)}`;
  try {
    const payload = await rpc(method, params, {
      timeoutMs: 60000,
      more: (p) => p?.status === "accepted",
      onLater: (f, err) => {
        out.textContent += `\n\n${f ? show(f.ok ? "second response: ok" : "second response: error", f.ok ? f.payload : f.error) : `error: ${err.message}`}`;
        out.dataset.state = f?.ok ? "ok" : "error";
      },
    });
    out.dataset.state = "ok";
    out.textContent = show(`${method}: ok`, payload);
  } catch (err) {
    out.dataset.state = "error";
    out.textContent = show(`${method}: ${err.code}`, { code: err.code, message: err.message, details: err.details });
  }
});

// ---- agent chat -----------------------------------------------------------

function renderChatAvailability() {
  const ok = st.methods.has("agent");
  $("chat-form").hidden = !ok;
  const note = $("chat-unavailable");
  note.hidden = ok;
  note.textContent = ok ? "" : "Agent chat unavailable: this gateway does not offer the agent method.";
}

const CHAT_SESSION = "control-ui";

// loadChatHistory shows the session's transcript once per page load (the
// gateway keeps it across restarts).
async function loadChatHistory() {
  if (!st.methods.has("chat.history") || $("chat-log").childElementCount > 0) return;
  let res;
  try { res = await rpc("chat.history", { sessionKey: CHAT_SESSION, limit: 50 }); } catch { return; }
  if ($("chat-log").childElementCount > 0) return;
  for (const m of res?.messages || []) {
    const el = chatBubble(m.role === "user" ? "user" : "assistant", m.text || "");
    if (m.role !== "user") {
      el.dataset.status = m.status === "streaming" ? "interrupted" : (m.status || "ok");
      if (m.error) el.append(h("span", { class: "meta" }, m.error));
    }
  }
}

function chatBubble(role, text) {
  const el = h("div", { class: `msg ${role}`, dataset: { status: role === "user" ? "sent" : "pending" } }, text);
  const log = $("chat-log");
  log.append(el);
  log.scrollTop = log.scrollHeight;
  return el;
}

function finishRun(run, status, note) {
  if (!st.runs.has(run.id)) return;
  st.runs.delete(run.id);
  run.el.dataset.status = status;
  if (note) run.el.append(h("span", { class: "meta" }, note));
}

function onAgentEvent(p) {
  const run = st.runs.get(p.runId);
  if (!run) return;
  if (typeof p.seq === "number") {
    if (p.seq <= run.seq) return;
    run.seq = p.seq;
  }
  if (p.stream === "assistant" && typeof p.data?.delta === "string") {
    if (run.el.dataset.status === "pending") { run.el.dataset.status = "streaming"; run.el.textContent = ""; }
    run.text += p.data.delta;
    run.el.textContent = run.text;
    $("chat-log").scrollTop = $("chat-log").scrollHeight;
  }
}

$("chat-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const input = $("chat-input");
  const message = input.value.trim();
  if (!message) return;
  input.value = "";
  chatBubble("user", message);
  const key = uuid();
  const run = { id: key, el: chatBubble("assistant", "…"), text: "", seq: 0 };
  run.el.dataset.runId = key;
  st.runs.set(key, run);
  try {
    const first = await rpc("agent", { message, idempotencyKey: key, sessionKey: CHAT_SESSION }, {
      timeoutMs: 30000,
      more: (p) => p?.status === "accepted",
      onLater: (f, err) => {
        if (!f) { finishRun(run, "interrupted", err.message); return; }
        if (!f.ok) { finishRun(run, "error", `${f.error?.code}: ${f.error?.message}`); return; }
        const p = f.payload || {};
        if (!run.text) run.el.textContent = run.text = p.summary ? String(p.summary) : "";
        finishRun(run, p.status || "ok", p.status && p.status !== "ok" ? `run ended: ${p.status}${p.error ? ` (${p.error})` : ""}` : "");
      },
    });
    if (first?.runId && first.runId !== key) { st.runs.delete(key); run.id = first.runId; st.runs.set(first.runId, run); }
    if (first?.status && first.status !== "accepted") {
      if (!run.text && first.summary) run.el.textContent = run.text = String(first.summary);
      finishRun(run, first.status);
    }
  } catch (err) {
    if (!run.text) run.el.textContent = "";
    finishRun(run, "error", `${err.code}: ${err.message}`);
  }
});

$("chat-input").addEventListener("keydown", (ev) => {
  if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) {
    ev.preventDefault();
    $("chat-form").requestSubmit();
  }
});

// ---- login ----------------------------------------------------------------

function showLogin(error) {
  $("dash").hidden = true;
  $("login").hidden = false;
  $("logout-btn").hidden = !loadAuth();
  $("login-error").textContent = error || "";
  if (!error) setState("login", "paste the gateway token to connect");
  $("token").focus();
}

$("login-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const secret = $("token").value.trim();
  if (!secret) return;
  saveAuth({ kind: $("use-password").checked ? "password" : "token", secret });
  $("token").value = "";
  $("login-error").textContent = "";
  st.attempt = 0;
  connect();
});

$("logout-btn").addEventListener("click", () => {
  clearAuth();
  st.stopped = true;
  clearTimeout(st.reconnectTimer);
  const ws = st.ws;
  st.ws = null;
  if (ws) ws.close(1000, "logged out");
  onClosed(1000, "logged out");
  showLogin("");
});

// A URL from `gatewayctl dashboard` carries the token in its fragment
// (#token=…; the fragment never reaches the server). Sign in with it, then
// drop it from the address bar and from this history entry, so the secret
// is not left on screen, in a bookmark or in a shared screenshot.
function takeFragmentToken() {
  const hash = location.hash.startsWith("#") ? location.hash.slice(1) : "";
  if (!hash) return;
  const params = new URLSearchParams(hash);
  if (!params.has("token")) return;
  const token = (params.get("token") || "").trim();
  params.delete("token");
  const rest = params.toString();
  history.replaceState(history.state, "", location.pathname + location.search + (rest ? `#${rest}` : ""));
  if (token) saveAuth({ kind: "token", secret: token });
}

takeFragmentToken();
if (loadAuth()) connect(); else showLogin("");
