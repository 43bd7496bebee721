/* The page's charts, drawn by Chart.js (vendor/chart.js, time axes by vendor/chartjs-adapter-date-fns):
   lines over time and horizontal bars, with axes, tooltips, legends and a "no data yet" state.
   This file only says what to draw; the library draws it. */
"use strict";
const Charts = (() => {
  const COLORS = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#ca8a04", "#db2777",
                  "#4b5563", "#65a30d"];
  const BAD = "#c4320a";
  const color = (i) => COLORS[i % COLORS.length];
  const HOUR = 3600e3;

  Chart.defaults.font.family = "system-ui, sans-serif";
  Chart.defaults.font.size = 11;
  Chart.defaults.color = "#475467";
  Chart.defaults.animation = false;  // an operations page: the picture is the data, at once
  Chart.defaults.maintainAspectRatio = false;

  /* An empty container for a new chart of `height` px: the old chart (if any) destroyed first. */
  function canvasIn(container, height) {
    clear(container);
    const box = document.createElement("div");
    box.className = "chart-box";
    box.style.height = `${height}px`;
    const canvas = document.createElement("canvas");
    box.appendChild(canvas);
    container.appendChild(box);
    return canvas;
  }
  function clear(container) {
    container.querySelectorAll("canvas").forEach((c) => { const chart = Chart.getChart(c); if (chart) chart.destroy(); });
    container.innerHTML = "";
  }
  function empty(container, message) {
    clear(container);
    const div = document.createElement("div");
    div.className = "empty";
    div.textContent = message || "no data yet";
    container.appendChild(div);
  }

  /* Value-axis bounds: fixed ones as given; otherwise a band around the data (5 % of its span, or
     of its value when flat) that never goes below 0 for data that never does. Chart.js then
     rounds the band out to its ticks. */
  function valueBounds(values, opts) {
    const out = {};
    if (opts.yMin !== undefined) out.min = opts.yMin;
    if (opts.yMax !== undefined) out.max = opts.yMax;
    if (!values.length || (out.min !== undefined && out.max !== undefined)) return out;
    const lo = Math.min(...values), hi = Math.max(...values);
    const pad = lo === hi ? (Math.abs(lo) * 0.05 || 1) : (hi - lo) * 0.05;
    if (out.min === undefined) out.suggestedMin = lo >= 0 ? Math.max(0, lo - pad) : lo - pad;
    if (out.max === undefined) out.suggestedMax = hi + pad;
    return out;
  }
  /* Time-axis bounds: a single moment gets an hour around it instead of a zero-width axis. */
  function timeBounds(times) {
    if (!times.length) return {};
    const lo = Math.min(...times), hi = Math.max(...times);
    return lo === hi ? {min: lo - HOUR / 2, max: hi + HOUR / 2} : {};
  }
  const number = (v) => (v === null || v === undefined ? "" : Math.abs(v) >= 1000 ? Math.round(v).toLocaleString("en")
    : (+v.toPrecision(4)).toString());

  /* series: [{name, points: [{x: Date, y, bad}]}]; opts: {height, yMin, yMax, legend, emptyText,
     extra: [{name, of, points}] drawn dashed in the colour of series `of`, hlines: [{y, label}]} */
  function line(container, series, opts) {
    opts = opts || {};
    const has = (p) => p.y !== null && p.y !== undefined && !Number.isNaN(p.y);
    const drawn = series.concat(opts.extra || []).map((s) => ({...s, points: s.points.filter(has)}));
    const points = drawn.flatMap((s) => s.points);
    if (!points.length) return empty(container, opts.emptyText);
    const times = points.map((p) => +p.x);
    const t0 = Math.min(...times), t1 = Math.max(...times);
    const canvas = canvasIn(container, opts.height || 220);
    const datasets = drawn.map((s, i) => {
      const extra = i >= series.length;
      const c = color(extra ? Math.max(0, series.findIndex((x) => x.name === s.of)) : i);
      const pts = s.points.slice().sort((a, b) => a.x - b.x);
      return {label: s.name, data: pts.map((p) => ({x: +p.x, y: p.y})), borderColor: c, backgroundColor: c,
        borderWidth: 1.8, borderDash: extra ? [5, 4] : [], tension: 0, pointRadius: extra ? 0 : 2.5,
        pointHoverRadius: 4, pointBackgroundColor: pts.map((p) => (p.bad ? BAD : c))};
    });
    for (const h of opts.hlines || []) {
      datasets.push({label: h.label, data: [{x: t0, y: h.y}, {x: t1 === t0 ? t0 + HOUR / 2 : t1, y: h.y}],
        borderColor: BAD, backgroundColor: BAD, borderWidth: 1.2, borderDash: [4, 3], pointRadius: 0});
    }
    const values = datasets.flatMap((d) => d.data.map((p) => p.y));
    return new Chart(canvas, {
      type: "line",
      data: {datasets},
      options: {
        parsing: false, normalized: true, spanGaps: true,
        interaction: {mode: "nearest", intersect: false},
        scales: {
          x: {type: "time", ...timeBounds(times),
            time: {tooltipFormat: "yyyy-MM-dd HH:mm", displayFormats: {minute: "HH:mm", hour: "HH:mm", day: "MMM d"}},
            ticks: {maxRotation: 0, autoSkipPadding: 12}, grid: {color: "#f2f4f7"}},
          y: {...valueBounds(values, opts), ticks: {callback: number, maxTicksLimit: 6}, grid: {color: "#eaecf0"}},
        },
        plugins: {
          legend: {display: opts.legend !== false && datasets.length > 1, position: "bottom",
            labels: {boxWidth: 12, boxHeight: 2}},
          tooltip: {callbacks: {label: (ctx) => `${ctx.dataset.label}: ${number(ctx.parsed.y)}`}},
        },
      },
    });
  }

  /* The total (and failures) at the end of each bar, inside the padding kept for it. */
  const barTotals = (items, text) => ({
    id: "barTotals",
    afterDatasetsDraw(chart) {
      const {ctx, scales: {x, y}} = chart;
      ctx.save();
      ctx.font = Chart.helpers.toFont(Chart.defaults.font).string;
      ctx.fillStyle = "#1d2430";
      ctx.textBaseline = "middle";
      items.forEach((item, i) => ctx.fillText(text(item), x.getPixelForValue(item.value) + 4, y.getPixelForValue(i)));
      ctx.restore();
    },
  });

  /* items: [{label, value, bad}]: one horizontal bar each, its failures (`bad`) in red. */
  function bars(container, items, opts) {
    opts = opts || {};
    if (!items.length) return empty(container, opts.emptyText);
    const canvas = canvasIn(container, Math.max(120, 26 * items.length + 56));
    const text = (b) => `${b.value}${b.bad ? ` (${b.bad} failed)` : ""}`;
    const widest = Math.max(...items.map((b) => text(b).length));
    return new Chart(canvas, {
      type: "bar",
      data: {labels: items.map((b) => b.label), datasets: [
        {label: opts.okLabel || "runs", data: items.map((b) => b.value - (b.bad || 0)), backgroundColor: "#2563eb"},
        {label: opts.badLabel || "failed", data: items.map((b) => b.bad || 0), backgroundColor: BAD},
      ]},
      plugins: [barTotals(items, text)],
      options: {
        indexAxis: "y",
        layout: {padding: {right: 8 + 7 * widest}},
        scales: {x: {stacked: true, beginAtZero: true, ticks: {precision: 0}, grid: {color: "#eaecf0"}},
                 y: {stacked: true, grid: {display: false}, ticks: {autoSkip: false}}},
        plugins: {
          legend: {position: "bottom", labels: {boxWidth: 12}},
          tooltip: {mode: "index", callbacks: {footer: (ctx) => `total: ${items[ctx[0].dataIndex].value}`}},
        },
      },
    });
  }

  return {line, bars, empty, clear};
})();
