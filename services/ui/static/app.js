// tars-ui: the page. One WebSocket to /ws; the server pushes frames, the page draws them.
// Everything from the bus is shown with textContent, never parsed as HTML.
"use strict";

const $ = (id) => document.getElementById(id);
const SVG = "http://www.w3.org/2000/svg";
const MAX_LOG = 300;
const WINDOW_S = 180;
const COLOURS = ["#4fc3f7", "#3ecf8e", "#f5b942", "#ef5350", "#b39ddb", "#ff8a65", "#90a4ae"];
const KNOWN_STATES = ["ready", "reconnected", "error", "shutdown", "offline"];

let ws = null;
let retry = 500;
let nextId = 1;
const pending = new Map();  // control id -> the result element it updates
let paused = false;
let shown = 0;
let buckets = [];           // rate buckets {t, dt, counts}, oldest first
let lastHeard = null;       // the last stt/partial text, and when it changed
let heardAt = 0;

function el(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

function clock(ts) {
  const d = new Date(ts * 1000);
  const pad = (n, w = 2) => String(n).padStart(w, "0");
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.` +
    pad(d.getMilliseconds(), 3);
}

// ── the link ────────────────────────────────────────────────────────────────────────────
function connect() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  ws = new WebSocket(`${scheme}://${location.host}/ws`);
  ws.onopen = () => { retry = 500; setLink(true); };
  ws.onmessage = (event) => {
    let frame;
    try { frame = JSON.parse(event.data); } catch (e) { return; }
    const handler = HANDLERS[frame.kind];
    if (handler) handler(frame);
  };
  ws.onclose = () => {
    setLink(false);
    setTimeout(connect, retry);
    retry = Math.min(retry * 2, 5000);
  };
}

function setLink(up) {
  const link = $("link");
  link.textContent = up ? "live" : "reconnecting…";
  link.className = up ? "link-up" : "link-down";
}

function send(frame) {
  if (!ws || ws.readyState !== WebSocket.OPEN) return false;
  ws.send(JSON.stringify(frame));
  return true;
}

function control(op, resultId, extra) {
  const id = `c${nextId++}`;
  const result = $(resultId);
  pending.set(id, result);
  showResult(result, send({ op, id, ...extra }) ? "sent" : "failed",
    ws && ws.readyState === WebSocket.OPEN ? "sending…" : "not connected");
}

function showResult(node, state, text) {
  node.className = `result ${node.classList.contains("wide") ? "wide " : ""}` +
    state.replace(" ", "-");
  node.textContent = text;
}

// ── frames ──────────────────────────────────────────────────────────────────────────────
const HANDLERS = {
  hello(f) {
    drawHealth(f.health);
    drawRobot(f.robot);
    drawConversation(f.conversation);
    buckets = f.rates.slice(-WINDOW_S);
    drawRates();
    fillMoves(f.moves);
    $("filter").value = f.filter;
    $("heartbeats").checked = f.heartbeats;
    showDrops(f.dropped);
    $("log").tBodies[0].replaceChildren();
    shown = 0;
    for (const m of f.recent) addLog(m);
  },
  health(f) { drawHealth(f.rows); },
  robot(f) { drawRobot(f.robot); },
  conv(f) { upsertEntry(f.entry); },
  msg(f) { addLog(f); },
  rates(f) {
    buckets.push(f);
    if (buckets.length > WINDOW_S) buckets.shift();
    drawRates();
  },
  result(f) {
    const node = pending.get(f.id);
    if (!node) return;
    showResult(node, f.state, f.text);
    if (f.state !== "sent" && f.state !== "working") pending.delete(f.id);
  },
  error(f) {
    const node = f.id && pending.get(f.id);
    if (node) { showResult(node, "failed", f.error); pending.delete(f.id); }
    else $("filter-error").textContent = f.error;
  },
  filter(f) {
    $("filter-error").textContent = "";
    $("filter").value = f.topic;
  },
  stats(f) {
    showDrops(f.dropped);
    $("stats").textContent = `${f.seen} messages seen · ${f.malformed} did not fit the ` +
      `topic table · ${f.pages} page${f.pages === 1 ? "" : "s"} open`;
  },
};

function showDrops(n) {
  const drops = $("drops");
  drops.hidden = !n;
  drops.textContent = `${n} updates dropped (this page fell behind)`;
}

// ── health ──────────────────────────────────────────────────────────────────────────────
function drawHealth(rows) {
  const body = $("health").tBodies[0];
  body.replaceChildren();
  if (!rows.length) {
    const tr = el("tr", "empty");
    const td = el("td", null, "no client has said anything yet");
    td.colSpan = 4;
    tr.append(td);
    body.append(tr);
    return;
  }
  for (const row of rows) {
    const tr = el("tr");
    tr.dataset.client = row.client;
    const state = el("td");
    const known = KNOWN_STATES.includes(row.state);
    const badge = el("span", `badge state b-${known ? row.state : "other"}`, row.state);
    state.append(badge);
    if (row.stale) state.append(el("span", "badge stale", "stale"));
    tr.append(el("td", "client", row.client), state, el("td", "age", row.beat),
      el("td", "status", row.status));
    tr.title = row.status;
    body.append(tr);
  }
}

// ── the robot ───────────────────────────────────────────────────────────────────────────
const JOINTS = {
  "leg-left": { joint: "left_leg", x: 96, y: 128, sign: 1 },
  "leg-right": { joint: "right_leg", x: 144, y: 128, sign: -1 },
  "arm-left": { joint: "left_arm", x: 42, y: 32, sign: 1 },
  "arm-right": { joint: "right_arm", x: 198, y: 32, sign: -1 },
};

function drawRobot(robot) {
  const state = robot.state || "unknown";
  const pill = $("state");
  pill.textContent = robot.state || "—";
  pill.className = `pill state-${/^[a-z]+$/.test(state) ? state : "unknown"}`;
  $("pose-state").textContent = robot.state || "—";
  $("speaking").classList.toggle("on", !!robot.speaking);
  if (robot.heard && robot.heard !== lastHeard) heardAt = Date.now();  // stt/partial
  lastHeard = robot.heard;
  const hearing = Date.now() - heardAt < 2000;
  $("listening").classList.toggle("on", robot.state === "listening" || hearing);
  const angles = robot.angles || {};
  const known = Object.keys(angles).length > 0;
  const pose = $("pose");
  pose.classList.toggle("unknown", !known);
  pose.classList.toggle("moving", !!robot.motion);
  for (const [id, part] of Object.entries(JOINTS)) {
    const a = Number(angles[part.joint] || 0) * part.sign;
    $(id).setAttribute("transform", `translate(${part.x} ${part.y}) rotate(${a})`);
  }
  const lift = -Number(angles.torso_height || 0) * 0.5;
  $("torso").setAttribute("transform", `translate(0 ${lift})`);
  const table = $("angles").tBodies[0];
  table.replaceChildren();
  for (const [joint, value] of Object.entries(angles)) {
    const tr = el("tr");
    tr.append(el("td", null, joint.replace("_", " ")), el("td", null, `${value.toFixed(1)}°`));
    table.append(tr);
  }
  $("motion").textContent = robot.motion ? `moving: ${robot.motion}` : "no motion";
  const last = robot.last;
  $("last-status").textContent = last
    ? `movement: ${last.action} ${last.event}${last.error ? ` (${last.error})` : ""}`
    : (known ? "" : "pose unknown until movement reports");
  const heard = $("heard");
  heard.hidden = !robot.heard || !(robot.state === "listening" || hearing);
  heard.textContent = robot.heard ? `hearing “${robot.heard}”` : "";
}

function fillMoves(moves) {
  const select = $("move-action");
  const current = select.value;
  select.replaceChildren(...moves.map((m) => {
    const option = el("option", null, m.replace("_", " "));
    option.value = m;
    return option;
  }));
  if (moves.includes(current)) select.value = current;
  else if (moves.includes("wave")) select.value = "wave";
}

// ── conversation ────────────────────────────────────────────────────────────────────────
const WHO = { heard: "heard", thought: "answer", said: "TARS said" };

function drawConversation(entries) {
  const list = $("conversation");
  list.replaceChildren();
  if (!entries.length) list.append(el("li", "empty", "nothing said yet"));
  for (const entry of entries) upsertEntry(entry);
}

function upsertEntry(entry) {
  const list = $("conversation");
  const empty = list.querySelector(".empty");
  if (empty) empty.remove();
  let li = list.querySelector(`li[data-id="${Number(entry.id)}"]`);
  if (!li) {
    li = el("li");
    li.dataset.id = Number(entry.id);
    li.append(el("span", "who"), el("span", "text"));
    list.append(li);
    while (list.children.length > 60) list.firstElementChild.remove();
  }
  li.className = `entry ${WHO[entry.who] ? entry.who : "heard"}` +
    (entry.streaming ? " streaming" : "") + (entry.error ? " error" : "");
  const who = entry.streaming ? "thinking…" : (WHO[entry.who] || entry.who);
  li.querySelector(".who").textContent = `${who} · ${clock(entry.ts).slice(0, 8)}`;
  li.querySelector(".text").textContent = entry.text;
  list.scrollTop = list.scrollHeight;
}

// ── traffic ─────────────────────────────────────────────────────────────────────────────
function addLog(m) {
  shown += 1;
  $("traffic-count").textContent = `${shown} message${shown === 1 ? "" : "s"}`;
  if (paused) return;
  const tr = el("tr", (m.error ? "bad " : "") + (m.retain ? "retained" : ""));
  const body = m.error ? `${m.error} — ${m.body}` : m.body;
  tr.append(el("td", null, clock(m.ts)), el("td", "topic", m.topic), el("td", null, m.type || "—"),
    el("td", null, m.source || "—"), el("td", "body", body));
  tr.title = `${m.topic}  qos ${m.qos}${m.retain ? " retained" : ""}  ${m.size} bytes` +
    (m.correlate ? `  correlate ${m.correlate}` : "") + `\n${body}`;
  const rows = $("log").tBodies[0];
  rows.prepend(tr);
  while (rows.children.length > MAX_LOG) rows.lastElementChild.remove();
}

function drawRates() {
  const svg = $("rates");
  const W = 600, H = 150, top = 10, bottom = 18;
  const totals = new Map();
  for (const b of buckets) {
    for (const [topic, n] of Object.entries(b.counts)) totals.set(topic, (totals.get(topic) || 0) + n);
  }
  const topics = [...totals.entries()].sort((a, b) => b[1] - a[1]).slice(0, COLOURS.length)
    .map(([topic]) => topic);
  let peak = 1;
  for (const b of buckets) for (const t of topics) peak = Math.max(peak, (b.counts[t] || 0) / b.dt);
  const scale = niceCeil(peak);
  const now = buckets.length ? buckets[buckets.length - 1].t : Date.now() / 1000;
  const first = buckets.length ? buckets[0].t - buckets[0].dt : now;
  const span = Math.min(WINDOW_S, Math.max(30, Math.ceil((now - first) / 30) * 30));
  const x = (t) => W - ((now - t) / span) * W;
  const y = (rate) => H - bottom - (rate / scale) * (H - top - bottom);
  const nodes = [];
  for (const frac of [0, 0.5, 1]) {
    const gy = y(scale * frac);
    nodes.push(svgEl("line", { class: "grid-line", x1: 0, x2: W, y1: gy, y2: gy }));
    nodes.push(svgEl("text", { x: 4, y: gy - 2 }, `${fmtRate(scale * frac)}/s`));
  }
  for (const frac of [1, 2 / 3, 1 / 3, 0]) {
    const ago = Math.round(span * frac);
    const label = ago === 0 ? "now" : ago % 60 === 0 ? `-${ago / 60}m` : `-${ago}s`;
    nodes.push(svgEl("text", { x: Math.min(W - 22, Math.max(2, W - frac * W)), y: H - 4 },
      label));
  }
  topics.forEach((topic, i) => {
    const points = buckets.map((b) => `${x(b.t).toFixed(1)},${y((b.counts[topic] || 0) / b.dt).toFixed(1)}`);
    if (points.length) {
      nodes.push(svgEl("polyline", { class: "series", stroke: COLOURS[i], points: points.join(" ") }));
    }
  });
  svg.replaceChildren(...nodes);
  const legend = $("rates-legend");
  legend.replaceChildren(...topics.map((topic, i) => {
    const last = buckets.length ? buckets[buckets.length - 1] : null;
    const rate = last ? (last.counts[topic] || 0) / last.dt : 0;
    const item = el("span");
    const key = el("span", "key");
    key.style.background = COLOURS[i];
    item.append(key, document.createTextNode(topic), el("span", "rate", `${fmtRate(rate)}/s`));
    return item;
  }));
}

function svgEl(tag, attrs, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

function niceCeil(v) {
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 5, 10]) if (v <= m * p) return m * p;
  return 10 * p;
}

