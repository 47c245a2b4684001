// Trailhouse console: the little interaction the pages need, no build step.
// Everything works without it (links and forms); this adds drag-to-zoom on the histogram,
// copy buttons and a tidier URL for the search form.
(function () {
  "use strict";

  function iso(ms) { return new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z"); }

  function go(params) {
    params.delete("cursor");
    window.location.search = params.toString();
  }

  // Drag across the histogram: search the dragged time range.
  function brush(svg) {
    var start = Number(svg.dataset.start), end = Number(svg.dataset.end);
    var rect = svg.querySelector(".brush");
    var from = null, moved = false;
    function x(ev) {
      var box = svg.getBoundingClientRect();
      return Math.min(1, Math.max(0, (ev.clientX - box.left) / box.width));
    }
    function draw(a, b) {
      var lo = Math.min(a, b) * 1000, hi = Math.max(a, b) * 1000;
      rect.setAttribute("x", lo); rect.setAttribute("width", Math.max(1, hi - lo));
      rect.setAttribute("visibility", "visible");
    }
    svg.addEventListener("pointerdown", function (ev) {
      if (ev.button !== 0) return;
      from = x(ev); moved = false;
      svg.setPointerCapture(ev.pointerId);
      ev.preventDefault();
    });
    svg.addEventListener("pointermove", function (ev) {
      if (from === null) return;
      if (Math.abs(x(ev) - from) > 0.004) moved = true;
      if (moved) draw(from, x(ev));
    });
    svg.addEventListener("pointerup", function (ev) {
      if (from === null) return;
      var to = x(ev), a = from;
      from = null;
      if (!moved) {  // a click: follow the bar's own link
        var bar = document.elementFromPoint(ev.clientX, ev.clientY);
        var link = bar && bar.closest("a");
        if (link) window.location.href = link.getAttribute("href");
        return;
      }
      var lo = Math.min(a, to), hi = Math.max(a, to);
      var span = end - start;
      var params = new URLSearchParams(window.location.search);
      params.set("start", iso(Math.floor((start + lo * span) / 1000) * 1000));
      params.set("end", iso(Math.ceil((start + hi * span) / 1000) * 1000));
      go(params);
    });
    // The bars are links: pointer clicks and drags are handled above, but Enter on a focused
    // bar (a click with detail 0) follows its link, so the chart works from the keyboard.
    svg.addEventListener("click", function (ev) { if (ev.detail !== 0) ev.preventDefault(); });
  }

  function copy(button) {
    button.addEventListener("click", function () {
      var text = button.hasAttribute("data-copy-url")
        ? window.location.href
        : document.getElementById(button.dataset.copyTarget).textContent;
      var done = function () {
        button.classList.add("copied");
        setTimeout(function () { button.classList.remove("copied"); }, 1500);
      };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(text).then(done, function () { fallback(text); done(); });
      } else { fallback(text); done(); }
    });
  }

  function fallback(text) {
    var area = document.createElement("textarea");
    area.value = text; document.body.appendChild(area); area.select();
    try { document.execCommand("copy"); } finally { area.remove(); }
  }

  // The search form: leave empty fields out of the URL and send the chosen columns as one
  // `cols` value (none when they are the default), so links stay short and readable.
  function tidy(form) {
    var chooser = form.querySelector("details.columns");
    form.addEventListener("submit", function () {
      var boxes = form.querySelectorAll("input[name=col]"), chosen = [];
      boxes.forEach(function (box) { if (box.checked) chosen.push(box.value); box.disabled = true; });
      var joined = chosen.join(",");
      if (chosen.length && chooser && joined !== chooser.dataset.defaultCols) {
        var hidden = document.createElement("input");
        hidden.type = "hidden"; hidden.name = "cols"; hidden.value = joined; hidden.className = "tidy";
        form.appendChild(hidden);
      }
      Array.prototype.forEach.call(form.elements, function (el) {
        if (el.name && el.value === "" && (el.tagName === "INPUT" || el.tagName === "SELECT")) el.disabled = true;
      });
      setTimeout(function () {
        Array.prototype.forEach.call(form.elements, function (el) { el.disabled = false; });
        form.querySelectorAll("input.tidy").forEach(function (el) { el.remove(); });
      }, 0);
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("svg.histogram").forEach(brush);
    document.querySelectorAll("button.copy").forEach(copy);
    var form = document.getElementById("search-form");
    if (form) tidy(form);
  });
})();
