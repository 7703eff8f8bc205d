// Keep live panels true without a reload.
//
// The desk (#live with data-events) takes what the server pushes over Server-Sent Events and
// polls data-src only while it cannot hold a stream; it shows its connection state, the time of
// its last update and a clock in Asia/Shanghai, sends the person to log in again (and back) when
// the session has ended, and alerts on new urgent items (data-alert): a short tone, a flashing
// badge in the title and on the 值班台 menu entry, a desktop notification where allowed.
// Other panels with data-stream are pushed the same way (see below); panels with data-src and
// data-interval alone are simply polled.
(function () {
  "use strict";

  var ZONE = "Asia/Shanghai";
  var MUTE_KEY = "hub.desk.muted";
  var SEEN_KEY = "hub.desk.seenAlerts";

  function sessionEnded() {
    var bar = document.getElementById("live-bar");
    var login = (bar && bar.dataset.login) || "/login";
    var here = window.location.pathname + window.location.search;
    window.location.assign(login + "?next=" + encodeURIComponent(here));
  }

  function endedResponse(response) {
    return response.status === 401 || (response.redirected && /\/login(\?|$)/.test(response.url));
  }

  // Push first, poll as the fallback: follow the Server-Sent Events `event` of `streamUrl` into
  // `swap`, and poll the panel's data-src while no stream can be held (refused, busy, no
  // EventSource); `setState` hears "live", "reconnecting" or "down".
  function follow(panel, streamUrl, event, swap, setState) {
    var source = null;
    var pollTimer = null;
    var failures = 0;
    function poll() {
      fetch(panel.dataset.src, { credentials: "same-origin", headers: { "X-Requested-With": "fetch" } })
        .then(function (response) {
          if (endedResponse(response)) { sessionEnded(); throw new Error("session ended"); }
          if (!response.ok) { throw new Error("refresh failed: " + response.status); }
          return response.text();
        })
        .then(function (html) { swap(html); if (!source) { setState("reconnecting"); } })
        .catch(function (error) { panel.dataset.refreshError = String(error); setState("down"); });
    }
    function startPolling() {
      if (pollTimer) { return; }
      poll();
      pollTimer = setInterval(poll, parseInt(panel.dataset.interval, 10) || 3000);
    }
    function stopPolling() {
      if (pollTimer) { clearInterval(pollTimer); pollTimer = null; }
    }
    function connect() {
      if (!window.EventSource) { setState("reconnecting"); startPolling(); return; }
      source = new window.EventSource(streamUrl);
      source.addEventListener(event, function (message) {
        failures = 0;
        stopPolling();
        setState("live");
        swap(message.data);
      });
      source.addEventListener("session-ended", function () { source.close(); sessionEnded(); });
      source.addEventListener("reconnect", function () { setState("reconnecting"); });
      source.onerror = function () {
        failures += 1;
        setState("reconnecting");
        if (source.readyState === window.EventSource.CLOSED) {
          // The server refused the stream (401, busy): find out why, poll meanwhile, try again.
          source = null;
          fetch(panel.dataset.src, { credentials: "same-origin", headers: { "X-Requested-With": "fetch" } })
            .then(function (response) {
              if (endedResponse(response)) { sessionEnded(); return; }
              startPolling();
              setTimeout(connect, Math.min(30000, 2000 * failures));
            })
            .catch(function () {
              setState("down");
              setTimeout(connect, Math.min(30000, 2000 * failures));
            });
        } else if (failures > 3) {
          startPolling();
        }
      };
    }
    connect();
  }

  // Plain polled panels (not the desk) ----------------------------------------------------------
  document.querySelectorAll("[data-src][data-interval]:not([data-events]):not([data-stream])").forEach(function (panel) {
    var interval = parseInt(panel.dataset.interval, 10) || 5000;
    var busy = false;
    function refresh() {
      if (busy || document.hidden) { return; }
      busy = true;
      fetch(panel.dataset.src, { credentials: "same-origin", headers: { "X-Requested-With": "fetch" } })
        .then(function (response) {
          if (endedResponse(response)) { sessionEnded(); throw new Error("session ended"); }
          if (!response.ok) { throw new Error("refresh failed: " + response.status); }
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

  // Pushed panels other than the desk (a mutual-aid request): the server sends the panel whole
  // as event "update" whenever it changes; while a person types in one of its forms the new
  // version waits until they leave the form, so nothing they entered is lost. Without a stream
  // the panel polls data-src; the bar (data-bar) shows the connection and the last update.
  document.querySelectorAll("[data-stream]").forEach(function (pushed) {
    var bar = document.getElementById(pushed.dataset.bar);
    var state = bar && bar.querySelector("[data-live-state]");
    var updated = bar && bar.querySelector("[data-live-updated]");
    var clock = new Intl.DateTimeFormat("zh-CN", {
      timeZone: ZONE, hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false
    });
    var pending = null;
    function setState(name) {
      pushed.dataset.state = name;
      if (!state) { return; }
      state.dataset.state = name;
      var label = { live: bar.dataset.labelLive, reconnecting: bar.dataset.labelReconnecting, down: bar.dataset.labelDown }[name];
      if (label) { state.querySelector(".label").textContent = label; }
    }
    function editing() {
      var active = document.activeElement;
      return active && pushed.contains(active) && /^(INPUT|SELECT|TEXTAREA)$/.test(active.tagName);
    }
    function apply(html) {
      if (html !== pushed.dataset.lastHtml) {
        pushed.innerHTML = html;
        pushed.dataset.lastHtml = html;
      }
      var now = new Date();
      pushed.dataset.refreshedAt = now.toISOString();
      if (updated) { updated.textContent = clock.format(now); updated.setAttribute("datetime", now.toISOString()); }
    }
    function swap(html) {
      if (editing()) { pending = html; pushed.dataset.pending = "1"; return; }
      pending = null;
      delete pushed.dataset.pending;
      apply(html);
    }
    pushed.addEventListener("focusout", function () {
      setTimeout(function () { if (pending !== null && !editing()) { swap(pending); } }, 0);
    });
    follow(pushed, pushed.dataset.stream, "update", swap, setState);
  });

  var panel = document.querySelector("#live[data-events]");
  if (!panel) { return; }
  var bar = document.getElementById("live-bar");
  var labels = bar.dataset;
  var stateEl = document.getElementById("live-state");
  var updatedEl = document.getElementById("live-updated");
  var clockEl = document.getElementById("live-clock");
  var muteEl = document.getElementById("live-mute");
  var notifyEl = document.getElementById("live-notify");
  var baseTitle = document.title;
  var timeFormat = new Intl.DateTimeFormat("zh-CN", {
    timeZone: ZONE, hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false
  });
  var dateTimeFormat = new Intl.DateTimeFormat("zh-CN", {
    timeZone: ZONE, year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false
  });

  // Connection state, last update, clock --------------------------------------------------------
  function setState(state) {
    var label = { live: labels.labelLive, reconnecting: labels.labelReconnecting, down: labels.labelDown }[state];
    stateEl.dataset.state = state;
    panel.dataset.state = state;
    if (label) { stateEl.querySelector(".label").textContent = label; }
  }
  function markUpdated() {
    var now = new Date();
    updatedEl.textContent = timeFormat.format(now);
    updatedEl.setAttribute("datetime", now.toISOString());
    panel.dataset.refreshedAt = now.toISOString();
  }
  function tickClock() {
    var now = new Date();
    clockEl.textContent = dateTimeFormat.format(now);
    clockEl.setAttribute("datetime", now.toISOString());
  }
  tickClock();
  setInterval(tickClock, 1000);

  // Sound: a short two-note tone from the Web Audio API, only after the first interaction ------
  var audio = null;
  function muted() { return window.localStorage.getItem(MUTE_KEY) === "1"; }
  function showMute() {
    muteEl.setAttribute("aria-pressed", muted() ? "true" : "false");
    muteEl.textContent = muted() ? labels.labelMuted : labels.labelSound;
  }
  muteEl.addEventListener("click", function () {
    window.localStorage.setItem(MUTE_KEY, muted() ? "0" : "1");
    showMute();
  });
  showMute();
  function unlockAudio() {
    var Context = window.AudioContext || window.webkitAudioContext;
    if (!Context) { return; }
    if (!audio) { audio = new Context(); }
    if (audio.state === "suspended") { audio.resume(); }
  }
  ["pointerdown", "keydown", "touchstart"].forEach(function (name) {
    document.addEventListener(name, unlockAudio, { passive: true });
  });
  function beep() {
    panel.dataset.beeps = String((parseInt(panel.dataset.beeps, 10) || 0) + 1);
    if (muted() || !audio || audio.state !== "running") { return; }
    [[880, 0], [660, 0.2]].forEach(function (note) {
      var oscillator = audio.createOscillator();
      var gain = audio.createGain();
      var start = audio.currentTime + note[1];
      oscillator.type = "sine";
      oscillator.frequency.value = note[0];
      gain.gain.setValueAtTime(0.0001, start);
      gain.gain.exponentialRampToValueAtTime(0.3, start + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, start + 0.18);
      oscillator.connect(gain).connect(audio.destination);
      oscillator.start(start);
      oscillator.stop(start + 0.2);
    });
  }

  // Desktop notifications, where the browser allows them ----------------------------------------
  if ("Notification" in window && window.Notification.permission === "default") {
    notifyEl.hidden = false;
    notifyEl.addEventListener("click", function () {
      window.Notification.requestPermission().then(function () { notifyEl.hidden = true; });
    });
  }
  function notify(item) {
    if (!("Notification" in window) || window.Notification.permission !== "granted") { return; }
    try {
      var text = item.textContent.replace(/\s+/g, " ").trim().slice(0, 140);
      var shown = new window.Notification(labels.labelNotifyTitle, { body: text, tag: item.dataset.itemKey });
      shown.onclick = function () { window.focus(); shown.close(); };
    } catch (error) { /* some browsers allow notifications only from a service worker */ }
  }

  // Alerts: new keys sound and notify; while any is unacknowledged, title and menu flash --------
  var seen = {};
  try { seen = JSON.parse(window.sessionStorage.getItem(SEEN_KEY) || "{}"); } catch (error) { seen = {}; }
  var navLink = document.querySelector('.topbar nav a[data-endpoint="dashboard.index"]');
  var flashOn = false;
  var alerting = [];
  function scanAlerts() {
    alerting = Array.prototype.slice.call(panel.querySelectorAll("[data-alert]"));
    var fresh = alerting.filter(function (item) { return !seen[item.dataset.itemKey]; });
    fresh.forEach(function (item) { seen[item.dataset.itemKey] = 1; notify(item); });
    try { window.sessionStorage.setItem(SEEN_KEY, JSON.stringify(seen)); } catch (error) { /* full */ }
    if (fresh.length) { beep(); }
    panel.dataset.alerting = String(alerting.length);
    var badge = navLink && navLink.querySelector(".nav-badge");
    if (navLink) {
      if (alerting.length) {
        if (!badge) {
          badge = document.createElement("span");
          badge.className = "nav-badge";
          navLink.appendChild(badge);
        }
        badge.textContent = String(alerting.length);
        navLink.classList.add("alerting");
      } else {
        if (badge) { badge.remove(); }
        navLink.classList.remove("alerting");
      }
    }
    if (!alerting.length) { document.title = baseTitle; }
  }
  setInterval(function () {
    if (!alerting.length) { return; }
    flashOn = !flashOn;
    var badgeText = "【" + alerting.length + " " + labels.labelAlert + "】";
    document.title = flashOn ? badgeText + baseTitle : "【" + alerting.length + "】" + baseTitle;
  }, 1000);
  // Until acknowledged, sound again every 30 s.
  setInterval(function () { if (alerting.length) { beep(); } }, 30000);

  function swap(html) {
    if (html !== panel.dataset.lastHtml) {
      panel.innerHTML = html;
      panel.dataset.lastHtml = html;
    }
    markUpdated();
    scanAlerts();
  }

  markUpdated();
  scanAlerts();
  follow(panel, panel.dataset.events, "desk", swap, setState);
})();

// Pushed panels other than the desk (a vehicle's page): Server-Sent Events named "update" carry
// the panel's new content; while no stream can be held the panel polls data-src every data-poll
// milliseconds and tries the stream again. A 401 sends the person to log in again.
(function () {
  "use strict";

  document.querySelectorAll("[data-events]:not(#live)").forEach(function (panel) {
    var source = null;
    var pollTimer = null;
    var failures = 0;

    function swap(html) {
      if (html !== panel.dataset.lastHtml) {
        panel.innerHTML = html;
        panel.dataset.lastHtml = html;
      }
      panel.dataset.refreshedAt = new Date().toISOString();
    }
    function ended() {
      var here = window.location.pathname + window.location.search;
      window.location.assign("/login?next=" + encodeURIComponent(here));
    }
    function poll() {
      fetch(panel.dataset.src, { credentials: "same-origin", headers: { "X-Requested-With": "fetch" } })
        .then(function (response) {
          if (response.status === 401) { ended(); throw new Error("session ended"); }
          if (!response.ok) { throw new Error("refresh failed: " + response.status); }
          return response.text();
        })
        .then(swap)
        .catch(function (error) { panel.dataset.refreshError = String(error); panel.dataset.state = "down"; });
    }
    function startPolling() {
      if (!pollTimer) { pollTimer = setInterval(poll, parseInt(panel.dataset.poll, 10) || 3000); }
    }
    function stopPolling() {
      if (pollTimer) { clearInterval(pollTimer); pollTimer = null; }
    }
    function connect() {
      if (!window.EventSource) { startPolling(); return; }
      source = new window.EventSource(panel.dataset.events);
      source.addEventListener("update", function (event) {
        failures = 0;
        stopPolling();
        panel.dataset.state = "live";
        swap(event.data);
      });
      source.addEventListener("session-ended", function () { source.close(); ended(); });
      source.onerror = function () {
        failures += 1;
        panel.dataset.state = "reconnecting";
        if (source.readyState === window.EventSource.CLOSED) {
          source = null;
          poll();
          startPolling();
          setTimeout(connect, Math.min(30000, 2000 * failures));
        }
      };
    }
    connect();
  });
})();

// Lists on a phone: each cell is named by its column's heading (data-label), so that the
// stylesheet can show a table as one card per row. Templates may name cells themselves; the
// rest are named here, again whenever a live part of the page is redrawn.
(function () {
  "use strict";
  function label(root) {
    var tables = (root.querySelectorAll ? root : document).querySelectorAll("table.list:not(.report-grid)");
    Array.prototype.forEach.call(tables, function (table) {
      var heads = table.tHead && table.tHead.rows.length ? table.tHead.rows[0].cells : null;
      if (!heads) { return; }
      Array.prototype.forEach.call(table.tBodies, function (body) {
        Array.prototype.forEach.call(body.rows, function (row) {
          if (row.cells.length !== heads.length) { return; }  // "nothing here" rows span the table
          Array.prototype.forEach.call(row.cells, function (cell, i) {
            if (!cell.hasAttribute("data-label")) { cell.setAttribute("data-label", heads[i].textContent.trim()); }
          });
        });
      });
      table.classList.add("cards");
    });
  }
  function start() {
    label(document);
    new MutationObserver(function (changes) {
      changes.forEach(function (change) {
        Array.prototype.forEach.call(change.addedNodes, function (node) {
          if (node.nodeType === 1) { label(node.matches && node.matches("table.list") ? node.parentNode : node); }
        });
      });
    }).observe(document.body, { childList: true, subtree: true });
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", start); } else { start(); }
})();
