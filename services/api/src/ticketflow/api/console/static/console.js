// Follows the page's subject while it is open: polls the fingerprint at data-poll; when it
// changes, the queue table is replaced in place, and a ticket page reloads (unless the approver is
// typing a reason: then it says so instead). Every action works without this script.
(function () {
  "use strict";
  var region = document.querySelector("[data-poll]");
  if (!region) { return; }
  var live = document.getElementById("live");
  var every = 3000;

  function say(text) { if (live) { live.textContent = text; } }

  function busy() {
    var reason = document.getElementById("reason");
    return reason && (reason.value.trim() !== "" || document.activeElement === reason);
  }

  function refreshQueue() {
    return fetch(window.location.href, { credentials: "same-origin" })
      .then(function (r) { return r.text(); })
      .then(function (html) {
        var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("queue-region");
        if (fresh) { region.replaceWith(fresh); region = fresh; say("The approval queue changed."); }
      });
  }

  function poll() {
    fetch(region.getAttribute("data-poll"), { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) {
        if (r.status === 401) { window.location.href = "/console/login?ended=1"; return null; }
        return r.ok ? r.json() : null;
      })
      .then(function (state) {
        if (!state || !state.fingerprint || state.fingerprint === region.getAttribute("data-fingerprint")) { return; }
        if (region.id === "queue-region") { return refreshQueue(); }
        if (busy()) { say("This ticket changed (now " + state.status + "); reload the page to see it."); return; }
        window.location.reload();
      })
      .catch(function () { /* offline for a moment: the next poll tries again */ })
      .then(function () { window.setTimeout(poll, every); });
  }
  window.setTimeout(poll, every);
})();
