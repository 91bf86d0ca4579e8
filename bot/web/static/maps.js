/* Leaflet helpers shared by the public map and the demo's map picker (after common.js):
   the base (tiles, or the kelurahan names as landmarks when there are none) and a small
   grid clustering of report markers. */
"use strict";
const LABEL_MIN_ZOOM = 11;     // kelurahan names only from about the whole city's view on
const CLUSTER_CELL_PX = 60;    // points closer than this (in one grid cell) are one cluster
const CLUSTER_UNTIL_ZOOM = 17; // from here on every report is its own marker

function boxesOverlap(a, b) {
  return a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;
}

// The kelurahan names (optionally with a dot at each centroid) as a base without tiles.
// From LABEL_MIN_ZOOM on; a name that would overlap one already shown is hidden.
function kelurahanLabels(map, withDots) {
  map.createPane("labels").style.zIndex = 350; // under the report markers and the pin
  const group = L.layerGroup();
  const labels = [];
  for (const [name, lat, lon] of CFG.kelurahan) {
    if (withDots) L.circleMarker([lat, lon], { radius: 3, color: "#6b7b8b", weight: 1, interactive: false }).addTo(map);
    const span = el("span", {}, name);
    labels.push(span);
    L.marker([lat, lon], {
      icon: L.divIcon({ className: "kel-label", html: span, iconSize: null }),
      interactive: false, keyboard: false, pane: "labels",
    }).addTo(group);
  }
  function place() {
    const show = map.getZoom() >= LABEL_MIN_ZOOM;
    if (show !== map.hasLayer(group)) show ? group.addTo(map) : group.remove();
    if (!show) return;
    const shown = [];
    for (const span of labels) {
      span.style.visibility = "";
      const box = span.getBoundingClientRect();
      const clash = shown.some(b => boxesOverlap(b, box));
      span.style.visibility = clash ? "hidden" : "";
      if (!clash) shown.push(box);
    }
  }
  map.on("moveend resize", place); // a zoom ends with a moveend too
  map.whenReady(place);
}

function mapBase(map, withDots) {
  if (CFG.tileUrl) L.tileLayer(CFG.tileUrl, { attribution: CFG.tileAttribution, maxZoom: 19 }).addTo(map);
  else kelurahanLabels(map, withDots);
}

// Report markers grouped by a pixel grid at the current zoom.  `marker(point, latlng)` draws one
// report; a cluster shows its count and zooms in when pressed.  Reports at the very same
// (rounded) place are fanned out around it once clustering stops.
function clusterLayer(map, marker) {
  const layer = L.layerGroup().addTo(map);
  let points = [];
  function clusterIcon(group) {
    const n = group.length;
    const size = n < 10 ? 30 : n < 100 ? 36 : 44;
    const icon = L.divIcon({ className: "report-cluster", html: String(n), iconSize: [size, size] });
    const center = L.latLngBounds(group.map(p => [p[1], p[2]])).getCenter();
    const m = L.marker(center, { icon: icon, title: t("{n} reports here: zoom in", { n: n }), keyboard: true });
    m.on("add", () => { m.getElement().dataset.count = String(n); });
    m.on("click", () => {
      const bounds = L.latLngBounds(group.map(p => [p[1], p[2]]));
      if (bounds.getNorthEast().equals(bounds.getSouthWest())) map.setView(center, CLUSTER_UNTIL_ZOOM);
      else map.fitBounds(bounds, { padding: [40, 40], maxZoom: CLUSTER_UNTIL_ZOOM });
    });
    return m;
  }
  function fan(group) {
    const z = map.getZoom(), c = map.project([group[0][1], group[0][2]], z);
    const r = 12 + 2 * group.length;
    group.forEach((p, i) => {
      const a = (2 * Math.PI * i) / group.length;
      layer.addLayer(marker(p, map.unproject(c.add([r * Math.cos(a), r * Math.sin(a)]), z)));
    });
  }
  function draw() {
    layer.clearLayers();
    const z = map.getZoom(), near = map.getBounds().pad(0.3), cells = new Map();
    for (const p of points) {
      if (!near.contains([p[1], p[2]])) continue;
      const xy = map.project([p[1], p[2]], z);
      const key = z >= CLUSTER_UNTIL_ZOOM ? p[1] + "," + p[2]
        : Math.floor(xy.x / CLUSTER_CELL_PX) + ":" + Math.floor(xy.y / CLUSTER_CELL_PX);
      if (!cells.has(key)) cells.set(key, []);
      cells.get(key).push(p);
    }
    for (const group of cells.values()) {
      if (group.length === 1) layer.addLayer(marker(group[0], L.latLng(group[0][1], group[0][2])));
      else if (z >= CLUSTER_UNTIL_ZOOM) fan(group);
      else layer.addLayer(clusterIcon(group));
    }
  }
  map.on("moveend", draw);
  return {
    setPoints(list) { points = list; draw(); },
    inView() { const b = map.getBounds(); return points.filter(p => b.contains([p[1], p[2]])); },
  };
}
