// The worker's dashboard: sign in, rewards at a glance, submit work computed
// in a Web Worker, follow receipts, retry orphaned or lost submissions,
// recent blocks by creator. Plain ES module, no build step.

const $ = (id) => document.getElementById(id);
const KEY = "uwl.api_key";
const KEY_LIFE = "uwl.api_key_life"; // {issued_at, expires_at} of the key, as register / renew_key answer
const SUBS = "uwl.submissions";

const state = { key: localStorage.getItem(KEY), client: null, tip: null, busy: false, waitUntil: 0 };

function clientIdOf(key) {
  const part = key.split(".")[1] || "";
  const b64 = part.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((part.length + 3) % 4);
  return JSON.parse(atob(b64)).client_id;
}

function submissions() {
  try { return JSON.parse(localStorage.getItem(SUBS) || "{}"); } catch { return {}; }
}
function saveSubmission(receipt, entry) {
  const all = submissions();
  all[receipt] = { ...(all[receipt] || {}), ...entry };
  localStorage.setItem(SUBS, JSON.stringify(all));
}

let countdownTimer = null;
function notice(text, seconds) {
  const el = $("notice");
  clearInterval(countdownTimer);
  if (!text) { el.hidden = true; return; }
  el.hidden = false;
  if (!seconds) { el.textContent = text; return; }
  let left = seconds;
  const tick = () => {
    el.textContent = `${text}: retrying in ${left} s`;
    if (left-- <= 0) { clearInterval(countdownTimer); el.hidden = true; }
  };
  tick();
  countdownTimer = setInterval(tick, 1000);
}

async function api(path, options = {}) {
  const headers = { "content-type": "application/json" };
  if (state.key) headers.authorization = `Bearer ${state.key}`;
  const resp = await fetch(path, { ...options, headers });
  let body = null;
  try { body = await resp.json(); } catch { body = null; }
  const retry = Number(resp.headers.get("retry-after") || 2);
  if (resp.status === 401) notice("Your API key was refused (401): sign in again");
  if (resp.status === 429) { notice("Too many requests (429)", retry); state.waitUntil = Date.now() + retry * 1000; }
  if (resp.status === 503) { notice("The network is temporarily unavailable (503)", retry); state.waitUntil = Date.now() + retry * 1000; }
  return { status: resp.status, body, retry };
}

/// POST /submit_work, retried after 429/503 countdowns (3 tries).
async function submit(body) {
  for (let attempt = 0; attempt < 3; attempt++) {
    const r = await api("/submit_work", { method: "POST", body: JSON.stringify(body) });
    if (r.status !== 429 && r.status !== 503) return r;
    await new Promise((ok) => setTimeout(ok, r.retry * 1000));
  }
  return { status: 503, body: { message: "gave up after 3 tries" } };
}

function compute(task) {
  return new Promise((resolve, reject) => {
    const w = new Worker("/static/worker.js");
    w.onmessage = ({ data }) => {
      if (data.progress !== undefined) { $("work-status").textContent = `Computing... ${data.progress} nonces tried`; return; }
      w.terminate();
      data.error ? reject(new Error(data.error)) : resolve(data.result);
    };
    w.postMessage({ kind: task.kind, params: task.params });
  });
}

function describe(answer) {
  return answer.in_block
    ? `In block #${answer.block_index} (${answer.confirmations} confirmation${answer.confirmations === 1 ? "" : "s"}) on ${answer.served_by}`
    : "Reward pending inclusion in block";
}

async function follow(receipt) {
  for (let i = 0; i < 30; i++) {
    const r = await api(`/receipt/${receipt}?wait_ms=20000`);
    if (r.status !== 200) return;
    saveSubmission(receipt, { status: r.body.status, block_index: r.body.block_index });
    render();
    if (r.body.status === "in_block" || r.body.status === "superseded") return;
  }
}