function fmtRate(r) { return r >= 10 ? r.toFixed(0) : r.toFixed(1); }

// ── wiring ──────────────────────────────────────────────────────────────────────────────
function stop() { control("stop", "result-stop", {}); }

document.addEventListener("DOMContentLoaded", () => {
  $("stop").addEventListener("click", stop);
  document.addEventListener("keydown", (e) => { if (e.key === "Escape") stop(); });
  $("wake").addEventListener("click", () => control("wake", "result-wake", {}));
  $("say-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const text = $("say-text").value.trim();
    if (!text) return;
    control("say", "result-say", { text });
    $("say-text").value = "";
  });
  $("move-speed").addEventListener("input", () => {
    $("move-speed-out").textContent = `${$("move-speed").value}×`;
  });
  $("move-form").addEventListener("submit", (e) => {
    e.preventDefault();
    control("move", "result-move",
      { action: $("move-action").value, speed: Number($("move-speed").value) });
  });
  const applyFilter = (e) => {
    if (e) e.preventDefault();
    send({ op: "filter", topic: $("filter").value.trim() || "#",
      heartbeats: $("heartbeats").checked });
  };
  $("filter-form").addEventListener("submit", applyFilter);
  $("heartbeats").addEventListener("change", () => applyFilter());
  $("pause").addEventListener("click", () => {
    paused = !paused;
    $("pause").textContent = paused ? "Resume" : "Pause";
  });
  connect();
});
