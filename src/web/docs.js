// Renders /openapi.json (OpenAPI 3.1) as a readable page. No libraries; all text is escaped.
(function () {
  "use strict";
  var spec = null;
  var METHODS = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];
  var MAX_DEPTH = 8;
  var shown = {};  // components already expanded in the current operation

  function esc(v) {
    return String(v == null ? "" : v).replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
    });
  }
  // Escaped text with `code` spans and blank-line paragraphs.
  function md(text) {
    if (!text) return "";
    return String(text).split(/\n\s*\n/).map(function (p) {
      return "<p>" + esc(p).replace(/`([^`]+)`/g, "<code>$1</code>") + "</p>";
    }).join("");
  }
  function inline(text) {
    return esc(text).replace(/`([^`]+)`/g, "<code>$1</code>");
  }
  function slug(s) {
    return String(s).replace(/[^A-Za-z0-9_-]+/g, "-");
  }
  function lookup(ref) {
    if (typeof ref !== "string" || ref.indexOf("#/") !== 0) return null;
    var cur = spec;
    var parts = ref.slice(2).split("/");
    for (var i = 0; i < parts.length; i++) {
      if (cur == null) return null;
      cur = cur[parts[i].replace(/~1/g, "/").replace(/~0/g, "~")];
    }
    return cur || null;
  }
  function deref(o) {
    var seen = 0;
    while (o && o.$ref && seen++ < 20) o = lookup(o.$ref) || {};
    return o || {};
  }
  function refName(ref) {
    return String(ref).split("/").pop();
  }
  function json(v) {
    try { return JSON.stringify(v); } catch (e) { return String(v); }
  }

  // ---- schemas ----
  function typeLabel(s) {
    if (s.$ref) return refName(s.$ref);
    var t = s.type;
    if (Array.isArray(t)) t = t.join(" | ");
    if (t === "array" && s.items) t = "array of " + typeLabel(s.items);
    if (!t) {
      if (s.anyOf || s.oneOf) t = "one of";
      else if (s.allOf) t = "all of";
      else if (s.properties) t = "object";
      else if (s["const"] !== undefined) t = "const";
      else t = "any";
    }
    if (s.format) t += " (" + s.format + ")";
    return t;
  }
  function facts(s) {
    var out = [];
    if (s.description) out.push(inline(s.description));
    if (s["enum"]) {
      out.push('<span class="enum">one of: ' + s["enum"].map(function (e) {
        return "<code>" + esc(json(e)) + "</code>";
      }).join(" ") + "</span>");
    }
    if (s["const"] !== undefined) out.push("always <code>" + esc(json(s["const"])) + "</code>");
    if (s["default"] !== undefined) out.push("default <code>" + esc(json(s["default"])) + "</code>");
    var lim = [];
    ["minimum", "maximum", "minLength", "maxLength", "minProperties", "maxProperties"].forEach(function (k) {
      if (s[k] !== undefined) lim.push(k + " " + s[k]);
    });
    if (lim.length) out.push('<span class="note">' + esc(lim.join(", ")) + "</span>");
    if (s.example !== undefined && typeof s.example !== "object") {
      out.push("e.g. <code>" + esc(json(s.example)) + "</code>");
    }
    return out.join(" &middot; ");
  }
  // The nested list under a schema: its fields, items, alternatives.
  function children(s, depth, stack) {
    if (depth > MAX_DEPTH) return "";
    var ref = s.$ref;
    if (ref) {
      if (stack.indexOf(ref) >= 0) return '<ul class="schema"><li class="note">(' + esc(refName(ref)) + ", as above)</li></ul>";
      var list = children(deref(s), depth, stack.concat([ref]));
      // A component inside another, or shown before in this operation, starts folded.
      if (!list || (depth === 0 && !shown[ref])) { shown[ref] = true; return list; }
      return '<details class="sub"><summary>' + esc(refName(ref)) + " fields</summary>" + list + "</details>";
    }
    var items = [];
    var props = s.properties || {};
    var req = s.required || [];
    Object.keys(props).forEach(function (name) {
      items.push(field(name, props[name], req.indexOf(name) >= 0, depth, stack));
    });
    var ap = s.additionalProperties;
    if (ap && typeof ap === "object") items.push(field("{any name}", ap, false, depth, stack));
    if (s.items) {
      // A bare array shows its items' fields at its own level.
      if (!items.length && !s.anyOf && !s.oneOf && !s.allOf) return children(s.items, depth, stack);
      var inner = children(s.items, depth + 1, stack);
      if (inner) items.push("<li>each item (" + esc(typeLabel(s.items)) + "):" + inner + "</li>");
    }
    ["anyOf", "oneOf", "allOf"].forEach(function (k) {
      (s[k] || []).forEach(function (alt, i) {
        var head = (k === "allOf" ? "and " : "option " + (i + 1) + ": ") +
          '<span class="type">' + esc(typeLabel(alt)) + "</span>";
        var d = deref(alt);
        var f = facts(alt.$ref ? {} : d);
        items.push("<li>" + head + (f ? " &mdash; " + f : "") + children(alt, depth + 1, stack) + "</li>");
      });
    });
    return items.length ? '<ul class="schema">' + items.join("") + "</ul>" : "";
  }
  function field(name, s, required, depth, stack) {
    var f = facts(s);
    if (s.$ref && !s.description) {
      var d = deref(s);
      f = facts({ description: d.description, "enum": d["enum"] });
    }
    return "<li><code>" + esc(name) + '</code> <span class="type">' + esc(typeLabel(s)) + "</span>" +
      (required ? ' <span class="req">required</span>' : "") + (f ? " &mdash; " + f : "") +
      children(s, depth + 1, stack) + "</li>";
  }
  function schemaBlock(s) {
    if (!s) return "";
    var d = deref(s);
    var f = facts(s.$ref ? { description: d.description, "enum": d["enum"] } : s);
    var html = '<div><span class="type">' + esc(typeLabel(s)) + "</span>" + (f ? " &mdash; " + f : "") + "</div>";
    html += children(s, 0, []);
    var ex = s.example !== undefined ? s.example : d.example;
    if (ex !== undefined && typeof ex === "object") {
      html += '<div class="note">Example: <code>' + esc(json(ex)) + "</code></div>";
    }
    return html;
  }
  function contentBlock(content) {
    if (!content) return "";
    return Object.keys(content).map(function (media) {
      var mt = content[media] || {};
      return '<div class="media">' + esc(media) + "</div>" + schemaBlock(mt.schema);
    }).join("");
  }

  // ---- operations ----
  function paramsTable(params) {
    if (!params.length) return "";
    var rows = params.map(function (p) {
      p = deref(p);
      var s = p.schema || {};
      var f = facts(s);
      return "<tr><td><code>" + esc(p.name) + "</code>" + (p.required ? ' <span class="req">required</span>' : "") +
        "</td><td>" + esc(p["in"]) + '</td><td><span class="type">' + esc(typeLabel(s)) + "</span></td><td>" +
        inline(p.description) + (f && f !== inline(s.description) ? (p.description ? "<br>" : "") + f : "") + "</td></tr>";
    }).join("");
    return "<h4>Parameters</h4><table><thead><tr><th>Name</th><th>In</th><th>Type</th><th>Description</th></tr></thead><tbody>" +
      rows + "</tbody></table>";
  }
  function bodyBlock(rb) {
    if (!rb) return "";
    rb = deref(rb);
    return "<h4>Request body" + (rb.required ? ' <span class="req">required</span>' : ' <span class="note">(optional)</span>') +
      "</h4>" + md(rb.description) + contentBlock(rb.content);
  }
  function responsesBlock(responses) {
    var codes = Object.keys(responses || {}).sort();
    if (!codes.length) return "";
    return "<h4>Responses</h4>" + codes.map(function (code) {
      var r = deref(responses[code]);
      var cls = "s" + String(code).charAt(0);
      var hdrs = r.headers ? Object.keys(r.headers).map(function (h) {
        var hd = deref(r.headers[h]);
        return "<li>header <code>" + esc(h) + '</code> <span class="type">' + esc(typeLabel(hd.schema || {})) +
          "</span>" + (hd.description ? " &mdash; " + inline(hd.description) : "") + "</li>";
      }).join("") : "";
      return '<div class="resp"><span class="st ' + cls + '">' + esc(code) + "</span> " + inline(r.description) +
        (hdrs ? '<ul class="schema">' + hdrs + "</ul>" : "") + contentBlock(r.content) + "</div>";
    }).join("");
  }
  function opId(o, method, path) {
    return "op-" + slug(o.operationId || method + path);
  }
  function operationHtml(o, method, path, pathParams) {
    var mc = ["get", "post", "put", "patch", "delete"].indexOf(method) >= 0 ? method : "other";
    shown = {};
    var params = (pathParams || []).filter(function (pp) {
      pp = deref(pp);
      return !(o.parameters || []).some(function (q) { q = deref(q); return q.name === pp.name && q["in"] === pp["in"]; });
    }).concat(o.parameters || []);
    return '<details class="op" id="' + esc(opId(o, method, path)) + '"><summary><span class="m m-' + mc + '">' +
      esc(method.toUpperCase()) + '</span><span class="path">' + esc(path) + '</span><span class="sum">' +
      esc(o.summary || "") + "</span>" + (o.deprecated ? ' <span class="req">deprecated</span>' : "") +
      '</summary><div class="body">' + md(o.description) +
      (o.operationId ? '<div class="opid">operationId: <code>' + esc(o.operationId) + "</code></div>" : "") +
      paramsTable(params) + bodyBlock(o.requestBody) + responsesBlock(o.responses) + "</div></details>";
  }

  function render() {
    var info = spec.info || {};
    document.title = (info.title || "API") + " " + (info.version || "");
    document.getElementById("title").innerHTML = esc(info.title || "API") +
      '<span class="ver">' + esc(info.version ? "v" + info.version : "") + " &middot; OpenAPI " + esc(spec.openapi || "") + "</span>";
    document.getElementById("summary").innerHTML = inline(info.summary || "") +
      ' <a href="/openapi.json">openapi.json</a>';
    // Group operations by their first tag, in the document's tag order.
    var groups = {};
    var order = (spec.tags || []).map(function (t) { return t.name; });
    var tagDesc = {};
    (spec.tags || []).forEach(function (t) { tagDesc[t.name] = t.description; });
    Object.keys(spec.paths || {}).forEach(function (path) {
      var item = spec.paths[path] || {};
      Object.keys(item).forEach(function (m) {
        var o = item[m];
        if (METHODS.indexOf(m) < 0 || !o) return;
        var tag = (o.tags && o.tags[0]) || "other";
        if (!groups[tag]) { groups[tag] = []; if (order.indexOf(tag) < 0) order.push(tag); }
        groups[tag].push({ o: o, m: m, path: path, pp: item.parameters });
      });
    });
    var toc = [];
    var body = ['<div class="intro">' + md(info.description) + "</div>"];
    order.forEach(function (tag) {
      var ops = groups[tag];
      if (!ops) return;
      toc.push('<h3><a href="#tag-' + esc(slug(tag)) + '">' + esc(tag) + "</a></h3><ul>" + ops.map(function (x) {
        return '<li><a href="#' + esc(opId(x.o, x.m, x.path)) + '" title="' + esc(x.o.summary || "") + '"><span class="m m-' +
          (["get", "post", "put", "patch", "delete"].indexOf(x.m) >= 0 ? x.m : "other") + '" style="min-width:52px">' +
          esc(x.m.toUpperCase()) + "</span> " + esc(x.path) + "</a></li>";
      }).join("") + "</ul>");
      body.push('<h2 class="tag" id="tag-' + esc(slug(tag)) + '">' + esc(tag) + "</h2>" +
        (tagDesc[tag] ? '<div class="tagdesc">' + inline(tagDesc[tag]) + "</div>" : "") +
        ops.map(function (x) { return operationHtml(x.o, x.m, x.path, x.pp); }).join(""));
    });
    document.getElementById("toc").innerHTML = toc.join("");
    document.getElementById("content").innerHTML = body.join("");
    openHash();
  }
  function openHash() {
    var id = decodeURIComponent(location.hash.slice(1));
    var el = id && document.getElementById(id);
    if (el && el.tagName === "DETAILS") { el.open = true; el.scrollIntoView(); }
  }
  window.addEventListener("hashchange", openHash);

  fetch("/openapi.json", { headers: { Accept: "application/json" } })
    .then(function (r) {
      if (!r.ok) throw new Error("GET /openapi.json answered " + r.status);
      return r.json();
    })
    .then(function (doc) { spec = doc; render(); })
    .catch(function (e) {
      document.getElementById("summary").textContent = "";
      document.getElementById("content").innerHTML = '<div id="error">Could not load the API description: ' +
        esc(e && e.message) + "</div>";
    });
})();