async function doWork() {
  if (state.busy) return;
  state.busy = true;
  $("work").disabled = true;
  try {
    $("work-status").textContent = "Fetching a task...";
    const t = await api(`/get_task?kind=${$("kind").value}`);
    if (t.status !== 200) { $("work-status").textContent = `Could not get a task: ${t.body?.message || t.status}`; return; }
    $("work-status").textContent = "Computing...";
    const result = await compute(t.body);
    const body = { client_id: state.client, contract_id: t.body.contract_id, result_data: result };
    $("work-status").textContent = "Submitting...";
    const r = await submit(body);
    if (r.status !== 200) { $("work-status").textContent = `Refused (${r.status}): ${r.body?.message || ""}`; return; }
    saveSubmission(r.body.receipt_id, { body, status: r.body.in_block ? "in_block" : "pending", block_index: r.body.block_index, at: Date.now(), reward: t.body.reward });
    $("work-status").textContent = describe(r.body);
    render();
    follow(r.body.receipt_id);
  } catch (e) {
    $("work-status").textContent = `Error: ${e.message}`;
  } finally {
    state.busy = false;
    $("work").disabled = false;
  }
}

async function retry(receipt) {
  const sub = submissions()[receipt];
  if (!sub?.body) return;
  const r = await submit(sub.body);
  $("work-status").textContent = r.status === 200 ? `Retried: ${describe(r.body)}` : `Retry refused (${r.status}): ${r.body?.message || ""}`;
  if (r.status === 200) {
    saveSubmission(receipt, { status: r.body.in_block ? "in_block" : "pending", block_index: r.body.block_index, at: Date.now() });
    follow(receipt);
  }
}

function li(html, receipt, canRetry) {
  const el = document.createElement("li");
  el.innerHTML = html;
  if (canRetry) {
    const b = document.createElement("button");
    b.type = "button"; b.className = "secondary"; b.textContent = "Retry";
    b.setAttribute("aria-label", `Retry submission ${receipt.slice(0, 10)}`);
    b.onclick = () => retry(receipt);
    el.appendChild(b);
  }
  return el;
}

const short = (h) => `<code>${String(h).slice(0, 10)}</code>`;

function render(balance) {
  if (balance) state.balance = balance;
  const b = state.balance;
  if (b) {
    const pending = b.pending_reward.reduce((s, p) => s + p.amount, 0);
    $("balance").textContent = b.balance;
    $("pending-sum").textContent = pending;
    $("total").textContent = b.balance + pending;
    fill("pending", "Nothing pending: every reward is in a block.", b.pending_reward.map((p) =>
      li(`${short(p.receipt_id)} <span>${p.amount}</span> <span class="tag pending">Reward pending inclusion in block</span>`)));
    const subs = submissions();
    fill("orphaned", "No reward of yours was in an orphaned block.", b.orphaned.map((o) =>
      li(`${short(o.receipt_id)} ${o.amount} <span class="tag orphaned">orphaned from block #${o.orphaned_from_block}</span> → ${fate(o)}`,
        o.receipt_id, o.status !== "in_block" && !!subs[o.receipt_id])));
  }
  const subs = submissions();
  const tip = state.tip?.index;
  fill("mine", "No submissions from this browser yet.", Object.entries(subs).sort((a, b) => (b[1].at || 0) - (a[1].at || 0)).slice(0, 30).map(([r, s]) => {
    const conf = s.status === "in_block" && tip !== undefined && s.block_index !== undefined ? `, ${tip - s.block_index + 1} confirmations` : "";
    const label = s.status === "in_block" ? `in block${s.block_index === undefined ? "" : ` #${s.block_index}`}${conf}` : s.status === "pending" ? "Reward pending inclusion in block" : s.status.replace("_", " ");
    return li(`${short(r)} <span class="tag ${s.status}">${label}</span>`, r, s.status === "unknown" || s.status === "orphaned_requeued");
  }));
}

// What became of a reward whose block was orphaned.
function fate(o) {
  if (o.status === "in_block") return `<span class="tag requeued">re-queued</span> → <span class="tag in_block">in block #${o.block_index} again</span>`;
  if (o.status === "superseded") return `<span class="tag superseded">superseded by another result</span>`;
  return `<span class="tag requeued">re-queued, waiting for a block</span>`;
}

// A list's items, or a line saying it is empty.
function fill(id, empty, items) {
  if (items.length) { $(id).replaceChildren(...items); return; }
  const el = document.createElement("li");
  el.className = "empty";
  el.textContent = empty;
  $(id).replaceChildren(el);
}

