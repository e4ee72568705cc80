/* heattrack report map: Leaflet + the static data scripts written by heattrack/report/webmap.py.
 * Data files call HT.add({name: ...}) or HT.chunk({key: ...}); nothing is fetched, so the page works from
 * file://, any static web server or an S3 bucket. */
var HT = (function () {
  "use strict";
  var data = {}, chunks = {}, pending = {}, errors = [];
  var map = null, layers = {}, netGroup = null, netDrawn = 0, topById = {}, canvas = null, ready = false;
  var colourBy = "risk", drawn = [];  // every segment polyline on the map, restyled when colourBy changes
  var CHANGE_COLOURS = {"new": "#d7191c", "persistent": "#fdae61", "resolved": "#1a9641", "no_data": "#888888"};

  function add(obj) { data[obj.name] = obj; }
  function chunk(obj) { chunks[obj.key] = obj; if (pending[obj.key]) { pending[obj.key](obj); } }

  function lerp(stops, t) {
    t = Math.max(0, Math.min(1, isFinite(t) ? t : 0));
    for (var i = 1; i < stops.length; i++) {
      if (t <= stops[i][0]) {
        var a = stops[i - 1], b = stops[i], u = (t - a[0]) / (b[0] - a[0] || 1), c = [];
        for (var k = 0; k < 3; k++) { c.push(Math.round(a[1][k] + u * (b[1][k] - a[1][k]))); }
        return "rgb(" + c.join(",") + ")";
      }
    }
    var l = stops[stops.length - 1][1];
    return "rgb(" + l.join(",") + ")";
  }
  var RISK = [[0, [49, 54, 149]], [0.5, [116, 173, 209]], [0.8, [253, 174, 97]], [0.95, [215, 48, 39]], [1, [165, 0, 38]]];
  var MDL = [[0, [26, 150, 65]], [0.25, [166, 217, 106]], [0.5, [255, 255, 191]], [0.75, [253, 174, 97]], [1, [215, 25, 28]]];
  function riskColour(r) { return r === null ? "#999" : lerp(RISK, r); }
  function mdlColour(k) { return k === null ? "#999" : lerp(MDL, k / 20.0); }

  function esc(s) { return String(s).replace(/[&<>"']/g, function (c) { return "&#" + c.charCodeAt(0) + ";"; }); }
  function fmt(v, unit) { return v === null || v === undefined ? "&ndash;" : esc(v) + (unit || ""); }

  function popupHtml(p) {
    var rows = [["rank", fmt(p[1])], ["risk", fmt(p[2])], ["excess &Delta;T", fmt(p[3], " K")], ["clear dates", fmt(p[4])],
                ["diameter", fmt(p[5], " mm")], ["smallest leak seen (mdl_k)", fmt(p[6], " K")]];
    if (p[10]) { rows.push(["flagged", "yes: at or above the flag level (p &le; segments.mdl_alpha)"]); }
    if (p[7]) { rows.push(["change since last season", fmt(p[7])]); }
    if (p[8]) { rows.push(["street", fmt(p[8])]); }
    var h = "<div class='ht-popup'><b class='ht-id'>" + esc(p[0]) + "</b><table>";
    rows.forEach(function (r) { h += "<tr><th>" + r[0] + "</th><td>" + r[1] + "</td></tr>"; });
    h += "</table>";
    if (p[9]) {
      h += "<img class='ht-thumb' src='map/thumbs/" + encodeURIComponent(p[0]) + ".png' alt='LST and anomaly around " +
           "the hottest point'><div class='ht-caption'>left: LST, right: anomaly (&plusmn;3 K), 480 m</div>";
    }
    return h + "</div>";
  }

  function style(p, by) {
    var risk = p[2];
    if (by === "mdl") { return {color: mdlColour(p[6]), weight: 3, opacity: 0.9}; }
    return {color: riskColour(risk), weight: risk === null ? 1 : 1.5 + 3.5 * risk, opacity: risk === null ? 0.5 : 0.9};
  }

  function polyline(f, opts) {
    var parts = f.c.map(function (flat) {
      var ll = [];
      for (var i = 0; i < flat.length; i += 2) { ll.push([flat[i], flat[i + 1]]); }
      return ll;
    });
    var line = L.polyline(parts, opts);
    line.bindPopup(function () { return popupHtml(f.p); }, {maxWidth: 360, autoPanPadding: [20, 20]});
    line.htProps = f.p;
    if (!opts.fixedStyle) { drawn.push(line); }
    return line;
  }

  function tileLayer(index) {
    var t = index.risk_tiles;
    if (!t) { return null; }
    var have = {};
    Object.keys(t.tiles).forEach(function (z) { t.tiles[z].forEach(function (k) { have[z + "/" + k] = true; }); });
    var Risk = L.GridLayer.extend({
      createTile: function (coords, done) {
        var key = coords.z + "/" + coords.x + "/" + coords.y, img = document.createElement("img");
        if (have[key]) {
          img.onload = function () { done(null, img); };
          img.onerror = function () { done(null, img); };
          img.src = "map/risk/" + key + ".png";
        } else { setTimeout(function () { done(null, img); }, 0); }
        img.alt = "";
        return img;
      }
    });
    var b = t.bounds;
    return new Risk({minZoom: 0, maxNativeZoom: t.max_zoom, minNativeZoom: t.min_zoom, maxZoom: 20, opacity: 0.75,
                     bounds: L.latLngBounds([b[1], b[0]], [b[3], b[2]])});
  }

  function loadChunk(key) {
    if (chunks[key] || pending[key]) { return; }
    pending[key] = function (obj) {
      delete pending[key];
      obj.features.forEach(function (f) {
        netGroup.addLayer(polyline(f, Object.assign({renderer: canvas}, style(f.p, colourBy))));
        netDrawn += 1;
      });
    };
    var s = document.createElement("script");
    s.src = "map/data/net/" + key + ".js";
    s.onerror = function () { errors.push("missing chunk " + key); delete pending[key]; };
    document.head.appendChild(s);
  }

  function tileRange(z) {
    var b = map.getBounds().pad(0.25), n = Math.pow(2, z);
    function tx(lon) { return Math.floor((lon + 180) / 360 * n); }
    function ty(lat) { var r = lat * Math.PI / 180; return Math.floor((1 - Math.log(Math.tan(r) + 1 / Math.cos(r)) / Math.PI) / 2 * n); }
    return [tx(b.getWest()), ty(b.getNorth()), tx(b.getEast()), ty(b.getSouth())];
  }

  function refreshNetwork() {
    var idx = data.index;
    if (!map.hasLayer(netGroup) || map.getZoom() < idx.network.chunk_zoom) { return; }
    var r = tileRange(idx.network.chunk_zoom);
    for (var x = r[0]; x <= r[2]; x++) {
      for (var y = r[1]; y <= r[3]; y++) {
        var key = x + "_" + y;
        if (idx.network.chunks[key]) { loadChunk(key); }
      }
    }
  }

  function focus(id) {
    var line = topById[id];
    if (!line) { errors.push("segment " + id + " is not among the map's top segments"); return false; }
    if (!map.hasLayer(layers.top)) { map.addLayer(layers.top); }
    map.fitBounds(line.getBounds(), {maxZoom: 17, padding: [40, 40], animate: false});
    line.openPopup(line.getCenter());
    return true;
  }

  function fromHash() {
    var m = /segment=([^&]+)/.exec(window.location.hash);
    if (m) { focus(decodeURIComponent(m[1])); }
  }

  function legendHtml() {
    var g = [], i;
    if (colourBy === "mdl") {
      for (i = 0; i <= 10; i++) { g.push(mdlColour(i * 2) + " " + (i * 10) + "%"); }
      return "<b>smallest leak this screen would flag (mdl_k)</b><div class='ht-bar' style='background:" +
        "linear-gradient(to right," + g.join(",") + ")'></div><span>0 K</span><span style='float:right'>20 K+</span>" +
        "<div class='ht-note'>green: small leaks would show; red: only large ones (or none)</div>";
    }
    for (i = 0; i <= 10; i++) { g.push(riskColour(i / 10) + " " + (i * 10) + "%"); }
    return "<b>segment risk</b><div class='ht-bar' style='background:linear-gradient(to right," + g.join(",") +
      ")'></div><span>0</span><span style='float:right'>1</span><div class='ht-note'>thicker = riskier; pixels: " +
      "risk mosaic; circles: hotspots</div>";
  }

  function legend() {
    var c = L.control({position: "bottomright"});
    c.onAdd = function () {
      var d = L.DomUtil.create("div", "ht-legend");
      d.id = "ht-legend";
      d.innerHTML = legendHtml();
      return d;
    };
    return c;
  }

  function setColourBy(mode) {
    colourBy = mode;
    drawn.forEach(function (line) { line.setStyle(style(line.htProps, mode)); });
    var d = document.getElementById("ht-legend");
    if (d) { d.innerHTML = legendHtml(); }
  }

  function colourControl() {
    var c = L.control({position: "topright"});
    c.onAdd = function () {
      var d = L.DomUtil.create("div", "leaflet-control-layers leaflet-control ht-colour");
      d.innerHTML = "<b>colour segments by</b><br><label><input type='radio' name='ht-colour' value='risk' checked> " +
        "risk</label><br><label><input type='radio' name='ht-colour' value='mdl'> detectability (mdl_k)</label>";
      L.DomEvent.disableClickPropagation(d);
      d.addEventListener("change", function (e) { setColourBy(e.target.value); });
      return d;
    };
    return c;
  }

  function start(elementId) {
    var idx = data.index, b = idx.bounds;
    map = L.map(elementId, {preferCanvas: false, zoomSnap: 0.5});
    canvas = L.canvas({padding: 0.5, tolerance: 4});
    var base = {}, overlays = {};
    if (idx.basemap && idx.basemap.url) {
      base.Basemap = L.tileLayer(idx.basemap.url, {maxZoom: 19, attribution: idx.basemap.attribution}).addTo(map);
    }
    var risk = tileLayer(idx);
    if (risk) { layers.risk = risk.addTo(map); overlays["Risk mosaic (pixels)"] = risk; }
    netGroup = L.layerGroup();
    overlays["Whole network (zoom in)"] = netGroup.addTo(map);
    map.createPane("htTop").style.zIndex = 450;  // above the canvas of the whole network: the top stay clickable
    var svgTop = L.svg({pane: "htTop"});
    layers.top = L.featureGroup();
    (data.top ? data.top.features : []).forEach(function (f) {
      var line = polyline(f, Object.assign({className: "ht-seg", pane: "htTop", renderer: svgTop}, style(f.p, "risk")));
      topById[f.p[0]] = line;
      layers.top.addLayer(line);
    });
    overlays["Top " + idx.network.n_top + " segments"] = layers.top.addTo(map);
    var hs = L.layerGroup();
    (data.hotspots ? data.hotspots.rows : []).forEach(function (r) {
      hs.addLayer(L.circleMarker([r[0], r[1]], {radius: 5, color: "#000", weight: 1, fillColor: "#ffeb3b", fillOpacity: 0.8})
        .bindPopup("<b>" + esc(r[4]) + "</b><br>peak &Delta;T " + fmt(r[2], " K") + ", risk " + fmt(r[3])));
    });
    overlays["Hotspots"] = hs.addTo(map);
    if (data.changes && data.changes.features.length) {
      var ch = L.layerGroup();
      data.changes.features.forEach(function (f) {
        var col = CHANGE_COLOURS[f.change] || "#333", pop = "<b>" + esc(f.id) + "</b><br>" + esc(f.kind) + ": " + esc(f.change);
        if (f.kind === "hotspot") {
          ch.addLayer(L.circleMarker(f.c[0], {radius: 8, color: col, weight: 3, fill: false}).bindPopup(pop));
        } else {
          ch.addLayer(polyline({c: f.c, p: [f.id, null, f.risk, null, null, null, null, f.change, null, 0]},
                               {color: col, weight: 5, fixedStyle: true}));
        }
      });
      overlays["Changes since last season"] = ch.addTo(map);
    }
    L.control.layers(base, overlays, {collapsed: false}).addTo(map);
    if (idx.has_mdl) { colourControl().addTo(map); }
    L.control.scale({imperial: false}).addTo(map);
    legend().addTo(map);
    map.fitBounds([[b[1], b[0]], [b[3], b[2]]], {animate: false});
    map.on("moveend zoomend overlayadd", refreshNetwork);
    window.addEventListener("hashchange", fromHash);
    refreshNetwork();
    fromHash();
    ready = true;
  }

  function state() {
    return {ready: ready, colour_by: colourBy, n_top: Object.keys(topById).length, chunks_loaded: Object.keys(chunks).length,
            chunks_pending: Object.keys(pending).length, network_drawn: netDrawn, zoom: map ? map.getZoom() : null,
            errors: errors.slice()};
  }

  return {add: add, chunk: chunk, start: start, focus: focus, state: state, setColourBy: setColourBy,
          map: function () { return map; }, top: function (id) { return topById[id]; }};
})();
