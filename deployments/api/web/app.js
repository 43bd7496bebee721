/* The operator page: jobs overview with triggers, runs and configuration, trends, brand scheduled jobs.
   Static and data-free: every call goes to the API with the bearer token kept in sessionStorage. */
"use strict";
const $ = (sel) => document.querySelector(sel);
const TOKEN_KEY = "jobpipes-token";
const POLL_MS = 2500;  // how often a pending run is looked at again
const WATCH_MS = 15 * 60e3;  // a triggered run no worker picks up is watched this long
const PAGE_SIZE = 20;
const UNFINISHED = new Set(["pending", "processing", "PENDING", "RUNNING", "Scheduled", "Pending", "Running"]);
const state = {brands: [], scheduled: [], runs: {offset: 0}, executions: {job: null, offset: 0}, timers: new Set(),
  epoch: 0};  // the epoch changes when the token is forgotten: work begun before it is dropped

function token() { return sessionStorage.getItem(TOKEN_KEY) || ""; }

class ApiError extends Error {
  constructor(status, detail) { super(`${status}: ${detail}`); this.status = status; this.detail = detail; }
}

/* The answer's JSON and headers; ApiError with the server's `detail` when it is not 2xx. */
async function request(method, path, body) {
  const init = {method, headers: {Authorization: `Bearer ${token()}`}};
  if (body !== undefined) { init.headers["Content-Type"] = "application/json"; init.body = JSON.stringify(body); }
  const response = await fetch(path, init);
  if (response.status === 204) return {data: null, headers: response.headers};
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    const detail = typeof data.detail === "string" ? data.detail
      : (data.detail || []).map((e) => `${(e.loc || []).slice(1).join(".")}: ${e.msg}`).join("; ");
    throw new ApiError(response.status, detail || response.statusText);
  }
  return {data, headers: response.headers};
}
async function api(method, path, body) { return (await request(method, path, body)).data; }

function say(message, isError, ...nodes) {
  const box = $("#message");
  box.textContent = message;
  nodes.forEach((n) => box.appendChild(n));
  box.className = isError ? "error" : "ok";
}
async function attempt(fn) {
  try { await fn(); } catch (err) { say(err.message, true); }
}
/* Run `fn` after `ms` unless the page state was reset meanwhile (a forgotten token). */
function later(fn, ms) {
  const epoch = state.epoch;
  const id = setTimeout(() => { state.timers.delete(id); if (epoch === state.epoch) fn(); }, ms);
  state.timers.add(id);
  return id;
}
function cancel(id) { if (id) { clearTimeout(id); state.timers.delete(id); } }

function el(tag, props, ...children) {
  const node = Object.assign(document.createElement(tag), props || {});
  children.forEach((c) => { if (c !== null && c !== undefined) node.append(c); });
  return node;
}
function cell(row, content, cls) {
  const td = document.createElement("td");
  if (content instanceof Node) td.appendChild(content); else td.textContent = content === null || content === undefined ? "" : content;
  if (cls) td.className = cls;
  row.appendChild(td);
  return td;
}
function badge(status) { return el("span", {className: `badge ${status || ""}`, textContent: status || "—"}); }
function link(href, label) {
  if (!href) return document.createTextNode("");
  return el("a", {href, target: "_blank", rel: "noopener", textContent: label});
}
function button(label, onClick, testId) {
  const b = el("button", {type: "button", textContent: label});
  if (testId) b.dataset.testid = testId;
  b.addEventListener("click", () => attempt(onClick));
  return b;
}
const when = (iso) => (iso ? new Date(iso).toISOString().replace("T", " ").slice(0, 19) : "");
const ms = (v) => (v === null || v === undefined ? "" : v < 1000 ? `${v} ms` : `${(v / 1000).toFixed(1)} s`);
function frag(...nodes) {
  const f = document.createElement("div");
  nodes.forEach((n) => f.appendChild(typeof n === "string" ? document.createTextNode(n) : n));
  return f;
}
function counts(c) {
  return c ? `${c.processed} processed · ${c.created} created · ${c.updated} updated · ${c.skipped} skipped` +
    (c.failed ? ` · ${c.failed} failed` : "") : "";
}

/* Text that may wrap after its underscores and dots (job types, metric names) as well as at spaces. */
function breakable(text) {
  const span = document.createElement("span");
  String(text).split(/(?<=[_.])/).forEach((part, i) => { if (i) span.appendChild(document.createElement("wbr")); span.append(part); });
  return span;
}

