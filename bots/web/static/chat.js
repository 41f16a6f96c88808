// tsur web chat: a thin client of the WebSocket protocol described in bots/web/protocol.py.
// No build step, no external requests. All text is rendered with textContent.
"use strict";

(function () {
  const MAX_UPLOAD = 10 * 1024 * 1024;
  const MAX_FRAME = 60 * 1024; // the server closes sockets on frames over 64 KiB
  const STORAGE_KEY = "tsur.webchat.client_id";

  const params = new URLSearchParams(window.location.search);
  const lang = params.get("lang") === "en" ? "en" : "ru";
  // the page's own words, translated on the server (gettext) for this language
  const L = JSON.parse(document.getElementById("chat-labels").textContent);
  const prefix = document.body.dataset.prefix || "/chat";

  const $ = (id) => document.getElementById(id);
  const log = $("log");
  const input = $("input");
  const statusEl = $("status");
  const locationPanel = $("location-request");

  function applyLabels() {
    document.documentElement.lang = lang;
    document.title = L.title;
    document.querySelectorAll("[data-label]").forEach((el) => {
      el.textContent = L[el.dataset.label];
    });
    document.querySelectorAll("[data-label-title]").forEach((el) => {
      el.title = L[el.dataset.labelTitle];
      el.setAttribute("aria-label", L[el.dataset.labelTitle]);
    });
    document.querySelectorAll("[data-label-placeholder]").forEach((el) => {
      el.placeholder = L[el.dataset.labelPlaceholder];
    });
  }

  function newId() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    const b = new Uint8Array(16);
    crypto.getRandomValues(b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    const h = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
    return [h.slice(0, 8), h.slice(8, 12), h.slice(12, 16), h.slice(16, 20), h.slice(20)]
      .join("-");
  }

  function clientId() {
    let id = null;
    try {
      id = localStorage.getItem(STORAGE_KEY);
      if (!id || !/^[A-Za-z0-9_-]{8,64}$/.test(id)) {
        id = newId();
        localStorage.setItem(STORAGE_KEY, id);
      }
    } catch (e) {
      id = id || newId(); // storage blocked (private mode, third-party iframe)
    }
    return id;
  }

  // --- rendering ---------------------------------------------------------------------
  function bubble(side, text) {
    const el = document.createElement("div");
    el.className = "bubble " + side;
    if (text) {
      const p = document.createElement("p");
      p.textContent = text;
      el.appendChild(p);
    }
    log.appendChild(el);
    log.scrollTop = log.scrollHeight;
    return el;
  }

  function image(parent, src) {
    const img = document.createElement("img");
    img.src = src;
    img.alt = L.photo;
    img.addEventListener("load", () => { log.scrollTop = log.scrollHeight; });
    parent.appendChild(img);
  }

  function renderMessage(m) {
    const el = bubble("bot", m.text || "");
    (m.attachments || []).forEach((a) => {
      if (a.url && /^image\//.test(a.mime || "")) image(el, a.url);
    });
    const rows = m.buttons || [];
    if (rows.length) {
      const kb = document.createElement("div");
      kb.className = "keyboard";
      rows.forEach((row) => {
        const r = document.createElement("div");
        r.className = "row";
        row.forEach((b) => {
          const btn = document.createElement("button");
          btn.type = "button";
          btn.textContent = b.label;
          btn.addEventListener("click", () => {
            bubble("user", b.label);
            send({ type: "button", payload: b.payload });
          });
          r.appendChild(btn);
        });
        kb.appendChild(r);
      });
      el.appendChild(kb);
    }
    if (m.request_location) locationPanel.hidden = false;
    else if (m.remove_keyboard) locationPanel.hidden = true;
  }

  // --- the socket --------------------------------------------------------------------
  const id = clientId();
  let ws = null;
  let ready = false;
  let greeted = false; // ask the bot for its greeting and menu once per page load
  let delay = 1000;
  // Every action frame carries an id and is kept until the server acknowledges it (once
  // it is stored and answered); after a reconnect the unacknowledged ones are sent again,
  // unchanged, so nothing typed just before the server went away is lost.
  const pending = new Map();
  let seq = 0;

  function setStatus(state) {
    statusEl.dataset.state = state;
    statusEl.textContent = L[state];
  }

  function connect() {
    setStatus("connecting");
    const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
    ws = new WebSocket(scheme + "//" + window.location.host + prefix + "/ws");
    ws.addEventListener("open", () => {
      ws.send(JSON.stringify({ type: "hello", client_id: id, lang: lang }));
      if (!greeted) {
        greeted = true;
        ws.send(JSON.stringify({ type: "text", text: "/start" }));
      }
      ready = true;
      delay = 1000;
      setStatus("online");
      pending.forEach((data) => ws.send(data));
    });
    ws.addEventListener("message", (ev) => {
      let m;
      try { m = JSON.parse(ev.data); } catch (e) { return; }
      if (m.type === "message") renderMessage(m);
      else if (m.type === "ack") pending.delete(m.id);
      else if (m.type === "error") bubble("error", m.text || "");
    });
    ws.addEventListener("close", () => {
      ready = false;
      setStatus("offline");
      const wait = delay + Math.random() * 500;
      delay = Math.min(delay * 2, 30000);
      setTimeout(connect, wait);
    });
  }

  function send(frame) {
    seq += 1;
    frame.id = Date.now().toString(36) + "-" + seq;
    frame.sent_at = Date.now();
    const data = JSON.stringify(frame);
    pending.set(frame.id, data);
    if (ready && ws.readyState === WebSocket.OPEN) ws.send(data);
  }

  // --- the composer ------------------------------------------------------------------
  function sendText() {
    const text = input.value;
    if (!text.trim()) return;
    if (new TextEncoder().encode(text).length > MAX_FRAME) {
      bubble("error", L.tooLong);
      return;
    }
    bubble("user", text);
    send({ type: "text", text: text });
    input.value = "";
    autosize();
  }

  function autosize() {
    input.style.height = "auto";
    input.style.height = Math.min(input.scrollHeight, 160) + "px";
  }

  $("composer").addEventListener("submit", (ev) => { ev.preventDefault(); sendText(); });
  input.addEventListener("input", autosize);
  input.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) {
      ev.preventDefault();
      sendText();
    }
  });

  // --- photos ------------------------------------------------------------------------
  const photoInput = $("photo-input");
  $("photo-button").addEventListener("click", () => photoInput.click());
  photoInput.addEventListener("change", async () => {
    const file = photoInput.files && photoInput.files[0];
    photoInput.value = "";
    if (!file) return;
    if (file.size > MAX_UPLOAD) { bubble("error", L.tooBig); return; }
    const caption = input.value.trim() ? input.value : "";
    const mine = bubble("user", caption);
    image(mine, URL.createObjectURL(file));
    const note = bubble("system", L.uploading);
    try {
      const form = new FormData();
      form.append("file", file, file.name);
      const resp = await fetch(prefix + "/upload?lang=" + lang, { method: "POST", body: form });
      let body = {};
      try { body = await resp.json(); } catch (e) { body = {}; }
      if (!resp.ok || !body.id) throw new Error(body.text || L.uploadFailed);
      note.remove();
      input.value = "";
      autosize();
      send({ type: "photo", upload_id: body.id, text: caption });
    } catch (e) {
      note.remove();
      mine.classList.add("failed");
      bubble("error", e.message || L.uploadFailed);
    }
  });

  // --- location ----------------------------------------------------------------------
  function shareLocation() {
    if (!navigator.geolocation) { bubble("error", L.noGeo); return; }
    navigator.geolocation.getCurrentPosition(
      (pos) => {
        const lat = pos.coords.latitude;
        const lon = pos.coords.longitude;
        bubble("user", L.myLocation + "\n" + lat.toFixed(5) + ", " + lon.toFixed(5));
        locationPanel.hidden = true;
        send({ type: "location", latitude: lat, longitude: lon });
      },
      () => bubble("error", L.geoDenied),
      { enableHighAccuracy: true, timeout: 15000, maximumAge: 60000 },
    );
  }
  $("location-button").addEventListener("click", shareLocation);
  $("share-location").addEventListener("click", shareLocation);

  applyLabels();
  connect();
})();
