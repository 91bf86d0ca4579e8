/* The demo chat: a phone-like page on the web channel (polling for replies).  Each persona has
   its own thread, kept with its buttons while another persona is shown.  The map picker names
   the kelurahan of the pin (asking the server's area index) before the place is sent. */
"use strict";
(function () {
  const PICK_ZOOM = 14, PIN_ZOOM = 17, PIN_KEY = "lapor-demo-pin";
  const $ = id => document.getElementById(id);
  const log = $("log"), personaSel = $("persona"), form = $("composer"), input = $("text");
  const photoInput = $("photo-input"), picker = $("picker"), latIn = $("pick-lat"), lonIn = $("pick-lon");
  const place = $("pick-place"), okBtn = $("pick-ok"), moveBtn = $("pick-move");
  const state = { sid: null, persona: "citizen", after: {} };
  const threads = {}; // persona → its thread (a <div> in the log)
  let pickMap = null, pin = null, picked = null, lookups = 0;

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

  // The newest message, its buttons included, in view (also once its picture has loaded).
  function scrollToEnd() { log.scrollTop = log.scrollHeight; }

  function thread(persona) {
    if (!threads[persona]) {
      threads[persona] = el("div", { class: "thread", "data-persona": persona });
      log.append(threads[persona]);
    }
    return threads[persona];
  }

  function bubble(persona, who, text, image) {
    const node = el("div", { class: "msg " + who });
    if (image) {
      image.addEventListener("load", scrollToEnd);
      node.append(image);
    }
    node.append(document.createTextNode(text || ""));
    thread(persona).append(node);
    scrollToEnd();
    return node;
  }

  function showError() {
    thread(state.persona).append(el("div", { class: "err" }, t("Could not send. Please try again.")));
    scrollToEnd();
  }

  function botMessage(persona, m) {
    const image = m.photo_url ? el("img", { src: m.photo_url, alt: "" }) : null;
    const node = bubble(persona, "bot", m.text, image);
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
      scrollToEnd();
    }
  }

  async function send(body, shown) {
    if (shown !== null) bubble(state.persona, "me", shown);
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

  $("btn-photo").addEventListener("click", () => photoInput.click());
  photoInput.addEventListener("change", async () => {
    const file = photoInput.files[0];
    if (!file) return;
    bubble(state.persona, "me", "", el("img", { src: URL.createObjectURL(file), alt: "" }));
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

  // --- the map picker ---------------------------------------------------------------------
  function say(text, what) {
    place.textContent = text;
    place.dataset.state = what;
    place.hidden = false;
  }

  function lastPin() {
    try {
      const p = JSON.parse(localStorage.getItem(PIN_KEY) || "null");
      return Array.isArray(p) && p.length === 2 && p.every(isFinite) ? p : null;
    } catch (e) { return null; }
  }

  async function outlines() {
    try {
      const res = await fetch("/demo/api/areas.json");
      if (!res.ok) return;
      const data = await res.json();
      if (data.features.length) {
        L.geoJSON(data, { interactive: false, style: { color: "#7d8fa3", weight: 1.2, fillOpacity: 0.04, className: "kel-outline" } }).addTo(pickMap);
      }
    } catch (e) { /* the outlines are a help, not a need */ }
  }

  function openPicker() {
    picker.hidden = false;
    if (!pickMap) {
      const last = lastPin();
      pickMap = L.map("pick-map", { maxZoom: 19 }).setView(last || CFG.center, last ? PIN_ZOOM : PICK_ZOOM);
      mapBase(pickMap, true);
      outlines();
      pickMap.on("click", ev => setPin(ev.latlng.lat, ev.latlng.lng));
      window.laporPicker = pickMap;
    }
    pickMap.invalidateSize();
    scrollToEnd();
  }

  function setPin(lat, lon) {
    if (pin) pin.setLatLng([lat, lon]);
    else {
      pin = L.marker([lat, lon], {
        draggable: true, keyboard: false,
        icon: L.divIcon({ className: "pin", html: "📍", iconSize: [24, 24], iconAnchor: [12, 24] }),
      }).addTo(pickMap);
      pin.on("dragend", () => { const p = pin.getLatLng(); setPin(p.lat, p.lng); });
    }
    latIn.value = lat.toFixed(6); lonIn.value = lon.toFixed(6);
    lookup(lat, lon);
  }

  async function lookup(lat, lon) {
    const my = ++lookups;
    picked = null;
    okBtn.hidden = moveBtn.hidden = true;
    say(t("Looking up the place…"), "looking");
    let data;
    try {
      const res = await fetch("/demo/api/place?" + new URLSearchParams({ lat: String(lat), lon: String(lon) }));
      if (!res.ok) throw new Error(String(res.status));
      data = await res.json();
    } catch (e) {
      if (my === lookups) say(t("Could not look up the place. Please try again."), "error");
      return;
    }
    if (my !== lookups) return; // the pin moved again meanwhile
    if (!data.inside) {
      say(t("This point is outside {city}. Move the pin into the city.", { city: CFG.city }), "outside");
      return;
    }
    picked = { lat: lat, lon: lon, label: "📍 " + t("Kel. {kelurahan}, {kecamatan}", data) };
    say("📍 " + t("Kel. {kelurahan}, {kecamatan} — is that right?", data), "inside");
    place.dataset.kel = data.kode_kel;
    okBtn.hidden = moveBtn.hidden = false;
  }

  okBtn.addEventListener("click", () => {
    if (!picked) return;
    localStorage.setItem(PIN_KEY, JSON.stringify([picked.lat, picked.lon]));
    picker.hidden = true;
    send({ kind: "location", lat: picked.lat, lon: picked.lon }, picked.label);
  });
  moveBtn.addEventListener("click", () => {
    picked = null;
    okBtn.hidden = moveBtn.hidden = true;
    say(t("Tap the map or drag the pin to the right place."), "moving");
  });
  $("pick-gps").addEventListener("click", () => {
    const unavailable = t("Your location is not available here. Tap the map instead.");
    if (!navigator.geolocation) { say(unavailable, "gps-error"); return; }
    say(t("Finding your location…"), "locating");
    navigator.geolocation.getCurrentPosition(
      pos => {
        const { latitude, longitude } = pos.coords;
        pickMap.setView([latitude, longitude], Math.max(pickMap.getZoom(), PIN_ZOOM));
        setPin(latitude, longitude);
      },
      err => say(err.code === err.PERMISSION_DENIED
        ? t("Location access was refused. Allow it in the browser, or tap the map.") : unavailable, "gps-error"),
      { enableHighAccuracy: true, timeout: 15000, maximumAge: 60000 });
  });
  $("pick-show").addEventListener("click", () => {
    const lat = parseFloat(latIn.value.replace(",", ".")), lon = parseFloat(lonIn.value.replace(",", "."));
    if (!isFinite(lat) || !isFinite(lon) || Math.abs(lat) > 90 || Math.abs(lon) > 180) {
      say(t("Please type the latitude and the longitude as numbers, e.g. {example}.",
        { example: CFG.center.map(x => x.toFixed(4)).join(", ") }), "error");
      latIn.focus();
      return;
    }
    pickMap.setView([lat, lon], Math.max(pickMap.getZoom(), PIN_ZOOM));
    setPin(lat, lon);
  });
  $("btn-location").addEventListener("click", openPicker);
  $("pick-cancel").addEventListener("click", () => { picker.hidden = true; });

  // --- replies and personas ---------------------------------------------------------------
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
        for (const m of data.messages) { botMessage(persona, m); state.after[persona] = m.id; }
      }
    } catch (e) { /* try again on the next tick */ }
    polling = false;
  }

  async function switchPersona(p) {
    const fresh = !threads[p];
    state.persona = p;
    sessionStorage.setItem("demo-persona", p);
    thread(p);
    for (const [q, th] of Object.entries(threads)) th.hidden = q !== p;
    scrollToEnd();
    await post("/demo/api/persona", { sid: state.sid, persona: p, lang: CFG.lang });
    if (fresh && !state.after[p]) send({ kind: "text", text: "/start" }, null);
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
    new ResizeObserver(scrollToEnd).observe(log); // the picker opening or growing shrinks the log
    await switchPersona(p);
    setInterval(poll, 700);
    window.laporDemo = state;
  }
  init();
})();
