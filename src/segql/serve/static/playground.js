// The playground page: the editor (editor.js) wired to the JSON API
// (/api/..., POST JSON).  Every answer is checked against the latest request
// of its kind, so a slow or superseded answer never overwrites a newer one;
// every request is asynchronous, so typing is never blocked.  Errors are
// shown where they belong (a 422 with a position becomes a diagnostic) and
// never leave a button disabled.

import { Editor, diagnosticText, element, offset } from "./editor.js";

const $ = (id) => document.getElementById(id);
const CLIENT = "page-" + Math.random().toString(36).slice(2) + Date.now().toString(36);
const DELAY = { diagnostics: 150, counts: 300, outline: 400 };
const TIMEOUT_MS = 60000;

const state = {
  outline: null,
  selected: null,
  descriptions: {},
  diagnostics: [],
  serverError: null, // the last evaluation's 422, as a diagnostic
  seq: { diagnostics: 0, counts: 0, outline: 0, selected: 0, why: 0, sql: 0 },
  timers: {},
  savedSource: null,
};

/** POST `body` to /api/`name`: {ok, status, data} (never throws; a network error is status 0). */
async function api(name, body, { raw = false, query = "" } = {}) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), TIMEOUT_MS);
  try {
    const response = await fetch(`/api/${name}${query}`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
      signal: controller.signal,
    });
    if (raw && response.ok) return { ok: true, status: response.status, blob: await response.blob(), response };
    let data = null;
    try {
      data = await response.json();
    } catch {
      data = { error: { message: `the server answered ${response.status} without JSON` } };
    }
    return { ok: response.ok, status: response.status, data };
  } catch (exc) {
    const message = exc.name === "AbortError" ? "the server did not answer in time" : `cannot reach the server (${exc.message})`;
    return { ok: false, status: 0, data: { error: { message } } };
  } finally {
    clearTimeout(timer);
  }
}

/** The text of an error answer: "line 2, column 5: message (hint)". */
function errorText(answer) {
  const error = (answer.data && answer.data.error) || { message: `HTTP ${answer.status}` };
  const where = error.line ? `line ${error.line}, column ${error.column}: ` : "";
  return where + error.message + (error.hint ? ` — ${error.hint}` : "");
}

/** A 422's position as a diagnostic (1-based line/column to 0-based). */
function errorDiagnostic(answer) {
  const error = answer.data && answer.data.error;
  if (!error || !error.line) return null;
  const start = { line: error.line - 1, character: Math.max(0, error.column - 1) };
  const end = error.end_line
    ? { line: error.end_line - 1, character: Math.max(0, error.end_column - 1) }
    : start;
  return { range: { start, end }, severity: "error", message: error.message, hint: error.hint, suggestions: [], code: "evaluation" };
}

function setStatus(id, text, kind = "") {
  const node = $(id);
  node.textContent = text;
  node.className = kind === "error" ? "error-text" : kind === "ok" ? "ok-text" : "muted";
}

/** What every evaluating request sends besides the source. */
function evaluation() {
  const body = { param_texts: {} };
  for (const input of document.querySelectorAll("#params input[data-param]")) {
    body.param_texts[input.dataset.param] = input.value;
  }
  const asOf = $("as-of").value.trim();
  const zone = $("time-zone").value.trim();
  if (asOf) body.as_of = asOf;
  if (zone) body.time_zone = zone;
  return body;
}

const editor = new Editor({
  textarea: $("source"),
  highlight: $("highlight"),
  popup: $("completions"),
  tooltip: $("tooltip"),
  services: {
    complete: async (source, at) => {
      const answer = await api("complete", { source, ...at });
      return answer.ok ? answer.data : [];
    },
    hover: async (source, at) => {
      const answer = await api("hover", { source, ...at });
      return answer.ok ? answer.data : null;
    },
  },
  onChange: () => {
    schedule("diagnostics", refreshDiagnostics);
    schedule("counts", refreshCounts);
    schedule("outline", refreshOutline);
    updateSaved();
  },
});

function schedule(kind, fn) {
  clearTimeout(state.timers[kind]);
  state.timers[kind] = setTimeout(fn, DELAY[kind]);
}

