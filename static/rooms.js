// The room page's live client: one WebSocket to /chat/<room>/ (room/connection.js), the outbox that keeps what
// the reader sent until the server echoes it back (room/outbox.js), the form (room/composer.js), the log and
// header (room/view.js), who is here and who is typing (room/presence.js, room/typing.js), older messages
// (room/scrollback.js), and what tells the reader of new ones: the tab's title (room/unread.js), mentions
// (room/mentions.js, room/alerts.js) and screen readers (room/announcer.js). This module only wires them
// together and reads the server's frames.
import "./room/access.js"; // first: takes ?token= and ?invite= out of the address bar, kept for the tab
import { MentionAlerts } from "./room/alerts.js";
import { Announcer } from "./room/announcer.js";
import { Composer } from "./room/composer.js";
import { Connection } from "./room/connection.js";
import { mentionPattern, mentions } from "./room/mentions.js";
import { Outbox } from "./room/outbox.js";
import { isolated, Presence } from "./room/presence.js";
import { Scrollback } from "./room/scrollback.js";
import { TypingLine, TypingTeller } from "./room/typing.js";
import { UnreadTitle } from "./room/unread.js";
import { View } from "./room/view.js";

const chat = document.getElementById("chat");
const room = chat.dataset.room;
const view = new View();
const unread = new UnreadTitle();
const announcer = new Announcer(document.getElementById("announcer"));
const alerts = new MentionAlerts(document.getElementById("notify-mentions"), room);
const connection = new Connection(room, () => view.lastId, {
  status: (state, seconds) => view.showConnection(state, seconds),
  open: connected,
  message: receive,
  close: disconnected,
});
const outbox = new Outbox(
  room,
  (frame) => connection.send(frame),
  (items, inFlight) => view.showOutbox(items, inFlight),
);
const composer = new Composer(document.getElementById("chatform"), {
  send: (handle, message) => {
    announce(handle);
    outbox.add(handle, message);
    view.scrollToNewest();
  },
  handleChanged: (handle) => {
    announce(handle);
    view.highlightMentions(mentionPattern(handle));
    presence.render();
    typingLine.render();
  },
  typing: () => typingTeller.typed(composer.handle),
});

// The handle announced on the current socket, and every handle this page has announced: a reader who
// renames themselves does not see their old name "leave" and their new one "join".
let announced = "";
const announcedHandles = new Set();
const isReader = (handle) => handle.normalize("NFC") === composer.handle.normalize("NFC");
const presence = new Presence(
  (handle) => isReader(handle) || announcedHandles.has(handle),
  (handle, change) => {
    view.showNote(isolated(handle), " " + change);
    if (change === "left") typingLine.stopped(handle);
  },
);
const typingTeller = new TypingTeller((frame) => connection.send(frame));
const typingLine = new TypingLine(document.getElementById("typing"), isReader);

function announce(handle) {
  if (!handle || handle === announced) return;
  if (connection.send({ type: "hello", handle })) {
    announced = handle;
    announcedHandles.add(handle.normalize("NFC"));
  }
}

function connected() {
  presence.connected();
  typingTeller.reset();
  announced = "";
  announce(composer.handle);
  outbox.sendNext();
}

function disconnected() {
  outbox.connectionLost();
  presence.disconnected();
  typingLine.clear();
}

function receive(frame) {
  if (frame.type === "gap") {
    view.showGap();
  } else if (frame.type === "error") {
    refused(frame);
  } else if (frame.type === "presence") {
    presence.receive(frame);
  } else if (frame.type === "typing") {
    typingLine.receive(frame);
  } else if (frame.type === "delete") {
    if (typeof frame.id === "string") view.removeMessage(frame.id);
  } else if (typeof frame.id === "string" && typeof frame.message === "string" && typeof frame.handle === "string") {
    received(frame);
  }
}

function received(msg) {
  const sentHere = typeof msg.client_id === "string" && outbox.has(msg.client_id);
  if (sentHere && outbox.acknowledge(msg.client_id)) composer.showError("");
  if (!view.showMessage(msg)) return;
  typingLine.stopped(msg.handle);
  if (sentHere || isReader(msg.handle)) return;
  unread.arrived();
  announcer.message(msg.handle, msg.message);
  if (mentions(mentionPattern(composer.handle), msg.message)) alerts.mentioned(msg);
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

// Mentions in the history the server rendered, older messages on the way up, what an earlier visit left
// unsent, then the newest messages in view.
view.highlightMentions(mentionPattern(composer.handle));
new Scrollback(room, view, chat.dataset.hasMore === "true");
outbox.notify();
view.scrollToNewest();
composer.focus();
connection.start();
