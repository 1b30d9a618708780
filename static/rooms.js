// The room page's live client: one WebSocket to /chat/<room>/ (room/connection.js), the outbox that keeps what
// the reader sent until the server echoes it back (room/outbox.js), the form (room/composer.js) and the log and
// header (room/view.js). This module only wires them together and reads the server's frames.
import "./room/access.js"; // first: takes ?token= and ?invite= out of the address bar, kept for the tab
import { Composer } from "./room/composer.js";
import { Connection } from "./room/connection.js";
import { Outbox } from "./room/outbox.js";
import { View } from "./room/view.js";

const room = document.getElementById("chat").dataset.room;
const view = new View();
const connection = new Connection(room, () => view.lastId, {
  status: (state, seconds) => view.showConnection(state, seconds),
  open: () => outbox.sendNext(),
  message: receive,
  close: () => outbox.connectionLost(),
});
const outbox = new Outbox(
  room,
  (frame) => connection.send(frame),
  (items, inFlight) => view.showOutbox(items, inFlight),
);
const composer = new Composer(document.getElementById("chatform"), (handle, message) => {
  outbox.add(handle, message);
  view.scrollToNewest();
});

function receive(frame) {
  if (frame.type === "gap") {
    view.showGap();
  } else if (frame.type === "error") {
    refused(frame);
  } else if (typeof frame.id === "string" && typeof frame.message === "string") {
    if (typeof frame.client_id === "string" && outbox.acknowledge(frame.client_id)) composer.showError("");
    view.showMessage(frame);
  }
}

function refused(frame) {
  const reason = typeof frame.error === "string" ? frame.error : "the server refused this message";
  const { retrying, dropped } = outbox.refused(frame.code);
  if (retrying) {
    composer.showError(
      frame.code === "rate_limited" ? "Sending too fast — retrying in a moment." :
        "The server could not store your message — retrying in a moment.",
    );
  } else if (dropped) {
    composer.giveBack(dropped.message);
    composer.showError("Not sent: " + reason);
  } else {
    composer.showError(reason);
  }
}

// Back on the network, or back to a tab the phone had put to sleep: try now rather than wait out the backoff.
window.addEventListener("online", () => connection.reconnectNow());
document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "visible") connection.reconnectNow();
});

// What an earlier visit left unsent, then the newest messages in view.
outbox.notify();
view.scrollToNewest();
composer.focus();
connection.start();