// ------------------------------------------------------------------ diagnostics
function showDiagnostics() {
  const list = [...state.diagnostics];
  const extra = state.serverError;
  if (extra && !list.some((d) => d.message === extra.message)) list.push(extra);
  editor.setDiagnostics(list);
  const items = list.map((d, i) => {
    const li = element("li", { class: d.severity, "data-diagnostic": String(i) });
    const where = element("button", { type: "button", class: "goto", text: `${d.range.start.line + 1}:${d.range.start.character + 1}` });
    where.title = "Select it in the editor";
    where.addEventListener("click", () => editor.select(d.range));
    li.append(where, ` ${diagnosticText(d)}`);
    for (const suggestion of d.suggestions || []) {
      const button = element("button", { type: "button", class: "fix", text: `use '${suggestion}'` });
      button.addEventListener("click", () => editor.replaceRange(d.range, suggestion));
      li.append(button);
    }
    return li;
  });
  $("problems").replaceChildren(...items);
  const errors = list.filter((d) => d.severity === "error").length;
  $("problem-count").textContent = String(list.length);
  $("problem-count").classList.toggle("has-errors", errors > 0);
  $("source").setAttribute("aria-invalid", String(errors > 0));
}

async function refreshDiagnostics() {
  const seq = ++state.seq.diagnostics;
  const answer = await api("diagnostics", { source: editor.value });
  if (seq !== state.seq.diagnostics) return;
  if (answer.ok) state.diagnostics = answer.data;
  else state.diagnostics = [{ ...(errorDiagnostic(answer) || blankDiagnostic()), message: errorText(answer) }];
  showDiagnostics();
}

function blankDiagnostic() {
  const start = { line: 0, character: 0 };
  return { range: { start, end: start }, severity: "error", hint: null, suggestions: [] };
}

// ------------------------------------------------------------------ outline
async function refreshOutline() {
  const seq = ++state.seq.outline;
  const answer = await api("outline", { source: editor.value });
  if (seq !== state.seq.outline || !answer.ok) return;
  const outline = answer.data;
  state.outline = outline;
  $("file-name").textContent = outline.file;
  $("data-summary").textContent = `${outline.rows.toLocaleString("en")} customers` + (outline.key ? ` · key ${outline.key}` : "");
  renderDialects(outline.dialects);
  if (outline.error) return; // the file does not compile: keep the last parameters and descriptions
  state.descriptions = Object.fromEntries(outline.segments.map((s) => [s.name, s.description]));
  renderParams(outline.params);
  for (const id of ["why-run", "why-id"]) $(id).disabled = !outline.why;
}

function renderParams(params) {
  const box = $("params");
  const current = [...box.querySelectorAll("input[data-param]")];
  const names = params.map((p) => `${p.name}:${p.type}`).join(",");
  if (box.dataset.names === names) return; // same parameters: keep what was typed
  const typed = Object.fromEntries(current.map((i) => [i.dataset.param, i.value]));
  for (const node of box.querySelectorAll("label, input")) node.remove();
  for (const p of params) {
    const id = `param-${p.name}`;
    const label = element("label", { htmlFor: id, text: `$${p.name}` + (p.type ? `: ${p.type}` : "") });
    const input = element("input", { id, "data-param": p.name, placeholder: p.default ?? (p.type ? "" : "value") });
    input.value = typed[p.name] ?? "";
    input.addEventListener("input", () => schedule("counts", refreshCounts));
    box.append(label, input);
  }
  box.dataset.names = names;
  $("no-params").hidden = params.length > 0;
}

function renderDialects(dialects) {
  const select = $("dialect");
  if (select.options.length === dialects.length) return;
  select.replaceChildren(...dialects.map((d) => element("option", { value: d, text: d })));
}

// ------------------------------------------------------------------ counts
async function refreshCounts() {
  const seq = ++state.seq.counts;
  setStatus("counts-status", "counting…");
  const answer = await api("counts", { source: editor.value, client: CLIENT, request_id: seq, ...evaluation() });
  if (seq !== state.seq.counts) return; // a newer request is out: this answer is stale
  if (answer.ok && answer.data.cancelled) return;
  if (answer.ok && answer.data.request_id !== seq) return;
  if (!answer.ok) {
    state.serverError = answer.status === 422 ? errorDiagnostic(answer) : null;
    showDiagnostics();
    $("counts").classList.add("stale");
    $("heatmap").classList.add("stale");
    setStatus("counts-status", (answer.status === 422 ? "" : "error: ") + errorText(answer), "error");
    return;
  }
  state.serverError = null;
  showDiagnostics();
  const counts = answer.data;
  setStatus("counts-status", `${counts.rows.toLocaleString("en")} customers, as of ${counts.as_of.slice(0, 19).replace("T", " ")}`);
  renderCounts(counts);
  renderHeatmap(counts);
  const names = Object.keys(counts.sizes);
  if (!names.includes(state.selected)) state.selected = names[0] ?? null;
  markSelected();
  refreshSelected();
}

function percent(share) {
  return share === null || share === undefined ? "—" : `${(100 * share).toFixed(1)}%`;
}

