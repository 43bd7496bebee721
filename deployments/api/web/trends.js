/* The trends charts of the operator page (uses api() and Charts from app.js / charts.js). */
"use strict";
const FAILED_STATUSES = new Set(["FAILED", "CRASHED"]);

async function loadTrends() {
  const days = $("#trend-days").value;
  const [runs, quota, prices] = await Promise.all([api("GET", `/api/v1/trends/runs?days=${days}`),
    api("GET", "/api/v1/trends/quota"), api("GET", `/api/v1/trends/coin-prices?days=${days}`)]);
  const jobs = Object.entries(runs.jobs);
  Charts.bars($("#chart-runs"), jobs.map(([name, points]) => ({label: name, value: points.length,
    bad: points.filter((p) => FAILED_STATUSES.has(p.status)).length})), {emptyText: "no runs yet"});
  Charts.line($("#chart-durations"), jobs.map(([name, points]) => ({name, points: points.map((p) =>
    ({x: new Date(p.t), y: p.duration_ms, bad: FAILED_STATUSES.has(p.status)}))})), {yMin: 0, emptyText: "no runs yet"});
  renderQuota(quota);
  renderPrices(prices);
  await loadScores();
}

function renderPrices(prices) {
  const box = $("#chart-prices");
  box.querySelectorAll(".chart").forEach((div) => Charts.clear(div));
  box.innerHTML = "";
  const coins = Object.entries(prices.coins).filter(([, points]) => points.length);
  if (!coins.length) { Charts.empty(box, "no prices collected yet"); return; }
  for (const [symbol, points] of coins) {
    const div = document.createElement("div");
    div.className = "chart";
    div.dataset.symbol = symbol;
    box.appendChild(div);
    Charts.line(div, [{name: symbol, points: points.map((p) => ({x: new Date(p.t), y: p.price_usd}))}],
      {height: 150, legend: false});
    const title = document.createElement("div");
    title.className = "chart-title";
    title.textContent = `${symbol} ${points[points.length - 1].price_usd.toLocaleString("en", {maximumSignificantDigits: 6})} USD`;
    div.prepend(title);
  }
}

function renderQuota(q) {
  const note = $("#quota-note");
  if (q.monthly_limit === null) {
    note.textContent = "(no ledger this period)";
    Charts.empty($("#chart-quota"), "no quota ledger yet");
    return;
  }
  note.textContent = `${q.used} / ${q.monthly_limit} used, ${q.rate_per_day}/day` +
    (q.runs_out_on ? ` — runs out on ${q.runs_out_on}${q.runs_out_this_month ? "" : " (after this period ends)"}` : " — not burning");
  const now = new Date();
  const used = [{x: new Date(q.period_start), y: 0}].concat(
    q.daily.map((d) => ({x: new Date(d.date + "T12:00:00Z"), y: d.used})).filter((p) => p.x < now));
  used.push({x: now, y: q.used});
  const extra = [];
  if (q.runs_out_on) {
    const end = new Date(Math.min(new Date(q.runs_out_on + "T23:59:00Z"), new Date(q.month_ends_on + "T23:59:59Z")));
    const projected = Math.min(q.monthly_limit, q.used + q.rate_per_day * (end - now) / 86400e3);
    extra.push({name: "projection", of: "calls used", points: [{x: now, y: q.used}, {x: end, y: projected}]});
  }
  Charts.line($("#chart-quota"), [{name: "calls used", points: used}], {yMin: 0, extra,
    hlines: [{y: q.monthly_limit, label: `limit ${q.monthly_limit}`}]});
}

async function loadScores() {
  const brand = $("#score-brand").value;
  const data = await api("GET", `/api/v1/trends/brand-scores${brand ? `?brand_id=${brand}` : ""}`);
  const series = (key) => Object.entries(data.brands).map(([name, points]) => ({
    name: data.own_brands.includes(name) ? `${name} (brand)` : name,
    points: points.map((p) => ({x: new Date(p.t), y: p[key]}))}));
  const opts = {height: 200, emptyText: "no data yet: no scored run of this brand"};
  Charts.line($("#chart-visibility"), series("visibility"), {...opts, yMin: 0, yMax: 1});
  Charts.line($("#chart-sov"), series("share_of_voice"), {...opts, yMin: 0, yMax: 1});
  Charts.line($("#chart-sentiment"), series("sentiment"), {...opts, yMin: -1, yMax: 1});
}
