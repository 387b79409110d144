"""A self-contained interactive HTML map of the clusters: works offline, no CDN.

One file: the data as JSON and a small canvas renderer, both inlined. Pan (drag), zoom
(wheel, or the +/- buttons), hover a point for its text and label, search clusters by label,
toggle clusters on and off in the legend.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from .clustering import NOISE
from .figure import cluster_centres
from .log import log
from .palette import NOISE_COLOUR, cluster_colours

MAX_HOVER_CHARS = 300
MAP_MAX_POINTS = 50_000  # above this many texts the map shows a sample (~15 MB of HTML)

TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>__TITLE__</title>
<style>
  body { margin: 0; font: 14px system-ui, sans-serif; display: flex; height: 100vh; }
  #side { width: 300px; overflow-y: auto; padding: 8px; border-right: 1px solid #ddd; }
  #side h1 { font-size: 16px; margin: 4px 0 8px; }
  #search { width: 100%; box-sizing: border-box; padding: 4px; margin-bottom: 4px; }
  #status { color: #555; font-size: 12px; margin-bottom: 8px; }
  #legend label { display: flex; align-items: center; gap: 6px; padding: 2px 0; cursor: pointer; }
  #legend .swatch { width: 10px; height: 10px; border-radius: 5px; flex: none; }
  #legend .size { margin-left: auto; color: #777; font-size: 12px; }
  #legend label.match { font-weight: bold; }
  #main { flex: 1; position: relative; }
  canvas { width: 100%; height: 100%; display: block; cursor: grab; }
  #tooltip { position: absolute; pointer-events: none; background: #fff; border: 1px solid #999;
             padding: 6px; max-width: 360px; font-size: 12px; display: none;
             box-shadow: 0 1px 4px rgba(0,0,0,.2); }
  #tooltip b { display: block; margin-bottom: 4px; }
  #zoom { position: absolute; right: 8px; top: 8px; }
</style>
</head>
<body>
<div id="side">
  <h1>__TITLE__</h1>
  <input id="search" type="search" placeholder="Search clusters by label">
  <div id="status"></div>
  <div id="legend"></div>
</div>
<div id="main">
  <canvas id="map"></canvas>
  <div id="zoom"><button id="zoom-in">+</button> <button id="zoom-out">-</button>
    <button id="reset">reset</button></div>
  <div id="tooltip"></div>
</div>
<script id="data" type="application/json">__DATA__</script>
<script>
(function () {
  "use strict";
  const data = JSON.parse(document.getElementById("data").textContent);
  const canvas = document.getElementById("map");
  const ctx = canvas.getContext("2d");
  const tooltip = document.getElementById("tooltip");
  const search = document.getElementById("search");
  const status = document.getElementById("status");
  const n = data.x.length;
  const clusters = data.clusters;  // [{id, label, size, colour}]
  const byId = new Map(clusters.map(c => [c.id, c]));
  const visible = new Map(clusters.map(c => [c.id, true]));
  let highlighted = null;  // Set of cluster ids matching the search, or null
  let view = null;         // {scale, ox, oy}: screen = (data - origin) * scale + offset
  let drawn = 0;

  function fit() {
    let minX = Infinity, maxX = -Infinity, minY = Infinity, maxY = -Infinity;
    for (let i = 0; i < n; i++) {
      minX = Math.min(minX, data.x[i]); maxX = Math.max(maxX, data.x[i]);
      minY = Math.min(minY, data.y[i]); maxY = Math.max(maxY, data.y[i]);
    }
    if (!n) { minX = minY = 0; maxX = maxY = 1; }
    const w = canvas.clientWidth, h = canvas.clientHeight, pad = 20;
    const scale = Math.min((w - 2 * pad) / Math.max(maxX - minX, 1e-9),
                           (h - 2 * pad) / Math.max(maxY - minY, 1e-9));
    view = {scale: scale, ox: pad - minX * scale + (w - 2 * pad - (maxX - minX) * scale) / 2,
            oy: h - pad + minY * scale - (h - 2 * pad - (maxY - minY) * scale) / 2};
  }
  const sx = i => data.x[i] * view.scale + view.ox;
  const sy = i => view.oy - data.y[i] * view.scale;

  function resize() {
    const ratio = window.devicePixelRatio || 1;
    canvas.width = canvas.clientWidth * ratio;
    canvas.height = canvas.clientHeight * ratio;
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    if (!view) fit();
    draw();
  }

  function draw() {
    ctx.clearRect(0, 0, canvas.clientWidth, canvas.clientHeight);
    const radius = Math.max(1.5, Math.min(5, 30000 / Math.max(n, 1)));
    drawn = 0;
    for (const pass of [0, 1]) {  // noise and dimmed points first, the rest on top
      for (let i = 0; i < n; i++) {
        const c = data.c[i];
        if (!visible.get(c)) continue;
        const dim = c === __NOISE__ || (highlighted !== null && !highlighted.has(c));
        if ((pass === 0) !== dim) continue;
        ctx.globalAlpha = dim ? 0.35 : 0.85;
        ctx.fillStyle = dim && c !== __NOISE__ ? "#dddddd" : byId.get(c).colour;
        ctx.beginPath();
        ctx.arc(sx(i), sy(i), radius, 0, 2 * Math.PI);
        ctx.fill();
        drawn++;
      }
    }
    ctx.globalAlpha = 1;
    ctx.font = "12px system-ui, sans-serif";
    ctx.textAlign = "center";
    for (const c of clusters) {
      if (c.id === __NOISE__ || !visible.get(c.id) || c.cx === null) continue;
      if (highlighted && !highlighted.has(c.id)) continue;
      const x = c.cx * view.scale + view.ox, y = view.oy - c.cy * view.scale;
      const w = ctx.measureText(c.label).width + 8;
      ctx.fillStyle = "rgba(255,255,255,0.85)";
      ctx.fillRect(x - w / 2, y - 9, w, 17);
      ctx.fillStyle = "#222";
      ctx.fillText(c.label, x, y + 4);
    }
    canvas.dataset.drawn = String(drawn);
  }

  function nearest(px, py) {
    let best = -1, bestD = 64;  // within 8 px
    for (let i = 0; i < n; i++) {
      if (!visible.get(data.c[i])) continue;
      const dx = sx(i) - px, dy = sy(i) - py, d = dx * dx + dy * dy;
      if (d < bestD) { bestD = d; best = i; }
    }
    return best;
  }

  function escapeHtml(s) {
    return s.replace(/[&<>"']/g, ch => ({"&": "&amp;", "<": "&lt;", ">": "&gt;",
                                          '"': "&quot;", "'": "&#39;"}[ch]));
  }

  let drag = null;
  canvas.addEventListener("mousedown", e => { drag = {x: e.clientX, y: e.clientY}; });
  window.addEventListener("mouseup", () => { drag = null; });
  canvas.addEventListener("mousemove", e => {
    const r = canvas.getBoundingClientRect(), px = e.clientX - r.left, py = e.clientY - r.top;
    if (drag) {
      view.ox += e.clientX - drag.x; view.oy += e.clientY - drag.y;
      drag = {x: e.clientX, y: e.clientY};
      tooltip.style.display = "none";
      draw();
      return;
    }
    const i = nearest(px, py);
    if (i < 0) { tooltip.style.display = "none"; return; }
    const c = byId.get(data.c[i]);
    tooltip.innerHTML = "<b>" + escapeHtml(c.label) + "</b>" + escapeHtml(data.t[i]);
    tooltip.style.left = Math.min(px + 12, canvas.clientWidth - 370) + "px";
    tooltip.style.top = (py + 12) + "px";
    tooltip.style.display = "block";
    tooltip.dataset.index = String(i);
  });
  canvas.addEventListener("mouseleave", () => { tooltip.style.display = "none"; });

  function zoom(factor, px, py) {
    view.ox = px - (px - view.ox) * factor;
    view.oy = py - (py - view.oy) * factor;
    view.scale *= factor;
    draw();
  }
  canvas.addEventListener("wheel", e => {
    e.preventDefault();
    const r = canvas.getBoundingClientRect();
    zoom(e.deltaY < 0 ? 1.2 : 1 / 1.2, e.clientX - r.left, e.clientY - r.top);
  }, {passive: false});
  document.getElementById("zoom-in").onclick = () =>
    zoom(1.2, canvas.clientWidth / 2, canvas.clientHeight / 2);
  document.getElementById("zoom-out").onclick = () =>
    zoom(1 / 1.2, canvas.clientWidth / 2, canvas.clientHeight / 2);
  document.getElementById("reset").onclick = () => { fit(); draw(); };

  const legend = document.getElementById("legend");
  for (const c of clusters) {
    const row = document.createElement("label");
    row.dataset.cluster = String(c.id);
    const box = document.createElement("input");
    box.type = "checkbox"; box.checked = true;
    box.onchange = () => { visible.set(c.id, box.checked); draw(); };
    const swatch = document.createElement("span");
    swatch.className = "swatch"; swatch.style.background = c.colour;
    const name = document.createElement("span");
    name.textContent = c.label;
    const size = document.createElement("span");
    size.className = "size"; size.textContent = String(c.size);
    row.append(box, swatch, name, size);
    legend.append(row);
  }

  function applySearch() {
    const q = search.value.trim().toLowerCase();
    highlighted = q ? new Set(clusters.filter(c => c.label.toLowerCase().includes(q))
                                      .map(c => c.id)) : null;
    for (const row of legend.children) {
      row.classList.toggle("match", !!highlighted && highlighted.has(Number(row.dataset.cluster)));
    }
    const shown = highlighted ? highlighted.size : clusters.length;
    status.textContent = q ? shown + " cluster(s) match \\u201c" + search.value.trim() + "\\u201d"
                           : n + " texts, " + (clusters.length - 1) + " clusters";
    status.dataset.matches = String(shown);
    draw();
  }
  search.addEventListener("input", applySearch);

  window.addEventListener("resize", resize);
  resize();
  applySearch();
  // For scripts and tests: where text i is drawn, in page coordinates.
  window.textClusterMap = {
    count: n,
    position: i => {
      const r = canvas.getBoundingClientRect();
      return {x: r.left + sx(i), y: r.top + sy(i)};
    },
  };
  document.body.dataset.ready = "true";
})();
</script>
</body>
</html>
"""