/* Metrics as a few `key: value` chips (nested objects flattened one level, numbers first); the
   whole as indented JSON behind a disclosure, wrapped to the column. */
function metrics(m) {
  const entries = [];
  for (const [k, v] of Object.entries(m || {})) {
    if (v && typeof v === "object" && !Array.isArray(v)) {
      for (const [k2, v2] of Object.entries(v)) entries.push([`${k}.${k2}`, v2]);
    } else entries.push([k, v]);
  }
  if (!entries.length) return el("span", {className: "muted", textContent: "—"});
  const scalar = (v) => v === null || typeof v !== "object";
  entries.sort((a, b) => scalar(b[1]) - scalar(a[1]));
  const shown = 4;
  const short = (v) => {
    if (Array.isArray(v)) return `[${v.length} item${v.length === 1 ? "" : "s"}]`;
    if (v && typeof v === "object") return `{${Object.keys(v).length} keys}`;
    const text = String(v);
    return text.length > 40 ? `${text.slice(0, 39)}…` : text;
  };
  const chip = ([k, v]) => el("span", {className: "chip", title: `${k}: ${JSON.stringify(v)}`},
    breakable(`${k}: ${short(v)}`));
  const summary = el("summary", {}, ...entries.slice(0, shown).map(chip),
    entries.length > shown ? el("span", {className: "more", textContent: `+${entries.length - shown} more`}) : null);
  return el("details", {className: "metrics"}, summary, el("pre", {textContent: JSON.stringify(m, null, 2)}));
}

/* "1–20 of 45" with Newer/Older buttons; onPage(offset) loads another page. */
function pager(box, {offset, limit, total}, onPage) {
  box.innerHTML = "";
  if (!total) return;
  const last = Math.min(offset + limit, total);
  const newer = button("← Newer", () => onPage(Math.max(0, offset - limit)), "newer");
  const older = button("Older →", () => onPage(offset + limit), "older");
  newer.disabled = offset <= 0;
  older.disabled = last >= total;
  box.append(newer, el("span", {className: "range", textContent: `${offset + 1}–${last} of ${total}`}), older);
}

/* An inline form in a row under `row`: the server's 422 `detail` goes into its error line. */
function formRow(row, colspan, build, submit) {
  const next = row.nextElementSibling;
  if (next && next.classList.contains("edit-row")) { next.remove(); return null; }
  const tr = el("tr", {className: "edit-row"});
  const td = el("td", {colSpan: colspan});
  const form = el("form", {className: "edit"});
  const error = el("div", {className: "field-error", role: "alert"});
  build(form);
  form.append(el("button", {type: "submit", textContent: "Save"}), " ",
    button("Cancel", () => tr.remove(), "cancel"), error);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    try { await submit(form); } catch (err) { error.textContent = err.detail || err.message; }
  });
  td.appendChild(form);
  tr.appendChild(td);
  row.after(tr);
  return form;
}
function field(label, input) { return el("label", {}, `${label} `, input); }

/* ---------------- jobs overview ---------------- */
async function loadOverview() {
  cancel(state.overviewTimer);
  const [data, titles] = await Promise.all([api("GET", "/api/v1/jobs/status/overview"), brandJobTitles()]);
  $("#generated").textContent = `as of ${when(data.generated_at)} UTC`;
  const body = $("#jobs-table tbody");
  body.innerHTML = "";
  for (const job of data.jobs) {
    const tr = el("tr");
    tr.dataset.jobId = job.id;
    cell(tr, frag(el("strong", {className: "job-title"}, breakable(titles[job.id] || job.title)),
      document.createElement("br"), el("span", {className: "muted", textContent: `${job.family} · ${job.id}`})));
    cell(tr, `${job.schedule} (${job.timezone})`);
    cell(tr, job.active ? "yes" : "no");
    cell(tr, job.next_run ? when(job.next_run) : (job.active ? frag(el("span",
      {className: "alarm-text", textContent: "none in Prefect"})) : ""));
    const last = job.last_run;
    cell(tr, last ? frag(badge(last.status), ` ${when(last.started_at)} · ${ms(last.duration_ms)}`,
      document.createElement("br"), el("span",
        {className: "muted", textContent: last.error ? last.error.slice(0, 160) : counts(last.counts)})) : "never ran");
    cell(tr, `${job.runs_24h} runs · ${job.failures_24h} failed` + (job.rate_limited_24h ? ` · ${job.rate_limited_24h} rate-limited` : ""));
    const prefect = frag(last ? link(last.flow_run_url, "last run ↗") : "");
    for (const a of job.alarms || []) prefect.appendChild(el("div", {className: "alarm-text", textContent: `alarm ${a.kind}: ${a.reason}`}));
    for (const d of job.drift) prefect.appendChild(el("div", {className: "drift", textContent: d}));
    if ((job.alarms || []).length) tr.classList.add("alarm");
    cell(tr, prefect);
    cell(tr, frag(button("Trigger", () => triggerJob(job.id), `trigger-${job.id}`), " ",
      button("Runs", () => loadExecutions(job.id, 0), `runs-${job.id}`), " ",
      button("Config", () => editConfig(job.id, tr), `config-${job.id}`)), "actions");
    body.appendChild(tr);
  }
  // a last run still pending or running: look again (not while a configuration form is open)
  if (data.jobs.some((j) => j.last_run && UNFINISHED.has(j.last_run.status)) && !$("#jobs-table .edit-row")) {
    state.overviewTimer = later(() => attempt(loadOverview), 4 * POLL_MS);
  }
}

