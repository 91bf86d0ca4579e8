/* The public map: report markers coloured by status (clustered), the list of the reports in
   view beside it, filters (also read from and kept in the URL), a card per report. */
"use strict";
(function () {
  const LIST_MAX = 200;
  const map = L.map("map", { zoomSnap: 0.5, maxZoom: 19 });
  const city = L.latLngBounds(CFG.kelurahan.map(k => [k[1], k[2]]));
  map.fitBounds(city.isValid() ? city.pad(0.1) : CFG.bbox);
  mapBase(map, false);
  const clusters = clusterLayer(map, (p, latlng) => {
    const [code, , , status, category] = p;
    return L.circleMarker(latlng, {
      radius: 7, color: "#fff", weight: 1.5, fillColor: STATUS_COLORS[status] || "#333", fillOpacity: 0.9,
      className: "report-marker status-" + status,
    }).bindTooltip(code + " · " + (CFG.categories[category] || category))
      .on("click", () => openCard(code));
  });
  const form = document.getElementById("filters");
  const count = document.getElementById("count");
  const card = document.getElementById("card");
  const list = document.getElementById("list");
  const listCount = document.getElementById("list-count");
  let seq = 0;

  const query = new URLSearchParams(location.search);
  for (const s of form.querySelectorAll("select")) {
    const v = query.get(s.name);
    if (v && [...s.options].some(o => o.value === v)) s.value = v;
  }

  function renderList() {
    const shown = clusters.inView().sort((a, b) => (a[7] < b[7] ? 1 : a[7] > b[7] ? -1 : 0));
    listCount.textContent = t("{n} reports in view", { n: shown.length });
    listCount.dataset.count = String(shown.length);
    list.replaceChildren();
    for (const [code, , , status, category, , kec, created] of shown.slice(0, LIST_MAX)) {
      const b = el("button", { type: "button", "data-code": code },
        el("span", { class: "badge", style: "background:" + (STATUS_COLORS[status] || "#333") }, statusLabel(status)),
        " ", el("strong", {}, code), el("br"),
        (CFG.categories[category] || category) + " · " + (CFG.kecamatan[kec] || kec || "–") + " · " + fmtTime(created));
      b.addEventListener("click", () => openCard(code));
      list.append(el("li", {}, b));
    }
    if (shown.length > LIST_MAX) {
      list.append(el("li", { class: "more" }, t("… and {n} more: zoom in to see them.", { n: shown.length - LIST_MAX })));
    }
  }
  map.on("moveend", renderList);

  async function load() {
    const my = ++seq;
    const params = new URLSearchParams();
    for (const s of form.querySelectorAll("select")) if (s.value) params.set(s.name, s.value);
    const shared = new URLSearchParams(params);
    shared.set("lang", CFG.lang);
    history.replaceState(null, "", "?" + shared.toString());
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
    clusters.setPoints(data.points);
    renderList();
    count.textContent = t("{n} reports on the map", { n: data.points.length });
    count.dataset.count = String(data.points.length);
    count.dataset.state = "ready";
    window.laporMap = { count: data.points.length, map: map, points: data.points, clusters: clusters };
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
      const what = n.label || (n.extended_status ? statusLabel(n.extended_status) : t("report received"));
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
      r.expected_datetime ? el("p", {}, el("strong", {}, t("Expected by") + ": "), fmtTime(r.expected_datetime)) : "",
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
