/* srflow dashboard: live job progress over the API's event stream, and forms that submit
   once. Plain ES2017, no dependencies, no build step; the pages work without it (reload). */
"use strict";

function fmt(x, digits) {
  return typeof x === "number" && isFinite(x) ? Number(x.toPrecision(digits)).toString() : "";
}

function setText(root, field, text) {
  root.querySelectorAll('[data-field="' + field + '"]').forEach(function (el) {
    el.textContent = text;
  });
}

function link(href, text, kind) {
  var a = document.createElement("a");
  a.href = href;
  a.textContent = text;
  a.setAttribute("data-link", kind);
  return a;
}

function update(root, op) {
  var meta = op.metadata || {}, prog = meta.progress || {};
  root.querySelectorAll('[data-field="state"]').forEach(function (el) {
    el.textContent = meta.state;
    el.className = "state state-" + meta.state;
  });
  var frac = prog.total ? prog.step / prog.total : (op.done ? 1 : 0);
  root.querySelectorAll('[data-field="progress"]').forEach(function (el) { el.value = frac; });
  setText(root, "steps", prog.total ? prog.step + "/" + prog.total : "");
  setText(root, "stage", prog.stage || "");
  if (prog.ess !== undefined) setText(root, "ess", fmt(prog.ess, 3));
  if (prog.coarse_kappa !== undefined) setText(root, "kappa_L", fmt(prog.coarse_kappa, 4));
  if (!op.done) return;
  root.querySelectorAll('[data-field="cancel"]').forEach(function (el) { el.remove(); });
  var links = root.querySelector('[data-field="links"]');
  var resp = op.response || {};
  if (links && resp.ensemble && !links.querySelector('[data-link="ensemble"]')) {
    links.appendChild(link("/ui/ensembles/" + resp.ensemble.id, "Open the ensemble", "ensemble"));
  }
  if (links && resp.model && !links.querySelector('[data-link="model"]')) {
    links.appendChild(document.createTextNode(" "));
    links.appendChild(link("/ui/models/" + resp.model.name + "#v" + resp.model.version,
      "Model " + resp.model.name + " version " + resp.model.version, "model"));
  }
  var curves = root.querySelector('[data-field="curve"]');
  if (curves && resp.model && !curves.querySelector("img")) {  // the finished training's curve
    var img = document.createElement("img");
    img.className = "chart";
    img.src = "/ui/models/" + encodeURIComponent(resp.model.name) + "/versions/" +
      resp.model.version + "/curve.svg";
    img.alt = "Training curve of " + resp.model.name + "/" + resp.model.version +
      ": ESS/N, loss and learned couplings against the training step";
    img.setAttribute("data-chart", "curve");
    curves.appendChild(img);
    curves.hidden = false;
  }
  var err = root.querySelector('[data-field="error"]');
  if (err && op.error) { err.textContent = op.error.message; err.hidden = false; }
  root.setAttribute("data-done", "true");
}

function follow(root) {
  var source = new EventSource(root.getAttribute("data-events"));
  function handle(ev) {
    var op;
    try { op = JSON.parse(ev.data); } catch (e) { return; }
    update(root, op);
    if (op.done) source.close();
  }
  source.addEventListener("progress", handle);
  source.addEventListener("done", handle);
  source.addEventListener("error", function () {
    if (source.readyState === EventSource.CLOSED) root.setAttribute("data-stream", "closed");
  });
}

function once(form) {
  form.addEventListener("submit", function (ev) {
    if (form.getAttribute("data-sent") === "true") { ev.preventDefault(); return; }
    form.setAttribute("data-sent", "true");
    form.setAttribute("aria-busy", "true");
  });
}

document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("[data-events]").forEach(follow);
  document.querySelectorAll("form[data-once]").forEach(once);
});
