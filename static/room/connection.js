// The room's WebSocket, opened again after every drop and resumed with ?since=<last id seen>, so the server
// sends what the page missed. It reports frames and its state; it knows nothing of the page.
import { accessQuery } from "./access.js";

const BACKOFF_FIRST_MS = 1000;
const BACKOFF_MAX_MS = 30000;
// A connection that stayed up this long was healthy: the next drop starts the backoff afresh. A server
// that accepts and at once closes (storage down) keeps backing off instead of being hammered.
const HEALTHY_AFTER_MS = 10000;
// A handshake into a network black hole can hang for minutes before the browser gives up on it.
const CONNECT_TIMEOUT_MS = 10000;
// A server stopping closes its sockets with 1001, and a restarted one listens again within seconds: for this
// long after that close every wait is the first one's (0.5-1 s), and the backoff starts only after it. A
// refused try costs the server nothing, and the jitter still spreads a big room's return. One such window
// per healthy connection, so a server that keeps closing with 1001 is backed off from like any other.
const GOING_AWAY = 1001;
const RESTART_WINDOW_MS = 20000;
// The frames beyond messages this page understands (docs/protocol.md, "Frames from the server"): a socket
// that does not ask gets messages only, and a server that does not know a name ignores it.
const FEATURES = "presence,typing,deletes,edits,reactions";

export class Connection {
  // since() is the last id seen, read at each connect. The handlers in `on`:
  //   status(state, seconds): "connecting", "reconnecting" (trying again now), "live",
  //     or "waiting" with the seconds left until the next try;
  //   open(); message(frame), each frame a parsed JSON object; close(), once per socket that was opened or tried.
  constructor(room, since, on) {
    this.room = room;
    this.since = since;
    this.on = on;
    this.socket = null;
    this.attempts = 0; // tries since the last healthy connection
    this.backoffSteps = 0; // of those, the ones that doubled the wait
    this.restartWindowEnds = 0; // while Date.now() is before it, waits stay short; 0: none since healthy
    this.openedAt = 0;
    this.reconnectTimer = null;
    this.countdownTimer = null;
  }

  get isOpen() {
    return this.socket !== null && this.socket.readyState === WebSocket.OPEN;
  }

  // Sends one frame; false when no socket is open.
  send(frame) {
    if (!this.isOpen) return false;
    this.socket.send(JSON.stringify(frame));
    return true;
  }

  start() {
    clearTimeout(this.reconnectTimer);
    clearInterval(this.countdownTimer);
    this.reconnectTimer = this.countdownTimer = null;
    if (this.socket) return;
    this.on.status(this.attempts ? "reconnecting" : "connecting");
    const ws = new WebSocket(this.url() + accessQuery()); // the tab's token and invite, if any
    this.socket = ws;
    const giveUp = setTimeout(() => ws.close(), CONNECT_TIMEOUT_MS);
    ws.addEventListener("open", () => {
      clearTimeout(giveUp);
      this.openedAt = Date.now();
      this.on.status("live");
      this.on.open();
    });
    ws.addEventListener("message", (event) => {
      const frame = parse(event.data);
      if (frame) this.on.message(frame);
    });
    ws.addEventListener("close", (event) => {
      clearTimeout(giveUp);
      if (this.socket !== ws) return;
      this.socket = null;
      if (this.openedAt && Date.now() - this.openedAt > HEALTHY_AFTER_MS) {
        this.attempts = this.backoffSteps = this.restartWindowEnds = 0;
      }
      if (event.code === GOING_AWAY && !this.restartWindowEnds) this.restartWindowEnds = Date.now() + RESTART_WINDOW_MS;
      this.openedAt = 0;
      this.on.close();
      this.scheduleReconnect();
    });
  }

  // Skips the rest of the backoff wait, if one is running.
  reconnectNow() {
    if (!this.socket) this.start();
  }

  url() {
    const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
    return scheme + "//" + window.location.host + "/chat/" + encodeURIComponent(this.room) +
      "/?features=" + FEATURES + "&since=" + encodeURIComponent(this.since());
  }

  // Exponential backoff with jitter, so a restarted server is not hit by every reader at the same instant;
  // within a restart's window, the first wait again and again.
  scheduleReconnect() {
    const restarting = Date.now() < this.restartWindowEnds;
    const steps = restarting ? 0 : this.backoffSteps;
    const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** steps);
    const delay = ceiling / 2 + Math.random() * (ceiling / 2);
    this.attempts += 1;
    if (!restarting) this.backoffSteps += 1;
    const due = Date.now() + delay;
    const tick = () => this.on.status("waiting", Math.max(1, Math.ceil((due - Date.now()) / 1000)));
    tick();
    this.countdownTimer = setInterval(tick, 1000);
    this.reconnectTimer = setTimeout(() => this.start(), delay);
  }
}

function parse(data) {
  try {
    const frame = JSON.parse(data);
    return frame && typeof frame === "object" ? frame : null;
  } catch (err) {
    return null;
  }
}
