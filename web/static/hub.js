// Keep live panels true without a reload: poll a small HTML fragment and swap it in.
(function () {
  "use strict";
  document.querySelectorAll("[data-src][data-interval]").forEach(function (panel) {
    var interval = parseInt(panel.dataset.interval, 10) || 5000;
    var busy = false;
    function refresh() {
      if (busy || document.hidden) { return; }
      busy = true;
      fetch(panel.dataset.src, { credentials: "same-origin", headers: { "X-Requested-With": "fetch" } })
        .then(function (response) {
          if (response.redirected || !response.ok) { throw new Error("refresh failed: " + response.status); }
          return response.text();
        })
        .then(function (html) {
          // Replace only on change, so focus, selection and a half-done click survive the poll.
          if (html !== panel.dataset.lastHtml) {
            panel.innerHTML = html;
            panel.dataset.lastHtml = html;
          }
          panel.dataset.refreshedAt = new Date().toISOString();
        })
        .catch(function (error) { panel.dataset.refreshError = String(error); })
        .finally(function () { busy = false; });
    }
    setInterval(refresh, interval);
    document.addEventListener("visibilitychange", refresh);
  });
})();