def build_map_html(
    points: np.ndarray,
    labels: np.ndarray,
    texts: list[str],
    names: Mapping[int, str],
    *,
    title: str = "Text clusters",
    sizes: Mapping[int, int] | None = None,
) -> str:
    """The map as one HTML string: ``points`` ``(n, 2)``, ``labels`` ``(n,)``, the texts
    (cut to ``MAX_HOVER_CHARS`` for the tooltip) and each cluster's plain-text label.
    ``sizes`` gives the clusters' true sizes when the points are a sample."""
    centres = cluster_centres(points, labels)
    counted = sizes or {}
    size_of = {c: int(counted.get(c, (labels == c).sum())) for c in centres}
    colour_of = cluster_colours(size_of)  # the same colours as the PNG's
    clusters = [
        {
            "id": c,
            "label": str(names.get(c, c)),
            "size": size_of[c],
            "colour": colour_of[c],
            "cx": round(x, 4),
            "cy": round(y, 4),
        }
        for c, (x, y) in centres.items()
    ]
    noise = {
        "id": NOISE,
        "label": f"noise: {names.get(NOISE, 'noise')}",
        "size": int(counted.get(NOISE, (labels == NOISE).sum())),
        "colour": NOISE_COLOUR,
        "cx": None,
        "cy": None,
    }
    clusters.append(noise)
    data = {
        "x": [round(float(v), 4) for v in points[:, 0]] if len(points) else [],
        "y": [round(float(v), 4) for v in points[:, 1]] if len(points) else [],
        "c": [int(c) for c in labels],
        "t": [_cut(t) for t in texts],
        "clusters": clusters,
    }
    payload = json.dumps(data, ensure_ascii=False).replace("</", "<\\/")  # safe in <script>
    return (
        TEMPLATE.replace("__TITLE__", html.escape(title))
        .replace("__NOISE__", str(NOISE))
        .replace("__DATA__", payload)
    )