function renderChain(blocks, tip, node) {
  state.tip = tip;
  const age = Math.max(0, Math.round((Date.now() - tip.timestamp) / 1000));
  $("tip").textContent = `#${tip.index} (${age} s ago, ${node})`;
  const recent = blocks.slice().reverse();
  $("blocks").replaceChildren(...recent.slice(0, 20).map((b) => {
    const tr = document.createElement("tr");
    tr.innerHTML = `<td>${b.index}</td><td>${b.creator_node_id}</td><td>${b.transactions.length}</td><td>${Math.round((Date.now() - b.timestamp) / 1000)} s</td>`;
    return tr;
  }));
  const creators = [...new Set(blocks.map((b) => b.creator_node_id))].sort();
  const colors = ["#0b5cad", "#c2410c", "#15803d", "#7e22ce", "#475569"];
  const w = 300 / Math.max(blocks.length, 1);
  $("chart").innerHTML = blocks.map((b, i) =>
    `<rect x="${i * w}" y="${10 + creators.indexOf(b.creator_node_id) * (40 / Math.max(creators.length, 1))}" width="${Math.max(w - 1, 1)}" height="${40 / Math.max(creators.length, 1)}" fill="${colors[creators.indexOf(b.creator_node_id) % colors.length]}"><title>#${b.index} by ${b.creator_node_id}</title></rect>`).join("");
  // Built with the DOM (the page's CSP allows no inline style attributes).
  $("legend").replaceChildren(...creators.map((c, i) => {
    const el = document.createElement("span");
    el.style.color = colors[i % colors.length];
    el.textContent = `\u25A0 ${c}: ${blocks.filter((b) => b.creator_node_id === c).length} blocks`;
    return el;
  }));
}

async function refresh() {
  if (Date.now() < state.waitUntil) return;
  const head = await api("/chain?from=0&limit=1");
  if (head.status === 200) {
    const from = Math.max(0, head.body.tip.index - 59);
    const c = await api(`/chain?from=${from}&limit=60`);
    if (c.status === 200) renderChain(c.body.blocks.filter((b) => b.index > 0), c.body.tip, c.body.node_id);
  }
  if (!state.client) return;
  await renewIfDue();
  const b = await api(`/get_balance?client_id=${state.client}`);
  if (b.status === 200) render(b.body);
  for (const [r, s] of Object.entries(submissions())) {
    if ((s.status !== "in_block" || s.block_index === undefined) && s.status !== "superseded") {
      const st = await api(`/receipt/${r}`);
      if (st.status === 200) saveSubmission(r, { status: st.body.status, block_index: st.body.block_index });
    }
  }
  render();
}

function signedIn(key) {
  try { state.client = clientIdOf(key); } catch { notice("That is not an API key"); return; }
  state.key = key;
  localStorage.setItem(KEY, key);
  $("who").textContent = `Signed in as ${state.client}`;
  $("signin").hidden = true;
  $("account").hidden = false;
  notice("");
  refresh();
}

$("register").onclick = async () => {
  const r = await api("/register", { method: "POST", body: "{}" });
  if (r.status === 200) { keepLife(r.body); signedIn(r.body.api_key); }
};

function keepLife(body) {
  localStorage.setItem(KEY_LIFE, JSON.stringify({ issued_at: body.issued_at, expires_at: body.expires_at }));
}

// Past three quarters of its life, the key is exchanged for a new one
// (the same client) before it expires. A key of unknown life (pasted in,
// or kept from before keys expired) is exchanged at once: that tells it.
async function renewIfDue() {
  let life;
  try { life = JSON.parse(localStorage.getItem(KEY_LIFE) || "null"); } catch { life = null; }
  const known = life?.issued_at && life?.expires_at;
  if (known && Date.now() < life.issued_at + (life.expires_at - life.issued_at) * 0.75) return;
  const r = await api("/renew_key", { method: "POST", body: "{}" });
  if (r.status === 200) { keepLife(r.body); state.key = r.body.api_key; localStorage.setItem(KEY, r.body.api_key); }
}
$("keyform").onsubmit = (e) => { e.preventDefault(); localStorage.removeItem(KEY_LIFE); signedIn($("apikey").value.trim()); $("apikey").value = ""; };
$("signout").onclick = () => {
  localStorage.removeItem(KEY);
  localStorage.removeItem(KEY_LIFE);
  state.key = null; state.client = null;
  $("account").hidden = true; $("signin").hidden = false;
  $("who").textContent = "Not signed in";
};
$("work").onclick = doWork;

if (state.key) signedIn(state.key);
refresh();
setInterval(refresh, 2000);
