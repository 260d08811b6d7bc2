// The explainer page's views, drawn from the JSON in <script id="minibert-report"> (made by minibert/explainer.py).
// Plain JavaScript and SVG, no library, no network. Each view draws one <svg class="fig">, which is what
// "Save PNG" and "Save SVG" export. Shapes: L layers, N heads, S tokens, D head size, H hidden size, K keys kept.
(function () {
  "use strict";
  const DATA = JSON.parse(document.getElementById("minibert-report").textContent);
  const E = DATA.explain, C = DATA.config;
  const S = E.tokens.length, L = C.layers, N = C.heads, D = C.head_size;
  const SVGNS = "http://www.w3.org/2000/svg";
  const HEAD_COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#17becf", "#393b79", "#ad494a", "#637939", "#8c6d31", "#843c39", "#7b4173"];
  const SANS = "system-ui,-apple-system,'Segoe UI',Roboto,Arial,sans-serif", MONO = "ui-monospace,Menlo,Consolas,monospace";
  const SVG_CSS = "text{font-family:" + SANS + ";fill:#1f2933}" +
    ".tok{font:12px " + MONO + ";cursor:default}.tok.on{font-weight:700;fill:#2458a6}" +
    ".num{font:11px " + MONO + "}.lbl{font-size:12px;fill:#5f6b7a}" +
    ".title{font-size:14px;font-weight:600}.small{font-size:11px;fill:#5f6b7a}.strong{font-weight:700}" +
    ".warm{fill:#b2182b}.cool{fill:#2458a6}";

  // ---- decoding the embedded arrays (base64 of little-endian binary, as explainer.pack writes them) ----
  function bytes(b64) {
    const bin = atob(b64), out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }
  function half(h) { // IEEE 754 binary16 -> number
    const s = h & 0x8000 ? -1 : 1, e = (h >> 10) & 0x1f, f = h & 0x3ff;
    if (e === 0) return s * f * Math.pow(2, -24);
    if (e === 31) return f ? NaN : s * Infinity;
    return s * (1 + f / 1024) * Math.pow(2, e - 15);
  }
  function unpack(p) { // typed arrays read the platform's byte order: little-endian on every browser's hardware
    const b = bytes(p.base64);
    if (p.dtype === "float32") return new Float32Array(b.buffer);
    if (p.dtype === "uint16") return new Uint16Array(b.buffer);
    if (p.dtype === "uint8") return b;
    if (p.dtype === "float16") {
      const h = new Uint16Array(b.buffer), out = new Float32Array(h.length);
      for (let i = 0; i < h.length; i++) out[i] = half(h[i]);
      return out;
    }
    throw new Error("unknown dtype " + p.dtype);
  }

  const A = DATA.attention, K = A.keys_kept;
  const aValues = unpack(A.values), aIndices = A.indices ? unpack(A.indices) : null;
  const queries = unpack(DATA.qk.query), keys = unpack(DATA.qk.key);
  const weight = A.encoding === "sqrt-uint8" ? (v) => (v / 255) * (v / 255) : (v) => v;

  // The attention weights of query q in (layer l, head h): [[key index, weight], ...], K of them.
  function attentionRow(l, h, q) {
    const base = ((l * N + h) * S + q) * K, out = new Array(K);
    for (let t = 0; t < K; t++) out[t] = [aIndices ? aIndices[base + t] : t, weight(aValues[base + t])];
    return out;
  }
  function vector(arr, l, h, i) { const o = ((l * N + h) * S + i) * D; return arr.subarray(o, o + D); }

  // ---- small helpers ----
  function el(tag, attrs, parent) {
    const e = document.createElementNS(SVGNS, tag);
    for (const k in attrs) e.setAttribute(k, attrs[k]);
    if (parent) parent.appendChild(e);
    return e;
  }
  function text(parent, x, y, s, attrs) {
    const t = el("text", Object.assign({ x: x, y: y }, attrs || {}), parent);
    t.textContent = s;
    return t;
  }
  function newSvg(container, w, h) {
    container.textContent = "";
    const svg = el("svg", { xmlns: SVGNS, width: w, height: h, viewBox: "0 0 " + w + " " + h, class: "fig" });
    el("style", {}, svg).textContent = SVG_CSS;
    el("rect", { x: 0, y: 0, width: w, height: h, fill: "#ffffff" }, svg);
    container.appendChild(svg);
    return svg;
  }
  function fit(svg, h) { // set the drawing's height once its content is known
    const w = svg.getAttribute("width");
    svg.setAttribute("height", h); svg.setAttribute("viewBox", "0 0 " + w + " " + h);
    svg.querySelector("rect").setAttribute("height", h);
  }
  function fmt(x, digits) {
    if (digits === undefined) digits = 4;
    if (!isFinite(x)) return String(x);
    if (x === 0) return "0";
    if (x !== 0 && (Math.abs(x) >= 1e6 || Math.abs(x) < Math.pow(10, -digits))) return x.toExponential(2);
    return x.toFixed(digits);
  }
  function shortToken(t, n) { return t.length > n ? t.slice(0, n - 1) + "…" : t; }
  function tokenLabel(i) { return i + " " + shortToken(E.tokens[i], 14); }
  const SPECIAL = new Set(["[CLS]", "[SEP]", "[PAD]", "[MASK]", "[UNK]"]);
  function mix(a, b, t) { // two "#rrggbb" colours, t in [0, 1]
    const pa = [1, 3, 5].map((i) => parseInt(a.slice(i, i + 2), 16)), pb = [1, 3, 5].map((i) => parseInt(b.slice(i, i + 2), 16));
    return "rgb(" + pa.map((v, i) => Math.round(v + (pb[i] - v) * t)).join(",") + ")";
  }
  function diverging(x, max) { // blue for negative, red for positive, white at 0
    const t = Math.max(-1, Math.min(1, max > 0 ? x / max : 0));
    return t >= 0 ? mix("#ffffff", "#b2182b", t) : mix("#ffffff", "#2166ac", -t);
  }
  function options(select, values, labels, chosen) {
    select.textContent = "";
    values.forEach((v, i) => {
      const o = document.createElement("option");
      o.value = v; o.textContent = labels[i];
      if (v === chosen) o.selected = true;
      select.appendChild(o);
    });
  }
  function range(n) { return Array.from({ length: n }, (_, i) => i); }

  // ---- fitting the page's width ----
  // Each view draws at its own width where the page has room, and narrower where it has not (a page 800 px wide):
  // no figure scrolls sideways, and long lines of text wrap. Text is measured on a canvas, in the SVG's fonts.
  function room() { // the width an SVG can take inside a .figure: main's, less the figure's padding and border
    return Math.floor(document.querySelector("main").clientWidth) - 14;
  }
  const FONTS = { small: "11px " + SANS, lbl: "12px " + SANS, title: "600 14px " + SANS, tok: "12px " + MONO,
    num: "11px " + MONO };
  const measurer = document.createElement("canvas").getContext("2d");
  function textWidth(s, cls) { // the drawn width of s in the SVG class cls ("lbl", "small strong", ...)
    const classes = cls.split(" ");
    measurer.font = (classes.includes("strong") ? "700 " : "") + FONTS[classes[0]];
    return measurer.measureText(s).width;
  }
  function clip(s, cls, width) { // s, cut with "…" until it fits `width`
    if (textWidth(s, cls) <= width) return s;
    while (s.length > 1 && textWidth(s + "…", cls) > width) s = s.slice(0, -1);
    return s + "…";
  }
  function wrapped(parent, x, y, s, width, attrs, lineHeight) { // one <text>, a <tspan> per line; -> the y after it
    const t = el("text", Object.assign({ x: x, y: y }, attrs), parent), words = s.split(" "), lines = [];
    let line = "";
    words.forEach((w) => {
      const next = line ? line + " " + w : w;
      if (line && textWidth(next, attrs.class) > width) { lines.push(line); line = w; } else line = next;
    });
    lines.push(line);
    lines.forEach((l, i) => {
      const span = el("tspan", { x: x, dy: i ? lineHeight : 0 }, t);
      span.textContent = i < lines.length - 1 ? l + " " : l; // textContent keeps the spaces between the lines
    });
    return y + lines.length * lineHeight;
  }
  function view(name) { return document.querySelector('[data-view="' + name + '"]'); }
  function control(viewName, name) { return view(viewName).querySelector('[data-control="' + name + '"]'); }

  // ---- state shared by the views ----
  const state = {
    tab: "head",
    layer: L - 1,
    heads: new Set([0]), // one head is readable; all twelve at once are a tangle ("all heads" draws them)
    focus: null, // {side: "query" | "key", index}
    neuron: { layer: L - 1, head: 0, query: 0 },
  };

  // ---- header ----
  const H1_CHARACTERS = 400; // more than two lines hold at any width: the clamp shows two, the <details> the rest
  function quoted(s) { return "“" + (s.length > H1_CHARACTERS ? s.slice(0, H1_CHARACTERS) + "…" : s) + "”"; }
  function joinPieces(tokens) { // word pieces back into words, roughly: "##" joins, no space before punctuation
    return tokens.reduce((out, t) => {
      if (t.startsWith("##")) return out + t.slice(2);
      if (/^[.,;:!?)\]}%]$/.test(t) || /[(\[{]$/.test(out)) return out + t;
      return out + (out ? " " : "") + t;
    }, "");
  }
  function drawTitle() {
    const h1 = document.getElementById("text");
    h1.textContent = quoted(E.text);
    if (E.pair !== null) {
      const p = document.createElement("span");
      p.className = "pair";
      p.textContent = " + " + quoted(E.pair);
      h1.appendChild(p);
    }
    const whole = document.getElementById("whole-text"), cut = E.num_truncated_tokens;
    const chars = E.text.length + (E.pair === null ? 0 : E.pair.length);
    whole.querySelector("summary").textContent = (E.pair === null ? "the whole text: " : "the whole text and pair: ") +
      chars.toLocaleString("en") + " characters, " + (S + cut).toLocaleString("en") + " tokens" +
      (cut ? ", of which the first " + S + " ran" : "");
    const body = whole.querySelector("p");
    body.textContent = E.text;
    if (E.pair !== null) {
      const p = document.createElement("p");
      p.className = "pair"; p.textContent = E.pair;
      body.after(p);
    }
    if (cut) {
      const text = E.tokens.filter((t, i) => !SPECIAL.has(t) && E.token_type_ids[i] === E.token_type_ids[S - 2]);
      const p = document.createElement("p");
      p.className = "cut";
      p.textContent = "The last words the model ran: “…" + joinPieces(text.slice(-8)) + "” (as the tokenizer " +
        "wrote them); the " + cut.toLocaleString("en") + " tokens " + (E.pair === null ? "after them" : "past the cut") +
        " were not run.";
      whole.appendChild(p);
    }
  }
  function showWholeText() { // the <details> only where the title hides something
    const h1 = document.getElementById("text");
    const hidden = h1.scrollHeight > h1.clientHeight + 2 || E.text.length > H1_CHARACTERS ||
      (E.pair !== null && E.pair.length > H1_CHARACTERS) || E.num_truncated_tokens > 0;
    document.getElementById("whole-text").hidden = !hidden;
  }
  // The model's facts on one line, then the run's. Another fact about the model (its activation, say) is one more
  // item here.
  function facts() {
    const name = DATA.name.split(/[\\/]/).filter(Boolean).slice(-2).join("/");
    return [name, L + " layers × " + N + " heads", "hidden size " + C.hidden_size,
      "activation " + C.hidden_act + " (from " + C.hidden_act_source + ")", S + " tokens", E.dtype,
      "one traced forward pass"];
  }
  function drawHeader() {
    drawTitle();
    document.getElementById("meta").textContent = facts().join(" · ");
    const notes = document.getElementById("notes");
    DATA.notes.forEach((n) => { const p = document.createElement("p"); p.textContent = n; notes.appendChild(p); });
    const box = document.getElementById("tokens");
    E.tokens.forEach((t, i) => {
      const s = document.createElement("span");
      s.textContent = t;
      s.title = "token " + i + ", id " + E.input_ids[i] + ", type " + E.token_type_ids[i];
      if (SPECIAL.has(t)) s.className = "special";
      else if (E.token_type_ids[i] === 1) s.className = "type1";
      box.appendChild(s);
    });
    const P = DATA.pooler, st = P.sentence;
    const answer = document.getElementById("answer");
    const use = st.read
      ? " This checkpoint's sentence-transformers files say its sentence embedding is <b>" +
        st.pooling_modes.join(" + ") + " pooling" + (st.normalize ? ", normalized" : "") +
        "</b>: nothing in that pipeline reads the pooler."
      : "";
    answer.innerHTML = "<b>The short answer.</b> <code>pooler_output = tanh(W h0 + b)</code>, not h0 itself: " +
      "cosine(h0, pooler_output) = <b>" + fmt(E.cosine_h0_pooler_output) + "</b>, while cosine(h0, mean pooling) = " +
      fmt(E.cosine_h0_mean_pooling) + "." + use + ' <a href="#pooler" data-goto="pooler">See the pooler view.</a>';
  }

  // ---- head view ----
  // The frame (title, token labels) is drawn when the layer or heads change; hovering redraws only the lines, so
  // that the label under the pointer stays the same element and its mouseleave fires.
  // Token labels take up to 24 characters (about 175 px) on each side; the lines and bars run between them.
  const HEAD = { row: S <= 64 ? 20 : 14, top: 66, w: 860, leftX: 300, rightX: 540 };
  function headY(i) { return HEAD.top + i * HEAD.row + HEAD.row / 2; }
  function chosenHeads() { return Array.from(state.heads).sort((a, b) => a - b); }
  function drawHead() {
    const v = view("head"), fig = v.querySelector(".figure"), heads = chosenHeads();
    HEAD.w = Math.min(860, room());
    [HEAD.leftX, HEAD.rightX] = HEAD.w === 860 ? [300, 540] : [190, HEAD.w - 185];
    const svg = newSvg(fig, HEAD.w, HEAD.top + S * HEAD.row + 16);
    svg.setAttribute("data-layer", state.layer);
    svg.setAttribute("data-heads", heads.join(","));
    text(svg, 10, 18, "layer " + state.layer + ", " + (heads.length === N ? "all " + N + " heads" :
      heads.length === 0 ? "no head chosen" : "head" + (heads.length > 1 ? "s " : " ") + heads.join(", ")), { class: "title" });
    text(svg, 10, 38, "", { class: "small", "data-role": "info" });
    text(svg, HEAD.leftX, HEAD.top - 8, "query (attends)", { class: "small", "text-anchor": "end" });
    text(svg, HEAD.rightX, HEAD.top - 8, "key (attended to)", { class: "small" });
    el("g", { "data-role": "bars" }, svg);
    el("g", { "data-role": "lines" }, svg);
    ["query", "key"].forEach((side) => {
      E.tokens.forEach((t, i) => {
        const label = text(svg, side === "query" ? HEAD.leftX : HEAD.rightX, headY(i) + 4, shortToken(t, 24), {
          class: "tok", "text-anchor": side === "query" ? "end" : "start", "data-token": i, "data-side": side,
        });
        el("title", {}, label).textContent = "token " + i + ": " + t;
        label.addEventListener("mouseenter", () => { state.focus = { side: side, index: i }; drawHeadLines(); });
        label.addEventListener("mouseleave", () => { state.focus = null; drawHeadLines(); });
        if (side === "query") label.addEventListener("click", () => {
          state.neuron = { layer: state.layer, head: heads.length ? heads[0] : 0, query: i };
          showTab("neuron", true);
        });
      });
    });
    drawHeadLines();
  }
  function drawHeadLines() {
    const svg = view("head").querySelector("svg.fig"), heads = chosenHeads(), f = state.focus;
    const lines = svg.querySelector('[data-role="lines"]'), bars = svg.querySelector('[data-role="bars"]');
    lines.textContent = ""; bars.textContent = "";
    const best = [];
    heads.forEach((h) => {
      const color = HEAD_COLORS[h % HEAD_COLORS.length];
      (f && f.side === "query" ? [f.index] : range(S)).forEach((q) => {
        attentionRow(state.layer, h, q).forEach(([k, wgt]) => {
          if (f && f.side === "key" && k !== f.index) return;
          if (wgt < 0.005) return; // an opacity under 0.005 draws nothing visible
          el("line", { x1: HEAD.leftX + 6, y1: headY(q), x2: HEAD.rightX - 6, y2: headY(k), stroke: color,
            "stroke-width": f ? 2.5 : 2, "stroke-opacity": Math.min(1, wgt).toFixed(3), class: "attn",
            "data-query": q, "data-key": k, "data-head": h }, lines);
          if (f) best.push([f.side === "query" ? k : q, wgt, h]);
          if (f && f.side === "query" && heads.length === 1)
            el("rect", { x: HEAD.rightX + 1, y: headY(k) - HEAD.row / 2 + 2, width: 140 * wgt, height: HEAD.row - 4,
              fill: color, "fill-opacity": 0.18 }, bars);
        });
      });
    });
    svg.querySelectorAll("text.tok").forEach((t) => {
      t.classList.toggle("on", !!f && t.dataset.side === f.side && +t.dataset.token === f.index);
    });
    const info = svg.querySelector('[data-role="info"]');
    if (!f) { info.textContent = "hover a token to isolate its lines"; return; }
    best.sort((a, b) => b[1] - a[1]);
    const who = "“" + E.tokens[f.index] + "” (" + f.index + ")";
    info.textContent = (f.side === "query" ? who + " attends most to: " : "attending most to " + who + ": ") +
      best.slice(0, 4).map(([i, wgt, h]) => E.tokens[i] + " " + wgt.toFixed(2) + (heads.length > 1 ? " (h" + h + ")" : "")).join(" · ");
  }

  function setupHead() {
    const v = view("head");
    const layer = control("head", "layer");
    options(layer, range(L).map(String), range(L).map((l) => "layer " + l), String(state.layer));
    layer.addEventListener("change", () => { state.layer = +layer.value; drawHead(); });
    const box = control("head", "heads");
    range(N).forEach((h) => {
      const b = document.createElement("button");
      b.type = "button"; b.textContent = h; b.dataset.head = h; b.title = "head " + h;
      b.style.background = HEAD_COLORS[h % HEAD_COLORS.length]; b.style.borderColor = HEAD_COLORS[h % HEAD_COLORS.length];
      b.style.color = "#fff";
      b.addEventListener("click", () => { state.heads.has(h) ? state.heads.delete(h) : state.heads.add(h); syncHead(); });
      box.appendChild(b);
    });
    control("head", "all-heads").addEventListener("click", () => { state.heads = new Set(range(N)); syncHead(); });
    control("head", "no-heads").addEventListener("click", () => { state.heads = new Set(); syncHead(); });
    v.dataset.ready = "1";
  }
  function syncHead() {
    control("head", "layer").value = String(state.layer);
    control("head", "heads").querySelectorAll("button").forEach((b) => b.setAttribute("aria-pressed", state.heads.has(+b.dataset.head)));
    state.focus = null;
    drawHead();
  }

  // ---- model view ----
  function thumbnail(l, h, size) { // the head's attention matrix as a PNG data URL, size x size pixels
    const canvas = document.createElement("canvas");
    canvas.width = canvas.height = size;
    const ctx = canvas.getContext("2d"), img = ctx.createImageData(size, size), cell = new Float32Array(size * size);
    for (let q = 0; q < S; q++) {
      const r = Math.floor((q * size) / S);
      attentionRow(l, h, q).forEach(([k, wgt]) => {
        const c = Math.floor((k * size) / S), i = r * size + c;
        if (wgt > cell[i]) cell[i] = wgt;
      });
    }
    for (let i = 0; i < cell.length; i++) { // white to dark blue, sqrt so that small weights still show
      const t = Math.sqrt(Math.min(1, cell[i]));
      img.data[4 * i] = Math.round(255 - t * (255 - 23)); img.data[4 * i + 1] = Math.round(255 - t * (255 - 62));
      img.data[4 * i + 2] = Math.round(255 - t * (255 - 130)); img.data[4 * i + 3] = 255;
    }
    ctx.putImageData(img, 0, 0);
    return canvas.toDataURL("image/png");
  }
  function drawModel() {
    const fig = view("model").querySelector(".figure");
    const gap = 8, left = 64, top = 56, px = Math.min(S, 128);
    const cell = Math.max(24, Math.min(76, Math.floor((room() - left - 10) / N) - gap));
    const w = left + N * (cell + gap) + 10;
    const svg = newSvg(fig, w, top + L * (cell + gap) + 40);
    text(svg, 10, 18, "attention of every head", { class: "title" });
    text(svg, 10, 36, "rows = queries, columns = keys (" + S + " × " + S + (px < S ? ", each pixel the largest of a block" : "") + ")", { class: "small" });
    range(N).forEach((h) => text(svg, left + h * (cell + gap) + cell / 2, top - 6, (cell >= 44 ? "head " : "") + h, { class: "lbl", "text-anchor": "middle" }));
    range(L).forEach((l) => {
      text(svg, left - 8, top + l * (cell + gap) + cell / 2 + 4, "layer " + l, { class: "lbl", "text-anchor": "end" });
      range(N).forEach((h) => {
        const x = left + h * (cell + gap), yy = top + l * (cell + gap);
        const g = el("g", { class: "thumb", "data-layer": l, "data-head": h, style: "cursor:pointer" }, svg);
        el("title", {}, g).textContent = "layer " + l + ", head " + h + ": open in the head view";
        el("image", { x: x, y: yy, width: cell, height: cell, href: thumbnail(l, h, px), preserveAspectRatio: "none", style: "image-rendering:pixelated" }, g);
        el("rect", { x: x, y: yy, width: cell, height: cell, fill: "none", stroke: HEAD_COLORS[h % HEAD_COLORS.length], "stroke-width": 1.5 }, g);
        g.addEventListener("click", () => { state.layer = l; state.heads = new Set([h]); syncHead(); showTab("head", true); });
      });
    });
    const end = wrapped(svg, left, top + L * (cell + gap) + 14, "darker = more attention (the square root of the weight, so that small weights show)", w - left - 10, { class: "small" }, 14);
    fit(svg, end);
  }

  // ---- neuron view ----
  function neuronNumbers(l, h, q) { // q·k/√D + mask and its softmax for every key, in float64 from the trace's q, k
    const qv = vector(queries, l, h, q), scores = new Float64Array(S);
    for (let k = 0; k < S; k++) {
      const kv = vector(keys, l, h, k);
      let dot = 0;
      for (let d = 0; d < D; d++) dot += qv[d] * kv[d];
      scores[k] = dot / Math.sqrt(D) + DATA.mask[k];
    }
    let max = -Infinity;
    scores.forEach((s) => { if (s > max) max = s; });
    const probs = new Float64Array(S);
    let sum = 0;
    for (let k = 0; k < S; k++) { probs[k] = Math.exp(scores[k] - max); sum += probs[k]; }
    for (let k = 0; k < S; k++) probs[k] /= sum;
    const trace = new Map(attentionRow(l, h, q));
    return { qv: qv, scores: scores, probs: probs, trace: trace };
  }
  function drawNeuron() {
    const { layer: l, head: h, query: q } = state.neuron;
    const fig = view("neuron").querySelector(".figure");
    const n = neuronNumbers(l, h, q);
    let shown = range(S);
    const limit = 64;
    if (S > limit) shown = range(S).sort((a, b) => n.probs[b] - n.probs[a]).slice(0, limit).sort((a, b) => a - b);
    // The columns: token, k, q × k, score, mask, softmax bar and value, the trace's value. Where the page is narrower
    // than the natural layout, the vectors' cells and the gaps shrink.
    const natural = Math.max(5, Math.min(10, Math.floor(300 / D))), row = 18;
    const compact = 602 + 2 * D * natural > room();
    const cw = compact ? Math.max(2, Math.min(natural, Math.floor((room() - 440) / (2 * D)))) : natural;
    const G = compact ? { tok: 110, k: 12, p: 16, s: 62, m: 52, b: 14, bar: 50, t: 160, end: 14 }
      : { tok: 120, k: 12, p: 24, s: 78, m: 78, b: 18, bar: 100, t: 242, end: 30 };
    const xTok = G.tok, xK = xTok + G.k, xP = xK + D * cw + G.p, xS = xP + D * cw + G.s, xM = xS + G.m, xB = xM + G.b;
    const xT = xB + G.t, w = xT + G.end;
    const svg = newSvg(fig, w, 1000); // the height is set by fit() at the end
    svg.setAttribute("data-layer", l); svg.setAttribute("data-head", h); svg.setAttribute("data-query", q);
    const qy = wrapped(svg, 10, 18, "layer " + l + ", head " + h + ", query token " + q + " “" + E.tokens[q] + "”: softmax(q·k/√" + D + " + mask)", w - 20, { class: "title" }, 18) + 4;
    const qTop = wrapped(svg, xK, qy, "query q: " + D + " values, this head's slice of attention.self.query", w - xK - 10, { class: "small" }, 13) - 7;
    const top = qTop + 66; // the first key's row, under the q row and the column headers
    let vmax = 0;
    n.qv.forEach((x) => { vmax = Math.max(vmax, Math.abs(x)); });
    shown.forEach((k) => vector(keys, l, h, k).forEach((x) => { vmax = Math.max(vmax, Math.abs(x)); }));
    let pmax = 0;
    shown.forEach((k) => { const kv = vector(keys, l, h, k); n.qv.forEach((x, d) => { pmax = Math.max(pmax, Math.abs(x * kv[d])); }); });
    // the query vector
    text(svg, xTok, qTop + 12, "q", { class: "tok strong", "text-anchor": "end" });
    n.qv.forEach((x, d) => {
      const r = el("rect", { x: xK + d * cw, y: qTop, width: cw - 1, height: 16, fill: diverging(x, vmax) }, svg);
      el("title", {}, r).textContent = "q[" + d + "] = " + fmt(x);
    });
    const hy = top - 8;
    text(svg, xTok, hy, "key", { class: "lbl", "text-anchor": "end" });
    text(svg, xK, hy, "k", { class: "lbl" });
    text(svg, xP, hy, compact ? "q × k" : "q × k (elementwise)", { class: "lbl" });
    text(svg, xS, hy - 14, "q·k/√" + D, { class: "lbl", "text-anchor": "end" });
    text(svg, xS, hy, "(sum of q × k)", { class: "small", "text-anchor": "end" });
    text(svg, xM, hy, "+ mask", { class: "lbl", "text-anchor": "end" });
    text(svg, xB, hy - 14, "softmax", { class: "lbl" });
    text(svg, xB, hy, "(over all " + S + " keys)", { class: "small" });
    text(svg, xT, hy - 14, "trace", { class: "lbl", "text-anchor": "end" });
    text(svg, xT, hy, "probs", { class: "small", "text-anchor": "end" });
    let worst = 0, missing = 0;
    range(S).forEach((k) => { if (n.trace.has(k)) worst = Math.max(worst, Math.abs(n.trace.get(k) - n.probs[k])); });
    const notKept = "not kept on this page: it holds each query's " + K + " largest of " + S + " weights";
    shown.forEach((k, r) => {
      const yy = top + r * row, kv = vector(keys, l, h, k);
      const g = el("g", { class: "key-row", "data-key": k }, svg);
      if (k === q) el("rect", { x: 4, y: yy - 1, width: w - 8, height: row, fill: "#eef3fb" }, g);
      const label = text(g, xTok, yy + 12, clip(tokenLabel(k), "tok", xTok - 8), { class: "tok", "text-anchor": "end" });
      el("title", {}, label).textContent = "token " + k + ": " + E.tokens[k];
      kv.forEach((x, d) => el("rect", { x: xK + d * cw, y: yy + 2, width: cw - 1, height: row - 5, fill: diverging(x, vmax) }, g));
      kv.forEach((x, d) => el("rect", { x: xP + d * cw, y: yy + 2, width: cw - 1, height: row - 5, fill: diverging(x * n.qv[d], pmax) }, g));
      const score = n.scores[k] - DATA.mask[k];
      text(g, xS, yy + 12, fmt(score, 3), { class: "num", "text-anchor": "end", "data-field": "score", "data-key": k });
      text(g, xM, yy + 12, DATA.mask[k] === 0 ? "0" : fmt(DATA.mask[k]), { class: "num", "text-anchor": "end", "data-field": "mask", "data-key": k });
      el("rect", { x: xB, y: yy + 3, width: Math.max(0.5, G.bar * n.probs[k]), height: row - 7, fill: HEAD_COLORS[h % HEAD_COLORS.length], "fill-opacity": 0.8 }, g);
      text(g, xB + G.bar + 6, yy + 12, fmt(n.probs[k], 4), { class: "num", "data-field": "softmax", "data-key": k });
      const traced = text(g, xT, yy + 12, n.trace.has(k) ? fmt(n.trace.get(k), 4) : "—", { class: "num", "text-anchor": "end", "data-field": "trace", "data-key": k });
      if (!n.trace.has(k)) { missing += 1; el("title", {}, traced).textContent = notKept; }
    });
    let y = top + shown.length * row + 16;
    const exact = DATA.qk.dtype === "float32";
    y = wrapped(svg, 10, y, (S > limit ? "the " + limit + " keys with the largest weight of " + S + ", in token order; " : "") +
      "computed here in float64 from the trace's " + DATA.qk.dtype + " q and k; largest |softmax here − trace| = " +
      fmt(worst, 6) + (exact ? " (float32 rounding)" : " (the page keeps q, k and the weights at reduced precision)"),
    w - 20, { class: "small", "data-field": "agreement" }, 14);
    if (missing) y = wrapped(svg, 10, y + 4, "— in the trace column (" + missing + " of these " + shown.length + " keys): a weight " +
      notKept + " (the note at the top says how much of the attention they hold). The softmax column is computed here " +
      "for every key, from q and k.", w - 20, { class: "small", "data-field": "not-kept" }, 14);
    fit(svg, y + 4);
  }
  function setupNeuron() {
    const layer = control("neuron", "layer"), head = control("neuron", "head"), query = control("neuron", "query");
    layer.addEventListener("change", () => { state.neuron.layer = +layer.value; drawNeuron(); });
    head.addEventListener("change", () => { state.neuron.head = +head.value; drawNeuron(); });
    query.addEventListener("change", () => { state.neuron.query = +query.value; drawNeuron(); });
  }
  function syncNeuron() {
    options(control("neuron", "layer"), range(L).map(String), range(L).map((l) => "layer " + l), String(state.neuron.layer));
    options(control("neuron", "head"), range(N).map(String), range(N).map((h) => "head " + h), String(state.neuron.head));
    options(control("neuron", "query"), range(S).map(String), range(S).map(tokenLabel), String(state.neuron.query));
    drawNeuron();
  }

  // ---- pooler view ----
  function drawPooler() {
    const fig = view("pooler").querySelector(".figure"), P = DATA.pooler, H = E.h0.length;
    // Wide: each strip's label to its left, the tanh beside the numbers. Narrow: the labels above the strips, the
    // numbers under the tanh.
    const w = Math.min(1100, room()), wide = w === 1100;
    const left = wide ? 300 : 10, plotW = wide ? 640 : w - 130, stripH = 64, labelH = wide ? 0 : 18;
    const strips = [
      ["h0", "h0 = last_hidden_state[0, 0]", "token 0's ([CLS]) last hidden state"],
      ["pooler_dense", "W h0 + b", "pooler.dense"],
      ["pooler_output", "tanh(W h0 + b)", "pooler.activation = pooler_output"],
      ["mean_pooling", "mean pooling", "mean of all " + S + " token states (for comparison)"],
    ];
    const dims = Array.from(new Set(range(Math.min(6, H)).concat(P.top_h0_dims))).sort((a, b) => a - b);
    const svg = newSvg(fig, w, 1000); // the height is set by fit() at the end
    wrapped(svg, 10, 20, "the pooler, dimension by dimension (" + H + " dimensions, " + E.dtype + ")", w - 20, { class: "title" }, 18);
    let y = 40;
    strips.forEach(([key, title, sub], i) => {
      const v = E[key], y0 = y + labelH, mid = y0 + stripH / 2;
      let m = 0;
      v.forEach((x) => { m = Math.max(m, Math.abs(x)); });
      if (wide) {
        text(svg, left - 14, mid - 4, title, { class: "tok strong", "text-anchor": "end" });
        text(svg, left - 14, mid + 12, sub, { class: "small", "text-anchor": "end" });
      } else {
        text(svg, left, y0 - 6, title, { class: "tok strong" });
        text(svg, left + textWidth(title, "tok strong") + 10, y0 - 6, clip(sub, "small", w - 30 - textWidth(title, "tok strong")), { class: "small" });
      }
      el("rect", { x: left, y: y0, width: plotW, height: stripH, fill: "#f7f8fa" }, svg);
      el("line", { x1: left, x2: left + plotW, y1: mid, y2: mid, stroke: "#c5ccd6" }, svg);
      const bw = plotW / H;
      const path = [];
      v.forEach((x, d) => {
        const hgt = (Math.abs(x) / (m || 1)) * (stripH / 2 - 2);
        path.push("M" + (left + d * bw + bw / 2).toFixed(2) + " " + mid + "v" + (x >= 0 ? -hgt : hgt).toFixed(2));
      });
      el("path", { d: path.join(""), stroke: key === "mean_pooling" ? "#7f7f7f" : key === "h0" ? "#2458a6" : "#b2182b", "stroke-width": Math.max(1, bw * 0.8) }, svg);
      text(svg, left + plotW + 10, mid - 4, "norm " + fmt(P.norms[key]), { class: "num", "data-field": "norm", "data-vector": key });
      text(svg, left + plotW + 10, mid + 12, "scale ±" + fmt(m, 2), { class: "small" });
      if (key === "h0") { // the largest dimension, labelled on whichever side of its spike has room
        const d = P.top_h0_dims[0], label = "dim " + d + ": " + fmt(v[d], 2) + ", " + (100 * P.top_h0_share[0]).toFixed(0) + "% of |h0|²";
        const x = left + d * bw, after = x + 6 + textWidth(label, "small") <= left + plotW;
        text(svg, after ? x + 6 : x - 4, y0 + 10, label, { class: "small warm", "text-anchor": after ? "start" : "end" });
      }
      if (wide && i < strips.length - 1) text(svg, left - 14, y0 + stripH + 16, i === 0 ? "↓ × W, + b" : i === 1 ? "↓ tanh" : "", { class: "lbl", "text-anchor": "end" });
      y = y0 + stripH + 22;
    });
    // the tanh, and where the pooler's values sit on it
    const ty = y + 20, tw = 300, th = 200, tx = 60, R = Math.max(3, 1.1 * Math.max(Math.abs(P.dense_min), Math.abs(P.dense_max)));
    text(svg, 10, ty, "where W h0 + b sits on the tanh", { class: "title" });
    const X = (x) => tx + ((x + R) / (2 * R)) * tw, Y = (y) => ty + 20 + ((1 - y) / 2) * th;
    const sat = Math.atanh(P.saturation);
    el("rect", { x: tx, y: ty + 20, width: X(-sat) - tx, height: th, fill: "#fbeaea" }, svg);
    el("rect", { x: X(sat), y: ty + 20, width: tx + tw - X(sat), height: th, fill: "#fbeaea" }, svg);
    el("line", { x1: tx, x2: tx + tw, y1: Y(0), y2: Y(0), stroke: "#c5ccd6" }, svg);
    el("line", { x1: X(0), x2: X(0), y1: ty + 20, y2: ty + 20 + th, stroke: "#c5ccd6" }, svg);
    const curve = range(121).map((i) => { const x = -R + (2 * R * i) / 120; return (i ? "L" : "M") + X(x).toFixed(1) + " " + Y(Math.tanh(x)).toFixed(1); });
    el("path", { d: curve.join(""), fill: "none", stroke: "#1f2933", "stroke-width": 1.5 }, svg);
    el("path", { d: "M" + X(-1) + " " + Y(-1) + "L" + X(1) + " " + Y(1), stroke: "#9aa5b1", "stroke-dasharray": "3 3", fill: "none" }, svg);
    E.pooler_dense.forEach((x) => el("circle", { cx: X(x).toFixed(1), cy: Y(Math.tanh(x)).toFixed(1), r: 2.2, fill: "#b2182b", "fill-opacity": 0.5 }, svg));
    const tanhText = wide ? 376 : w - tx - 10, nsat = P.saturated.length;
    let ly = wrapped(svg, tx, ty + th + 36, "x from " + fmt(-R, 1) + " to " + fmt(R, 1) + "; shaded: saturated, |tanh x| > " + P.saturation + "; dashed: y = x", tanhText, { class: "small" }, 16);
    ly = wrapped(svg, tx, ly + 2, nsat + " of " + H + " dimensions saturate" + (nsat ? ": " + P.saturated.slice(0, 12).join(", ") + (nsat > 12 ? ", …" : "") : ""),
      tanhText, { class: "lbl strong", "data-field": "saturated_count" }, 16);
    ly = wrapped(svg, tx, ly, "W h0 + b lies in [" + fmt(P.dense_min, 3) + ", " + fmt(P.dense_max, 3) + "]; largest |tanh(x) − x| = " + fmt(P.max_abs_tanh_minus_dense), tanhText, { class: "small" }, 16);
    // the numbers: beside the tanh, or under it
    const nx = wide ? 440 : 10, ny = wide ? ty : ly + 14, cols = [["h0", "h0"], ["pooler_dense", "W h0 + b"], ["pooler_activation", "tanh(…)"], ["pooler_output", "pooler_output"], ["mean_pooling", "mean pooling"]];
    text(svg, nx, ny, "their numbers", { class: "title" });
    text(svg, nx + 40, ny + 22, "dim", { class: "lbl", "text-anchor": "end" });
    cols.forEach(([, title], c) => text(svg, nx + 130 + c * 106, ny + 22, title, { class: "lbl", "text-anchor": "end" }));
    dims.forEach((d, r) => {
      const yy = ny + 42 + r * 18;
      if (r % 2 === 0) el("rect", { x: nx, y: yy - 13, width: 570, height: 18, fill: "#f7f8fa" }, svg);
      text(svg, nx + 40, yy, String(d), { class: "num", "text-anchor": "end" });
      cols.forEach(([key], c) => text(svg, nx + 130 + c * 106, yy, fmt(E[key][d]), { class: "num", "text-anchor": "end", "data-field": key, "data-index": d }));
    });
    let yy = ny + 42 + dims.length * 18 + 14;
    const line = (label, field, value, strong) => {
      text(svg, nx, yy, label, { class: "lbl" + (strong ? " strong" : "") });
      text(svg, nx + 360, yy, fmt(value), { class: "num" + (strong ? " strong" : ""), "text-anchor": "end", "data-field": field });
      yy += 18;
    };
    line("cosine(h0, pooler_output)", "cosine_h0_pooler_output", E.cosine_h0_pooler_output, true);
    line("cosine(h0, mean pooling)", "cosine_h0_mean_pooling", E.cosine_h0_mean_pooling);
    line("cosine(pooler_output, mean pooling)", "cosine_pooler_output_mean_pooling", P.cosine_pooler_output_mean_pooling);
    yy = wrapped(svg, nx, yy, "check: tanh(W h0 + b) recomputed with NumPy from pooler.dense: max |difference| = " + fmt(E.max_abs_diff_by_hand, 3) + (E.reproduced ? " (reproduced)" : " (NOT reproduced)"),
      w - nx - 10, { class: "small", "data-field": "max_abs_diff_by_hand" }, 14);
    yy = Math.max(yy, ly) + 16;
    // what the checkpoint says to use
    const st = P.sentence;
    text(svg, 10, yy, "what this checkpoint says a sentence embedding is", { class: "title" });
    yy += 24;
    if (!st.read) {
      yy = wrapped(svg, 10, yy, st.why, w - 20, { class: "lbl", "data-field": "sentence" }, 16);
      fit(svg, yy + 4);
      return;
    }
    let x = 10;
    const box = (label, sub, hot) => {
      const wBox = Math.max(130, 8 * Math.max(label.length, sub.length * 0.85));
      el("rect", { x: x, y: yy - 16, width: wBox, height: 40, rx: 6, fill: hot ? "#e8eef8" : "#f7f8fa", stroke: hot ? "#2458a6" : "#c5ccd6" }, svg);
      text(svg, x + 10, yy, label, { class: "tok strong" });
      text(svg, x + 10, yy + 16, sub, { class: "small" });
      x += wBox + 30;
      return x;
    };
    const subs = { Transformer: "this BERT: last_hidden_state", Pooling: st.pooling_modes.join(" + ") + " over the real tokens", Normalize: "to unit length" };
    st.modules.forEach((m, i) => {
      box(m, subs[m] || "", m === "Pooling");
      if (i < st.modules.length - 1) text(svg, x - 24, yy + 6, "→", { class: "lbl" });
    });
    yy += 46;
    const flags = Object.entries(st.pooling_config).filter(([k]) => k.startsWith("pooling_mode")).map(([k, v]) => k + ": " + JSON.stringify(v));
    yy = wrapped(svg, 10, yy, "modules.json: " + st.modules.join(", "), w - 20, { class: "small", "data-field": "modules" }, 16);
    yy = wrapped(svg, 10, yy, st.pooling_config_file + ": " + flags.join(", "), w - 20, { class: "small", "data-field": "pooling_config" }, 16);
    yy = wrapped(svg, 10, yy + 6, "So the sentence embedding is " + st.pooling_modes.join(" + ") + " pooling" + (st.normalize ? ", normalized" : "") +
      "; no module reads pooler_output.", w - 20, { class: "lbl strong" }, 18);
    yy = wrapped(svg, 10, yy, "pooler_output is for heads trained on it: BERT's next-sentence prediction in pretraining, and transformers' BertForSequenceClassification.", w - 20, { class: "lbl" }, 18);
    fit(svg, yy);
  }

  // ---- trace view ----
  function drawTrace() {
    const fig = view("trace").querySelector(".figure"), filter = control("trace", "filter").value.trim();
    const rows = DATA.trace.filter((r) => !filter || r.name.includes(filter));
    control("trace", "count").textContent = rows.length + " of " + DATA.trace.length + " arrays";
    // Wide: one line per array. Narrow: its name and shape on one line, its statistics and bar on the next.
    const wide = room() >= 1104, row = wide ? 18 : 34, top = wide ? 34 : 48, line2 = wide ? 0 : 16;
    const cols = wide ? [480, 570, 650, 730, 810, 900] : [null, 84, 164, 244, 324, 414], gx = wide ? 940 : 434, gw = 150;
    const svg = newSvg(fig, gx + gw + 14, top + rows.length * row + 12);
    text(svg, 10, top - 10 - line2, "name", { class: "lbl" });
    text(svg, wide ? cols[0] : gx + gw, top - 10 - line2, "shape", { class: "lbl", "text-anchor": "end" });
    ["mean", "std", "min", "max", "norm"].forEach((t, i) => text(svg, cols[i + 1], top - 10, t, { class: "lbl", "text-anchor": "end" }));
    text(svg, gx, top - 10, "min … max", { class: "lbl" });
    let previous = null;
    rows.forEach((r, i) => {
      const y = top + i * row, y2 = y + line2;
      const group = (r.name.match(/^encoder\.layer\.\d+|^[a-z]+/) || [""])[0];
      const g = el("g", { class: "trace-row", "data-name": r.name }, svg);
      if (group !== previous && i > 0) el("line", { x1: 6, x2: gx + gw, y1: y, y2: y, stroke: "#c5ccd6" }, g);
      previous = group;
      if (i % 2 === 0) el("rect", { x: 6, y: y + 1, width: gx + gw - 6, height: row - 1, fill: "#f7f8fa" }, g);
      text(g, 10, y + 13, r.name, { class: "tok" });
      text(g, wide ? cols[0] : gx + gw, y + 13, "(" + r.shape.join(", ") + ")", { class: "num", "text-anchor": "end" });
      ["mean", "std", "min", "max", "norm"].forEach((k, j) => text(g, cols[j + 1], y2 + 13, fmt(r[k]), { class: "num", "text-anchor": "end", "data-field": k }));
      const span = r.max - r.min || 1, X = (v) => gx + ((v - r.min) / span) * gw;
      el("line", { x1: gx, x2: gx + gw, y1: y2 + 9, y2: y2 + 9, stroke: "#9aa5b1" }, g);
      el("rect", { x: Math.max(gx, X(r.mean - r.std)), y: y2 + 5, width: Math.max(1.5, Math.min(gx + gw, X(r.mean + r.std)) - Math.max(gx, X(r.mean - r.std))), height: 8, fill: "#2458a6", "fill-opacity": 0.7 }, g);
      if (r.min <= 0 && r.max >= 0) el("line", { x1: X(0), x2: X(0), y1: y2 + 3, y2: y2 + 15, stroke: "#b2182b", "stroke-width": 1.5 }, g);
    });
  }

  // ---- tabs, export ----
  function showTab(name, reveal) {
    state.tab = name;
    document.querySelectorAll(".tabs [data-tab]").forEach((b) => b.setAttribute("aria-selected", b.dataset.tab === name));
    document.querySelectorAll("main .view").forEach((v) => { v.hidden = v.dataset.view !== name; });
    if (name === "neuron") syncNeuron();
    if (location.hash !== "#" + name) history.replaceState(null, "", "#" + name);
    if (reveal) bringIntoSight(view(name));
  }
  // After a click: the view starts just under the tabs (which stick to the top) unless its heading and the top of
  // its figure are in sight already.
  function bringIntoSight(v) {
    const tabs = document.querySelector(".tabs"), top = v.getBoundingClientRect().top;
    const figure = v.querySelector(".figure").getBoundingClientRect().top;
    if (top < tabs.getBoundingClientRect().bottom || figure > innerHeight - 160)
      window.scrollTo(0, scrollY + top - tabs.offsetHeight);
  }
  // A new width redraws the views that depend on it (each fits the page's width); hover and choices are kept.
  let drawnWidth = null;
  function redraw() {
    if (room() === drawnWidth) return;
    drawnWidth = room();
    drawHead(); drawModel(); drawNeuron(); drawPooler(); drawTrace(); showWholeText();
  }
  function serialize(name) {
    const svg = view(name).querySelector("svg.fig");
    return new XMLSerializer().serializeToString(svg);
  }
  function exportView(name, format) { // -> Promise of a data: URL (image/svg+xml or image/png)
    const source = serialize(name);
    const svgUrl = "data:image/svg+xml;base64," + btoa(unescape(encodeURIComponent(source)));
    if (format === "svg") return Promise.resolve(svgUrl);
    return new Promise((resolve, reject) => {
      const svg = view(name).querySelector("svg.fig"), scale = 2, img = new Image();
      img.onload = () => {
        const canvas = document.createElement("canvas");
        canvas.width = svg.width.baseVal.value * scale; canvas.height = svg.height.baseVal.value * scale;
        const ctx = canvas.getContext("2d");
        ctx.scale(scale, scale);
        ctx.drawImage(img, 0, 0);
        resolve(canvas.toDataURL("image/png"));
      };
      img.onerror = () => reject(new Error("the " + name + " view could not be drawn as an image"));
      img.src = svgUrl;
    });
  }
  function download(name, format) {
    exportView(name, format).then((url) => {
      const a = document.createElement("a");
      a.href = url; a.download = "minibert-" + name + "-view." + format;
      document.body.appendChild(a); a.click(); a.remove();
    });
  }

  function init() {
    drawHeader();
    setupHead(); syncHead();
    drawModel();
    setupNeuron(); syncNeuron();
    drawPooler();
    control("trace", "filter").addEventListener("input", drawTrace);
    drawTrace();
    document.querySelectorAll(".tabs [data-tab]").forEach((b) => b.addEventListener("click", () => showTab(b.dataset.tab, true)));
    document.querySelectorAll(".tabs [data-export]").forEach((b) => b.addEventListener("click", () => download(state.tab, b.dataset.export)));
    document.querySelectorAll("[data-goto]").forEach((a) => a.addEventListener("click", (e) => { e.preventDefault(); showTab(a.dataset.goto, true); }));
    const start = location.hash.slice(1);
    showTab(["head", "model", "neuron", "pooler", "trace"].includes(start) ? start : "head");
    drawnWidth = room(); showWholeText();
    let pending = null;
    new ResizeObserver(() => { clearTimeout(pending); pending = setTimeout(redraw, 100); }).observe(document.querySelector("main"));
    window.minibert = { data: DATA, show: showTab, exportView: exportView, state: state };
    document.body.dataset.drawnMs = performance.now().toFixed(0); // since navigation started: the load time
    document.body.dataset.ready = "1";
  }
  init();
})();