def _cut(text: str | None) -> str:
    flat = " ".join(str(text or "").split())
    return flat if len(flat) <= MAX_HOVER_CHARS else flat[: MAX_HOVER_CHARS - 1] + "…"


def save_cluster_map(
    points: np.ndarray,
    labels: np.ndarray,
    texts: list[str],
    names: Mapping[int, str],
    path: str | Path,
    *,
    title: str = "Text clusters",
    max_points: int = MAP_MAX_POINTS,
) -> Path:
    """Write :func:`build_map_html` to ``path``; returns the path. Above ``max_points``
    texts the map shows an evenly spaced (deterministic) sample of them, says so in its
    title, and keeps the true cluster sizes: a browser stays responsive and the file small."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    sizes = None
    n = len(labels)
    if n > max_points:
        ids, counts = np.unique(labels, return_counts=True)
        sizes = {int(c): int(k) for c, k in zip(ids, counts, strict=True)}
        keep = np.linspace(0, n - 1, max_points).round().astype(np.int64)
        points, labels = points[keep], labels[keep]
        texts = [texts[i] for i in keep]
        title = f"{title} ({max_points:,} of {n:,} texts shown)"
        log(f"interactive map: {n} texts, showing an evenly spaced sample of {max_points}")
    html_text = build_map_html(points, labels, texts, names, title=title, sizes=sizes)
    out.write_text(html_text, encoding="utf-8")
    return out
