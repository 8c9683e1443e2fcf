(function () {
  "use strict";
  // Shows `size` of `items` at a time, with previous / next buttons after `anchor`.
  function pager(items, size, anchor, noun) {
    if (items.length <= size) { return; }
    var at = 0;
    var nav = document.createElement("div");
    nav.className = "pager";
    var prev = document.createElement("button");
    var next = document.createElement("button");
    var info = document.createElement("span");
    prev.type = next.type = "button";
    prev.textContent = "\u2039 previous";
    next.textContent = "next \u203a";
    function show() {
      items.forEach(function (el, i) { el.hidden = i < at || i >= at + size; });
      info.textContent = noun + " " + (size === 1 ? String(at + 1) :
        (at + 1) + "\u2013" + Math.min(at + size, items.length)) +
        " of " + items.length;
      prev.disabled = at === 0;
      next.disabled = at + size >= items.length;
    }
    prev.addEventListener("click", function () { at = Math.max(0, at - size); show(); });
    next.addEventListener("click", function () {
      if (at + size < items.length) { at += size; }
      show();
    });
    nav.appendChild(prev);
    nav.appendChild(info);
    nav.appendChild(next);
    anchor.parentNode.insertBefore(nav, anchor.nextSibling);
    show();
  }
  function all(selector) {
    return Array.prototype.slice.call(document.querySelectorAll(selector));
  }
  // Anomaly tables: data-page rows at a time.
  all("table.paged").forEach(function (table) {
    var size = parseInt(table.getAttribute("data-page"), 10) || 10;
    pager(Array.prototype.slice.call(table.tBodies[0].rows), size, table, "rows");
  });
  // The Gantt view: one page of lanes at a time.
  all(".gantt-pages").forEach(function (box) {
    pager(Array.prototype.slice.call(box.children), 1, box, "page");
  });
  // A link to a ladder opens it.
  function openTarget() {
    var id = decodeURIComponent(location.hash.slice(1));
    var el = id && document.getElementById(id);
    if (el && el.tagName === "DETAILS") {
      el.open = true;
      el.scrollIntoView();
    }
  }
  window.addEventListener("hashchange", openTarget);
  openTarget();
}());
