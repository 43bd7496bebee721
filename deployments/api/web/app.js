/* The operator page: jobs overview with triggers and runs, trends, brand scheduled jobs (seed 003).
   Static and data-free: every call goes to the API with the bearer token kept in sessionStorage. */
"use strict";
const $ = (sel) => document.querySelector(sel);
const state = {brands: [], scheduled: []};

function token() { return sessionStorage.getItem("jobpipes-token") || ""; }

async function api(method, path, body) {
  const init = {method, headers: {Authorization: `Bearer ${token()}`}};
  if (body !== undefined) { init.headers["Content-Type"] = "application/json"; init.body = JSON.stringify(body); }
  const response = await fetch(path, init);
  if (response.status === 204) return null;
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    const detail = typeof data.detail === "string" ? data.detail
      : (data.detail || []).map((e) => `${(e.loc || []).slice(1).join(".")}: ${e.msg}`).join("; ");
    throw new Error(`${response.status}: ${detail || response.statusText}`);
  }
  return data;
}

function say(message, isError) {
  const box = $("#message");
  box.textContent = message;
  box.className = isError ? "error" : "ok";
}
async function attempt(fn) {
  try { await fn(); } catch (err) { say(err.message, true); }
}

function cell(row, content, cls) {
  const td = document.createElement("td");
  if (content instanceof Node) td.appendChild(content); else td.textContent = content === null || content === undefined ? "" : content;
  if (cls) td.className = cls;
  row.appendChild(td);
  return td;
}
function badge(status) {
  const span = document.createElement("span");
  span.className = `badge ${status || ""}`;
  span.textContent = status || "—";
  return span;
}
function link(href, label) {
  if (!href) return document.createTextNode("");
  const a = document.createElement("a");
  a.href = href; a.target = "_blank"; a.textContent = label; a.rel = "noopener";
  return a;
}
function button(label, onClick, testId) {
  const b = document.createElement("button");
  b.type = "button"; b.textContent = label;
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

/* ---------------- jobs overview ---------------- */
async function loadOverview() {
  const data = await api("GET", "/api/v1/jobs/status/overview");
  $("#generated").textContent = `as of ${when(data.generated_at)} UTC`;
  const body = $("#jobs-table tbody");
  body.innerHTML = "";
  for (const job of data.jobs) {
    const tr = document.createElement("tr");
    tr.dataset.jobId = job.id;
    cell(tr, frag(Object.assign(document.createElement("strong"), {textContent: job.title}),
      document.createElement("br"), Object.assign(document.createElement("span"),
        {className: "muted", textContent: `${job.family} · ${job.id}`})));
    cell(tr, `${job.schedule} (${job.timezone})`);
    cell(tr, job.active ? "yes" : "no");
    cell(tr, job.next_run ? when(job.next_run) : (job.active ? frag(Object.assign(document.createElement("span"),
      {className: "alarm-text", textContent: "none in Prefect"})) : ""));
    const last = job.last_run;
    cell(tr, last ? frag(badge(last.status), ` ${when(last.started_at)} · ${ms(last.duration_ms)}`,
      document.createElement("br"), Object.assign(document.createElement("span"),
        {className: "muted", textContent: last.error ? last.error.slice(0, 120) : counts(last.counts)})) : "never ran");
    cell(tr, `${job.runs_24h} runs · ${job.failures_24h} failed` + (job.rate_limited_24h ? ` · ${job.rate_limited_24h} rate-limited` : ""));
    const prefect = frag(last ? link(last.flow_run_url, "last run ↗") : "");
    for (const a of job.alarms || []) prefect.appendChild(Object.assign(document.createElement("div"),
      {className: "alarm-text", textContent: `alarm ${a.kind}: ${a.reason}`}));
    for (const d of job.drift) prefect.appendChild(Object.assign(document.createElement("div"), {className: "drift", textContent: d}));
    if ((job.alarms || []).length) tr.classList.add("alarm");
    cell(tr, prefect);
    cell(tr, frag(button("Trigger", () => triggerJob(job.id), `trigger-${job.id}`), " ",
      button("Runs", () => loadExecutions(job.id), `runs-${job.id}`)));
    body.appendChild(tr);
  }
}

async function triggerJob(jobId) {
  const run = await api("POST", `/api/v1/jobs/${encodeURIComponent(jobId)}/trigger`, {parameters: {}});
  const box = $("#message");
  box.className = "ok";
  box.textContent = `${jobId}: flow run ${run.flow_run_id} created (${run.state || "Scheduled"}) `;
  box.appendChild(link(run.flow_run_url, "open in Prefect ↗"));
  await loadOverview();
}

async function loadExecutions(jobId) {
  const data = await api("GET", `/api/v1/jobs/${encodeURIComponent(jobId)}/executions?limit=20`);
  $("#executions").hidden = false;
  $("#executions-job").textContent = `${jobId} (${data.total})`;
  const body = $("#executions tbody");
  body.innerHTML = "";
  for (const run of data.items) {
    const tr = document.createElement("tr");
    cell(tr, badge(run.status));
    cell(tr, when(run.started_at));
    cell(tr, ms(run.duration_ms));
    cell(tr, run.counts ? counts(run.counts) : JSON.stringify(run.metrics || {}).slice(0, 160));
    cell(tr, run.error || "");
    cell(tr, link(run.flow_run_url, "flow run ↗"));
    body.appendChild(tr);
  }
}

/* ---------------- brand scheduled jobs (seed 003) ---------------- */
function option(select, value, label) {
  const o = document.createElement("option");
  o.value = value; o.textContent = label;
  select.appendChild(o);
}
async function loadBrands() {
  state.brands = await api("GET", "/api/v1/trends/brands");
  const customers = [...new Set(state.brands.map((b) => b.customer_id))];
  for (const select of ["#filter-customer"]) {
    const s = $(select); const keep = s.value;
    s.innerHTML = ""; option(s, "", "all");
    customers.forEach((c) => option(s, c, c.slice(0, 8)));
    s.value = keep;
  }
  for (const [select, withAll] of [["#filter-brand", true], ["#create-brand", false], ["#score-brand", true]]) {
    const s = $(select); const keep = s.value;
    s.innerHTML = ""; if (withAll) option(s, "", "all");
    state.brands.forEach((b) => option(s, b.id, b.name));
    if (keep) s.value = keep;
  }
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
    const tr = document.createElement("tr");
    tr.dataset.scheduledId = job.id;
    cell(tr, brandName(job.brand_id));
    cell(tr, job.job_type);
    cell(tr, job.cron_expression);
    cell(tr, job.timezone);
    cell(tr, job.is_active ? "active" : "inactive", "active-cell");
    cell(tr, when(job.next_run_time));
    cell(tr, when(job.last_run_time));
    cell(tr, frag(
      button(job.is_active ? "Deactivate" : "Activate", async () => {
        await api("PUT", `/api/admin/scheduled-jobs/${job.id}`, {is_active: !job.is_active});
        say(`${job.job_type} for ${brandName(job.brand_id)} ${job.is_active ? "deactivated" : "activated"}`);
        await loadScheduled();
      }, "toggle"), " ",
      button("Trigger", async () => {
        const run = await api("POST", `/api/admin/scheduled-jobs/${job.id}/trigger`);
        say(`job run ${run.job_run_id} ${run.status} (flow run ${run.flow_run_id})`);
        await loadRuns();
      }, "trigger"), " ",
      button("Delete", async () => {
        if (!window.confirm(`Delete the ${job.job_type} schedule of ${brandName(job.brand_id)}?`)) return;
        await api("DELETE", `/api/admin/scheduled-jobs/${job.id}`);
        say("scheduled job deleted");
        await loadScheduled();
      }, "delete")));
    body.appendChild(tr);
  }
  await loadRuns();
}

