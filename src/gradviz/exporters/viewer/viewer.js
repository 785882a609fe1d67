/* gradviz viewer: explore a computation graph and step through backward().
 *
 * Written for gradviz (no framework). It reads the JSON block #gradviz-data
 * (format gradviz-viewer 1, written by gradviz.exporters.html) and builds
 * every element itself: pictures with createElementNS from Graphviz's
 * shapes, and every text (labels, ids, op names, messages) with
 * textContent, never as markup. It makes no network request.
 */
(function () {
  "use strict";
  var SVGNS = "http://www.w3.org/2000/svg";
  // The shapes a layout holds, with their geometry attributes in order, and
  // the paint attributes a style may set (the exporter keeps the same lists).
  var TAGS = [["polygon", "points"], ["polyline", "points"], ["path", "d"], ["ellipse", "cx", "cy", "rx", "ry"], ["text", "x", "y"],
    ["rect", "x", "y", "width", "height"]];
  var PAINT = { fill: 1, stroke: 1, "stroke-width": 1, "stroke-dasharray": 1, "font-weight": 1, "font-size": 1, "font-style": 1, "text-anchor": 1 };

  var D = JSON.parse(document.getElementById("gradviz-data").textContent);
  function num(x) {
    if (x === "nan") return NaN;
    if (x === "inf") return Infinity;
    if (x === "-inf") return -Infinity;
    return x;
  }
  var N = D.id.length;
  var data = D.data.map(num), grad = D.grad.map(num);
  var local = D.local.map(function (l) { return l === null ? null : l.map(num); });
  var steps = D.steps.map(function (s) {
    var adds = [];
    for (var j = 2; j + 4 < s.length; j += 5) {
      var before = num(s[j + 2]), after = num(s[j + 3]);
      adds.push({ o: s[j], slots: typeof s[j + 1] === "number" ? [s[j + 1]] : s[j + 1], before: before, after: after,
        added: after - before, over: s[j + 4] === 1 });
    }
    return { node: s[0], grad: num(s[1]), adds: adds };
  });
  var S = steps.length;
  var uses = [];
  for (var i = 0; i < N; i++) uses.push([]);
  D.ops.forEach(function (ops, c) { ops.forEach(function (o, slot) { uses[o].push([c, slot]); }); });
  // additions per node, and each node's grad before its first addition (the state before backward)
  var received = [];
  var initial = new Float64Array(N);
  for (i = 0; i < N; i++) received.push([]);
  steps.forEach(function (s, k) {
    s.adds.forEach(function (a) {
      if (!received[a.o].length) initial[a.o] = a.before;
      received[a.o].push([k, a]);
    });
  });
  var now = Float64Array.from(initial);

  // ---- numbers, as the pictures write them (4 decimals; exponent outside [1e-4, 1e6)) ----
  function fmt4(x) {
    if (x === null || x === undefined) return "?";
    if (isNaN(x)) return "nan";
    if (!isFinite(x)) return x > 0 ? "inf" : "-inf";
    var a = Math.abs(x);
    if (x === 0 || (a >= 1e-4 && a < 1e6)) return x.toFixed(4);
    return x.toExponential(4).replace(/e([+-])(\d)$/, "e$10$2");
  }
  function full(x) {
    if (x === null || x === undefined) return "?";
    x = num(x);
    if (isNaN(x)) return "nan";
    if (!isFinite(x)) return x > 0 ? "inf" : "-inf";
    return String(x);
  }
  function short(x) {  // 8 significant digits: a table row stays one line
    x = num(x);
    return typeof x === "number" && isFinite(x) ? String(Number(x.toPrecision(8))) : full(x);
  }
  function name(p) { return D.label[p] ? D.label[p] + " (" + D.id[p] + ")" : D.id[p]; }

  // ---- DOM helpers: text only through textContent ----
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function sv(tag, attrs) {
    var e = document.createElementNS(SVGNS, tag);
    if (attrs) for (var k in attrs) if (Object.prototype.hasOwnProperty.call(attrs, k)) e.setAttribute(k, attrs[k]);
    return e;
  }
  function nodeButton(p, text) {
    var b = el("button", "link", text || name(p));
    b.dataset.pos = String(p);
    b.addEventListener("click", function () { goTo(p); });
    return b;
  }

  // ---- the page ----
  var header = el("header");
  header.appendChild(el("span", "title", D.title || "gradviz viewer"));
  var box = el("span", "searchbox");
  var search = el("input");
  search.type = "search"; search.id = "search"; search.placeholder = "search label or id (/)"; search.autocomplete = "off";
  var results = el("ul"); results.id = "results";
  box.appendChild(search); box.appendChild(results);
  header.appendChild(box);
  function tool(id, text, title, fn) {
    var b = el("button", null, text); b.id = id; b.title = title; b.addEventListener("click", fn); header.appendChild(b); return b;
  }
  tool("fit", "fit", "fit the picture to the window (f)", function () { fit(); });
  tool("back", "up", "back to the enclosing picture (u)", function () { up(); });
  var bar = el("span"); bar.id = "stepbar";
  header.appendChild(bar);
  function stepTool(id, text, title, fn) {
    var b = el("button", null, text); b.id = id; b.title = title; b.addEventListener("click", fn); bar.appendChild(b); return b;
  }
  bar.appendChild(el("span", "muted", "backward:"));
  stepTool("step-first", "|<", "before backward(): every grad 0 (Home)", function () { goStep(0); });
  stepTool("step-prev", "<", "previous _backward call (Left)", function () { goStep(t === null ? S + 1 : Math.max(0, t - 1)); });
  var pos = el("span", null, ""); pos.id = "step-pos"; bar.appendChild(pos);
  stepTool("step-next", ">", "next _backward call (Right)", function () { goStep(t === null ? 0 : Math.min(S + 1, t + 1)); });
  stepTool("step-last", ">|", "after the last _backward call (End)", function () { goStep(S + 1); });
  stepTool("step-off", "recorded", "show the recorded grads again (Esc)", function () { goStep(null); });
  document.body.appendChild(header);

  var stage = el("div"); stage.id = "stage";
  var crumbs = el("div"); crumbs.id = "crumbs";
  stage.appendChild(crumbs);
  var hint = el("div"); hint.id = "hint";
  stage.appendChild(hint);
  hint.textContent =
    "drag: pan · wheel: zoom · click: details · Left/Right: step backward · o/c: operand/consumer · / search · f fit";
  document.body.appendChild(stage);
  var aside = el("aside");
  document.body.appendChild(aside);

  function section(title, id) {
    aside.appendChild(el("h2", null, title));
    var d = el("div"); d.id = id; aside.appendChild(d); return d;
  }
  var stepInfo = section("Backward", "step-info");
  var panel = section("Node", "panel");
  var findingsBox = D.findings.length ? section("Findings (" + D.findings.length + ")", "findings") : null;
  var about = section("This file", "about");

  // ---- layouts: built when first shown ----
  var built = [];   // per layout: {svg, content, overlay, boxes: pos -> g, grads: pos -> text, width, height}
  var drawnIn = new Int32Array(N).fill(-1);
  D.layouts.forEach(function (L, li) {
    L.items.forEach(function (it) { if (it[0] === "v" && drawnIn[it[1]] < 0) drawnIn[it[1]] = li; });
  });
  var cur = -1, trail = [], selected = null, t = null, vb = null;

  var paints = [];
  function paintOf(k) {  // a style's attributes as [name, value] pairs, checked against PAINT once
    if (!paints[k]) {
      var st = D.styles[k] || {};
      paints[k] = Object.keys(st).filter(function (a) { return PAINT[a] === 1; }).map(function (a) { return [a, String(st[a])]; });
    }
    return paints[k];
  }
  function build(li) {
    if (built[li]) return built[li];
    var L = D.layouts[li];
    var svg = sv("svg", { viewBox: "0 0 " + L.width + " " + L.height, preserveAspectRatio: "xMidYMid meet" });
    var content = sv("g", { transform: L.transform });
    // boxes: pos -> its first box; copies: pos -> every box of it (a node with many consumers is drawn
    // once beside each, see dot.py); beside: "pos:consumer" -> the copy drawn beside that consumer
    var info = { svg: svg, content: content, boxes: {}, copies: {}, beside: {}, grads: {}, gradText: {}, width: L.width, height: L.height };
    // Edges are not interactive: all edges of one style become one path (thousands of elements
    // fewer to build and draw in a big picture), drawn under the nodes.
    var edges = {}, edgeLayer = sv("g");
    edgeLayer.setAttribute("class", "edge");
    L.items.forEach(function (it, n) {
      var kind = it[0], ref = it[1];
      if (kind === "e") {
        it[2].forEach(function (s) {
          var d = s[0] === 2 ? s[2] : s[0] === 0 || s[0] === 1 ? "M" + s[2].trim().split(/\s+/).join("L") + (s[0] === 0 ? "Z" : "") : null;
          if (d !== null) (edges[s[1]] = edges[s[1]] || []).push(d);
        });
        return;
      }
      var g = sv("g");
      if (kind === "v" || kind === "o") { g.setAttribute("class", "node " + kind); g.dataset.pos = String(ref); }
      else if (kind === "p") { g.setAttribute("class", "ph"); g.dataset.open = String(ref.open); g.__ref = ref; }
      var texts = [];
      it[2].forEach(function (s) {
        var tag = TAGS[s[0]];
        if (!tag) return;
        var e = document.createElementNS(SVGNS, tag[0]), st = paintOf(s[1]);
        for (var k = 0; k < st.length; k++) e.setAttribute(st[k][0], st[k][1]);
        for (var j = 1; j < tag.length; j++) e.setAttribute(tag[j], s[j + 1]);
        if (tag[0] === "text") { e.textContent = s[tag.length + 1]; texts.push(e); }
        g.appendChild(e);
      });
      if (kind === "p" && texts.length) {  // far out its text is not drawn: a tooltip says what it holds
        var tip = document.createElementNS(SVGNS, "title");
        tip.textContent = texts.map(function (x) { return x.textContent; }).join(" ");
        g.insertBefore(tip, g.firstChild);
      }
      if (kind === "v") {
        if (!info.boxes[ref]) info.boxes[ref] = g;
        (info.copies[ref] = info.copies[ref] || []).push(g);
        if (it.length > 3) { info.beside[ref + ":" + it[3]] = g; g.dataset.beside = String(it[3]); }
        // cells: label (if any), data, grad, note
        var gi = D.label[ref] ? 2 : 1;
        if (texts[gi] && texts[gi].textContent.slice(0, 5) === "grad ") {
          (info.grads[ref] = info.grads[ref] || []).push(texts[gi]); info.gradText[ref] = texts[gi].textContent;
        }
      }
      content.appendChild(g);
      if (n === 0) content.appendChild(edgeLayer);  // above the background, under everything else
    });
    Object.keys(edges).forEach(function (k) {
      var e = sv("path", { d: edges[k].join("") }), st = paintOf(Number(k));
      for (var j = 0; j < st.length; j++) e.setAttribute(st[j][0], st[j][1]);
      edgeLayer.appendChild(e);
    });
    var overlay = sv("g");
    content.appendChild(overlay);
    info.overlay = overlay;
    svg.appendChild(content);
    built[li] = info;
    return info;
  }

  function show(li, keepTrail) {
    if (li === cur) return;
    var info = build(li);
    if (cur >= 0) stage.removeChild(built[cur].svg);
    if (!keepTrail && cur >= 0) trail.push(cur);
    cur = li;
    stage.insertBefore(info.svg, crumbs);
    crumbs.textContent = "";
    if (li !== 0 || trail.length) {
      trail.concat([li]).forEach(function (l, k) {
        if (k) crumbs.appendChild(el("span", "muted", " › "));
        var b = el("button", "link", D.layouts[l].title || "whole graph");
        b.addEventListener("click", function () { if (l !== cur) { trail = trail.slice(0, k); show(l, true); } });
        crumbs.appendChild(b);
      });
    }
    fit();
    paint();
  }
  function up() { if (trail.length) show(trail.pop(), true); }

  // ---- pan and zoom: the svg's viewBox ----
  function setBox(b) {
    vb = b;
    var svg = built[cur].svg;
    svg.setAttribute("viewBox", b.join(" "));
    // Far out, where a 12-point text would be under 3 pixels, the boxes' texts are not drawn:
    // laying out thousands of unreadable texts is most of the cost of a big picture.
    var scale = Math.min(svg.clientWidth / b[2], svg.clientHeight / b[3]);
    svg.classList.toggle("far", scale * 12 < 3);
  }
  function fit() { var i = built[cur]; setBox([0, 0, i.width, i.height]); }
  function toSvg(cx, cy) {
    var m = built[cur].svg.getScreenCTM();
    if (!m) return [0, 0];
    var p = built[cur].svg.createSVGPoint(); p.x = cx; p.y = cy;
    p = p.matrixTransform(m.inverse());
    return [p.x, p.y];
  }
  stage.addEventListener("wheel", function (ev) {
    if (cur < 0) return;
    ev.preventDefault();
    var k = Math.exp((ev.deltaMode ? ev.deltaY * 16 : ev.deltaY) * 0.0015);
    var p = toSvg(ev.clientX, ev.clientY);
    setBox([p[0] - (p[0] - vb[0]) * k, p[1] - (p[1] - vb[1]) * k, vb[2] * k, vb[3] * k]);
  }, { passive: false });
  var drag = null;
  stage.addEventListener("pointerdown", function (ev) {
    if (ev.button !== 0 || ev.target.closest("#crumbs")) return;
    drag = { x: ev.clientX, y: ev.clientY, start: toSvg(ev.clientX, ev.clientY), box: vb.slice(), moved: false };
  });
  window.addEventListener("pointermove", function (ev) {
    if (!drag) return;
    if (Math.abs(ev.clientX - drag.x) + Math.abs(ev.clientY - drag.y) > 4) { drag.moved = true; stage.classList.add("dragging"); }
    if (!drag.moved) return;
    var m = built[cur].svg.getScreenCTM();
    if (!m) return;
    setBox([drag.box[0] - (ev.clientX - drag.x) / m.a, drag.box[1] - (ev.clientY - drag.y) / m.d, drag.box[2], drag.box[3]]);
  });
  window.addEventListener("pointerup", function () {
    if (drag && drag.moved) { stage.__dragged = true; setTimeout(function () { stage.__dragged = false; }, 0); }
    drag = null; stage.classList.remove("dragging");
  });
  stage.addEventListener("click", function (ev) {
    if (stage.__dragged) return;
    var g = ev.target.closest ? ev.target.closest("g.node, g.ph") : null;
    if (!g) return;
    if (g.classList.contains("ph")) openPlaceholder(g.__ref, g);
    else goTo(Number(g.dataset.pos), true);
  });
  function bbox(g) { try { return g.getBBox(); } catch (e) { return null; } }
  function reveal(g, zoom) {
    var b = bbox(g);
    if (!b) return;
    var svg = built[cur].svg;
    if (zoom && svg.classList.contains("far")) {  // found by search or keys: come close enough to read it
      var tf = built[cur].content.transform.baseVal.consolidate();
      var cx = b.x + b.width / 2 + (tf ? tf.matrix.e : 0), cy = b.y + b.height / 2 + (tf ? tf.matrix.f : 0);
      var w = svg.clientWidth || 800, h = svg.clientHeight || 600;
      setBox([cx - w / 2, cy - h / 2, w, h]);
      return;
    }
    var t = built[cur].content.transform.baseVal.consolidate();
    var dx = t ? t.matrix.e : 0, dy = t ? t.matrix.f : 0;
    var x = b.x + dx, y = b.y + dy;
    if (x >= vb[0] && y >= vb[1] && x + b.width <= vb[0] + vb[2] && y + b.height <= vb[1] + vb[3]) return;
    var w = Math.max(vb[2], b.width * 1.5), h = Math.max(vb[3], b.height * 1.5);
    setBox([x + b.width / 2 - w / 2, y + b.height / 2 - h / 2, w, h]);
  }

  function openPlaceholder(ref, g) {
    if (ref.open >= 0) { show(ref.open); return; }
    selected = null;
    panel.textContent = "";
    var text = g ? Array.prototype.map.call(g.querySelectorAll("text"), function (x) { return x.textContent; }).join(" ") : "";
    panel.appendChild(el("div", "label", text || "a part of the graph"));
    panel.appendChild(el("p", "muted", ref.members.length
      ? "Its layout is not embedded (open_budget); its " + ref.members.length + " nodes, each with its values:"
      : "The nodes this box stands for are listed in the panels of the nodes around it."));
    var ul = el("ul", "plain"); ul.id = "p-members";
    ref.members.slice(0, 500).forEach(function (p) { var li = el("li"); li.appendChild(nodeButton(p)); ul.appendChild(li); });
    if (ref.members.length > 500) ul.appendChild(el("li", "muted", "… and " + (ref.members.length - 500) + " more: search by label or id"));
    panel.appendChild(ul);
    paint();
  }

  // ---- selection and the panel ----
  function goTo(p, fromClick) {
    if (!fromClick && !(built[cur] && built[cur].boxes[p]) && drawnIn[p] >= 0 && drawnIn[p] !== cur) show(drawnIn[p]);
    selected = p;
    results.textContent = "";
    renderPanel();
    paint();
    var g = built[cur].boxes[p];
    if (g) reveal(g, !fromClick);
  }
  function row(table, head, value, id, cls) {
    var tr = el("tr"); tr.appendChild(el("th", null, head));
    var td = el("td", cls);
    if (value instanceof Node) td.appendChild(value); else td.textContent = value;
    if (id) td.id = id;
    tr.appendChild(td); table.appendChild(tr); return td;
  }
  function renderPanel() {
    panel.textContent = "";
    if (selected === null) { panel.appendChild(el("p", "muted", "Click a node, or search for one.")); return; }
    var p = selected;
    var lab = el("div", "label", D.label[p] || "(no label)"); lab.id = "p-label";
    panel.appendChild(lab);
    var role = D.roles[String(p)];
    if (role) { var r = el("span", "tag role-" + role, role); r.id = "p-role"; panel.appendChild(r); }
    var tb = el("table");
    row(tb, "id", D.id[p], "p-id");
    row(tb, "op", D.op[p] || "leaf", "p-op");
    row(tb, "data", full(data[p]), "p-data");
    row(tb, "grad", full(grad[p]), "p-grad");
    if (t !== null) row(tb, "grad at " + pos.textContent.replace(/ \/.*/, ""), full(now[p]), "p-grad-now");
    if (drawnIn[p] < 0) row(tb, "drawn", "in no embedded layout: the panel has all of it", null, "muted");
    panel.appendChild(tb);

    var dr = D.diff[String(p)];
    if (dr) {
      panel.appendChild(el("h2", null, "Diff: A and B"));
      var dt = el("table"); dt.id = "p-diff";
      if (dr[0] === null) row(dt, "only in B", "no node of A matched this one");
      else {
        row(dt, "A id", dr[0]);
        row(dt, "data", "A " + full(dr[1]) + "   B " + full(dr[3]), "p-diff-data");
        row(dt, "grad", "A " + full(dr[2]) + "   B " + full(dr[4]), "p-diff-grad");
      }
      row(dt, "changed", dr[5] || "nothing");
      panel.appendChild(dt);
    }
    var mine = D.findings.filter(function (f) { return f.pos === p; });
    if (mine.length) {
      panel.appendChild(el("h2", null, "Findings"));
      var fl = el("ul", "plain"); fl.id = "p-findings";
      mine.forEach(function (f) {
        fl.appendChild(el("li", f.culprit ? "bad" : null, (f.culprit ? "culprit " : "downstream ") + f.kind + ": " + (f.message ||
          (f.quantity + " " + full(f.got) + ", expected " + full(f.expected)))));
      });
      panel.appendChild(fl);
    }

    panel.appendChild(el("h2", null, "Operands (" + D.ops[p].length + ")"));
    var ol = el("ul", "plain"); ol.id = "p-operands";
    D.ops[p].forEach(function (o, slot) {
      var li = el("li", null, "slot " + slot + ": "); li.appendChild(nodeButton(o));
      li.appendChild(el("span", "muted", "  data " + fmt4(data[o]) + ", grad " + fmt4(grad[o]))); ol.appendChild(li);
    });
    if (!D.ops[p].length) ol.appendChild(el("li", "muted", "none: a leaf"));
    panel.appendChild(ol);

    panel.appendChild(el("h2", null, "Consumers (" + uses[p].length + (uses[p].length === 1 ? " use)" : " uses)")));
    var cl = el("ul", "plain"); cl.id = "p-consumers";
    uses[p].forEach(function (u) {
      var li = el("li"); li.appendChild(nodeButton(u[0])); li.appendChild(el("span", "muted", "  slot " + u[1] + ", op " + D.op[u[0]]));
      cl.appendChild(li);
    });
    if (!uses[p].length) cl.appendChild(el("li", "muted", p === D.root ? "none: the root" : "none"));
    panel.appendChild(cl);

    panel.appendChild(el("h2", null, "Contributions to its grad"));
    var ct = el("table"); ct.id = "p-contrib";
    var head = el("tr");
    ["consumer", "local d", "consumer grad", "product"].forEach(function (h) { head.appendChild(el("th", null, h)); });
    ct.appendChild(head);
    var sum = 0, known = true;
    if (p === D.root) {
      var sr = el("tr"); sr.appendChild(el("td", null, "backward() seed")); sr.appendChild(el("td")); sr.appendChild(el("td"));
      sr.appendChild(el("td", null, full(D.seed))); ct.appendChild(sr); sum += D.seed;
    }
    uses[p].forEach(function (u) {
      var c = u[0], l = local[c] ? local[c][u[1]] : null;
      var tr = el("tr");
      var td = el("td"); td.appendChild(nodeButton(c)); td.appendChild(el("span", "muted", " slot " + u[1])); tr.appendChild(td);
      tr.appendChild(el("td", null, l === null ? "unknown op" : short(l)));
      tr.appendChild(el("td", null, short(grad[c])));
      var prod = l === null ? null : l * grad[c];
      tr.appendChild(el("td", null, prod === null ? "?" : short(prod)));
      if (prod === null) known = false; else sum += prod;
      ct.appendChild(tr);
    });
    var tf = el("tr"); tf.appendChild(el("th", null, "sum"));
    var sc = el("td", null, known ? full(sum) : "? (an op gradviz cannot replay)"); sc.id = "p-contrib-sum"; sc.colSpan = 3;
    tf.appendChild(sc); ct.appendChild(tf);
    panel.appendChild(ct);
    if (known && (uses[p].length || p === D.root)) {
      var same = sum === grad[p] || Math.abs(sum - grad[p]) <= 1e-9 + 1e-6 * Math.max(Math.abs(sum), Math.abs(grad[p]));
      panel.appendChild(el("p", same ? "ok" : "bad", same ? "= its recorded grad" : "≠ its recorded grad " + full(grad[p])));
    }
    if (received[p].length) {
      panel.appendChild(el("h2", null, "Additions during backward"));
      var al = el("ul", "plain"); al.id = "p-additions";
      received[p].forEach(function (ka) {
        var k = ka[0], a = ka[1];
        var li = el("li", a.over ? "over" : null);
        var b = el("button", "link", "call " + (k + 1)); b.addEventListener("click", function () { goStep(k + 2); });
        li.appendChild(b);
        li.appendChild(document.createTextNode(" from " + name(steps[k].node) + ": " + addText(a)));
        al.appendChild(li);
      });
      panel.appendChild(al);
    }
  }
  function addText(a) {
    if (a.over) return fmt4(a.before) + " → " + fmt4(a.after) + " (overwrote with =: the " + fmt4(a.before) + " is lost)";
    return fmt4(a.before) + " + " + fmt4(a.added) + " = " + fmt4(a.after) + (a.slots.length > 1 ? " (slots " + a.slots.join(",") + ")" : "");
  }

  // ---- stepping through backward ----
  // t: null shows the recorded grads; 0 every grad before backward; 1 the root seeded;
  // 1 + k after the k-th _backward call.
  var at = 0; // the state `now` holds: same meaning as t (never null)
  function apply(target) {
    while (at < target) {
      if (at === 0) now[D.root] = D.seed;
      else steps[at - 1].adds.forEach(function (a) { now[a.o] = a.after; });
      at++;
    }
    while (at > target) {
      at--;
      if (at === 0) now[D.root] = initial[D.root];
      else for (var j = steps[at - 1].adds.length - 1; j >= 0; j--) { var a = steps[at - 1].adds[j]; now[a.o] = a.before; }
    }
  }
  function goStep(k) {
    t = k;
    if (k !== null) apply(k);
    renderStep();
    if (selected !== null) renderPanel();
    paint();
  }
  function renderStep() {
    stepInfo.textContent = "";
    pos.textContent = t === null ? "–" : t === 0 ? "start / " + S : t === 1 ? "seed / " + S : "call " + (t - 1) + " / " + S;
    var how = D.replayed ? "replayed over gradviz's op table from the recorded data (no engine calls were recorded: a snapshot, or no --backward)" : "recorded as the engine made them";
    if (t === null) {
      stepInfo.appendChild(el("p", null, S + " _backward calls, " + how + ". Press > or the Right key to replay them from every grad 0."));
    } else if (t === 0) {
      stepInfo.appendChild(el("p", null, "Before backward(): every grad 0."));
    } else if (t === 1) {
      var p0 = el("p", null, "backward() seeds the root: "); p0.appendChild(nodeButton(D.root)); p0.appendChild(document.createTextNode(" grad " + full(D.seed)));
      stepInfo.appendChild(p0);
    } else {
      var s = steps[t - 2];
      var p1 = el("p", null, "Call " + (t - 1) + " of " + S + ": the _backward of ");
      var nb = nodeButton(s.node); nb.id = "step-node"; p1.appendChild(nb);
      p1.appendChild(document.createTextNode(" (" + D.op[s.node] + "), its grad " + full(s.grad)));
      stepInfo.appendChild(p1);
      var ul = el("ul", "plain"); ul.id = "step-adds";
      s.adds.forEach(function (a) {
        var li = el("li", a.over ? "over" : null, "slot " + a.slots.join(",") + " → ");
        li.appendChild(nodeButton(a.o)); li.appendChild(document.createTextNode(": " + addText(a)));
        ul.appendChild(li);
      });
      stepInfo.appendChild(ul);
    }
    D.trace_notes.forEach(function (n) { stepInfo.appendChild(el("p", "muted", "note: " + n)); });
  }

  function mark(info, g, cls) {
    var b = bbox(g);
    if (!b) return null;
    var r = sv("rect", { x: b.x - 3, y: b.y - 3, width: b.width + 6, height: b.height + 6, rx: 3 });
    r.setAttribute("class", cls);
    info.overlay.appendChild(r);
    return b;
  }
  function paint() {
    var info = built[cur];
    if (!info) return;
    info.overlay.textContent = "";
    Array.prototype.forEach.call(info.content.querySelectorAll("g.running"), function (g) { g.classList.remove("running"); });
    if (info.shownAt !== t || t !== null) {  // only texts that change: a big picture has thousands
      for (var p in info.grads) {
        var text = t === null ? info.gradText[p] : "grad " + fmt4(now[p]);
        for (var c = 0; c < info.grads[p].length; c++) if (info.grads[p][c].textContent !== text) info.grads[p][c].textContent = text;
      }
      info.shownAt = t;
    }
    if (t !== null && t >= 2) {
      var s = steps[t - 2];
      (info.copies[s.node] || []).forEach(function (g) { g.classList.add("running"); mark(info, g, "run"); });
      var lines = {};
      s.adds.forEach(function (a) { (lines[a.o] = lines[a.o] || []).push(a); });
      Object.keys(lines).forEach(function (o) {
        if (!info.boxes[o]) return;
        var over = lines[o].some(function (a) { return a.over; });
        // every copy lights up; the numbers go above the copy beside the running node (else the first box)
        var og = info.beside[o + ":" + s.node] || info.boxes[o], b = null;
        info.copies[o].forEach(function (g) { var bg = mark(info, g, "got" + (over ? " overwrote" : "")); if (g === og) b = bg; });
        if (!b) return;
        lines[o].forEach(function (a, j) {
          var y = b.y - 6 - (lines[o].length - 1 - j) * 13;
          var txt = (lines[o].length > 1 ? "slot " + a.slots.join(",") + ": " : "") + (a.over
            ? fmt4(a.before) + " → " + fmt4(a.after) + " (overwrote: =)" : fmt4(a.before) + " + " + fmt4(a.added) + " = " + fmt4(a.after));
          var bg = sv("text", { x: b.x, y: y }); bg.setAttribute("class", "ann-bg"); bg.textContent = txt;
          var tx = sv("text", { x: b.x, y: y }); tx.setAttribute("class", "ann" + (a.over ? " overwrote" : "")); tx.textContent = txt;
          tx.dataset.pos = o;
          info.overlay.appendChild(bg); info.overlay.appendChild(tx);
        });
      });
    }
    if (selected !== null) (info.copies[selected] || []).forEach(function (g) { mark(info, g, "sel"); });
    if (hits.length) hits.forEach(function (p) { (info.copies[p] || []).forEach(function (g) { mark(info, g, "hit"); }); });
  }

  // ---- search ----
  var hits = [];
  function find(q) {
    q = q.trim();
    if (!q) return [];
    var out = [], lq = q.toLowerCase();
    for (var p = 0; p < N; p++) if (D.id[p] === q) out.push(p);
    for (p = 0; p < N && out.length < 200; p++) {
      if (D.id[p] !== q && (D.label[p].toLowerCase().indexOf(lq) >= 0 || D.id[p].toLowerCase() === lq)) out.push(p);
    }
    return out;
  }
  search.addEventListener("input", function () {
    hits = find(search.value);
    results.textContent = "";
    hits.slice(0, 50).forEach(function (p) {
      var li = el("li"); var b = nodeButton(p, name(p) + (D.op[p] ? "  " + D.op[p] : ""));
      b.className = "result"; li.appendChild(b); results.appendChild(li);
    });
    if (hits.length > 50) results.appendChild(el("li", "muted", "… " + (hits.length - 50) + " more"));
    if (search.value.trim() && !hits.length) results.appendChild(el("li", "muted", "no node has that label or id"));
    paint();
  });
  search.addEventListener("keydown", function (ev) {
    if (ev.key === "Enter" && hits.length) { goTo(hits[0]); search.blur(); }
    if (ev.key === "Escape") { search.value = ""; hits = []; results.textContent = ""; search.blur(); paint(); }
  });

  // ---- keyboard ----
  // o / c: to the selected node's operands / consumers; pressed again, the next one of the same node
  var cycle = { key: null, from: null, at: null, i: 0 };
  document.addEventListener("keydown", function (ev) {
    if (ev.target === search || ev.ctrlKey || ev.metaKey || ev.altKey) return;
    var k = ev.key;
    if (k === "ArrowRight") { goStep(t === null ? 0 : Math.min(S + 1, t + 1)); ev.preventDefault(); }
    else if (k === "ArrowLeft") { goStep(t === null ? S + 1 : Math.max(0, t - 1)); ev.preventDefault(); }
    else if (k === "Home") { goStep(0); ev.preventDefault(); }
    else if (k === "End") { goStep(S + 1); ev.preventDefault(); }
    else if (k === "Escape") goStep(null);
    else if (k === "f") fit();
    else if (k === "u" || k === "Backspace") up();
    else if (k === "/") { search.focus(); ev.preventDefault(); }
    else if ((k === "o" || k === "c") && selected !== null) {
      if (cycle.key === k && cycle.at === selected) cycle.i++;
      else cycle = { key: k, from: selected, at: null, i: 0 };
      var list = k === "o" ? D.ops[cycle.from] : uses[cycle.from].map(function (u) { return u[0]; });
      if (!list.length) return;
      var next = list[cycle.i % list.length];
      goTo(next);
      cycle.at = next;
    }
  });

  // ---- findings and the rest ----
  if (findingsBox) {
    var fl = el("ul", "plain");
    D.findings.forEach(function (f) {
      var li = el("li");
      li.appendChild(el("span", "tag role-" + (f.culprit ? "culprit" : "downstream"), f.culprit ? "culprit" : "downstream"));
      li.appendChild(document.createTextNode(" " + f.kind + " "));
      var b = nodeButton(f.pos); b.classList.add("finding"); li.appendChild(b);
      if (f.message) li.appendChild(el("div", "muted", f.message));
      fl.appendChild(li);
    });
    findingsBox.appendChild(fl);
  }
  about.appendChild(el("p", "muted", N + " nodes, engine " + D.engine + (D.moment ? ", " + D.moment : "") +
    ". " + (D.summary ? "The first picture: " + D.summary.replace(/; see more with.*$/, "") + "; click a dashed box to open it." : "Every node is drawn.")));
  (D.notes || []).forEach(function (n) { about.appendChild(el("p", "muted note", "Note: " + n)); });

  renderPanel();
  renderStep();
  show(0, true);
  document.body.dataset.ready = "1";
})();