/* Brand jobs by their brand's name and job type ("Acme CRM · scoring"), from the brand admin API. */
async function brandJobTitles() {
  const jobs = await api("GET", "/api/admin/scheduled-jobs").catch(() => []);
  return Object.fromEntries(jobs.filter((j) => j.title).map((j) => [`brand-job-${j.id}`, j.title]));
}

async function triggerJob(jobId) {
  const run = await api("POST", `/api/v1/jobs/${encodeURIComponent(jobId)}/trigger`, {parameters: {}});
  const status = el("span", {className: "run-state", textContent: " — waiting for it to finish…"});
  say(`${jobId}: flow run ${run.flow_run_id} created (${run.state || "Scheduled"}) `, false,
    link(run.flow_run_url, "open in Prefect ↗"), status);
  await loadOverview();
  watchRun(jobId, run.flow_run_id, status, Date.now());
}

/* Look at the job's runs until the one of `flowRunId` has ended, then refresh the overview. */
function watchRun(jobId, flowRunId, status, since) {
  later(() => attempt(async () => {
    const data = await api("GET", `/api/v1/jobs/${encodeURIComponent(jobId)}/executions?limit=20`);
    const run = data.items.find((r) => r.flow_run_id === flowRunId);
    if (run && !UNFINISHED.has(run.status)) {
      status.textContent = ` — finished: ${run.status}`;
      await loadOverview();
      if (state.executions.job === jobId) await loadExecutions(jobId, state.executions.offset);
    } else if (Date.now() - since < WATCH_MS) {
      if (run) status.textContent = ` — ${run.status}…`;
      watchRun(jobId, flowRunId, status, since);
    } else {
      status.textContent = " — not finished after 15 minutes (is a worker polling the pool?)";
    }
  }), POLL_MS);
}

async function loadExecutions(jobId, offset) {
  cancel(state.executions.timer);
  const data = await api("GET", `/api/v1/jobs/${encodeURIComponent(jobId)}/executions?limit=${PAGE_SIZE}&offset=${offset}`);
  state.executions = {job: jobId, offset};
  $("#executions").hidden = false;
  $("#executions-job").textContent = `${jobId} (${data.total})`;
  const body = $("#executions tbody");
  body.innerHTML = "";
  for (const run of data.items) {
    const tr = el("tr");
    cell(tr, badge(run.status));
    cell(tr, when(run.started_at));
    cell(tr, ms(run.duration_ms));
    const hasMetrics = Object.keys(run.metrics || {}).length > 0;
    cell(tr, run.counts ? frag(counts(run.counts), hasMetrics ? metrics(run.metrics) : "") : metrics(run.metrics));
    cell(tr, run.error || "", "error-cell");
    cell(tr, link(run.flow_run_url, "flow run ↗"));
    body.appendChild(tr);
  }
  pager($("#executions-pager"), data, (o) => loadExecutions(jobId, o));
  const pending = data.items.some((r) => UNFINISHED.has(r.status));
  $("#executions-live").hidden = !pending;
  if (pending) state.executions.timer = later(() => attempt(() => loadExecutions(jobId, offset)), POLL_MS);
}

