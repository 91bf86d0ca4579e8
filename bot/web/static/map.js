/* The public map: report markers coloured by status, filters, a card per report. */
"use strict";
(function () {
  const map = L.map("map", { zoomSnap: 0.5 });
  map.fitBounds(CFG.bbox);
  if (CFG.tileUrl) {
    L.tileLayer(CFG.tileUrl, { attribution: CFG.tileAttribution, maxZoom: 19 }).addTo(map);
  } else {
    // No tiles (offline default): the kelurahan names are the landmarks.
    for (const [name, lat, lon] of CFG.kelurahan) {
      L.tooltip({ permanent: true, direction: "center", className: "kel-label", interactive: false })
        .setLatLng([lat, lon]).setContent(name).addTo(map);
    }
  }
  const layer = L.featureGroup().addTo(map);
  const form = document.getElementById("filters");
  const count = document.getElementById("count");
  const card = document.getElementById("card");
  let seq = 0;

  async function load() {
    const my = ++seq;
    const params = new URLSearchParams();
    for (const s of form.querySelectorAll("select")) if (s.value) params.set(s.name, s.value);
    count.textContent = t("Loading…");
    count.dataset.state = "loading";
    let data;
    try {
      const res = await fetch("/peta/data.json?" + params.toString());
      if (!res.ok) throw new Error(String(res.status));
      data = await res.json();
    } catch (e) {
      count.textContent = t("Could not load the data. Please try again.");
      count.dataset.state = "error";
      return;
    }
    if (my !== seq) return; // a newer filter change won
    layer.clearLayers();
    for (const [code, lat, lon, status, category] of data.points) {
      const color = STATUS_COLORS[status] || "#333";
      L.circleMarker([lat, lon], {
        radius: 7, color: "#fff", weight: 1.5, fillColor: color, fillOpacity: 0.9,
        className: "report-marker status-" + status,
      }).bindTooltip(code + " · " + (CFG.categories[category] || category))
        .on("click", () => openCard(code)).addTo(layer);
    }
    count.textContent = t("{n} reports on the map", { n: data.points.length });
    count.dataset.count = String(data.points.length);
    count.dataset.state = "ready";
    window.laporMap = { count: data.points.length, map: map, layer: layer };
  }

  async function openCard(code) {
    card.hidden = false;
    card.replaceChildren(el("p", {}, t("Loading…")));
    let r;
    try {
      const res = await fetch("/open311/v2/requests/" + encodeURIComponent(code) + ".json?lang=" + CFG.lang);
      if (!res.ok) throw new Error(String(res.status));
      r = (await res.json())[0];
    } catch (e) {
      card.replaceChildren(el("p", {}, t("Could not load the data. Please try again.")));
      return;
    }
    const close = el("button", { class: "close", type: "button", "aria-label": t("Close") }, "×");
    close.addEventListener("click", () => { card.hidden = true; });
    const status = r.extended_status;
    const history = el("ol", {});
    for (const n of r.notes || []) {
      const what = n.type === "created" ? t("report received") : (n.extended_status ? statusLabel(n.extended_status) : n.type);
      history.append(el("li", {}, fmtTime(n.datetime) + " – " + what + (n.description ? ": " + n.description : "")));
    }
    const photos = el("div", { class: "photos" });
    for (const url of r.media_urls || []) photos.append(el("img", { src: url, alt: r.service_request_id, loading: "lazy" }));
    card.replaceChildren(
      close,
      el("h2", {}, r.service_request_id + " ",
        el("span", { class: "badge", style: "background:" + (STATUS_COLORS[status] || "#333") }, statusLabel(status))),
      el("p", {}, el("strong", {}, t("Category") + ": "), CFG.categories[r.service_code] || r.service_name),
      el("p", {}, r.description || ""),
      el("p", {}, el("strong", {}, t("Place") + ": "), r.address || "–"),
      el("p", {}, el("strong", {}, t("Handled by") + ": "), r.agency_responsible || "–"),
      r.expected_datetime ? el("p", {}, el("strong", {}, t("Expected by") + ": "), fmtTime(r.expected_datetime)) : null,
      photos,
      el("h3", {}, t("Status history")),
      history,
    );
    card.dataset.code = r.service_request_id;
  }

  form.addEventListener("change", load);
  load();
  loadAlerts();
})();
