/* The demo chat: a phone-like page on the web channel (polling for replies). */
"use strict";
(function () {
  const log = document.getElementById("log");
  const personaSel = document.getElementById("persona");
  const form = document.getElementById("composer");
  const input = document.getElementById("text");
  const photoInput = document.getElementById("photo-input");
  const picker = document.getElementById("picker");
  const latIn = document.getElementById("pick-lat");
  const lonIn = document.getElementById("pick-lon");
  const state = { sid: null, persona: "citizen", after: {}, history: {} };
  let pickMap = null, pickMarker = null;

  function newId() {
    const a = new Uint8Array(12);
    crypto.getRandomValues(a);
    return Array.from(a, b => b.toString(16).padStart(2, "0")).join("");
  }

  async function post(url, body) {
    const res = await fetch(url, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
    if (!res.ok) throw new Error(String(res.status));
    return res.json();
  }

  function bubble(who, text, extra) {
    const node = el("div", { class: "msg " + who });
    if (extra && extra.photo_url) node.append(el("img", { src: extra.photo_url, alt: "" }));
    if (extra && extra.image) node.append(extra.image);
    node.append(document.createTextNode(text || ""));
    log.append(node);
    log.scrollTop = log.scrollHeight;
    (state.history[state.persona] = state.history[state.persona] || []).push([who, text, extra]);
    return node;
  }

  function showError() {
    log.append(el("div", { class: "err" }, t("Could not send. Please try again.")));
    log.scrollTop = log.scrollHeight;
  }

  function botMessage(m) {
    const node = bubble("bot", m.text, { photo_url: m.photo_url });
    node.dataset.id = m.id;
    if (m.choices.length || m.ask_location) {
      const row = el("div", { class: "choices" });
      for (const c of m.choices) {
        const b = el("button", { type: "button", "data-choice": c.id }, c.label);
        b.addEventListener("click", () => choose(c));
        row.append(b);
      }
      if (m.ask_location) {
        const b = el("button", { type: "button", "data-action": "location" }, m.location_label || "📍");
        b.addEventListener("click", openPicker);
        row.append(b);
      }
      node.append(row);
    }
  }

  async function send(body, shown) {
    if (shown !== null) bubble("me", shown);
    try {
      await post("/demo/api/send", Object.assign({ sid: state.sid, persona: state.persona, id: newId() }, body));
      poll();
    } catch (e) { showError(); }
  }

  function choose(c) { send({ kind: "choice", choice: c.id }, c.label); }

  form.addEventListener("submit", ev => {
    ev.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    input.value = "";
    send({ kind: "text", text: text }, text);
  });

  document.getElementById("btn-photo").addEventListener("click", () => photoInput.click());
  photoInput.addEventListener("change", async () => {
    const file = photoInput.files[0];
    if (!file) return;
    const img = el("img", { src: URL.createObjectURL(file), alt: "" });
    bubble("me", "", { image: img });
    const fd = new FormData();
    fd.append("sid", state.sid); fd.append("persona", state.persona); fd.append("id", newId());
    fd.append("photo", file);
    photoInput.value = "";
    try {
      const res = await fetch("/demo/api/photo", { method: "POST", body: fd });
      if (!res.ok) throw new Error(String(res.status));
      poll();
    } catch (e) { showError(); }
  });

  function openPicker() {
    picker.hidden = false;
    if (!pickMap) {
      pickMap = L.map("pick-map");
      pickMap.fitBounds(CFG.bbox);
      if (CFG.tileUrl) L.tileLayer(CFG.tileUrl, { attribution: CFG.tileAttribution, maxZoom: 19 }).addTo(pickMap);
      else for (const [name, lat, lon] of CFG.kelurahan) {
        L.circleMarker([lat, lon], { radius: 3, color: "#6b7b8b", weight: 1, interactive: false }).addTo(pickMap);
        L.tooltip({ permanent: true, direction: "top", className: "kel-label" }).setLatLng([lat, lon]).setContent(name).addTo(pickMap);
      }
      pickMap.on("click", ev => setPick(ev.latlng.lat, ev.latlng.lng));
    }
    setTimeout(() => pickMap.invalidateSize(), 0);
  }
  function setPick(lat, lon) {
    latIn.value = lat.toFixed(6); lonIn.value = lon.toFixed(6);
    if (pickMarker) pickMarker.setLatLng([lat, lon]);
    else pickMarker = L.marker([lat, lon], { icon: L.divIcon({ className: "", html: "📍", iconSize: [20, 20], iconAnchor: [10, 20] }) }).addTo(pickMap);
  }
  document.getElementById("btn-location").addEventListener("click", openPicker);
  document.getElementById("pick-cancel").addEventListener("click", () => { picker.hidden = true; });
  document.getElementById("pick-ok").addEventListener("click", () => {
    const lat = parseFloat(latIn.value.replace(",", ".")), lon = parseFloat(lonIn.value.replace(",", "."));
    if (!isFinite(lat) || !isFinite(lon)) { latIn.focus(); return; }
    picker.hidden = true;
    send({ kind: "location", lat: lat, lon: lon }, "📍 " + lat.toFixed(5) + ", " + lon.toFixed(5));
  });

  let polling = false;
  async function poll() {
    if (polling || !state.sid) return;
    polling = true;
    try {
      const persona = state.persona;
      const q = new URLSearchParams({ sid: state.sid, persona: persona, after: String(state.after[persona] || 0) });
      const res = await fetch("/demo/api/messages?" + q.toString());
      if (res.ok) {
        const data = await res.json();
        if (persona === state.persona) {
          for (const m of data.messages) { botMessage(m); state.after[persona] = m.id; }
        }
      }
    } catch (e) { /* try again on the next tick */ }
    polling = false;
  }

  async function switchPersona(p) {
    state.persona = p;
    sessionStorage.setItem("demo-persona", p);
    log.replaceChildren();
    const old = state.history[p] || [];
    state.history[p] = [];
    for (const [who, text, extra] of old) {
      if (who === "bot") botMessage(Object.assign({ text: text, choices: [], ask_location: false }, extra || {}));
      else bubble(who, text, extra);
    }
    await post("/demo/api/persona", { sid: state.sid, persona: p, lang: CFG.lang });
    if (!old.length && !state.after[p]) send({ kind: "text", text: "/start" }, null);
    poll();
  }

  async function init() {
    for (const [value, label] of CFG.personas) personaSel.append(el("option", { value: value }, label));
    state.sid = sessionStorage.getItem("demo-sid");
    if (!state.sid) {
      state.sid = (await post("/demo/api/session", {})).sid;
      sessionStorage.setItem("demo-sid", state.sid);
    }
    const p = sessionStorage.getItem("demo-persona") || "citizen";
    personaSel.value = p;
    personaSel.addEventListener("change", () => switchPersona(personaSel.value));
    await switchPersona(p);
    setInterval(poll, 700);
    window.laporDemo = state;
  }
  init();
})();