/* The job's schedule, timezone, active flag and knobs, changed through PUT /api/v1/jobs/{id}/config. */
async function editConfig(jobId, row) {
  const next = row.nextElementSibling;
  if (next && next.classList.contains("edit-row")) { next.remove(); return; }
  const cfg = await api("GET", `/api/v1/jobs/${encodeURIComponent(jobId)}/config`);
  cancel(state.overviewTimer);  // a refresh would take the form away; saving refreshes
  formRow(row, 8, (form) => {
    form.dataset.configFor = jobId;
    form.append(field("Schedule (cron)", el("input", {name: "schedule", value: cfg.schedule, required: true})),
      field("Timezone", el("input", {name: "timezone", value: cfg.timezone, required: true})),
      el("label", {className: "inline"}, el("input", {type: "checkbox", name: "active", checked: cfg.active}), " active"));
    for (const [key, value] of Object.entries(cfg.config || {})) {
      let input;
      if (typeof value === "boolean") input = el("input", {type: "checkbox", checked: value});
      else if (typeof value === "number") input = el("input", {type: "number", step: "any", value: String(value)});
      else if (typeof value === "string") input = el("input", {value});
      else input = el("input", {value: JSON.stringify(value), className: "json"});
      input.dataset.knob = key;
      input.dataset.kind = typeof value === "object" ? "json" : typeof value;
      form.append(typeof value === "boolean" ? el("label", {className: "inline"}, input, ` ${key}`)
        : field(`${key}${input.dataset.kind === "json" ? " (JSON)" : ""}`, input));
    }
  }, async (form) => {
    const config = {};
    for (const input of form.querySelectorAll("[data-knob]")) {
      const key = input.dataset.knob, kind = input.dataset.kind;
      if (kind === "boolean") config[key] = input.checked;
      else if (kind === "number") config[key] = input.value === "" ? null : Number(input.value);
      else if (kind === "json") {
        try { config[key] = JSON.parse(input.value); } catch { throw new Error(`config.${key}: not valid JSON`); }
      } else config[key] = input.value;
    }
    await api("PUT", `/api/v1/jobs/${encodeURIComponent(jobId)}/config`, {schedule: form.schedule.value.trim(),
      timezone: form.timezone.value.trim(), active: form.active.checked, config});
    say(`${jobId}: configuration saved and applied to Prefect`);
    await loadOverview();
  });
}

/* ---------------- brand scheduled jobs ---------------- */
function option(select, value, label, title) {
  const o = el("option", {value, textContent: label});
  if (title) o.title = title;
  select.appendChild(o);
}
/* "9b1f3a52… (Acme CRM, Globex Mail)": the id's start and the customer's brands. */
function customerLabel(id) {
  const names = state.brands.filter((b) => b.customer_id === id).map((b) => b.name);
  return `${id.slice(0, 8)}… (${names.join(", ")})`;
}
async function loadBrands() {
  state.brands = await api("GET", "/api/v1/trends/brands");
  const customers = [...new Set(state.brands.map((b) => b.customer_id))];
  for (const [select, extra] of [["#filter-customer", ["", "all"]], ["#brand-customer", null]]) {
    const s = $(select); const keep = s.value;
    s.innerHTML = "";
    if (extra) option(s, ...extra);
    customers.forEach((c) => option(s, c, customerLabel(c), c));
    if (!extra) option(s, "new", "new customer…");
    if ([...s.options].some((o) => o.value === keep)) s.value = keep;
  }
  newCustomerField();
  for (const [select, withAll] of [["#filter-brand", true], ["#create-brand", false], ["#score-brand", true]]) {
    const s = $(select); const keep = s.value;
    s.innerHTML = ""; if (withAll) option(s, "", "all");
    state.brands.forEach((b) => option(s, b.id, brandLabel(b), b.id));
    if (keep && [...s.options].some((o) => o.value === keep)) s.value = keep;
  }
}
/* A brand's name, with its customer's id when another customer has a brand of that name. */
function brandLabel(brand) {
  const twin = state.brands.some((b) => b.name === brand.name && b.customer_id !== brand.customer_id);
  return twin ? `${brand.name} (customer ${brand.customer_id.slice(0, 8)}…)` : brand.name;
}
const brandName = (id) => (state.brands.find((b) => b.id === id) || {name: id.slice(0, 8)}).name;

function filterQuery() {
  const params = new URLSearchParams();
  if ($("#filter-customer").value) params.set("customer_id", $("#filter-customer").value);
  if ($("#filter-brand").value) params.set("brand_id", $("#filter-brand").value);
  return params.toString();
}

