// tsur web chat: a thin client of the WebSocket protocol described in bots/web/protocol.py.
// No build step, no external requests. All text is rendered with textContent.
"use strict";

(function () {
  const MAX_UPLOAD = 10 * 1024 * 1024;
  const MAX_FRAME = 60 * 1024; // the server closes sockets on frames over 64 KiB
  // A text's size as it travels (JSON escapes quotes, backslashes, control characters): a
  // frame over the limit would close the socket on every attempt, after a reload too.
  const tooLong = (text) => new TextEncoder().encode(JSON.stringify(text)).length > MAX_FRAME;
  const STORAGE_KEY = "tsur.webchat.client_id";
  // Unacknowledged frames outlive a reload in sessionStorage: it belongs to this tab (a
  // second tab does not send this one's frames again), survives a reload and the browser
  // restoring a discarded tab, and is gone with the tab, so a frame is never sent days
  // later into whatever step the dialogue has reached by then.
  const PENDING_KEY = "tsur.webchat.pending";
  const MAX_KEPT_FRAMES = 50;
  const MAX_KEPT_CHARS = 256 * 1024; // ~0.5 MB of the ~5 MB an origin gets
  // The server takes a frame's sent_at as its time stamp only within a day of its own
  // clock (protocol.MAX_CLOCK_SKEW); an older frame would not be recognised as a repeat.
  const MAX_KEPT_AGE = 20 * 3600 * 1000;
  // The engine recognises a repeat among the last 5 messages it handled (SEEN_KEPT in
  // dialogue/engine.py): with at most 4 frames unacknowledged on the wire, all of them
  // are still among those when they are sent again.
  const WINDOW = 4;

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
            send({ type: "button", payload: b.payload }, { text: b.label });
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

  // --- frames kept until acknowledged -------------------------------------------------
  // Every action frame carries an id and is kept until the server acknowledges it (once
  // it is stored and answered); after a reconnect, or a reload, the unacknowledged ones
  // are sent again, unchanged and in order, so nothing typed just before the server went
  // away is lost. An entry: {id, data (the frame as sent), sentAt, text, image} — text and
  // image redraw the citizen's bubble after a reload.
  const pending = new Map();
  const inFlight = new Set(); // ids sent on the current socket, not yet acknowledged

  function session() {
    try { return window.sessionStorage; } catch (e) { return null; } // blocked
  }

  function loadKept() {
    const s = session();
    let list = [];
    try { list = JSON.parse((s && s.getItem(PENDING_KEY)) || "[]"); } catch (e) { list = []; }
    if (!Array.isArray(list)) return [];
    const now = Date.now();
    return list.filter((e) => e && typeof e.id === "string" && typeof e.data === "string"
      && typeof e.sentAt === "number" && now - e.sentAt < MAX_KEPT_AGE);
  }

  // Write the pending frames to sessionStorage: the oldest ones, within the bounds (a
  // prefix, so what is sent again after a reload keeps its order). A full or blocked
  // storage (private mode) costs only the reload-proofing, never the chat.
  function keep() {
    const s = session();
    if (!s) return;
    let list = [];
    let chars = 0;
    for (const e of pending.values()) {
      const size = e.data.length + e.text.length + e.image.length + 64;
      if (list.length >= MAX_KEPT_FRAMES || chars + size > MAX_KEPT_CHARS) break;
      list.push(e);
      chars += size;
    }
    for (;;) {
      try {
        if (list.length) s.setItem(PENDING_KEY, JSON.stringify(list));
        else s.removeItem(PENDING_KEY);
        return;
      } catch (e) {
        if (!list.length) return;
        list = list.slice(0, list.length >> 1); // over the quota: keep fewer
      }
    }
  }

  function redraw(e) {
    let text = e.text;
    if (!text) {
      try { text = String(JSON.parse(e.data).text || ""); } catch (err) { text = ""; }
    }
    const el = bubble("user", text);
    if (e.image) image(el, e.image);
  }

  loadKept().forEach((e) => {
    const entry = { id: e.id, data: e.data, sentAt: e.sentAt,
                    text: String(e.text || ""), image: String(e.image || "") };
    pending.set(entry.id, entry);
    redraw(entry);
  });
  keep(); // forget what was too old

  // --- the socket --------------------------------------------------------------------
  const id = clientId();
  let ws = null;
  let ready = false;
  // Ask the bot for its greeting and menu once per page load — unless frames from before
  // a reload are to be sent again: /start would overtake them and move the dialogue (back
  // to the menu) before they are answered; their replies show where the dialogue is.
  let greeted = pending.size > 0;
  let delay = 1000;
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
      inFlight.clear();
      pump();
    });
    ws.addEventListener("message", (ev) => {
      let m;
      try { m = JSON.parse(ev.data); } catch (e) { return; }
      if (m.type === "message") renderMessage(m);
      else if (m.type === "ack") acknowledged(m.id);
      else if (m.type === "error") bubble("error", m.text || "");
    });
    ws.addEventListener("close", () => {
      ready = false;
      inFlight.clear();
      setStatus("offline");
      const wait = delay + Math.random() * 500;
      delay = Math.min(delay * 2, 30000);
      setTimeout(connect, wait);
    });
  }

  // Send the pending frames, in order, keeping at most WINDOW of them unacknowledged.
  function pump() {
    if (!ready || ws.readyState !== WebSocket.OPEN) return;
    for (const e of pending.values()) {
      if (inFlight.size >= WINDOW) return;
      if (!inFlight.has(e.id)) {
        inFlight.add(e.id);
        ws.send(e.data);
      }
    }
  }

  function acknowledged(frameId) {
    inFlight.delete(frameId);
    if (pending.delete(frameId)) keep();
    pump();
  }

  // shown: what the citizen's bubble showed ({text, image}), to redraw it after a reload
  function send(frame, shown) {
    seq += 1;
    frame.id = Date.now().toString(36) + "-" + seq;
    frame.sent_at = Date.now();
    // a bubble showing the frame's own text does not keep a second copy of it
    const text = shown.text && shown.text !== frame.text ? shown.text : "";
    pending.set(frame.id, { id: frame.id, data: JSON.stringify(frame), sentAt: frame.sent_at,
                            text: text, image: shown.image || "" });
    keep();
    pump();
  }

  // --- the composer ------------------------------------------------------------------
  function sendText() {
    const text = input.value;
    if (!text.trim()) return;
    if (tooLong(text)) {
      bubble("error", L.tooLong);
      return;
    }
    bubble("user", text);
    send({ type: "text", text: text }, { text: text });
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
    if (tooLong(caption)) { bubble("error", L.tooLong); return; }
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
      // the photo is on the server now: the frame naming it can be sent again after a
      // reload (a photo still uploading when the page goes is lost with the page)
      send({ type: "photo", upload_id: body.id, text: caption },
           { text: caption, image: typeof body.url === "string" ? body.url : "" });
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
        const shown = L.myLocation + "\n" + lat.toFixed(5) + ", " + lon.toFixed(5);
        bubble("user", shown);
        locationPanel.hidden = true;
        send({ type: "location", latitude: lat, longitude: lon }, { text: shown });
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
