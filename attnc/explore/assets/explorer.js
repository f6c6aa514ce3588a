/* attnc study explorer: draws a page from its embedded JSON (<script id="data">).
 * Plain DOM and SVG, written for this site; no library, no network. Pages: index, head, program
 * (see attnc/explore/payload.py for each record). When drawn, document.body.dataset.ready = "1" and
 * dataset.readyMs = milliseconds since navigation started. */
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("data").textContent);
  var app = document.getElementById("app");
  var root = app.dataset.root || "";
  var SVG = "http://www.w3.org/2000/svg";

  // ---- DOM helpers -------------------------------------------------------------------------
  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    setAttrs(node, attrs);
    append(node, children);
    return node;
  }
  function svg(tag, attrs, children) {
    var node = document.createElementNS(SVG, tag);
    setAttrs(node, attrs);
    append(node, children);
    return node;
  }
  function setAttrs(node, attrs) {
    for (var key in attrs || {}) {
      if (attrs[key] === null || attrs[key] === undefined) continue;
      if (key === "text") node.textContent = attrs[key];
      else if (key === "html") node.innerHTML = attrs[key];
      else if (key.slice(0, 2) === "on") node.addEventListener(key.slice(2), attrs[key]);
      else node.setAttribute(key, attrs[key]);
    }
  }
  function append(node, children) {
    (children || []).forEach(function (child) {
      if (child === null || child === undefined) return;
      node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    });
  }
  function fmt(value, digits) {
    if (value === null || value === undefined || value === "") return "–";
    return Number(value).toFixed(digits === undefined ? 3 : digits);
  }
  function fmtImpact(value) {
    return value === null || value === undefined ? "–" : Number(value).toExponential(2);
  }
  function headLink(head, text) { return el("a", { href: root + "heads/" + head + ".html", text: text || head }); }
  function programLink(name) { return el("a", { href: root + "programs/" + name + ".html", text: name }); }
  function notes(list) {
    if (!list || !list.length) return null;
    return el("div", { class: "notes" }, [el("strong", { text: "Not shown: " }),
      el("ul", {}, list.map(function (n) { return el("li", { text: n }); }))]);
  }
  function nav(extra) {
    return el("nav", {}, [el("a", { href: root + "index.html", text: "study index" })].concat(extra || []));
  }

  // ---- colours -----------------------------------------------------------------------------
  var VIRIDIS = ["#440154", "#482878", "#3e4989", "#31688e", "#26828e", "#1f9e89", "#35b779", "#6ece58",
                 "#b5de2b", "#fde725"].map(function (h) {
    return [parseInt(h.slice(1, 3), 16), parseInt(h.slice(3, 5), 16), parseInt(h.slice(5, 7), 16)];
  });
  function mix(stops, t) {
    t = Math.max(0, Math.min(1, isFinite(t) ? t : 0)) * (stops.length - 1);
    var i = Math.min(Math.floor(t), stops.length - 2), f = t - i, a = stops[i], b = stops[i + 1];
    return "rgb(" + [0, 1, 2].map(function (c) { return Math.round(a[c] + f * (b[c] - a[c])); }).join(",") + ")";
  }
  function viridis(t) { return mix(VIRIDIS, t); }
  var DIVERGING = [[33, 102, 172], [146, 197, 222], [247, 247, 247], [244, 165, 130], [178, 24, 43]];
  function diverging(t) { return mix(DIVERGING, (t + 1) / 2); }
  var HEAT = [[255, 255, 255], [198, 219, 239], [107, 174, 214], [33, 113, 181], [8, 48, 107]];
  function heat(w) { return mix(HEAT, Math.sqrt(w)); }

  // ---- layer x head grid -------------------------------------------------------------------
  /* cells: {head -> {value, title, outline}}; colour(value) -> css colour. Each cell links to its head page. */
  function grid(nLayers, nHeads, cells, colour) {
    var cw = Math.max(14, Math.min(34, Math.floor(300 / nHeads))), ch = Math.max(12, Math.min(24, Math.floor(520 / nLayers)));
    var left = 30, top = 18;
    var node = svg("svg", { class: "grid", width: left + nHeads * cw + 2, height: top + nLayers * ch + 2,
                            role: "img", "aria-label": "layer by head grid" });
    for (var h = 0; h < nHeads; h++) node.appendChild(svg("text", { x: left + (h + 0.5) * cw, y: 12, class: "axis", "text-anchor": "middle", text: h }));
    for (var l = 0; l < nLayers; l++) {
      node.appendChild(svg("text", { x: left - 4, y: top + (l + 0.5) * ch + 4, class: "axis", "text-anchor": "end", text: l }));
      for (h = 0; h < nHeads; h++) {
        var name = l + "." + h, cell = cells[name] || {};
        var rect = svg("rect", { x: left + h * cw, y: top + l * ch, width: cw - 1, height: ch - 1,
                                 fill: cell.value === null || cell.value === undefined ? "#ddd" : colour(cell.value),
                                 class: "cell" + (cell.outline ? " outline" : ""), "data-head": name },
                       [svg("title", { text: name + ": " + (cell.title || "no value") })]);
        node.appendChild(svg("a", { href: root + "heads/" + name + ".html" }, [rect]));
      }
    }
    node.appendChild(svg("text", { x: 2, y: 12, class: "axis", text: "L\\H" }));
    return node;
  }
  function legend(colour, lo, hi, label, format) {
    var node = svg("svg", { class: "legend", width: 320, height: 46 });
    var gradient = svg("linearGradient", { id: "g" + label.replace(/\W/g, "") });
    for (var i = 0; i <= 10; i++) gradient.appendChild(svg("stop", { offset: i * 10 + "%", "stop-color": colour(lo + (hi - lo) * i / 10) }));
    node.appendChild(svg("defs", {}, [gradient]));
    node.appendChild(svg("text", { x: 0, y: 11, class: "axis", text: label }));
    node.appendChild(svg("rect", { x: 0, y: 16, width: 240, height: 12, fill: "url(#" + gradient.id + ")" }));
    node.appendChild(svg("text", { x: 0, y: 42, class: "axis", text: format(lo) }));
    node.appendChild(svg("text", { x: 240, y: 42, class: "axis", "text-anchor": "end", text: format(hi) }));
    return node;
  }

  // ---- sortable table ----------------------------------------------------------------------
  /* columns: [{key, label, cell(row) -> node|string, sort(row) -> value}] */
  function table(rows, columns, id) {
    var body = el("tbody");
    var state = { key: null, dir: 1 };
    function fill() {
      body.textContent = "";
      var sorted = rows.slice();
      if (state.key !== null) {
        var col = columns[state.key];
        sorted.sort(function (a, b) {
          var x = col.sort(a), y = col.sort(b);
          if (x === null || x === undefined) return 1;
          if (y === null || y === undefined) return -1;
          return (x < y ? -1 : x > y ? 1 : 0) * state.dir;
        });
      }
      sorted.forEach(function (row) {
        body.appendChild(el("tr", {}, columns.map(function (c) {
          var value = c.cell(row);
          return el("td", { class: c.numeric ? "num" : null }, [typeof value === "string" ? value : value]);
        })));
      });
    }
    var head = el("tr", {}, columns.map(function (c, i) {
      return el("th", { title: "sort by " + c.label, "data-key": c.key, onclick: function () {
        state.dir = state.key === i ? -state.dir : (c.numeric ? -1 : 1);
        state.key = i;
        Array.prototype.forEach.call(head.children, function (th, j) {
          th.className = j === i ? (state.dir > 0 ? "asc" : "desc") : "";
        });
        fill();
      }, text: c.label });
    }));
    fill();
    return el("table", { class: "sortable", id: id }, [el("thead", {}, [head]), body]);
  }

  // ---- sweep plot --------------------------------------------------------------------------
  var SERIES_STYLE = { programs: ["#1f77b4", "programs (fitted)"], content_free: ["#ff7f0e", "content-free baseline"],
                       mean_ablation: ["#2ca02c", "mean ablation"] };
  function sweepPlot(sweep) {
    var W = 560, H = 330, L = 62, R = 12, T = 14, B = 44;
    var node = svg("svg", { class: "sweep", width: W, height: H, role: "img", "aria-label": "perplexity sweep" });
    var all = [];
    Object.keys(sweep.series).forEach(function (k) { sweep.series[k].forEach(function (p) { if (p.ppl > 0) all.push(p.ppl); }); });
    if (sweep.ppl_baseline > 0) all.push(sweep.ppl_baseline);
    if (!all.length) return el("p", { text: "no sweep points" });
    var lo = Math.log10(Math.min.apply(null, all)), hi = Math.log10(Math.max.apply(null, all));
    if (hi - lo < 0.05) { lo -= 0.05; hi += 0.05; }
    function x(f) { return L + f * (W - L - R); }
    function y(p) { return T + (hi - Math.log10(p)) / (hi - lo) * (H - T - B); }
    node.appendChild(svg("rect", { x: L, y: T, width: W - L - R, height: H - T - B, class: "frame" }));
    [0, 0.25, 0.5, 0.75, 1].forEach(function (f) {
      node.appendChild(svg("text", { x: x(f), y: H - B + 16, class: "axis", "text-anchor": "middle", text: f }));
    });
    for (var i = 0; i <= 4; i++) {
      var v = Math.pow(10, lo + (hi - lo) * i / 4);
      node.appendChild(svg("line", { x1: L, x2: W - R, y1: y(v), y2: y(v), class: "gridline" }));
      node.appendChild(svg("text", { x: L - 4, y: y(v) + 4, class: "axis", "text-anchor": "end", text: v.toPrecision(3) }));
    }
    node.appendChild(svg("text", { x: (L + W - R) / 2, y: H - 8, class: "axis", "text-anchor": "middle", text: "fraction of heads replaced" }));
    node.appendChild(svg("text", { x: 14, y: (T + H - B) / 2, class: "axis", "text-anchor": "middle",
                                   transform: "rotate(-90 14 " + (T + H - B) / 2 + ")", text: "held-out perplexity (log)" }));
    var legendItems = [];
    if (sweep.ppl_baseline > 0) {
      node.appendChild(svg("line", { x1: L, x2: W - R, y1: y(sweep.ppl_baseline), y2: y(sweep.ppl_baseline), class: "stock" }));
      legendItems.push(["#888", "stock " + fmt(sweep.ppl_baseline, 2), true]);
    }
    Object.keys(sweep.series).forEach(function (name) {
      var style = SERIES_STYLE[name] || ["#9467bd", name];
      var points = sweep.series[name].slice().sort(function (a, b) { return a.fraction - b.fraction; })
        .filter(function (p) { return p.ppl > 0; });
      node.appendChild(svg("polyline", { points: points.map(function (p) { return x(p.fraction) + "," + y(p.ppl); }).join(" "),
                                         stroke: style[0], class: "series", "data-series": name }));
      points.forEach(function (p) {
        node.appendChild(svg("circle", { cx: x(p.fraction), cy: y(p.ppl), r: 3.5, fill: style[0] },
          [svg("title", { text: style[1] + ": " + Math.round(p.fraction * 100) + "% replaced, perplexity " + fmt(p.ppl, 2) +
                                 (p.ppl_increase_pct !== undefined ? " (" + (p.ppl_increase_pct >= 0 ? "+" : "") + fmt(p.ppl_increase_pct, 1) + "%)" : "") })]));
      });
      legendItems.push([style[0], style[1], false]);
    });
    legendItems.forEach(function (item, k) {
      var ly = T + 14 + k * 16;
      node.appendChild(svg("line", { x1: L + 10, x2: L + 30, y1: ly - 4, y2: ly - 4, stroke: item[0], "stroke-width": 2,
                                     "stroke-dasharray": item[2] ? "4 3" : null }));
      node.appendChild(svg("text", { x: L + 36, y: ly, class: "axis", text: item[1] }));
    });
    return node;
  }

  // ---- index page --------------------------------------------------------------------------
  function renderIndex() {
    var rows = data.heads, byHead = {};
    rows.forEach(function (r) { byHead[r.head] = r; });
    var impacts = rows.map(function (r) { return Math.abs(r.impact || 0); }).sort(function (a, b) { return a - b; });
    var scale = impacts.length ? impacts[Math.floor(0.95 * (impacts.length - 1))] || impacts[impacts.length - 1] || 1 : 1;
    var modes = {
      iou: { label: "held-out IoU (what replaces the head)", colour: viridis, lo: 0, hi: 1, fmt: function (v) { return fmt(v, 2); },
             value: function (r) { return r.used_iou; } },
      impact: { label: data.criterion + " (blue: replacing lowers the loss)", colour: function (v) { return diverging(v / scale); },
                lo: -scale, hi: scale, fmt: fmtImpact, value: function (r) { return r.impact; } }
    };
    var gridBox = el("div", { id: "grid-box" });
    function drawGrid(mode) {
      var m = modes[mode], cells = {};
      rows.forEach(function (r) {
        cells[r.head] = { value: m.value(r), title: r.used + ", IoU " + fmt(r.used_iou) + (r.impact !== null ? ", impact " + fmtImpact(r.impact) : "") +
                          (r.rank !== null ? ", replaced #" + (r.rank + 1) : "") };
      });
      gridBox.textContent = "";
      gridBox.dataset.mode = mode;
      append(gridBox, [grid(data.n_layers, data.n_heads, cells, m.colour), legend(m.colour, m.lo, m.hi, m.label, m.fmt)]);
    }
    var toggle = el("div", { class: "toggle" }, Object.keys(modes).map(function (mode) {
      var input = el("input", { type: "radio", name: "colour", value: mode, id: "colour-" + mode,
                                onchange: function () { drawGrid(mode); } });
      if (mode === "iou") input.checked = true;
      if (mode === "impact" && !data.impact_available) input.disabled = true;
      return el("label", { for: "colour-" + mode }, [input, mode === "iou" ? " held-out IoU" : " loss impact"]);
    }));
    drawGrid("iou");
    var columns = [
      { key: "head", label: "head", cell: function (r) { return headLink(r.head); }, sort: function (r) { return r.layer * 1000 + r.index; } },
      { key: "program", label: "best program", cell: function (r) { return programLink(r.program); }, sort: function (r) { return r.program; } },
      { key: "used", label: "replaced by (mixture)", cell: function (r) { return r.used; }, sort: function (r) { return r.used; } },
      { key: "iou_fit", label: "IoU fit", numeric: true, cell: function (r) { return fmt(r.iou_fit); }, sort: function (r) { return r.iou_fit; } },
      { key: "iou_heldout", label: "IoU held-out", numeric: true, cell: function (r) { return fmt(r.iou_heldout); }, sort: function (r) { return r.iou_heldout; } },
      { key: "used_iou", label: "mixture IoU held-out", numeric: true, cell: function (r) { return fmt(r.used_iou); }, sort: function (r) { return r.used_iou; } },
      { key: "impact", label: "impact", numeric: true, cell: function (r) { return fmtImpact(r.impact); }, sort: function (r) { return r.impact; } },
      { key: "rank", label: "replacement rank", numeric: true, cell: function (r) { return r.rank === null ? "–" : String(r.rank + 1); },
        sort: function (r) { return r.rank === null ? null : -r.rank; } }
    ];
    var qa = data.qa ? table(Object.keys(data.qa).map(function (t) { return Object.assign({ task: t }, data.qa[t]); }), [
      { key: "task", label: "task", cell: function (r) { return r.task; }, sort: function (r) { return r.task; } },
      { key: "n", label: "items", numeric: true, cell: function (r) { return String(r.n); }, sort: function (r) { return r.n; } },
      { key: "a0", label: "acc stock", numeric: true, cell: function (r) { return fmt(r.acc_baseline); }, sort: function (r) { return r.acc_baseline; } },
      { key: "a25", label: "acc 25% replaced", numeric: true, cell: function (r) { return fmt(r.acc_replaced_25); }, sort: function (r) { return r.acc_replaced_25; } },
      { key: "n0", label: "acc_norm stock", numeric: true, cell: function (r) { return fmt(r.acc_norm_baseline); }, sort: function (r) { return r.acc_norm_baseline; } },
      { key: "n25", label: "acc_norm 25%", numeric: true, cell: function (r) { return fmt(r.acc_norm_replaced_25); }, sort: function (r) { return r.acc_norm_replaced_25; } }
    ], "qa") : el("p", { class: "missing", text: "No QA in this study." });
    append(app, [
      el("h1", { text: "attnc study: " + data.model }),
      el("nav", {}, data.files.map(function (f) { return el("a", { href: root + data.files_base + f, text: f }); })),
      notes(data.notes),
      el("table", { class: "summary" }, [el("tbody", {}, data.summary.map(function (kv) {
        return el("tr", {}, [el("th", { text: kv[0] }), el("td", { text: String(kv[1]) })]);
      }))]),
      el("div", { class: "row" }, [
        el("section", {}, [el("h2", { text: "Heads (" + data.n_layers + " layers x " + data.n_heads + " heads)" }), toggle, gridBox]),
        el("section", {}, [el("h2", { text: "Replacement sweep" }), sweepPlot(data.sweep),
                           el("h2", { text: "QA accuracy" }), qa])
      ]),
      el("h2", { text: "All heads (click a column to sort)" }), table(rows, columns, "heads"),
      el("h2", { text: "Programs" }),
      el("ul", { class: "programs" }, data.programs.map(function (p) {
        return el("li", {}, [programLink(p.name), " — best for " + p.best + ", used by " + p.used + " heads"]);
      }))
    ]);
  }

  // ---- attention heatmaps with a shared query row ------------------------------------------
  function decode(text, n) {
    var bytes = atob(text), m = new Float32Array(n * n), k = 0;
    for (var i = 0; i < n; i++) for (var j = 0; j <= i; j++) m[i * n + j] = bytes.charCodeAt(k++) / 255;
    return m;
  }
  function heatmap(title, matrix, labels, onRow) {
    var n = labels.length, cell = Math.max(6, Math.min(14, Math.floor(520 / n))), left = 74, top = 74;
    var size = n * cell, node = svg("svg", { class: "heatmap", width: left + size + 4, height: top + size + 4,
                                            "data-title": title });
    var cells = svg("g", { transform: "translate(" + left + "," + top + ")" });
    for (var i = 0; i < n; i++) {
      for (var j = 0; j <= i; j++) {
        var w = matrix[i * n + j];
        if (w < 0.5 / 255) continue;
        cells.appendChild(svg("rect", { x: j * cell, y: i * cell, width: cell, height: cell, fill: heat(w) }));
      }
    }
    cells.insertBefore(svg("rect", { x: 0, y: 0, width: size, height: size, class: "frame" }), cells.firstChild);
    var font = Math.min(11, cell);
    labels.forEach(function (label, i) {
      node.appendChild(svg("text", { x: left - 3, y: top + i * cell + cell * 0.8, class: "tok q", "data-q": i,
                                     "text-anchor": "end", "font-size": font, text: label.slice(0, 10) }));
      var cx = left + i * cell + cell * 0.8;
      node.appendChild(svg("text", { x: cx, y: top - 3, class: "tok k", "data-k": i, "font-size": font,
                                     transform: "rotate(-90 " + cx + " " + (top - 3) + ")", text: label.slice(0, 10) }));
    });
    node.appendChild(cells);
    var outline = svg("rect", { x: left - 1, y: top, width: size + 2, height: cell, class: "row-outline", visibility: "hidden" });
    node.appendChild(outline);
    node.addEventListener("mousemove", function (event) {
      var box = node.getBoundingClientRect(), y = event.clientY - box.top - top, x = event.clientX - box.left;
      if (y >= 0 && y < size && x >= 0) onRow(Math.floor(y / cell));
    });
    var rowLabels = node.querySelectorAll("text.q"), keyLabels = node.querySelectorAll("text.k");
    node.setRow = function (i) {
      outline.setAttribute("y", top + i * cell);
      outline.setAttribute("visibility", "visible");
      var max = 0;
      for (var j = 0; j <= i; j++) max = Math.max(max, matrix[i * n + j]);
      Array.prototype.forEach.call(rowLabels, function (t, q) { t.classList.toggle("active", q === i); });
      Array.prototype.forEach.call(keyLabels, function (t, k) {  // the keys row i attends to, by weight
        var w = k <= i && max > 0 ? matrix[i * n + k] / max : 0;
        t.classList.toggle("attended", w > 0.1);
        t.style.fillOpacity = w > 0.1 ? (0.35 + 0.65 * w).toFixed(2) : "";
      });
    };
    return node;
  }
  function tokenText(label) { return label.replace(/^␣/, " ").replace(/\\n/g, "↵"); }
  function textRow(name, labels, colour, onRow) {
    var spans = labels.map(function (label, i) {
      return el("span", { class: "t", "data-i": i, text: tokenText(label), onmouseenter: function () { onRow(i); } });
    });
    var node = el("div", { class: "text" }, [el("span", { class: "who", text: name })].concat(spans));
    node.setRow = function (i, matrix) {
      var n = labels.length, max = 0;
      for (var j = 0; j <= i; j++) max = Math.max(max, matrix[i * n + j]);
      spans.forEach(function (span, j) {
        var w = j <= i && max > 0 ? matrix[i * n + j] / max : 0;
        span.style.background = w > 0.02 ? "rgba(" + colour + "," + (0.75 * w).toFixed(2) + ")" : "";
        span.classList.toggle("query", j === i);
        span.title = j <= i ? "weight " + fmt(matrix[i * n + j], 3) : "after the query";
      });
    };
    return node;
  }
  function topKeys(matrix, labels, i) {
    var n = labels.length, keys = [];
    for (var j = 0; j <= i; j++) keys.push([matrix[i * n + j], j]);
    keys.sort(function (a, b) { return b[0] - a[0]; });
    return keys.slice(0, 3).filter(function (k) { return k[0] >= 0.01; }).map(function (k) {
      return k[1] + " '" + labels[k[1]] + "' " + fmt(k[0], 2);
    }).join(", ");
  }
  function programSource(p) {
    return el("div", { class: "program" }, [
      el("h3", {}, [programLink(p.name), p.weight !== undefined && p.weight !== 1 ? " (weight " + fmt(p.weight, 2) + ")" : "",
                    p.backend ? el("span", { class: "dim", text: "  " + p.backend + " backend" }) : null]),
      p.doc ? el("p", { class: "doc", text: p.doc }) : null,
      p.source_html ? el("pre", { class: "source", html: p.source_html }) : el("p", { class: "missing", text: "source not on disk" })
    ]);
  }

  // ---- head page ---------------------------------------------------------------------------
  var STATS = [["first", "first token"], ["self_", "self"], ["previous", "previous token"], ["punctuation", "punctuation"],
               ["repeat", "earlier copies"], ["induction", "induction (after a copy)"], ["entropy", "row entropy (nats)"]];
  function renderHead() {
    var r = data.row, view = data.view;
    var extra = [];
    if (data.prev) extra.push(headLink(data.prev, "← head " + data.prev));
    if (data.next) extra.push(headLink(data.next, "head " + data.next + " →"));
    var facts = [["best program", programLink(r.program)], ["replaced by", r.used], ["IoU fit / held-out (best program)", fmt(r.iou_fit) + " / " + fmt(r.iou_heldout)],
                 ["held-out IoU of what replaces it", fmt(r.used_iou)], [r.impact === null ? "loss impact" : data.criterion, r.impact === null ? "not measured" : fmtImpact(r.impact)],
                 ["replacement rank", r.rank === null ? "–" : (r.rank + 1) + " of " + data.n_heads_total]];
    append(app, [
      nav(extra),
      el("h1", { text: "Head " + data.head + " — " + r.used }),
      notes(data.notes),
      el("table", { class: "summary" }, [el("tbody", {}, facts.map(function (kv) {
        return el("tr", {}, [el("th", { text: kv[0] }), el("td", {}, [kv[1]])]);
      }))])
    ]);
    if (view) {
      var statsRows = STATS.map(function (s) {
        return el("tr", {}, [el("th", { text: s[1] }), el("td", { class: "num", text: fmt(view.stats.neural[s[0]], 3) }),
                             el("td", { class: "num", text: view.stats.program ? fmt(view.stats.program[s[0]], 3) : "–" })]);
      });
      append(app, [el("h2", { text: "Attention statistics (mean mass per query, shown windows)" }),
        el("table", { class: "summary", id: "stats" }, [el("thead", {}, [el("tr", {}, [el("th"), el("th", { text: "neural" }), el("th", { text: "program" })])]),
                                                        el("tbody", {}, statsRows)])]);
      var box = el("div", { id: "windows" });
      var buttons = el("div", { class: "toggle", id: "window-buttons" });
      data.windows.forEach(function (w, k) {
        var label = "window " + w.window + (view.iou.length ? " (IoU " + fmt(view.iou[k]) + ")" : "");
        buttons.appendChild(el("button", { type: "button", "data-k": k, text: label, onclick: function () { showWindow(k); } }));
      });
      var showWindow = function (k) {
        var w = data.windows[k], n = w.labels.length;
        var neural = decode(view.neural[k], n), program = view.program.length ? decode(view.program[k], n) : null;
        Array.prototype.forEach.call(buttons.children, function (b, j) { b.classList.toggle("active", j === k); });
        box.textContent = "";
        var readout = el("p", { class: "readout", id: "readout", text: "Hover a query token (a row, or a token in the text) to see where it attends." });
        var maps = [], texts = [];
        function setRow(i) {
          i = Math.max(0, Math.min(n - 1, i));
          currentRow = { row: i, set: setRow };
          maps.forEach(function (m) { m.setRow(i); });
          texts[0].setRow(i, neural);
          if (program) texts[1].setRow(i, program);
          document.body.dataset.row = i;
          readout.textContent = "query " + i + " '" + w.labels[i] + "' → neural: " + topKeys(neural, w.labels, i) +
            (program ? " | program: " + topKeys(program, w.labels, i) : "");
        }
        maps.push(heatmap("neural", neural, w.labels, setRow));
        if (program) maps.push(heatmap("program", program, w.labels, setRow));
        texts.push(textRow("neural", w.labels, "33,113,181", setRow));
        if (program) texts.push(textRow("program", w.labels, "230,120,20", setRow));
        append(box, [
          el("p", { class: "dim", text: "Window " + w.window + ": first " + n + " of " + w.n_tokens + " tokens shown; IoU " +
                    (view.iou.length ? fmt(view.iou[k]) : "–") + " on the whole window. Colour: square root of the weight; weights quantized to 1/255." }),
          el("div", { class: "row" }, maps.map(function (m) {
            return el("figure", {}, [el("figcaption", { text: m.dataset.title === "neural" ? "neural attention" : "program: " + r.used }), m]);
          })),
          readout
        ].concat(texts));
        setRow(Math.min(n - 1, Math.floor(n / 2)));
      };
      var currentRow = null;  // the shown window's query row and its setter (arrow keys move it)
      document.addEventListener("keydown", function (event) {
        if (!currentRow || (event.key !== "ArrowUp" && event.key !== "ArrowDown")) return;
        event.preventDefault();
        currentRow.set(currentRow.row + (event.key === "ArrowUp" ? -1 : 1));
      });
      append(app, [el("h2", { text: "Neural vs program attention on held-out windows" }),
                   el("p", { class: "dim", text: "Hover a row or a token to pick the query; arrow keys up and down move it." }),
                   buttons, box]);
      if (data.windows.length) showWindow(0);
    }
    append(app, [el("h2", { text: "Program" + (data.programs.length > 1 ? "s of the mixture" : "") })].concat(data.programs.map(programSource)));
  }

  // ---- program page ------------------------------------------------------------------------
  function renderProgram() {
    var p = data.program, cells = {}, users = {};
    data.users.forEach(function (u) { users[u.head] = u; });
    data.scores.forEach(function (value, k) {
      var head = Math.floor(k / data.n_heads) + "." + (k % data.n_heads), user = users[head];
      cells[head] = { value: value, outline: !!user, title: "this program alone, held-out IoU " + fmt(value) +
                      (user ? (user.best ? " (best program)" : "") + (user.weight ? ", weight " + fmt(user.weight, 2) + " in what replaces it" : "") : "") };
    });
    append(app, [
      nav(),
      el("h1", { text: "Program " + p.name }),
      notes(data.notes),
      programSource(p),
      el("h2", { text: "Held-out IoU of this program on every head (outlined: heads that use it)" }),
      grid(data.n_layers, data.n_heads, cells, viridis), legend(viridis, 0, 1, "held-out IoU", function (v) { return fmt(v, 2); }),
      el("h2", { text: "Heads that use it (" + data.users.length + ")" }),
      data.users.length ? table(data.users, [
        { key: "head", label: "head", cell: function (u) { return headLink(u.head); }, sort: function (u) { var h = u.head.split("."); return h[0] * 1000 + h[1] * 1; } },
        { key: "best", label: "best program", cell: function (u) { return u.best ? "yes" : "no"; }, sort: function (u) { return u.best ? 1 : 0; } },
        { key: "weight", label: "weight in replacement", numeric: true, cell: function (u) { return fmt(u.weight, 2); }, sort: function (u) { return u.weight; } },
        { key: "iou", label: "IoU held-out (alone)", numeric: true, cell: function (u) { return fmt(u.iou_heldout); }, sort: function (u) { return u.iou_heldout; } },
        { key: "used", label: "IoU held-out (replacement)", numeric: true, cell: function (u) { return fmt(u.used_iou); }, sort: function (u) { return u.used_iou; } }
      ], "users") : el("p", { class: "missing", text: "No head uses this program." })
    ]);
  }

  app.textContent = "";
  ({ index: renderIndex, head: renderHead, program: renderProgram })[data.page]();
  document.body.dataset.readyMs = performance.now().toFixed(1);  // time to interactive, for tests and readers
  document.body.dataset.ready = "1";
})();