async function loadScheduled() {
  state.scheduled = await api("GET", `/api/admin/scheduled-jobs?${filterQuery()}`);
  const body = $("#scheduled-table tbody");
  body.innerHTML = "";
  for (const job of state.scheduled) {
    const tr = el("tr");
    tr.dataset.scheduledId = job.id;
    const name = job.brand_name || brandName(job.brand_id);
    cell(tr, name);
    cell(tr, breakable(job.job_type));
    cell(tr, job.cron_expression, "cron-cell");
    cell(tr, job.timezone, "timezone-cell");
    cell(tr, job.is_active ? "active" : "inactive", "active-cell");
    cell(tr, when(job.next_run_time));
    cell(tr, when(job.last_run_time));
    cell(tr, frag(
      button("Edit", () => editSchedule(job, tr), "edit"), " ",
      button(job.is_active ? "Deactivate" : "Activate", async () => {
        await api("PUT", `/api/admin/scheduled-jobs/${job.id}`, {is_active: !job.is_active});
        say(`${job.job_type} for ${name} ${job.is_active ? "deactivated" : "activated"}`);
        await loadScheduled();
      }, "toggle"), " ",
      button("Trigger", async () => {
        const run = await api("POST", `/api/admin/scheduled-jobs/${job.id}/trigger`);
        say(`job run ${run.job_run_id} ${run.status} (flow run ${run.flow_run_id}) `, false,
          link(run.flow_run_url, "open in Prefect ↗"));
        await loadRuns(0);
      }, "trigger"), " ",
      button("Delete", async () => {
        if (!window.confirm(`Delete the ${job.job_type} schedule of ${name}?`)) return;
        await api("DELETE", `/api/admin/scheduled-jobs/${job.id}`);
        say("scheduled job deleted");
        await loadScheduled();
      }, "delete")), "actions");
    body.appendChild(tr);
  }
  await loadRuns(0);
}

function editSchedule(job, row) {
  formRow(row, 8, (form) => {
    form.dataset.scheduleFor = job.id;
    form.append(field("Cron", el("input", {name: "cron", value: job.cron_expression, required: true})),
      field("Timezone", el("input", {name: "timezone", value: job.timezone, required: true})),
      el("label", {className: "inline"}, el("input", {type: "checkbox", name: "active", checked: job.is_active}), " active"));
  }, async (form) => {
    await api("PUT", `/api/admin/scheduled-jobs/${job.id}`, {cron_expression: form.cron.value.trim(),
      timezone: form.timezone.value.trim(), is_active: form.active.checked});
    say(`${job.job_type} for ${job.brand_name || brandName(job.brand_id)} now runs at '${form.cron.value.trim()}' (${form.timezone.value.trim()})`);
    await loadScheduled();
  });
}

/* A page of the run history; while a run on it is pending or processing, it is loaded again. */
async function loadRuns(offset) {
  cancel(state.runs.timer);
  const filters = filterQuery();
  const {data: runs, headers} = await request("GET",
    `/api/admin/job-runs?${filters}${filters ? "&" : ""}limit=${PAGE_SIZE}&offset=${offset}`);
  const total = Number(headers.get("X-Total-Count") || runs.length);
  state.runs = {offset};
  const body = $("#runs-table tbody");
  body.innerHTML = "";
  for (const run of runs) {
    const tr = el("tr");
    tr.dataset.runId = run.id;
    cell(tr, badge(run.status), "status-cell");
    cell(tr, brandName(run.brand_id));
    cell(tr, breakable(run.job_type));
    cell(tr, when(run.created_at));
    cell(tr, when(run.started_at));
    cell(tr, when(run.finished_at));
    cell(tr, metrics(run.metrics));
    cell(tr, run.error_message || "", "error-cell");
    cell(tr, link(run.flow_run_url, "flow run ↗"));
    body.appendChild(tr);
  }
  pager($("#runs-pager"), {offset, limit: PAGE_SIZE, total}, loadRuns);
  const pending = runs.some((r) => UNFINISHED.has(r.status));
  $("#runs-live").hidden = !pending;
  if (pending) state.runs.timer = later(() => attempt(() => loadRuns(offset)), POLL_MS);
}

async function createScheduled(event) {
  event.preventDefault();
  let metadata;
  try { metadata = JSON.parse($("#create-metadata").value || "{}"); } catch (err) { throw new Error(`metadata: ${err.message}`); }
  const brand = state.brands.find((b) => b.id === $("#create-brand").value);
  if (!brand) throw new Error("brand_id: choose a brand");
  await api("POST", "/api/admin/scheduled-jobs", {brand_id: brand.id, customer_id: brand.customer_id,
    job_type: $("#create-type").value, cron_expression: $("#create-cron").value.trim(),
    timezone: $("#create-timezone").value.trim(), is_active: $("#create-active").checked, metadata});
  say(`scheduled ${$("#create-type").value} for ${brand.name} at '${$("#create-cron").value}'`);
  await loadScheduled();
}

