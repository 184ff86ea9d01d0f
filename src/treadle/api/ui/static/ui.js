/* Treadle web UI: live updates, nothing else. No framework, no build: plain browser JS.
 * - The runs list refreshes its table body every 2 s (data-refresh).
 * - A run's page listens to its event stream (text/event-stream) and, when the run
 *   changed, fetches the page's live parts and swaps in those that changed: an element
 *   with data-key is replaced only when its key differs (so a form being filled in
 *   stays as it is), the others always; keyboard focus is kept where it was.
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

  document.addEventListener("DOMContentLoaded", function () {
    var rows = document.getElementById("run-rows");
    if (rows) { refreshRows(rows); }
    var runPage = document.querySelector(".run-page[data-stream]");
    if (runPage) { followRun(runPage); }
  });
})();
