/* Shared by the public pages: config, translations, the warnings strip. */
"use strict";
const CFG = JSON.parse(document.getElementById("config").textContent);

function t(msgid, vars) {
  let s = (CFG.t && CFG.t[msgid]) || msgid;
  if (vars) for (const k of Object.keys(vars)) s = s.split("{" + k + "}").join(String(vars[k]));
  return s;
}

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") node.className = v; else if (v !== null && v !== undefined) node.setAttribute(k, v);
  }
  for (const c of children) if (c !== null && c !== undefined) node.append(c);
  return node;
}

const LOCALE = CFG.lang === "en" ? "en-GB" : "id-ID";

function fmtTime(iso) {
  if (!iso) return "–";
  return new Date(iso).toLocaleString(LOCALE, { timeZone: CFG.tz, dateStyle: "medium", timeStyle: "short" });
}

function fmtNum(x) { return x.toLocaleString(LOCALE, { maximumFractionDigits: 1 }); }

const STATUS_COLORS = { baru: "#d62728", diproses: "#ff7f0e", selesai: "#2ca02c", ditolak: "#7f7f7f" };
const STATUS_MSGIDS = { baru: "New", diproses: "In progress", selesai: "Resolved", ditolak: "Rejected" };
function statusLabel(s) { return STATUS_MSGIDS[s] ? t(STATUS_MSGIDS[s]) : s; }

function sparkline(points) {
  const NS = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(NS, "svg");
  svg.setAttribute("viewBox", "0 0 160 40");
  if (points.length < 2) return svg;
  const xs = points.map(p => Date.parse(p[0])), ys = points.map(p => p[1]);
  const x0 = Math.min(...xs), x1 = Math.max(...xs), y0 = Math.min(...ys), y1 = Math.max(...ys);
  const d = points.map((p, i) => {
    const x = x1 > x0 ? ((xs[i] - x0) / (x1 - x0)) * 156 + 2 : 80;
    const y = y1 > y0 ? 38 - ((ys[i] - y0) / (y1 - y0)) * 36 : 20;
    return (i ? "L" : "M") + x.toFixed(1) + " " + y.toFixed(1);
  }).join(" ");
  const path = document.createElementNS(NS, "path");
  path.setAttribute("d", d); path.setAttribute("fill", "none");
  path.setAttribute("stroke", "#0b5cad"); path.setAttribute("stroke-width", "2");
  svg.append(path);
  return svg;
}

async function loadAlerts() {
  const box = document.getElementById("alerts");
  if (!box) return;
  try {
    const res = await fetch("/web/warnings.json");
    if (!res.ok) return;
    const data = await res.json();
    box.replaceChildren();
    for (const w of data.warnings || []) {
      box.append(el("div", { class: "alert level-" + String(w.level || "").toLowerCase() },
        el("strong", {}, String(w.level || "").toUpperCase() + " · "), w.headline || "",
        el("small", {}, " (" + fmtTime(w.sent_at) + ")")));
    }
    if ((data.sensors || []).length) {
      const row = el("div", { class: "sensors" });
      for (const s of data.sensors) {
        row.append(el("div", { class: "sensor" },
          el("div", {}, el("strong", {}, s.id), " · " + (s.level || "–") +
            (s.value !== null && s.value !== undefined ? " · " + s.value : "")),
          sparkline(s.points || [])));
      }
      box.append(row);
    }
    box.hidden = box.childElementCount === 0;
  } catch (e) { /* the strip is optional */ }
}