/* A random customer id (crypto.randomUUID needs a secure context; getRandomValues does not). */
function uuid4() {
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40; b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}
function newCustomerField() {
  const isNew = $("#brand-customer").value === "new";
  $("#brand-customer-new-label").hidden = !isNew;
  if (isNew && !$("#brand-customer-new").value) $("#brand-customer-new").value = uuid4();
}

async function createBrand(event) {
  event.preventDefault();
  const error = $("#brand-error");
  error.textContent = "";
  const customer = $("#brand-customer").value === "new" ? $("#brand-customer-new").value.trim() : $("#brand-customer").value;
  const topics = $("#brand-topics").value.split("\n").map((l) => l.trim()).filter(Boolean).map((line) => {
    const [name, ...rest] = line.split(":");
    return {name: name.trim(), queries: rest.join(":").split("|").map((q) => q.trim()).filter(Boolean)};
  });
  try {
    const brand = await api("POST", "/api/admin/brands", {customer_id: customer, name: $("#brand-name").value.trim(),
      competitors: $("#brand-competitors").value.split(",").map((c) => c.trim()).filter(Boolean), topics});
    say(`brand ${brand.name} created: ${brand.topics_count} topic(s), ${brand.queries_count} quer${brand.queries_count === 1 ? "y" : "ies"}`);
    $("#brand-form").reset();
    $("#brand-customer-new").value = "";
    await loadBrands();
    $("#brand-customer").value = brand.customer_id;
    $("#create-brand").value = brand.id;
    newCustomerField();
  } catch (err) {
    error.textContent = err.detail || err.message;
  }
}

/* ---------------- token ---------------- */
function forgetToken() {
  sessionStorage.removeItem(TOKEN_KEY);
  state.timers.forEach((id) => clearTimeout(id));
  state.timers.clear();
  state.epoch += 1;
  Object.assign(state, {brands: [], scheduled: [], runs: {offset: 0}, executions: {job: null, offset: 0}});
  $("#token").value = "";
  document.querySelectorAll("tbody").forEach((b) => { b.innerHTML = ""; });
  document.querySelectorAll(".pager").forEach((n) => { n.innerHTML = ""; });
  document.querySelectorAll(".chart, .small-multiples").forEach((c) => Charts.clear(c));
  document.querySelectorAll("select#filter-customer, select#filter-brand, select#score-brand, select#create-brand, select#brand-customer")
    .forEach((s) => { s.innerHTML = ""; });
  $("#executions").hidden = true;
  $("#generated").textContent = "";
  $("#quota-note").textContent = "";
  say("Token forgotten: enter it again to load the data.", true);
}

/* ---------------- start ---------------- */
async function start() {
  const scheduled = location.pathname.startsWith("/admin/scheduled-jobs");
  $("#page-jobs").hidden = scheduled;
  $("#page-scheduled").hidden = !scheduled;
  $(scheduled ? "#nav-scheduled" : "#nav-jobs").classList.add("current");
  $("#token").value = token();
  if (!token()) { say("Enter the bearer token (BRAND_ADMIN_TOKEN) to load the data.", true); return; }
  await loadBrands();
  if (scheduled) await loadScheduled();
  else await Promise.all([loadOverview(), loadTrends()]);
  say("loaded");
}

$("#token-form").addEventListener("submit", (e) => {
  e.preventDefault();
  sessionStorage.setItem(TOKEN_KEY, $("#token").value.trim());
  attempt(start);
});
$("#forget-token").addEventListener("click", forgetToken);
$("#refresh").addEventListener("click", () => attempt(loadOverview));
$("#trend-days").addEventListener("change", () => attempt(loadTrends));
$("#score-brand").addEventListener("change", () => attempt(loadScores));
$("#filter-customer").addEventListener("change", () => attempt(loadScheduled));
$("#filter-brand").addEventListener("change", () => attempt(loadScheduled));
$("#create-form").addEventListener("submit", (e) => attempt(() => createScheduled(e)));
$("#brand-customer").addEventListener("change", newCustomerField);
$("#brand-form").addEventListener("submit", (e) => attempt(() => createBrand(e)));
attempt(start);