async function loadRuns() {
  const runs = await api("GET", `/api/admin/job-runs?${filterQuery()}&limit=50`);
  const body = $("#runs-table tbody");
  body.innerHTML = "";
  for (const run of runs) {
    const tr = document.createElement("tr");
    tr.dataset.runId = run.id;
    cell(tr, badge(run.status));
    cell(tr, run.job_type);
    cell(tr, when(run.created_at));
    cell(tr, when(run.started_at));
    cell(tr, when(run.finished_at));
    cell(tr, Object.assign(document.createElement("pre"), {textContent: JSON.stringify(run.metrics || {})}));
    cell(tr, run.error_message || "");
    cell(tr, run.flow_run_id ? link(`${prefectUi}/runs/flow-run/${run.flow_run_id}`, "flow run ↗") : "");
    body.appendChild(tr);
  }
}
let prefectUi = "";

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

/* ---------------- start ---------------- */
async function start() {
  const scheduled = location.pathname.startsWith("/admin/scheduled-jobs");
  $("#page-jobs").hidden = scheduled;
  $("#page-scheduled").hidden = !scheduled;
  $(scheduled ? "#nav-scheduled" : "#nav-jobs").classList.add("current");
  $("#token").value = token();
  if (!token()) { say("Enter the bearer token (BRAND_ADMIN_TOKEN) to load the data.", true); return; }
  await loadBrands();
  if (scheduled) {
    const any = await api("GET", "/api/v1/jobs/status/overview?family=brands");
    prefectUi = any.prefect_ui_url || "";
    await loadScheduled();
  } else {
    await Promise.all([loadOverview(), loadTrends()]);
  }
  say("loaded");
}

$("#token-form").addEventListener("submit", (e) => {
  e.preventDefault();
  sessionStorage.setItem("jobpipes-token", $("#token").value.trim());
  attempt(start);
});
$("#refresh").addEventListener("click", () => attempt(loadOverview));
$("#trend-days").addEventListener("change", () => attempt(loadTrends));
$("#score-brand").addEventListener("change", () => attempt(loadScores));
$("#filter-customer").addEventListener("change", () => attempt(loadScheduled));
$("#filter-brand").addEventListener("change", () => attempt(loadScheduled));
$("#create-form").addEventListener("submit", (e) => attempt(() => createScheduled(e)));
attempt(start);
