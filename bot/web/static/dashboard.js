/* The OPD dashboard: a table of figures (per OPD and for the whole city; cards on a phone) and
   a weekly bar chart per OPD (plain SVG, each bar labelled with its count, each week with its
   date).  The open and overdue numbers link to those reports on the public map. */
"use strict";
(function () {
  const NS = "http://www.w3.org/2000/svg";
  const WEEK_W = 30, TOP = 14, BASE = 108, HEIGHT = 140; // chart geometry (SVG units)
  const form = document.getElementById("filters");
  const status = document.getElementById("status");
  const tbody = document.querySelector("#dash tbody");
  const tfoot = document.querySelector("#dash tfoot");
  const heads = [...document.querySelectorAll("#dash thead th")].map(th => th.textContent);
  const charts = document.getElementById("charts");
  // The category, kecamatan and status filters are for the map; the dashboard is per OPD and period.
  for (const name of ["category", "kecamatan", "status"]) {
    const s = form.querySelector("select[name=" + name + "]");
    if (s) s.closest("label").remove();
  }
  const days = form.querySelector("select[name=days]");
  if (days && !days.value) days.value = "90";

  function duration(min) {
    if (min === null || min === undefined) return "–";
    if (min < 1) return t("under 1 min");
    if (min < 60) return t("{n} min", { n: Math.round(min) });
    if (min < 48 * 60) return t("{n} h", { n: fmtNum(min / 60) });
    return t("{n} days", { n: fmtNum(min / 1440) });
  }
  const pct = p => (p === null || p === undefined ? "–" : fmtNum(p) + " %");
  const day = (iso, opts) => new Date(iso + "T00:00:00Z").toLocaleDateString(LOCALE, Object.assign({ timeZone: "UTC" }, opts));

  function mapLink(n, opd, which) {
    const q = new URLSearchParams({ lang: CFG.lang, status: which });
    if (opd) q.set("opd", opd);
    return el("a", { href: "/peta?" + q.toString(), title: t("Show these reports on the map"), "data-link": which }, String(n));
  }

  function row(o, name, tag) {
    const cells = [name, String(o.total), mapLink(o.open, o.code, "open"), mapLink(o.overdue, o.code, "overdue"),
      duration(o.median_response_minutes), duration(o.median_resolution_minutes), pct(o.within_sla_pct)];
    return el("tr", { "data-opd": o.code || null, class: tag },
      ...cells.map((c, i) => el("td", { "data-label": heads[i] }, c)));
  }

  function svgEl(name, attrs, text) {
    const node = document.createElementNS(NS, name);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function chart(opd, weeks, series) {
    const svg = svgEl("svg", { viewBox: "0 0 " + weeks.length * WEEK_W + " " + HEIGHT, role: "img", "aria-label": opd.name });
    const max = Math.max(1, ...series.created, ...series.resolved);
    const barW = WEEK_W / 2 - 2;
    weeks.forEach((wk, i) => {
      const x0 = i * WEEK_W + 1.5;
      [["created", "#0b5cad", 0], ["resolved", "#2ca02c", 1]].forEach(([key, color, k]) => {
        const v = series[key][i];
        const h = (v / max) * (BASE - TOP);
        const x = x0 + k * (barW + 1);
        const r = svgEl("rect", { x: x.toFixed(1), y: (BASE - h).toFixed(1), width: barW.toFixed(1), height: h.toFixed(1), fill: color, "data-count": v });
        const week = t("Week of {date}", { date: day(wk, { dateStyle: "medium" }) });
        r.append(svgEl("title", {}, week + " · " + t(key === "created" ? "Created" : "Resolved") + ": " + v));
        svg.append(r);
        if (v) svg.append(svgEl("text", { x: (x + barW / 2).toFixed(1), y: (BASE - h - 2).toFixed(1), class: "count", "text-anchor": "middle" }, String(v)));
      });
      // each week's Monday: the day, and the month under the first week of each month
      const mid = (i * WEEK_W + WEEK_W / 2).toFixed(1), month = day(wk, { month: "short" });
      svg.append(svgEl("text", { x: mid, y: BASE + 14, class: "week", "text-anchor": "middle", "data-week": wk }, day(wk, { day: "numeric" })));
      if (!i || month !== day(weeks[i - 1], { month: "short" })) {
        svg.append(svgEl("text", { x: mid, y: BASE + 27, class: "month", "text-anchor": "middle" }, month));
      }
    });
    svg.append(svgEl("line", { x1: 0, x2: weeks.length * WEEK_W, y1: BASE + 0.5, y2: BASE + 0.5, stroke: "#9aa8b5" }));
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
    tbody.replaceChildren(...data.opds.map(o => row(o, o.name)));
    tfoot.replaceChildren(...(data.opds.length ? [row(data.city, t("Whole city"), "city")] : []));
    charts.replaceChildren(...data.opds.map(o => chart(o, data.weeks, data.trend[o.code])));
    status.textContent = data.opds.length ? "" : t("No reports in this period.");
    status.dataset.state = "ready";
  }
  form.addEventListener("change", load);
  load();
  loadAlerts();
})();