function renderCounts(counts) {
  const table = $("counts");
  table.classList.remove("stale");
  $("counts-caption").textContent = Object.keys(counts.sizes).length ? "" : "The file has no segments yet.";
  const rows = Object.entries(counts.sizes).map(([name, size]) => {
    const share = counts.shares[name];
    const pick = element("button", { type: "button", class: "pick", text: name });
    pick.title = (counts.descriptions && counts.descriptions[name]) || "";
    const bar = element("div", { class: "bar" });
    bar.style.width = `${Math.round(100 * (share || 0))}%`;
    const tr = element(
      "tr",
      { "data-segment": name },
      element("td", {}, pick),
      element("td", { class: "num members", text: size.toLocaleString("en") }),
      element("td", { class: "num share", text: percent(share) }),
      element("td", { class: "bar-cell" }, bar),
    );
    tr.dataset.members = String(size);
    tr.addEventListener("click", () => select(name));
    return tr;
  });
  table.tBodies[0].replaceChildren(...rows);
}

function renderHeatmap(counts) {
  const table = $("heatmap");
  table.classList.remove("stale");
  const names = Object.keys(counts.sizes);
  const head = element("tr", {}, element("th", {}));
  for (const n of names) head.append(element("th", { scope: "col", text: n }));
  table.tHead.replaceChildren(names.length ? head : "");
  const rows = names.map((row) => {
    const tr = element("tr", {}, element("th", { scope: "row", text: row }));
    for (const column of names) {
      const both = (counts.overlap[row] || {})[column] ?? 0;
      const share = counts.sizes[row] ? both / counts.sizes[row] : 0;
      const td = element("td", { text: both.toLocaleString("en"), title: `${row} ∩ ${column}: ${both} (${percent(share)} of ${row})` });
      td.dataset.share = share.toFixed(4);
      td.style.background = `hsl(217 80% ${Math.round(97 - 50 * share)}%)`;
      td.style.color = share > 0.6 ? "white" : "";
      tr.append(td);
    }
    return tr;
  });
  table.tBodies[0].replaceChildren(...rows);
}

// ------------------------------------------------------------------ the selected segment
function select(name) {
  state.selected = name;
  markSelected();
  refreshSelected();
}

function markSelected() {
  for (const tr of $("counts").tBodies[0].rows) tr.setAttribute("aria-selected", String(tr.dataset.segment === state.selected));
  $("selected-name").textContent = state.selected ?? "—";
  $("selected-description").textContent = (state.selected && state.descriptions[state.selected]) || "";
}

async function refreshSelected() {
  const segment = state.selected;
  const seq = ++state.seq.selected;
  if (!segment) return;
  const body = { source: editor.value, segment, ...evaluation() };
  setStatus("preview-status", "loading…");
  const [steps, preview] = await Promise.all([
    api("attrition", { ...body, client: CLIENT }),
    state.outline && !state.outline.preview ? null : api("preview", { ...body, limit: 20 }),
  ]);
  if (seq !== state.seq.selected || (steps.ok && steps.data.cancelled)) return;
  if (steps.ok) {
    let previous = null;
    const rows = steps.data.steps.map((s) => {
      const kept = previous ? ` (${percent(previous ? s.customers / previous : 1)} of the step before)` : "";
      previous = s.customers;
      return element(
        "tr",
        {},
        element("td", { class: "num", text: String(s.step) }),
        element("td", { text: s.clause }),
        element("td", { class: "num customers", "data-customers": String(s.customers), text: s.customers.toLocaleString("en") + kept }),
      );
    });
    $("attrition").tBodies[0].replaceChildren(...rows);
  } else {
    $("attrition").tBodies[0].replaceChildren(element("tr", {}, element("td", { colSpan: 3, class: "error-text", text: errorText(steps) })));
  }
  if (!preview) return setStatus("preview-status", "(the preview needs a key column)");
  if (!preview.ok) return setStatus("preview-status", errorText(preview), "error");
  const { columns, rows } = preview.data;
  $("preview").tHead.replaceChildren(element("tr", {}, ...columns.map((c) => element("th", { scope: "col", text: c }))));
  $("preview").tBodies[0].replaceChildren(
    ...rows.map((r) => element("tr", {}, ...columns.map((c) => element("td", { text: r[c] === null ? "null" : String(r[c]) })))),
  );
  setStatus("preview-status", `first ${rows.length}`);
}

// ------------------------------------------------------------------ why
$("why-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const text = $("why-id").value.trim();
  if (!text) return;
  const keyType = (state.outline && state.outline.key_type) || "";
  const id = /^-?\d+$/.test(text) && /int/.test(keyType) ? Number(text) : text;
  const seq = ++state.seq.why;
  const button = $("why-run");
  button.disabled = true;
  $("why-output").textContent = "…";
  try {
    const answer = await api("why", { source: editor.value, id, segment: state.selected, ...evaluation() });
    if (seq !== state.seq.why) return;
    $("why-output").textContent = answer.ok ? answer.data.text : errorText(answer);
    $("why-output").classList.toggle("error-text", !answer.ok);
  } finally {
    button.disabled = false;
  }
});

