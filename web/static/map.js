// The region's map (one component for the desk, the vehicles page and the incident pages).
// Leaflet draws the boundaries the hub serves; incidents and vehicles come from a small JSON
// endpoint polled every few seconds; a picker fills latitude and longitude fields. Nothing is
// asked of any other address unless the site configured its own tile server (data-tiles).
(function () {
  "use strict";
  if (!window.L || window.hubMaps) { return; }
  var L = window.L;
  var maps = window.hubMaps = {};
  var LEVELS = ["I", "II", "III", "IV"];

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) { node.className = className; }
    if (text) { node.textContent = text; }
    return node;
  }

  // Tooltips get nodes, never HTML strings: titles and names are typed by people.
  function textBlock(lines) {
    var box = el("div");
    lines.forEach(function (line) { box.appendChild(el("div", "", line)); });
    return box;
  }

  function getJSON(url) {
    return fetch(url, { credentials: "same-origin", headers: { "X-Requested-With": "fetch" } })
      .then(function (response) {
        if (!response.ok || response.redirected) { throw new Error(url + ": " + response.status); }
        return response.json();
      });
  }

  function fmt(template, values) {
    return template.replace(/\{(\w+)\}/g, function (_, key) { return values[key]; });
  }

  function localTime(iso) {
    if (!iso) { return "—"; }
    var date = new Date(iso);
    return date.toLocaleString(document.documentElement.lang || undefined, { timeZone: "Asia/Shanghai", hour12: false,
      month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit" });
  }

  function drawBoundaries(state, geojson) {
    var own = state.node.dataset.ownCity;
    var members = L.featureGroup();
    var layer = L.geoJSON(geojson, {
      interactive: false,
      style: function (feature) {
        var p = feature.properties;
        var cls = p.member ? "city-area member" : "city-area neighbour";
        if (p.member && p.slug === own) { cls += " own"; }
        return { className: cls, weight: p.member ? 1.5 : 1, fillOpacity: p.member ? 0.35 : 0.6 };
      },
      onEachFeature: function (feature, shape) {
        var p = feature.properties;
        // The boundaries name member cities in English too; neighbours keep their Chinese name.
        var name = (/^en/.test(document.documentElement.lang) && p.name_en) || p.name_zh;
        shape.on("add", function () {
          var path = shape.getElement();
          if (path && p.slug) { path.setAttribute("data-city", p.slug); }
        });
        if (p.member) {
          members.addLayer(L.geoJSON(feature));
          shape.bindTooltip(name, { permanent: true, direction: "center", className: "city-label" });
        } else {
          shape.bindTooltip(name, { permanent: true, direction: "center", className: "city-label neighbour" });
        }
      }
    }).addTo(state.map);
    layer.bringToBack();
    state.map.fitBounds(members.getBounds(), { padding: [8, 8], animate: false });
    state.node.dataset.drawn = String(geojson.features.filter(function (f) { return f.properties.member; }).length);
  }

  function incidentMarker(state, item) {
    var radius = { I: 11, II: 9, III: 7, IV: 6 }[item.level] || 6;
    var cls = "incident level-" + (LEVELS.indexOf(item.level) + 1) + (item.placed ? "" : " unplaced") + (item.exercise ? " exercise" : "");
    var marker = L.circleMarker([item.lat, item.lon], { radius: radius, className: cls, weight: 2, fillOpacity: 0.85 });
    var tip = fmt(state.labels.level, { level: item.level }) + " · " + item.title + " · " + item.city_name;
    if (!item.placed) { tip += " · " + state.labels.no_place; }
    marker.bindTooltip(textBlock([tip]));
    marker.on("click", function () { window.location.href = item.url; });
    marker.on("add", function () { marker.getElement().setAttribute("data-incident", String(item.id)); });
    return marker;
  }

  function vehicleMarker(state, item) {
    var icon = el("div", "vehicle-icon");
    var arrow = el("span", "arrow");
    if (item.heading !== null && item.heading !== undefined) {
      arrow.style.transform = "rotate(" + item.heading + "deg)";  // CSSOM, which the CSP allows
    } else {
      arrow.className = "arrow none";
    }
    icon.appendChild(arrow);
    icon.appendChild(el("span", "code", item.code));
    var cls = "vehicle-marker" + (item.stale ? " stale" : "") + (item.online ? " online" : " offline") + (item.own ? " own" : "");
    var marker = L.marker([item.lat, item.lon], {
      icon: L.divIcon({ html: icon, className: cls, iconSize: [20, 20], iconAnchor: [10, 10] }),
      keyboard: true, title: item.name
    });
    var lines = [item.name + " (" + item.code + ") · " + item.city_name];
    if (item.heading !== null && item.heading !== undefined) { lines.push(state.labels.heading + " " + Math.round(item.heading) + "°"); }
    if (item.speed_kmh !== null && item.speed_kmh !== undefined) { lines.push(state.labels.speed + " " + Math.round(item.speed_kmh) + " km/h"); }
    lines.push(state.labels.updated + " " + localTime(item.position_at) + (item.stale ? " · " + state.labels.stale : ""));
    if (!item.online) { lines.push(state.labels.offline); }
    marker.bindTooltip(textBlock(lines));
    marker.on("click", function () { window.location.href = item.url; });
    marker.on("add", function () { marker.getElement().setAttribute("data-vehicle", item.city + "/" + item.code); });
    return marker;
  }

  // Above this many vehicles each is a dot on one canvas instead of an element of its own, so a
  // few thousand positions still pan and refresh smoothly.
  var CANVAS_VEHICLES = 300;

  function vehicleDot(state, item) {
    var dot = L.circleMarker([item.lat, item.lon], {
      renderer: state.canvas, radius: 4, weight: 1, color: "#114", fillOpacity: 0.9,
      fillColor: item.stale ? "#999" : (item.own ? "#1a6b2e" : "#2f6fb3")
    });
    dot.bindTooltip(textBlock([item.name + " (" + item.code + ") · " + item.city_name,
      state.labels.updated + " " + localTime(item.position_at) + (item.stale ? " · " + state.labels.stale : "")]));
    dot.on("click", function () { window.location.href = item.url; });
    return dot;
  }

  // Mutual-aid resources, open requests and drill injects: many, small, drawn on the canvas.
  function pointMarker(state, item, style, lines) {
    var marker = L.circleMarker([item.lat, item.lon], Object.assign({ renderer: state.canvas, weight: 1.5, fillOpacity: 0.8 }, style));
    marker.bindTooltip(textBlock(lines));
    marker.on("click", function () { window.location.href = item.url; });
    return marker;
  }

  function refreshLayers(state) {
    if (!state.node.dataset.layers || document.hidden) { return; }
    getJSON(state.node.dataset.layers).then(function (data) {
      LEVELS.forEach(function (level) { state.groups[level].clearLayers(); });
      state.groups.exercise.clearLayers();
      state.groups.vehicles.clearLayers();
      data.incidents.forEach(function (item) {
        var group = item.exercise ? state.groups.exercise : state.groups[item.level];
        if (group) { group.addLayer(incidentMarker(state, item)); }
      });
      var many = data.vehicles.length > CANVAS_VEHICLES;
      data.vehicles.forEach(function (item) {
        state.groups.vehicles.addLayer(many ? vehicleDot(state, item) : vehicleMarker(state, item));
      });
      state.node.dataset.vehiclesDrawnAs = many ? "canvas" : "markers";
      ["resources", "requests", "injects", "platform"].forEach(function (name) { state.groups[name].clearLayers(); });
      (data.platform_incidents || []).forEach(function (item) {
        state.groups.platform.addLayer(pointMarker(state, item, { radius: 6, color: "#3a3a3a", fillColor: "#b0b0b0" },
          [state.labels.platform_incidents + " · " + item.city_name, item.level + " · " + item.title, item.location]));
      });
      (data.aid_resources || []).forEach(function (item) {
        state.groups.resources.addLayer(pointMarker(state, item, { radius: 5, color: "#5b3a00", fillColor: "#e0a030" },
          [item.name + " · " + item.city_name, item.type + " · " + item.available + " " + item.unit]));
      });
      (data.aid_requests || []).forEach(function (item) {
        state.groups.requests.addLayer(pointMarker(state, item, { radius: 8, color: "#7a0040", fillColor: "#d0307a" },
          [state.labels.aid_requests + " · " + item.title + " · " + item.city_name]));
      });
      (data.injects || []).forEach(function (item) {
        state.groups.injects.addLayer(pointMarker(state, item, { radius: 7, color: "#4b2a7a", fillColor: "#9a6ad0", dashArray: "3 2" },
          [state.labels.injects + " #" + item.number + " · " + item.drill, item.message]));
      });
      state.node.dataset.layerCounts = [data.vehicles.length, (data.aid_resources || []).length,
        (data.aid_requests || []).length, (data.injects || []).length].join(",");
      state.node.dataset.refreshedAt = data.at;
    }).catch(function (error) { state.node.dataset.refreshError = String(error); });
  }

  function addLayers(state) {
    var labels = state.labels;
    var overlays = {};
    state.canvas = L.canvas({ padding: 0.2 });
    state.groups = { exercise: L.layerGroup(), vehicles: L.layerGroup(), resources: L.layerGroup(),
      requests: L.layerGroup(), injects: L.layerGroup(), platform: L.layerGroup() };
    LEVELS.forEach(function (level) {
      state.groups[level] = L.layerGroup().addTo(state.map);
      overlays[labels.incidents + " · " + fmt(labels.level, { level: level })] = state.groups[level];
    });
    overlays[labels.exercise] = state.groups.exercise;  // off until asked for: drill traffic apart
    overlays[labels.vehicles] = state.groups.vehicles.addTo(state.map);
    overlays[labels.aid_requests] = state.groups.requests.addTo(state.map);
    overlays[labels.aid_resources] = state.groups.resources;  // off until asked for: hundreds of them
    overlays[labels.injects] = state.groups.injects;  // off until asked for: drill traffic apart
    overlays[labels.platform_incidents] = state.groups.platform;  // off until asked for: the cities' own records
    L.control.layers(null, overlays, { collapsed: true, position: "topright" }).addTo(state.map);

    var legend = L.control({ position: "bottomleft" });
    legend.onAdd = function () {
      var box = el("div", "map-legend");
      box.appendChild(el("strong", "", labels.legend));
      [["swatch member", labels.member], ["swatch neighbour", labels.neighbour]].concat(
        LEVELS.map(function (level, i) { return ["dot incident level-" + (i + 1), fmt(labels.level, { level: level })]; }),
        [["dot incident exercise", labels.exercise], ["dot vehicle", labels.vehicles], ["dot vehicle stale", labels.stale],
         ["dot aid-request", labels.aid_requests], ["dot aid-resource", labels.aid_resources], ["dot inject", labels.injects],
         ["dot platform-incident", labels.platform_incidents]]
      ).forEach(function (entry) {
        var row = el("div", "row");
        row.appendChild(el("span", entry[0]));
        row.appendChild(el("span", "", entry[1]));
        box.appendChild(row);
      });
      return box;
    };
    legend.addTo(state.map);
    refreshLayers(state);
    state.timer = setInterval(function () { refreshLayers(state); }, parseInt(state.node.dataset.interval, 10) || 5000);
  }

  function addPicker(state) {
    var node = state.node;
    var lat = document.getElementById(node.dataset.pickerLat);
    var lon = document.getElementById(node.dataset.pickerLon);
    if (!lat || !lon) { return; }
    var note = el("p", "map-picked hint", state.labels.pick_hint);
    note.setAttribute("aria-live", "polite");
    node.parentNode.insertBefore(note, node.nextSibling);
    var marker = null;
    function show(latlng) {
      if (marker) { marker.setLatLng(latlng); } else {
        marker = L.circleMarker(latlng, { radius: 8, className: "picked", weight: 3 }).addTo(state.map);
      }
    }
    function propose(latlng) {
      var url = node.dataset.cityAt + "?lat=" + latlng.lat + "&lon=" + latlng.lng;
      getJSON(url).then(function (answer) {
        if (!answer.city) { note.textContent = state.labels.outside; return; }
        var box = node.dataset.pickerCities && document.getElementById(node.dataset.pickerCities);
        var check = box && box.querySelector("input[type=checkbox][value='" + answer.city + "']");
        if (check) { check.checked = true; }
        note.textContent = fmt(box ? state.labels.inside : state.labels.located, { city: answer.name });
        node.dataset.pickedCity = answer.city;
      }).catch(function () { note.textContent = state.labels.pick_hint; });
    }
    state.map.on("click", function (event) {
      var latlng = L.latLng(Math.round(event.latlng.lat * 1e5) / 1e5, Math.round(event.latlng.lng * 1e5) / 1e5);
      lat.value = latlng.lat.toFixed(5);
      lon.value = latlng.lng.toFixed(5);
      show(latlng);
      propose(latlng);
    });
    function fromFields() {
      var a = parseFloat(lat.value), b = parseFloat(lon.value);
      if (isFinite(a) && isFinite(b)) { show(L.latLng(a, b)); }
    }
    lat.addEventListener("change", fromFields);
    lon.addEventListener("change", fromFields);
    fromFields();
  }

  function init(node) {
    var state = { node: node, labels: JSON.parse(node.dataset.labels || "{}") };
    state.map = L.map(node, { zoomSnap: 0.25, minZoom: 5, maxZoom: 16, attributionControl: !!node.dataset.tiles });
    if (node.dataset.tiles) {
      L.tileLayer(node.dataset.tiles, { maxZoom: 18 }).addTo(state.map);
    }
    state.map.setView([34.6, 117.5], 7);
    maps[node.dataset.map] = state;
    getJSON(node.dataset.boundaries).then(function (geojson) {
      drawBoundaries(state, geojson);
      if (node.dataset.point) {
        var p = node.dataset.point.split(",").map(parseFloat);
        L.circleMarker(p, { radius: 9, className: "picked", weight: 3 }).addTo(state.map);
        // An area watched around the place: its radius in metres, drawn to scale.
        if (node.dataset.circle) {
          var area = L.circle(p, { radius: parseFloat(node.dataset.circle), className: "watched-area", weight: 2 }).addTo(state.map);
          state.map.fitBounds(area.getBounds().pad(3), { maxZoom: 11 });
        }
      }
    }).catch(function (error) { node.dataset.refreshError = String(error); });
    if (node.dataset.layers) { addLayers(state); }
    if (node.dataset.pickerLat) { addPicker(state); }
  }

  // A live panel that is swapped in by hub.js brings a fresh placeholder: put the map that is
  // already drawn in its place, so zoom, layers and the picked point survive the refresh.
  function attach(node) {
    if (node.classList.contains("leaflet-container")) { return; }
    var existing = maps[node.dataset.map];
    if (existing && existing.node !== node) {
      node.replaceWith(existing.node);
      existing.map.invalidateSize();
      return;
    }
    init(node);
  }

  function scan() { document.querySelectorAll("div.hub-map[data-map]").forEach(attach); }
  function start() {
    scan();
    new MutationObserver(scan).observe(document.body, { childList: true, subtree: true });
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", start); } else { start(); }
})();
