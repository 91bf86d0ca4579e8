/* The OPD dashboard: a table of figures and a weekly bar chart per OPD (plain SVG). */
"use strict";
(function () {
  const form = document.getElementById("filters");
  const status = document.getElementById("status");
  const tbody = document.querySelector("#dash tbody");
  const charts = document.getElementById("charts");
  // The category and kecamatan filters are for the map; the dashboard is per OPD and period.
  for (const name of ["category", "kecamatan"]) {
    const s = form.querySelector("select[name=" + name + "]");
    if (s) s.closest("label").remove();
  }
  const days = form.querySelector("select[name=days]");
  if (days && !days.value) days.value = "90";

  const hours = h => (h === null || h === undefined ? "–" : t("{h} h", { h: h }));
  const pct = p => (p === null || p === undefined ? "–" : p + " %");

  function chart(opd, weeks, series) {
    const NS = "http://www.w3.org/2000/svg";
    const svg = document.createElementNS(NS, "svg");
    svg.setAttribute("viewBox", "0 0 240 110");
    svg.setAttribute("role", "img");
    const max = Math.max(1, ...series.created, ...series.resolved);
    const w = 240 / weeks.length;
    weeks.forEach((wk, i) => {
      [["created", "#0b5cad", 0], ["resolved", "#2ca02c", 1]].forEach(([key, color, k]) => {
        const v = series[key][i];
        const h = (v / max) * 95;
        const r = document.createElementNS(NS, "rect");
        r.setAttribute("x", (i * w + 1 + k * (w / 2 - 1)).toFixed(1));
        r.setAttribute("y", (100 - h).toFixed(1));
        r.setAttribute("width", Math.max(1, w / 2 - 1.5).toFixed(1));
        r.setAttribute("height", h.toFixed(1));
        r.setAttribute("fill", color);
        const title = document.createElementNS(NS, "title");
        title.textContent = wk + " · " + t(key === "created" ? "Created" : "Resolved") + ": " + v;
        r.append(title);
        svg.append(r);
      });
    });
    const axis = document.createElementNS(NS, "line");
    axis.setAttribute("x1", "0"); axis.setAttribute("x2", "240");
    axis.setAttribute("y1", "100.5"); axis.setAttribute("y2", "100.5");
    axis.setAttribute("stroke", "#9aa8b5");
    svg.append(axis);
    return el("div", { class: "chart", "data-opd": opd.code }, el("h3", {}, opd.name), svg);
  }

  async function load() {
    const params = new URLSearchParams();
    for (const s of form.querySelectorAll("select")) if (s.value) params.set(s.name, s.value);
    status.textContent = t("Loading…");
    status.dataset.state = "loading";
    let data;
    try {
      const res = await fetch("/dasbor/data.json?" + params.toString());
      if (!res.ok) throw new Error(String(res.status));
      data = await res.json();
    } catch (e) {
      status.textContent = t("Could not load the data. Please try again.");
      status.dataset.state = "error";
      return;
    }
    tbody.replaceChildren();
    charts.replaceChildren();
    for (const o of data.opds) {
      tbody.append(el("tr", { "data-opd": o.code },
        el("td", {}, o.name), el("td", {}, String(o.total)), el("td", {}, String(o.open)),
        el("td", {}, String(o.overdue)), el("td", {}, hours(o.median_response_hours)),
        el("td", {}, hours(o.median_resolution_hours)), el("td", {}, pct(o.within_sla_pct))));
      charts.append(chart(o, data.weeks, data.trend[o.code]));
    }
    status.textContent = data.opds.length ? "" : t("No reports in this period.");
    status.dataset.state = "ready";
  }
  form.addEventListener("change", load);
  load();
  loadAlerts();
})();