// ------------------------------------------------------------------ save
function updateSaved() {
  if (state.savedSource === null) return;
  const dirty = editor.value !== state.savedSource;
  document.title = (dirty ? "● " : "") + "segql playground";
  if (dirty && $("save-status").textContent.startsWith("Saved")) setStatus("save-status", "unsaved changes");
}

async function save() {
  const button = $("save");
  const source = editor.value;
  button.disabled = true;
  setStatus("save-status", "saving…");
  try {
    const answer = await api("save", { source });
    if (!answer.ok) return setStatus("save-status", "not saved: " + errorText(answer), "error");
    state.savedSource = source;
    const errors = answer.data.diagnostics.filter((d) => d.severity === "error").length;
    const note = errors ? ` (with ${errors} error${errors > 1 ? "s" : ""})` : "";
    setStatus("save-status", `Saved ${answer.data.bytes.toLocaleString("en")} bytes${note}`, errors ? "error" : "ok");
    updateSaved();
  } finally {
    button.disabled = false;
  }
}
$("save").addEventListener("click", save);
window.addEventListener("beforeunload", (e) => {
  if (state.savedSource !== null && editor.value !== state.savedSource) e.preventDefault(); // unsaved: ask first
});
document.addEventListener("keydown", (e) => {
  if ((e.ctrlKey || e.metaKey) && e.key.toLowerCase() === "s") {
    e.preventDefault();
    save();
  }
});

// ------------------------------------------------------------------ download
async function download(format) {
  const segment = state.selected;
  if (!segment) return setStatus("download-status", "select a segment first", "error");
  const buttons = [$("download-csv"), $("download-parquet")];
  buttons.forEach((b) => (b.disabled = true));
  setStatus("download-status", `preparing ${format}…`);
  try {
    const answer = await api("download", { source: editor.value, segment, format, ...evaluation() }, { raw: true, query: `?format=${format}` });
    if (!answer.ok) return setStatus("download-status", errorText(answer), "error");
    const url = URL.createObjectURL(answer.blob);
    const link = element("a", { href: url, download: `${segment}.${format}` });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
    setStatus("download-status", `downloaded ${segment}.${format}`, "ok");
  } finally {
    buttons.forEach((b) => (b.disabled = false));
  }
}
$("download-csv").addEventListener("click", () => download("csv"));
$("download-parquet").addEventListener("click", () => download("parquet"));

// ------------------------------------------------------------------ SQL
async function showSql() {
  const seq = ++state.seq.sql;
  setStatus("sql-status", "writing SQL…");
  const answer = await api("sql", { source: editor.value, dialect: $("dialect").value || "duckdb", ...evaluation() });
  if (seq !== state.seq.sql) return null;
  if (!answer.ok) {
    $("sql-output").textContent = "";
    setStatus("sql-status", errorText(answer), "error");
    return null;
  }
  $("sql-output").textContent = answer.data.sql;
  setStatus("sql-status", "");
  return answer.data.sql;
}

async function copySql() {
  const sql = await showSql();
  if (sql === null) return;
  try {
    await navigator.clipboard.writeText(sql);
    return setStatus("sql-status", "Copied to the clipboard", "ok");
  } catch {
    // No clipboard API (or no permission): copy through a selected textarea.
  }
  const scratch = element("textarea", { value: sql, readOnly: true });
  scratch.className = "offscreen";
  document.body.append(scratch);
  scratch.select();
  let copied = false;
  try {
    copied = document.execCommand("copy");
  } catch {
    copied = false;
  }
  scratch.remove();
  if (copied) setStatus("sql-status", "Copied to the clipboard", "ok");
  else setStatus("sql-status", "Select the SQL below and press Ctrl+C");
}
$("sql-show").addEventListener("click", showSql);
$("sql-copy").addEventListener("click", copySql);

for (const id of ["as-of", "time-zone"]) $(id).addEventListener("input", () => schedule("counts", refreshCounts));
$("options").addEventListener("submit", (e) => e.preventDefault());

// ------------------------------------------------------------------ start
async function start() {
  const answer = await api("source", {});
  if (answer.ok) {
    editor.value = answer.data.source;
    state.savedSource = answer.data.source;
  } else setStatus("save-status", "cannot read the file: " + errorText(answer), "error");
  if (answer.ok && answer.data.as_of) $("as-of").value = answer.data.as_of;
  await refreshOutline();
  refreshDiagnostics();
  refreshCounts();
  document.body.dataset.ready = "true";
}
window.segqlPlayground = { editor, state, offset };
start();
