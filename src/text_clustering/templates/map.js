// The interactive map of text_clustering (html_map.py inlines this file and the data).
// Points: WebGL on a GPU (gl.POINTS, one colour and one state byte per point, pan/zoom as
// uniforms), else a Canvas2D pixel rasteriser (faster than WebGL in software). Labels: DOM elements, one layer of the topic
// hierarchy per zoom range, placed greedily largest first so that no two overlap.
(function () {
  "use strict";
  const data = JSON.parse(document.getElementById("data").textContent);
  const canvas = document.getElementById("map");
  const main = document.getElementById("main");
  const tooltip = document.getElementById("tooltip");
  const search = document.getElementById("search");
  const status = document.getElementById("status");
  const labelBox = document.getElementById("labels");

  function decode(b64, Type) {
    const bin = atob(b64), bytes = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    return new Type(bytes.buffer);
  }
  const n = data.n;
  const xy = n ? decode(data.xy, Float32Array) : new Float32Array(0);
  const ci = n ? decode(data.c, Int32Array) : new Int32Array(0);  // index into data.clusters
  const clusters = data.clusters;  // [{id, label, size, colour, topic}]
  const layers = data.layers;      // coarse to fine; the last is the clusters
  const NOISE = clusters.findIndex(c => c.id === -1);
  const visible = clusters.map(() => true);
  let focus = null;       // Uint8Array(n): 1 = in the search matches or the selection
  let selection = null;   // Int32Array of selected point indices
  let view = null;        // screen = (x * scale + ox, oy - y * scale), CSS pixels
  let fitScale = 1;
  let drawn = 0;
  let lassoMode = false;

  // ---- colours and per-point state (0 hidden, 1 dimmed, 2 noise, 3 shown) ----
  const rgb = clusters.map(c => [1, 3, 5].map(k => parseInt(c.colour.slice(k, k + 2), 16)));
  const state = new Uint8Array(n);
  function updateState() {
    drawn = 0;
    for (let i = 0; i < n; i++) {
      const c = ci[i];
      let s = !visible[c] ? 0 : (focus && !focus[i]) ? 1 : c === NOISE ? 2 : 3;
      state[i] = s;
      if (s) drawn++;
    }
    renderer.state();
    canvas.dataset.drawn = String(drawn);
  }

  // ---- WebGL renderer ----
  function softwareWebgl() {  // probed on a canvas of its own: a canvas keeps its first context
    const probe = document.createElement("canvas").getContext("webgl");
    if (!probe) return true;
    const info = probe.getExtension("WEBGL_debug_renderer_info");
    const name = info ? String(probe.getParameter(info.UNMASKED_RENDERER_WEBGL)) : "";
    const lose = probe.getExtension("WEBGL_lose_context");
    if (lose) lose.loseContext();
    return /swiftshader|llvmpipe|softpipe|software/i.test(name);
  }
  function webgl(hardwareOnly) {
    // hardwareOnly: none when WebGL would run in software (SwiftShader, llvmpipe): there the
    // pixel rasteriser below redraws 100k points several times faster (bench/maps.py)
    if (hardwareOnly && softwareWebgl()) return null;
    const gl = canvas.getContext("webgl", {antialias: false, preserveDrawingBuffer: true,
                                           failIfMajorPerformanceCaveat: hardwareOnly});
    if (!gl) return null;
    const vs = `attribute vec2 p; attribute vec3 col; attribute float st;
      uniform vec3 v; uniform vec2 size; uniform float ps; varying vec4 c;
      void main() {
        vec2 s = vec2(p.x * v.x + v.y, v.z - p.y * v.x);
        float z = st > 2.5 ? 0.0 : st > 1.5 ? 0.5 : 0.7;
        gl_Position = st < 0.5 ? vec4(2.0, 2.0, 2.0, 1.0)
                    : vec4(s.x / size.x * 2.0 - 1.0, 1.0 - s.y / size.y * 2.0, z, 1.0);
        gl_PointSize = st > 2.5 ? ps : ps * 0.8;
        c = st > 2.5 ? vec4(col / 255.0, 0.9) : st > 1.5 ? vec4(col / 255.0, 0.6)
                     : vec4(0.85, 0.85, 0.85, 0.6);
      }`;
    const fs = `precision mediump float; varying vec4 c;
      void main() { vec2 d = gl_PointCoord - 0.5; if (dot(d, d) > 0.25) discard;
                    gl_FragColor = c; }`;
    function shader(type, src) {
      const s = gl.createShader(type); gl.shaderSource(s, src); gl.compileShader(s);
      if (!gl.getShaderParameter(s, gl.COMPILE_STATUS)) throw new Error(gl.getShaderInfoLog(s));
      return s;
    }
    const prog = gl.createProgram();
    gl.attachShader(prog, shader(gl.VERTEX_SHADER, vs));
    gl.attachShader(prog, shader(gl.FRAGMENT_SHADER, fs));
    gl.linkProgram(prog);
    gl.useProgram(prog);
    function buffer(array, name, size, type, normalise) {
      const b = gl.createBuffer();
      gl.bindBuffer(gl.ARRAY_BUFFER, b);
      gl.bufferData(gl.ARRAY_BUFFER, array, gl.STATIC_DRAW);
      const loc = gl.getAttribLocation(prog, name);
      gl.enableVertexAttribArray(loc);
      gl.vertexAttribPointer(loc, size, type, normalise, 0, 0);
      return b;
    }
    const colours = new Uint8Array(n * 3);
    for (let i = 0; i < n; i++) colours.set(rgb[ci[i]], i * 3);
    buffer(xy, "p", 2, gl.FLOAT, false);
    buffer(colours, "col", 3, gl.UNSIGNED_BYTE, false);
    const stateBuffer = buffer(state, "st", 1, gl.UNSIGNED_BYTE, false);
    const u = name => gl.getUniformLocation(prog, name);
    gl.enable(gl.DEPTH_TEST);
    gl.depthFunc(gl.LEQUAL);
    gl.enable(gl.BLEND);
    gl.blendFunc(gl.SRC_ALPHA, gl.ONE_MINUS_SRC_ALPHA);
    return {
      kind: "webgl",
      state() {
        gl.bindBuffer(gl.ARRAY_BUFFER, stateBuffer);
        gl.bufferSubData(gl.ARRAY_BUFFER, 0, state);
      },
      draw(w, h, ratio, size) {
        gl.viewport(0, 0, canvas.width, canvas.height);
        gl.clearColor(1, 1, 1, 1);
        gl.clear(gl.COLOR_BUFFER_BIT | gl.DEPTH_BUFFER_BIT);
        gl.uniform3f(u("v"), view.scale, view.ox, view.oy);
        gl.uniform2f(u("size"), w, h);
        gl.uniform1f(u("ps"), size * ratio);
        gl.drawArrays(gl.POINTS, 0, n);
      },
      sync() { gl.readPixels(0, 0, 1, 1, gl.RGBA, gl.UNSIGNED_BYTE, new Uint8Array(4)); },
    };
  }

  // ---- Canvas2D fallback: points written as small squares into one ImageData ----
  function pixels() {
    const ctx = canvas.getContext("2d");
    const packed = rgb.map(([r, g, b]) => (255 << 24) | (b << 16) | (g << 8) | r);
    const grey = (255 << 24) | (217 << 16) | (217 << 8) | 217;
    return {
      kind: "canvas2d",
      state() {},
      draw(w, h, ratio, size) {
        const W = canvas.width, H = canvas.height;
        const image = ctx.createImageData(W, H), px = new Uint32Array(image.data.buffer);
        px.fill(0xffffffff);
        const r = Math.max(1, Math.round(size * ratio / 2)), s = view.scale * ratio;
        const ox = view.ox * ratio, oy = view.oy * ratio;
        const span = [];  // a round dot: the half-width of each of its rows
        for (let dy = -r; dy < r; dy++) span.push(Math.round(Math.sqrt(r * r - (dy + 0.5) * (dy + 0.5))));
        for (const pass of [1, 2, 3]) {  // dimmed, then noise, then the rest on top
          for (let i = 0; i < n; i++) {
            if (state[i] !== pass) continue;
            const x = Math.round(xy[2 * i] * s + ox), y = Math.round(oy - xy[2 * i + 1] * s);
            if (x < -r || y < -r || x >= W + r || y >= H + r) continue;
            const colour = pass === 1 ? grey : packed[ci[i]];
            for (let yy = Math.max(0, y - r); yy < Math.min(H, y + r); yy++) {
              const half = span[yy - y + r];
              px.fill(colour, yy * W + Math.max(0, x - half), yy * W + Math.min(W, x + half));
            }
          }
        }
        ctx.putImageData(image, 0, 0);
      },
      sync() {},
    };
  }

  // ?webgl forces WebGL even in software, ?canvas2d the pixel rasteriser
  const params = new URLSearchParams(location.search);
  let renderer = null;
  try { renderer = params.has("canvas2d") ? null : webgl(!params.has("webgl")); }
  catch (e) { renderer = null; }
  if (!renderer) renderer = pixels();
  canvas.dataset.renderer = renderer.kind;

  // ---- labels: one element per label of every layer, measured once ----
  const labelEls = layers.map((layer, li) => layer.labels.map((lab, k) => {
    const el = document.createElement("div");
    el.className = "label";
    el.textContent = lab.label;
    el.dataset.layer = String(li);
    el.dataset.index = String(k);
    el.onclick = e => { e.stopPropagation(); listTexts(lab.label, lab.clusters); };
    el.addEventListener("mousedown", e => e.stopPropagation());
    labelBox.append(el);
    return el;
  }));
  const measured = new Map();  // element -> {w, h} per class
  function measure(el, cls) {
    const key = cls;
    let m = measured.get(el);
    if (!m || m.cls !== key) {
      el.className = "label " + cls;
      el.style.display = "block";
      el.style.visibility = "hidden";
      m = {cls: key, w: el.offsetWidth, h: el.offsetHeight};
      el.style.visibility = "";
      measured.set(el, m);
    }
    return m;
  }

  function depth() {  // the layer for this zoom: one layer finer per doubling
    const z = view.scale / fitScale;
    return Math.max(0, Math.min(layers.length - 1, Math.floor(Math.log2(z + 1e-9) + 1e-9)));
  }

  const SPOTS = [[0, 0], [0, -1], [0, 1], [1, 0], [-1, 0], [0, -2], [0, 2], [1, -1], [-1, -1],
                 [1, 1], [-1, 1]];
  function layoutLabels(w, h) {
    const placed = [];
    const d = depth();
    const shown = new Set();
    const plan = [[d, "primary"]];
    if (d + 1 < layers.length) plan.push([d + 1, "secondary"]);
    for (const [li, cls] of plan) {
      const labels = layers[li].labels;
      const order = labels.map((_, k) => k).sort((a, b) => labels[b].size - labels[a].size);
      for (const k of order) {
        const lab = labels[k];
        if (!lab.clusters.some(c => visible[c])) continue;
        const ax = lab.x * view.scale + view.ox, ay = view.oy - lab.y * view.scale;
        if (ax < 0 || ay < 0 || ax > w || ay > h) continue;
        const el = labelEls[li][k], m = measure(el, cls);
        for (const [dx, dy] of SPOTS) {  // on the anchor, else just above, below, beside
          let x = ax - m.w / 2 + dx * (m.w / 2 + 4), y = ay - m.h / 2 + dy * m.h;
          x = Math.max(2, Math.min(w - m.w - 2, x));
          y = Math.max(2, Math.min(h - m.h - 2, y));
          const box = [x - 2, y - 1, x + m.w + 2, y + m.h + 1];
          if (placed.some(p => box[0] < p[2] && p[0] < box[2] && box[1] < p[3] && p[1] < box[3])) {
            continue;
          }
          placed.push(box);
          el.style.transform = `translate(${x}px, ${y}px)`;
          shown.add(el);
          break;
        }
      }
    }
    for (const row of labelEls) for (const el of row) el.style.display = shown.has(el) ? "block" : "none";
    labelBox.dataset.layer = String(d);
    labelBox.dataset.shown = String(shown.size);
  }

  // ---- view ----
  const bounds = (() => {
    let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
    for (let i = 0; i < n; i++) {
      const x = xy[2 * i], y = xy[2 * i + 1];
      if (x < x0) x0 = x; if (x > x1) x1 = x; if (y < y0) y0 = y; if (y > y1) y1 = y;
    }
    return n ? [x0, x1, y0, y1] : [0, 1, 0, 1];
  })();

  function fit() {  // every point in view, and the first layer's labels whole around them
    const w = canvas.clientWidth, h = canvas.clientHeight;
    const [x0, x1, y0, y1] = bounds;
    const pad = [16, 16, 16, 16];  // left, right, top, bottom
    for (let round = 0; round < 6; round++) {
      const scale = Math.min((w - pad[0] - pad[1]) / Math.max(x1 - x0, 1e-9),
                             (h - pad[2] - pad[3]) / Math.max(y1 - y0, 1e-9));
      const ox = pad[0] + ((w - pad[0] - pad[1]) - (x1 - x0) * scale) / 2 - x0 * scale;
      const oy = h - pad[3] - ((h - pad[2] - pad[3]) - (y1 - y0) * scale) / 2 + y0 * scale;
      view = {scale: scale, ox: ox, oy: oy};
      let grown = false;
      layers[0].labels.forEach((lab, k) => {
        const m = measure(labelEls[0][k], "primary");
        const ax = lab.x * scale + ox, ay = oy - lab.y * scale;
        const over = [m.w / 2 + 4 - ax, ax + m.w / 2 + 4 - w, m.h / 2 + 3 - ay, ay + m.h / 2 + 3 - h];
        over.forEach((o, side) => { if (o > 0) { pad[side] += o; grown = true; } });
      });
      if (!grown) break;
    }
    fitScale = view.scale;
  }

  function pointSize() {
    const w = canvas.clientWidth, h = canvas.clientHeight;
    const base = Math.max(2, Math.min(6, Math.sqrt(w * h / Math.max(n, 1)) * 0.45));
    return Math.min(14, base * Math.pow(view.scale / fitScale, 0.35));
  }

  let lastDraw = 0, lastLabels = 0;
  function draw() {
    const t0 = performance.now();
    const w = canvas.clientWidth, h = canvas.clientHeight, ratio = window.devicePixelRatio || 1;
    renderer.draw(w, h, ratio, pointSize());
    const t1 = performance.now();
    layoutLabels(w, h);
    lastLabels = performance.now() - t1;
    lastDraw = performance.now() - t0;
  }
  let pending = false;
  function redraw() {  // at most once per frame
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => { pending = false; draw(); });
  }

  function resize() {
    const ratio = window.devicePixelRatio || 1;
    canvas.width = Math.max(1, Math.round(canvas.clientWidth * ratio));
    canvas.height = Math.max(1, Math.round(canvas.clientHeight * ratio));
    if (!view) fit();
    draw();
  }

  // ---- tooltip ----
  function escapeHtml(s) {
    return String(s).replace(/[&<>"']/g, ch => ({"&": "&amp;", "<": "&lt;", ">": "&gt;",
                                                 '"': "&quot;", "'": "&#39;"}[ch]));
  }
  function hideTooltip() { tooltip.style.display = "none"; delete tooltip.dataset.index; }
  function nearest(px, py) {
    let best = -1, bestD = 64;  // within 8 px
    const s = view.scale, ox = view.ox, oy = view.oy;
    for (let i = 0; i < n; i++) {
      if (state[i] < 2) continue;  // hidden or dimmed points are not hovered
      const dx = xy[2 * i] * s + ox - px, dy = oy - xy[2 * i + 1] * s - py;
      const d = dx * dx + dy * dy;
      if (d < bestD) { bestD = d; best = i; }
    }
    return best;
  }
  function showTooltip(px, py) {
    const i = nearest(px, py);
    if (i < 0) { hideTooltip(); return; }
    const c = clusters[ci[i]];
    tooltip.innerHTML = "<b>" + escapeHtml(c.label) + "</b>" + escapeHtml(data.t[i]) +
      "<code>" + escapeHtml(data.ids[i]) + "</code>";
    tooltip.style.left = Math.max(0, Math.min(px + 12, canvas.clientWidth - 370)) + "px";
    tooltip.style.top = Math.min(py + 12, Math.max(0, canvas.clientHeight - 120)) + "px";
    tooltip.style.display = "block";
    tooltip.dataset.index = String(i);
  }

  // ---- pan, zoom, box and lasso selection ----
  const selectBox = document.getElementById("select-box");
  const lassoPath = document.getElementById("lasso-path");
  let drag = null;
  function local(e) {
    const r = canvas.getBoundingClientRect();
    return [e.clientX - r.left, e.clientY - r.top];
  }
  canvas.addEventListener("mousedown", e => {
    const [px, py] = local(e);
    hideTooltip();
    const mode = e.shiftKey ? "box" : lassoMode ? "lasso" : "pan";
    drag = {mode: mode, x: e.clientX, y: e.clientY, start: [px, py], path: [[px, py]]};
    e.preventDefault();
  });
  window.addEventListener("mousemove", e => {
    if (!drag) return;
    const [px, py] = local(e);
    if (drag.mode === "pan") {
      view.ox += e.clientX - drag.x; view.oy += e.clientY - drag.y;
      drag.x = e.clientX; drag.y = e.clientY;
      redraw();
    } else if (drag.mode === "box") {
      const [sx, sy] = drag.start;
      Object.assign(selectBox.style, {display: "block", left: Math.min(sx, px) + "px",
        top: Math.min(sy, py) + "px", width: Math.abs(px - sx) + "px", height: Math.abs(py - sy) + "px"});
    } else {
      drag.path.push([px, py]);
      lassoPath.setAttribute("points", drag.path.map(p => p.join(",")).join(" "));
    }
  });
  window.addEventListener("mouseup", e => {
    if (!drag) return;
    const [px, py] = local(e), d = drag;
    drag = null;
    selectBox.style.display = "none";
    lassoPath.setAttribute("points", "");
    if (d.mode === "box" && Math.abs(px - d.start[0]) + Math.abs(py - d.start[1]) > 3) {
      const [sx, sy] = d.start;
      select(toDataPolygon([[sx, sy], [px, sy], [px, py], [sx, py]]));
    } else if (d.mode === "lasso" && d.path.length > 2) {
      select(toDataPolygon(d.path));
    }
  });
  canvas.addEventListener("mousemove", e => {
    if (drag) return;
    const [px, py] = local(e);
    showTooltip(px, py);
  });
  canvas.addEventListener("mouseleave", () => { if (!drag) hideTooltip(); });

  function zoom(factor, px, py) {
    hideTooltip();
    view.ox = px - (px - view.ox) * factor;
    view.oy = py - (py - view.oy) * factor;
    view.scale *= factor;
    draw();
  }
  canvas.addEventListener("wheel", e => {
    e.preventDefault();
    const [px, py] = local(e);
    zoom(e.deltaY < 0 ? 1.25 : 1 / 1.25, px, py);
  }, {passive: false});
  const centre = () => [canvas.clientWidth / 2, canvas.clientHeight / 2];
  document.getElementById("zoom-in").onclick = () => zoom(1.25, ...centre());
  document.getElementById("zoom-out").onclick = () => zoom(1 / 1.25, ...centre());
  document.getElementById("reset").onclick = () => { hideTooltip(); fit(); draw(); };
  const lassoButton = document.getElementById("lasso-mode");
  lassoButton.onclick = () => { lassoMode = !lassoMode; lassoButton.classList.toggle("on", lassoMode); };

  function toDataPolygon(path) {
    return path.map(([px, py]) => [(px - view.ox) / view.scale, (view.oy - py) / view.scale]);
  }
  function inside(poly, x, y) {  // even-odd ray casting
    let hit = false;
    for (let a = 0, b = poly.length - 1; a < poly.length; b = a++) {
      const [xa, ya] = poly[a], [xb, yb] = poly[b];
      if ((ya > y) !== (yb > y) && x < (xb - xa) * (y - ya) / (yb - ya) + xa) hit = !hit;
    }
    return hit;
  }
  function select(poly) {
    let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
    for (const [x, y] of poly) { x0 = Math.min(x0, x); x1 = Math.max(x1, x); y0 = Math.min(y0, y); y1 = Math.max(y1, y); }
    const picked = [];
    for (let i = 0; i < n; i++) {
      if (state[i] < 2) continue;  // only what is drawn in colour can be selected
      const x = xy[2 * i], y = xy[2 * i + 1];
      if (x < x0 || x > x1 || y < y0 || y > y1) continue;
      if (inside(poly, x, y)) picked.push(i);
    }
    selection = picked.length ? Int32Array.from(picked) : null;
    applyFocus();
    const area = document.getElementById("selection");
    area.style.display = selection ? "block" : "none";
    document.getElementById("selection-count").textContent = picked.length + " texts selected";
    area.dataset.count = String(picked.length);
    if (selection) listPoints(picked.length + " selected texts", picked);
  }
  function csvCell(s) { s = String(s); return /[",\n\r]/.test(s) ? '"' + s.replace(/"/g, '""') + '"' : s; }
  document.getElementById("download").onclick = () => {
    if (!selection) return;
    const lines = ["text_id,cluster_label,summary_label"];
    for (const i of selection) {
      const c = clusters[ci[i]];
      lines.push([data.ids[i], c.id, c.label].map(csvCell).join(","));
    }
    const url = URL.createObjectURL(new Blob([lines.join("\n") + "\n"], {type: "text/csv"}));
    const a = document.createElement("a");
    a.href = url; a.download = "selected_texts.csv";
    document.body.append(a); a.click(); a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  };
  document.getElementById("clear-selection").onclick = () => {
    selection = null;
    const area = document.getElementById("selection");
    area.style.display = "none";
    area.dataset.count = "0";
    applyFocus();
  };

  // ---- listing texts (a topic, a cluster, the search matches, a selection) ----
  const textsPanel = document.getElementById("texts");
  const MAX_LISTED = 200;
  function listPoints(title, indices) {
    const list = document.getElementById("texts-list");
    list.textContent = "";
    for (const i of indices.slice(0, MAX_LISTED)) {
      const li = document.createElement("li");
      li.dataset.id = data.ids[i];
      const id = document.createElement("code");
      id.textContent = data.ids[i];
      li.append(id, document.createTextNode(" " + data.t[i]));
      list.append(li);
    }
    document.getElementById("texts-title").textContent = title +
      (indices.length > MAX_LISTED ? " (first " + MAX_LISTED + ")" : "");
    textsPanel.dataset.count = String(indices.length);
    textsPanel.style.display = "block";
  }
  function listTexts(label, members) {
    const wanted = new Uint8Array(clusters.length);
    for (const c of members) wanted[c] = 1;
    const picked = [];
    for (let i = 0; i < n; i++) if (wanted[ci[i]]) picked.push(i);
    const total = members.reduce((s, c) => s + clusters[c].size, 0);
    listPoints(label + ": " + total + " texts" + (total > picked.length ? ", " + picked.length + " on the map" : ""), picked);
  }
  document.getElementById("texts-close").onclick = () => { textsPanel.style.display = "none"; };

  // ---- legend: headline topics with their clusters, or the clusters ----
  const legend = document.getElementById("legend");
  const boxes = clusters.map(() => null);
  const topicBoxes = [];
  function row(cls, colour, label, size, members, key) {
    const div = document.createElement("div");
    div.className = "row " + cls;
    div.dataset[key[0]] = String(key[1]);
    const box = document.createElement("input");
    box.type = "checkbox"; box.checked = true;
    const swatch = document.createElement("span");
    swatch.className = "swatch"; swatch.style.background = colour;
    const name = document.createElement("span");
    name.className = "name"; name.textContent = label; name.title = "list its texts";
    name.onclick = () => listTexts(label, members);
    const count = document.createElement("span");
    count.className = "size"; count.textContent = String(size);
    const only = document.createElement("button");
    only.className = "only"; only.textContent = "only"; only.title = "show only this";
    only.onclick = () => showOnly(members);
    div.append(box, swatch, name, count, only);
    legend.append(div);
    return box;
  }
  function setVisible(members, on) {
    for (const c of members) { visible[c] = on; if (boxes[c]) boxes[c].checked = on; }
    for (const t of topicBoxes) t.box.checked = t.members.some(c => visible[c]);
    hideTooltip();
    updateState();
    draw();
  }
  function showOnly(members) {
    visible.fill(false);
    setVisible(members, true);
  }
  document.getElementById("show-all").onclick = () => setVisible(clusters.map((_, c) => c), true);
  const hasTopics = layers.length > 1;
  const done = new Set();
  const groups = hasTopics ? layers[0].labels.map(t => ({label: t.label, size: t.size, members: t.clusters}))
                           : [{label: null, members: clusters.map((_, c) => c).filter(c => c !== NOISE)}];
  for (const [g, group] of groups.entries()) {
    if (group.label !== null) {
      const box = row("topic", "#888", group.label, group.size, group.members, ["topic", g]);
      box.onchange = () => setVisible(group.members, box.checked);
      topicBoxes.push({box: box, members: group.members});
    }
    const members = group.members.slice().sort((a, b) => clusters[b].size - clusters[a].size);
    for (const c of members) {
      const cl = clusters[c];
      boxes[c] = row("cluster", cl.colour, cl.label, cl.size, [c], ["cluster", cl.id]);
      boxes[c].onchange = () => setVisible([c], boxes[c].checked);
      done.add(c);
    }
  }
  clusters.forEach((cl, c) => {  // noise last (and any cluster without a headline topic)
    if (done.has(c)) return;
    boxes[c] = row("cluster", cl.colour, cl.label, cl.size, [c], ["cluster", cl.id]);
    boxes[c].onchange = () => setVisible([c], boxes[c].checked);
  });

  // ---- search over texts and labels ----
  let lowered = null;
  const topicsOf = clusters.map(() => []);
  for (const layer of layers.slice(0, -1)) for (const t of layer.labels) for (const c of t.clusters) topicsOf[c].push(t.label);
  let matches = null;  // Uint8Array(n) of the search, or null
  function applyFocus() {
    if (selection) {
      focus = new Uint8Array(n);
      for (const i of selection) focus[i] = 1;
    } else {
      focus = matches;
    }
    hideTooltip();
    updateState();
    draw();
  }
  function applySearch() {
    const q = search.value.trim().toLowerCase();
    let textHits = 0, labelHits = 0;
    const hitClusters = new Set();
    if (q) {
      if (!lowered) lowered = data.t.map(t => t.toLowerCase());
      const byLabel = clusters.map(c => c.label.toLowerCase().includes(q) ||
                                        topicsOf[clusters.indexOf(c)].some(t => t.toLowerCase().includes(q)));
      matches = new Uint8Array(n);
      const hits = [];
      for (let i = 0; i < n; i++) {
        const t = lowered[i].includes(q);
        if (t) { textHits++; hits.push(i); }
        if (t || byLabel[ci[i]]) { matches[i] = 1; hitClusters.add(ci[i]); }
      }
      labelHits = byLabel.filter(Boolean).length;
      if (hits.length) listPoints(hits.length + " texts contain \u201c" + search.value.trim() + "\u201d", hits);
    } else {
      matches = null;
    }
    for (const el of legend.querySelectorAll(".row.cluster")) {
      const c = clusters.findIndex(cl => String(cl.id) === el.dataset.cluster);
      el.classList.toggle("match", !!matches && hitClusters.has(c));
    }
    status.textContent = q ? textHits + " text(s) and " + labelHits + " label(s) match \u201c" + search.value.trim() + "\u201d"
                           : n + " texts, " + clusters.filter(c => c.id !== -1).length + " clusters" +
                             (hasTopics ? " in " + layers[0].labels.length + " topics" : "");
    status.dataset.textMatches = String(textHits);
    status.dataset.labelMatches = String(labelHits);
    status.dataset.matches = String(hitClusters.size);
    applyFocus();
  }
  search.addEventListener("input", applySearch);

  window.addEventListener("resize", resize);
  updateState();
  resize();
  applySearch();

  // For scripts, tests and the benchmark: where text i is drawn, in page coordinates; the
  // labels drawn; timed redraws (the GPU waited for, so the time is the whole draw).
  window.textClusterMap = {
    count: n,
    renderer: renderer.kind,
    position: i => {
      const r = canvas.getBoundingClientRect();
      return {x: r.left + xy[2 * i] * view.scale + view.ox, y: r.top + view.oy - xy[2 * i + 1] * view.scale};
    },
    zoom: (factor, x, y) => {  // around page point (x, y), or the centre
      const r = canvas.getBoundingClientRect();
      zoom(factor, ...(x === undefined ? centre() : [x - r.left, y - r.top]));
    },
    zoomLevel: () => view.scale / fitScale,
    colour: c => rgb[c],
    lastDraw: () => lastDraw,
    bench: (frames) => {  // [milliseconds of the whole redraw, of the labels' part] per frame
      const times = [];
      for (let f = 0; f < frames; f++) {
        const t0 = performance.now();
        view.ox += (f % 2 ? -7 : 7);
        if (f % 10 === 5) { view.scale *= 1.1; } else if (f % 10 === 0) { view.scale /= 1.1; }
        draw();
        renderer.sync();
        times.push([performance.now() - t0, lastLabels]);
      }
      return times;
    },
  };
  document.body.dataset.readyMs = String(performance.now());
  document.body.dataset.ready = "true";
})();
