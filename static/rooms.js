// The room page's live client: one WebSocket to /chat/<room>/, resumed with ?since=<last id seen> after
// every drop, and an outbox that keeps what the reader sent until the server echoes it back.
//
// Everything a person typed is put on the page with textContent, never as HTML: the server hands back
// handles and messages exactly as they were sent.
"use strict";

(function () {
  const chat = document.getElementById("chat");
  const form = document.getElementById("chatform");
  if (!chat || !form) return;

  const room = chat.dataset.room;
  const handleInput = document.getElementById("handle");
  const messageInput = document.getElementById("message");
  const log = document.getElementById("log");
  const outboxList = document.getElementById("outbox");
  const emptyNote = document.getElementById("empty");
  const gapNotice = document.getElementById("gap-notice");
  const formError = document.getElementById("form-error");
  const statusBox = document.getElementById("status");
  const statusText = document.getElementById("status-text");
  const statusDetail = document.getElementById("status-detail");
  const jumpButton = document.getElementById("jump");
  const copyButton = document.getElementById("copy-link");

  const HANDLE_KEY = "rooms:handle";
  const OUTBOX_KEY = "rooms:outbox:" + room;
  const BACKOFF_FIRST_MS = 1000;
  const BACKOFF_MAX_MS = 30000;
  // A connection that stayed up this long was healthy: the next drop starts the backoff afresh. A server
  // that accepts and at once closes (storage down) keeps backing off instead of being hammered.
  const HEALTHY_AFTER_MS = 10000;
  // A handshake into a network black hole can hang for minutes before the browser gives up on it.
  const CONNECT_TIMEOUT_MS = 10000;
  const RETRY_SEND_MS = 2000;
  const GROUP_WITHIN_MS = 5 * 60 * 1000;
  const NEAR_BOTTOM_PX = 80;

  // Ids are opaque, so "have I shown this?" is a set lookup, and "where do I resume?" is the last id that
  // arrived: the server sends one room's messages in order.
  const shownIds = new Set();
  let lastId = chat.dataset.newestId || "0";

  let socket = null;
  let attempts = 0;
  let openedAt = 0;
  let reconnectTimer = null;
  let countdownTimer = null;
  let retrySendTimer = null;
  // One outbox item at a time is on the wire: the server answers each frame in order, so an error reply
  // belongs to the item in flight, and an item refused as too fast is sent again without reordering.
  let inFlight = null;
  let outbox = loadOutbox();

  // -- storage (localStorage can be full, disabled or throw in private windows: the page works without) --

  function storageGet(key) {
    try {
      return window.localStorage.getItem(key);
    } catch (err) {
      return null;
    }
  }

  function storageSet(key, value) {
    try {
      if (value === null) window.localStorage.removeItem(key);
      else window.localStorage.setItem(key, value);
    } catch (err) {
      /* not persisted; the in-memory copy still works until the page closes */
    }
  }

  function loadOutbox() {
    try {
      const items = JSON.parse(storageGet(OUTBOX_KEY) || "[]");
      return Array.isArray(items)
        ? items.filter((i) => i && typeof i.client_id === "string" && typeof i.message === "string")
        : [];
    } catch (err) {
      return [];
    }
  }

  function saveOutbox() {
    storageSet(OUTBOX_KEY, outbox.length ? JSON.stringify(outbox) : null);
  }

  function newClientId() {
    if (window.crypto && typeof window.crypto.randomUUID === "function") return window.crypto.randomUUID();
    // randomUUID exists only on https and localhost; getRandomValues works on plain http too.
    const bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
    return [hex.slice(0, 8), hex.slice(8, 12), hex.slice(12, 16), hex.slice(16, 20), hex.slice(20)].join("-");
  }

  // -- rendering ------------------------------------------------------------------------------------

  const timeOnly = new Intl.DateTimeFormat(undefined, { hour: "numeric", minute: "2-digit" });
  const dayAndTime = new Intl.DateTimeFormat(undefined, {
    weekday: "short", day: "numeric", month: "short", hour: "numeric", minute: "2-digit",
  });
  const fullDate = new Intl.DateTimeFormat(undefined, { dateStyle: "full", timeStyle: "medium" });

  function localTime(timeEl) {
    const when = new Date(timeEl.getAttribute("datetime"));
    if (Number.isNaN(when.getTime())) return;
    const today = new Date();
    const sameDay = when.toDateString() === today.toDateString();
    timeEl.textContent = sameDay ? timeOnly.format(when) : dayAndTime.format(when);
    timeEl.title = fullDate.format(when);
  }

  function handleHue(handle) {
    let hash = 0;
    for (const ch of handle) hash = (hash * 31 + ch.codePointAt(0)) >>> 0;
    return hash % 360;
  }

  // A message that follows one by the same handle within a few minutes drops its header, as chat apps do.
  function groupWithPrevious(item) {
    const prev = item.previousElementSibling;
    if (!prev) return;
    const sameHandle = prev.dataset.handle === item.dataset.handle;
    const gap = Date.parse(item.dataset.time) - Date.parse(prev.dataset.time);
    item.classList.toggle("cont", sameHandle && gap >= 0 && gap < GROUP_WITHIN_MS);
  }

  function decorate(item) {
    const handleEl = item.querySelector(".handle");
    const timeEl = item.querySelector("time");
    item.dataset.handle = handleEl.textContent;
    item.dataset.time = timeEl.getAttribute("datetime");
    item.style.setProperty("--hue", String(handleHue(handleEl.textContent)));
    localTime(timeEl);
    groupWithPrevious(item);
  }

  function messageItem(msg, className) {
    const item = document.createElement("li");
    item.className = className;
    const meta = document.createElement("div");
    meta.className = "meta";
    const handleEl = document.createElement("span");
    handleEl.className = "handle";
    handleEl.textContent = msg.handle;
    const timeEl = document.createElement("time");
    timeEl.setAttribute("datetime", msg.timestamp);
    timeEl.textContent = msg.timestamp;
    meta.append(handleEl, " ", timeEl);
    const text = document.createElement("div");
    text.className = "text";
    text.textContent = msg.message;
    item.append(meta, text);
    return item;
  }

  function nearBottom() {
    return log.scrollHeight - log.scrollTop - log.clientHeight < NEAR_BOTTOM_PX;
  }

  function scrollToNewest() {
    log.scrollTop = log.scrollHeight;
    jumpButton.hidden = true;
  }

  // Keep the reader where they are if they scrolled up to read; otherwise follow the conversation.
  function withScroll(change) {
    const follow = nearBottom();
    change();
    if (follow) scrollToNewest();
    else jumpButton.hidden = false;
  }

  function showMessage(msg) {
    if (shownIds.has(msg.id)) return;
    shownIds.add(msg.id);
    lastId = msg.id;
    const item = messageItem(msg, "msg");
    item.dataset.id = msg.id;
    withScroll(() => {
      chat.append(item);
      decorate(item);
      emptyNote.hidden = true;
    });
  }

  function renderOutbox() {
    withScroll(() => {
      outboxList.replaceChildren(
        ...outbox.map((entry) => {
          const item = messageItem(
            { handle: entry.handle, message: entry.message, timestamp: entry.created },
            "msg pending",
          );
          item.dataset.clientId = entry.client_id;
          localTime(item.querySelector("time"));
          const state = document.createElement("span");
          state.className = "pending-state";
          state.textContent = entry === inFlight ? "sending…" : "waiting to send";
          item.querySelector(".meta").append(" ", state);
          return item;
        }),
      );
    });
  }

  function showFormError(text) {
    formError.textContent = text;
    formError.hidden = !text;
  }

  // -- connection state -----------------------------------------------------------------------------

  function setStatus(state, text, detail) {
    statusBox.dataset.state = state;
    if (statusText.textContent !== text) statusText.textContent = text;
    statusDetail.textContent = detail || "";
  }

  function connect() {
    clearTimeout(reconnectTimer);
    clearInterval(countdownTimer);
    reconnectTimer = countdownTimer = null;
    if (socket) return;
    setStatus(attempts ? "reconnecting" : "connecting", attempts ? "Reconnecting…" : "Connecting…");
    const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
    const url = scheme + "//" + window.location.host + "/chat/" + encodeURIComponent(room) +
      "/?since=" + encodeURIComponent(lastId);
    const ws = new WebSocket(url);
    socket = ws;
    const giveUp = setTimeout(() => ws.close(), CONNECT_TIMEOUT_MS);
    ws.addEventListener("open", () => {
      clearTimeout(giveUp);
      openedAt = Date.now();
      setStatus("live", "Live");
      sendNext();
    });
    ws.addEventListener("message", (event) => receive(event.data));
    ws.addEventListener("close", () => {
      clearTimeout(giveUp);
      if (socket !== ws) return;
      socket = null;
      inFlight = null;
      clearTimeout(retrySendTimer);
      if (openedAt && Date.now() - openedAt > HEALTHY_AFTER_MS) attempts = 0;
      openedAt = 0;
      renderOutbox();
      scheduleReconnect();
    });
  }

  // Exponential backoff with jitter, so a restarted server is not hit by every reader at the same instant.
  // navigator.onLine only hints (it can say "offline" on a machine that reaches this server over loopback),
  // so it changes the words shown, never whether to try.
  function scheduleReconnect() {
    const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** attempts);
    const delay = ceiling / 2 + Math.random() * (ceiling / 2);
    attempts += 1;
    const due = Date.now() + delay;
    const tick = () => {
      const seconds = Math.max(1, Math.ceil((due - Date.now()) / 1000));
      if (navigator.onLine === false) setStatus("offline", "Offline", " · retrying in " + seconds + "s");
      else setStatus("reconnecting", "Reconnecting", " in " + seconds + "s");
    };
    tick();
    countdownTimer = setInterval(tick, 1000);
    reconnectTimer = setTimeout(connect, delay);
  }

  function reconnectNow() {
    if (!socket) connect();
  }

  // -- receiving ------------------------------------------------------------------------------------

  function receive(data) {
    let msg;
    try {
      msg = JSON.parse(data);
    } catch (err) {
      return;
    }
    if (!msg || typeof msg !== "object") return;
    if (msg.type === "gap") {
      // After a gap the server may start again from a store that was reset, reusing ids: only what
      // arrives from here on says which ids exist.
      shownIds.clear();
      gapNotice.hidden = false;
    } else if (msg.type === "error") {
      receiveError(msg);
    } else if (typeof msg.id === "string" && typeof msg.message === "string") {
      if (typeof msg.client_id === "string") acknowledge(msg.client_id);
      showMessage(msg);
    }
  }

  function acknowledge(clientId) {
    const index = outbox.findIndex((entry) => entry.client_id === clientId);
    if (index === -1) return;
    const wasInFlight = outbox[index] === inFlight;
    outbox.splice(index, 1);
    saveOutbox();
    if (wasInFlight) {
      inFlight = null;
      showFormError("");
      sendNext();
    }
    renderOutbox();
  }

  function receiveError(msg) {
    const entry = inFlight;
    inFlight = null;
    const reason = typeof msg.error === "string" ? msg.error : "the server refused this message";
    if (msg.code === "rate_limited" || msg.code === "unavailable") {
      // Not stored: keep it and try again shortly.
      showFormError(
        msg.code === "rate_limited" ? "Sending too fast — retrying in a moment." :
          "The server could not store your message — retrying in a moment.",
      );
      retrySendTimer = setTimeout(sendNext, RETRY_SEND_MS);
    } else if (entry) {
      // The server will never accept this one as it is: take it out and hand the text back for editing.
      outbox = outbox.filter((e) => e !== entry);
      saveOutbox();
      if (!messageInput.value) messageInput.value = entry.message;
      showFormError("Not sent: " + reason);
      sendNext();
    } else {
      showFormError(reason);
    }
    renderOutbox();
  }

  // -- sending --------------------------------------------------------------------------------------

  function sendNext() {
    clearTimeout(retrySendTimer);
    if (inFlight || !socket || socket.readyState !== WebSocket.OPEN || !outbox.length) return;
    inFlight = outbox[0];
    socket.send(JSON.stringify({ handle: inFlight.handle, message: inFlight.message, client_id: inFlight.client_id }));
    renderOutbox();
  }

  function validationError(handle, message) {
    if (!handle.trim()) return [handleInput, "Choose a name first."];
    if (/[\u0000-\u001f\u007f-\u009f]/.test(handle)) return [handleInput, "A name cannot contain control characters."];
    if (!message.trim()) return [messageInput, "Type a message first."];
    return null;
  }

  function submit() {
    const handle = handleInput.value.trim();
    const message = messageInput.value;
    const problem = validationError(handle, message);
    if (problem) {
      showFormError(problem[1]);
      problem[0].focus();
      return;
    }
    showFormError("");
    handleInput.value = handle;
    storageSet(HANDLE_KEY, handle);
    outbox.push({ client_id: newClientId(), handle, message, created: new Date().toISOString() });
    saveOutbox();
    messageInput.value = "";
    fitMessageInput();
    renderOutbox();
    scrollToNewest();
    sendNext();
  }

  function fitMessageInput() {
    messageInput.style.height = "auto";
    messageInput.style.height = messageInput.scrollHeight + "px";
  }

  // -- wiring ---------------------------------------------------------------------------------------

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    submit();
  });
  messageInput.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      submit();
    }
  });
  messageInput.addEventListener("input", fitMessageInput);
  handleInput.addEventListener("input", () => {
    if (handleInput.value.trim()) storageSet(HANDLE_KEY, handleInput.value.trim());
  });
  handleInput.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.isComposing) {
      event.preventDefault();
      messageInput.focus();
    }
  });
  // Keep the focus (and a phone's keyboard) in the message field when Send is tapped.
  document.getElementById("send").addEventListener("mousedown", (event) => event.preventDefault());
  log.addEventListener("scroll", () => {
    if (nearBottom()) jumpButton.hidden = true;
  });
  jumpButton.addEventListener("click", scrollToNewest);
  document.getElementById("gap-dismiss").addEventListener("click", () => {
    gapNotice.hidden = true;
  });
  // Back on the network, or back to a tab the phone had put to sleep: try now rather than wait out the backoff.
  window.addEventListener("online", reconnectNow);
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") reconnectNow();
  });
  if (navigator.clipboard && window.isSecureContext) {
    copyButton.hidden = false;
    copyButton.addEventListener("click", () => {
      navigator.clipboard.writeText(window.location.href).then(() => {
        copyButton.textContent = "Copied";
        setTimeout(() => { copyButton.textContent = "Copy link"; }, 1500);
      });
    });
  }

  for (const item of chat.children) {
    shownIds.add(item.dataset.id);
    decorate(item);
  }
  handleInput.value = handleInput.value || storageGet(HANDLE_KEY) || "";
  renderOutbox();
  scrollToNewest();
  if (!handleInput.value) handleInput.focus();
  else if (window.matchMedia("(pointer: fine)").matches) messageInput.focus();
  connect();
})();
