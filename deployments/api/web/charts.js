/* Hand-written SVG charts (no library, works offline): lines over time and bars. */
"use strict";
const Charts = (() => {
  const NS = "http://www.w3.org/2000/svg";
  const COLORS = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#ca8a04", "#db2777",
                  "#4b5563", "#65a30d"];
  const color = (i) => COLORS[i % COLORS.length];

  function el(name, attrs, parent) {
    const node = document.createElementNS(NS, name);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (parent) parent.appendChild(node);
    return node;
  }
  function text(parent, x, y, content, attrs) {
    const node = el("text", Object.assign({x, y, "font-size": 10, fill: "#667085"}, attrs || {}), parent);
    node.textContent = content;
    return node;
  }
  function empty(container, message) {
    container.innerHTML = "";
    const div = document.createElement("div");
    div.className = "empty";
    div.textContent = message || "no data yet";
    container.appendChild(div);
  }
  function fmt(v) {
    if (v === null || v === undefined || Number.isNaN(v)) return "";
    const a = Math.abs(v);
    if (a >= 1e6) return (v / 1e6).toFixed(1) + "M";
    if (a >= 1e4) return (v / 1e3).toFixed(0) + "k";
    if (a >= 100) return v.toFixed(0);
    if (a >= 1) return v.toFixed(2);
    return v.toFixed(3);
  }
  function legend(container, names) {
    const div = document.createElement("div");
    div.className = "legend";
    names.forEach((name, i) => {
      const span = document.createElement("span");
      const swatch = document.createElement("i");
      swatch.style.background = color(i);
      span.appendChild(swatch);
      span.appendChild(document.createTextNode(name));
      div.appendChild(span);
    });
    container.appendChild(div);
  }

  /* series: [{name, points: [{x: Date, y: number}]}]; opts: {width, height, hlines: [{y, label}],
     extra: [{name, points, dashed}], yMin, yMax, legend} */
  function line(container, series, opts) {
    opts = opts || {};
    const all = series.concat(opts.extra || []).flatMap((s) => s.points).filter((p) => p.y !== null && p.y !== undefined);
    if (!all.length) return empty(container, opts.emptyText);
    container.innerHTML = "";
    const W = opts.width || 460, H = opts.height || 220, L = 44, R = 10, T = 10, B = 24;
    const xs = all.map((p) => +p.x), ys = all.map((p) => p.y).concat((opts.hlines || []).map((h) => h.y));
    let x0 = Math.min(...xs), x1 = Math.max(...xs);
    if (x0 === x1) { x0 -= 3600e3; x1 += 3600e3; }
    let y0 = opts.yMin !== undefined ? opts.yMin : Math.min(...ys), y1 = opts.yMax !== undefined ? opts.yMax : Math.max(...ys);
    if (y0 === y1) { y0 -= 1; y1 += 1; }
    const sx = (x) => L + (W - L - R) * (x - x0) / (x1 - x0);
    const sy = (y) => T + (H - T - B) * (1 - (y - y0) / (y1 - y0));
    const svg = el("svg", {viewBox: `0 0 ${W} ${H}`, role: "img"}, container);
    el("line", {x1: L, y1: H - B, x2: W - R, y2: H - B, stroke: "#d0d5dd"}, svg);
    el("line", {x1: L, y1: T, x2: L, y2: H - B, stroke: "#d0d5dd"}, svg);
    for (const v of [y0, (y0 + y1) / 2, y1]) {
      text(svg, L - 4, sy(v) + 3, fmt(v), {"text-anchor": "end"});
      el("line", {x1: L, y1: sy(v), x2: W - R, y2: sy(v), stroke: "#f2f4f7"}, svg);
    }
    const day = (t) => new Date(t).toISOString().slice(5, 16).replace("T", " ");
    text(svg, L, H - 8, day(x0));
    text(svg, W - R, H - 8, day(x1), {"text-anchor": "end"});
    for (const h of opts.hlines || []) {
      el("line", {x1: L, y1: sy(h.y), x2: W - R, y2: sy(h.y), stroke: "#c4320a", "stroke-dasharray": "4 3"}, svg);
      text(svg, W - R - 2, sy(h.y) - 3, h.label, {"text-anchor": "end", fill: "#c4320a"});
    }
    const draw = (s, i, dashed) => {
      const pts = s.points.filter((p) => p.y !== null && p.y !== undefined).sort((a, b) => a.x - b.x);
      if (!pts.length) return;
      el("polyline", {points: pts.map((p) => `${sx(+p.x).toFixed(1)},${sy(p.y).toFixed(1)}`).join(" "),
        fill: "none", stroke: color(i), "stroke-width": 1.8, "stroke-dasharray": dashed ? "5 4" : "none",
        "data-series": s.name}, svg);
      for (const p of pts) {
        const dot = el("circle", {cx: sx(+p.x).toFixed(1), cy: sy(p.y).toFixed(1), r: 2.4,
          fill: p.bad ? "#c4320a" : color(i)}, svg);
        el("title", {}, dot).textContent = `${s.name}: ${fmt(p.y)} at ${new Date(p.x).toISOString()}`;
      }
    };
    series.forEach((s, i) => draw(s, i, false));
    (opts.extra || []).forEach((s) => draw(s, series.findIndex((x) => x.name === s.of) || 0, true));
    if (opts.legend !== false) legend(container, series.map((s) => s.name));
  }

  /* bars: [{label, value, bad}] */
  function bars(container, items, opts) {
    opts = opts || {};
    if (!items.length) return empty(container, opts.emptyText);
    container.innerHTML = "";
    const W = opts.width || 460, rowH = 18, L = 170, R = 40, H = items.length * rowH + 10;
    const max = Math.max(1, ...items.map((b) => b.value));
    const svg = el("svg", {viewBox: `0 0 ${W} ${H}`, role: "img"}, container);
    items.forEach((b, i) => {
      const y = 5 + i * rowH, w = (W - L - R) * b.value / max, wb = (W - L - R) * (b.bad || 0) / max;
      text(svg, L - 6, y + 12, b.label, {"text-anchor": "end", fill: "#1d2430"});
      el("rect", {x: L, y: y + 2, width: Math.max(w, 1), height: rowH - 6, fill: "#2563eb", "data-bar": b.label}, svg);
      if (b.bad) el("rect", {x: L, y: y + 2, width: Math.max(wb, 1), height: rowH - 6, fill: "#c4320a"}, svg);
      text(svg, L + w + 4, y + 12, `${b.value}${b.bad ? ` (${b.bad} failed)` : ""}`);
    });
  }

  return {line, bars, empty};
})();
