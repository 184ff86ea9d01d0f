/* Treadle web UI: live updates and the editor's conveniences, nothing else. No
 * framework, no build: plain browser JS.
 * - The runs list refreshes its table body every 2 s (data-refresh).
 * - A run's page listens to its event stream (text/event-stream) and, when the run
 *   changed, fetches the page's live parts and swaps in those that changed: an element
 *   with data-key is replaced only when its key differs (so a form being filled in
 *   stays as it is), the others always; keyboard focus is kept where it was.
 * - The YAML editor: problems' links move the cursor to their line; the line numbers
 *   beside the text follow it (see setUpEditor).
 * Every request sends X-Treadle-Fetch, so an ended session answers 401 and the page
 * reloads (to the login page).
 */
(function () {
  "use strict";
  var FETCH = { headers: { "X-Treadle-Fetch": "1" }, credentials: "same-origin" };

  function get(url) {
    return fetch(url, FETCH).then(function (response) {
      if (response.status === 401) { window.location.reload(); throw new Error("logged out"); }
      if (!response.ok) { throw new Error("HTTP " + response.status); }
      return response.text();
    });
  }

  function refreshRows(tbody) {
    var url = tbody.getAttribute("data-refresh");
    var busy = false;
    window.setInterval(function () {
      if (busy || document.hidden) { return; }
      busy = true;
      get(url).then(function (html) {
        if (tbody.innerHTML.trim() !== html.trim()) { tbody.innerHTML = html; }
      }).catch(function () {}).then(function () { busy = false; });
    }, 2000);
  }

  function focusedId() {
    var active = document.activeElement;
    if (!active || active === document.body) { return null; }
    if (active.id) { return { id: active.id }; }
    var task = active.getAttribute && active.getAttribute("data-task");
    if (task) { return { task: task }; }
    return null;
  }

  function restoreFocus(saved) {
    if (!saved || document.activeElement !== document.body) { return; }
    var element = saved.id ? document.getElementById(saved.id)
      : document.querySelector('[data-task="' + CSS.escape(saved.task) + '"]');
    if (element) { element.focus(); }
  }

  function swapParts(html, announce) {
    var fresh = new DOMParser().parseFromString(html, "text/html");
    var saved = focusedId();
    fresh.querySelectorAll("[data-live]").forEach(function (part) {
      var current = document.getElementById(part.id);
      if (!current) { return; }
      var key = part.getAttribute("data-key");
      if (key !== null && key === current.getAttribute("data-key")) { return; }
      current.replaceWith(document.importNode(part, true));
    });
    restoreFocus(saved);
    var status = document.querySelector("#live-status [data-status]");
    if (status && announce && announce.getAttribute("data-said") !== status.getAttribute("data-status")) {
      announce.setAttribute("data-said", status.getAttribute("data-status"));
      announce.textContent = "Run status: " + status.getAttribute("data-status").replace("_", " ");
    }
  }

  function followRun(pageElement) {
    var liveUrl = pageElement.getAttribute("data-live-url");
    var announce = document.getElementById("live-announce");
    var seen = pageElement.getAttribute("data-version");
    var loading = false;
    var again = false;
    function reload() {
      if (loading) { again = true; return; }
      loading = true;
      get(liveUrl).then(function (html) { swapParts(html, announce); })
        .catch(function () {})
        .then(function () { loading = false; if (again) { again = false; reload(); } });
    }
    if (!window.EventSource) { window.setInterval(reload, 2000); return; }
    var source = new EventSource(pageElement.getAttribute("data-stream"));
    source.addEventListener("run", function (event) {
      var version = String(JSON.parse(event.data).version);
      if (seen !== version) { reload(); }  /* the page shows the version it was read at */
      seen = version;
    });
    source.addEventListener("ended", function () { source.close(); });  /* "run" came first */
  }

  /* The YAML editor: a problem's link puts the cursor on its line (and column), and the
   * gutter of line numbers follows the text's scrolling and length. (After a press of
   * Validate or Publish, the form's target #editor-outcome has the focus without a
   * script.) Tab is left alone: it moves on to the next control, as everywhere. */
  function lineStart(text, line) {
    var offset = 0;
    for (var n = 1; n < line; n += 1) {
      var next = text.indexOf("\n", offset);
      if (next < 0) { return text.length; }
      offset = next + 1;
    }
    return offset;
  }

  function goToLine(area, line, column) {
    var text = area.value;
    var start = lineStart(text, Math.max(line, 1));
    var end = text.indexOf("\n", start);
    if (end < 0) { end = text.length; }
    var at = Math.min(start + Math.max(column - 1, 0), end);
    area.focus({ preventScroll: true });
    area.setSelectionRange(at, at);
    var height = parseFloat(window.getComputedStyle(area).lineHeight) || 20;
    var top = (Math.max(line, 1) - 1) * height;
    if (area.scrollHeight > area.clientHeight) {
      area.scrollTop = Math.max(top - area.clientHeight / 3, 0);
    }
    var box = area.getBoundingClientRect();
    var y = box.top + top - area.scrollTop;
    if (y < 0 || y > window.innerHeight - 2 * height) {
      window.scrollBy(0, y - window.innerHeight / 3);
    }
  }

  /* With the script, the text area is at most this tall and scrolls, the gutter in step
   * (without it, the text area is as tall as the text, up to 400 rows). */
  var EDITOR_ROWS = 36;

  function renumber(area, gutter) {
    var lines = area.value.split("\n").length;
    var rows = Math.min(Math.max(lines + 2, 12), EDITOR_ROWS);
    if (String(rows) !== area.getAttribute("rows")) { area.setAttribute("rows", String(rows)); }
    for (var n = gutter.children.length + 1; n <= lines; n += 1) {
      var span = document.createElement("span");
      span.textContent = " " + ("    " + n).slice(-4);
      gutter.appendChild(span);
      gutter.appendChild(document.createTextNode("\n"));
    }
    while (gutter.children.length > lines) {
      gutter.removeChild(gutter.lastChild);  /* the newline after the last number */
      gutter.removeChild(gutter.lastChild);
    }
    gutter.scrollTop = area.scrollTop;
  }

  function setUpEditor(area) {
    var gutter = area.parentNode.querySelector(".gutter");
    if (gutter) {
      area.addEventListener("scroll", function () { gutter.scrollTop = area.scrollTop; });
      area.addEventListener("input", function () { renumber(area, gutter); });
      renumber(area, gutter);
    }
    document.querySelectorAll(".problems a[data-line]").forEach(function (link) {
      link.addEventListener("click", function (event) {
        event.preventDefault();
        goToLine(area, Number(link.getAttribute("data-line")), Number(link.getAttribute("data-column")));
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var area = document.getElementById("definition-yaml");
    if (area) { setUpEditor(area); }
    var rows = document.getElementById("run-rows");
    if (rows) { refreshRows(rows); }
    var runPage = document.querySelector(".run-page[data-stream]");
    if (runPage) { followRun(runPage); }
  });
})();
