// The room page's live client: one WebSocket to /chat/<room>/ (room/connection.js), the outbox that keeps what
// the reader sent until the server echoes it back (room/outbox.js), the form (room/composer.js), the log and
// header (room/view.js), who is here and who is typing (room/presence.js, room/typing.js), older messages
// (room/scrollback.js), and what tells the reader of new ones: the tab's title (room/unread.js), the "New" line
// in the log (room/new-divider.js), mentions (room/mentions.js, room/alerts.js) and screen readers
// (room/announcer.js); and, for a moderator, the header's "Moderate" panel (room/moderation.js, with the token
// and API in room/moderator.js) and each message's Delete and Ban (room/message-tools.js). This module only
// wires them together and reads the server's frames.
import "./room/access.js"; // first: takes ?token= and ?invite= out of the address bar, kept for the tab
import { MentionAlerts } from "./room/alerts.js";
import { Announcer } from "./room/announcer.js";
import { deleteMessage, editMessage } from "./room/changes-api.js";
import { Composer } from "./room/composer.js";
import { Connection } from "./room/connection.js";
import { sourceOf } from "./room/format.js";
import { RoomLock } from "./room/lock.js";
import { messagesByKeyboard } from "./room/log-keys.js";
import { mentionPattern, mentions } from "./room/mentions.js";
import { MessageActions } from "./room/message-actions.js";
import { MessageTools } from "./room/message-tools.js";
import { NewDivider } from "./room/new-divider.js";
import { ModerationNote, ModerationPanel } from "./room/moderation.js";
import { Moderator } from "./room/moderator.js";
import { Outbox } from "./room/outbox.js";
import { OwnMessages } from "./room/own-messages.js";
import { isolated, Presence } from "./room/presence.js";
import { OwnReactions } from "./room/reactions.js";
import { excerpt } from "./room/reply.js";
import { Scrollback } from "./room/scrollback.js";
import { Search } from "./room/search.js";
import { TypingLine, TypingTeller } from "./room/typing.js";
import { UnreadTitle } from "./room/unread.js";
import { View } from "./room/view.js";

const chat = document.getElementById("chat");
const room = chat.dataset.room;
const ownMessages = new OwnMessages(room);
const ownReactions = new OwnReactions(room);
const view = new View((id, emoji) => ownReactions.has(id, emoji));
const unread = new UnreadTitle();
const newDivider = new NewDivider(room, chat);
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
  (frame) => transmit(frame),
  (items, inFlight) => view.showOutbox(items, inFlight),
);
const moderator = new Moderator((note) => {
  moderationPanel.changed(note);
  messageTools.changed();
});
const moderationNote = new ModerationNote();
const lock = new RoomLock(room, () => moderationPanel.render());
const moderationPanel = new ModerationPanel(room, moderator, lock, moderationNote);
const messageTools = new MessageTools(room, chat, moderator, {
  deleted: (id) => view.removeMessage(id),
  banned: () => moderationPanel.banned(),
  note: (text) => moderationNote.show(text),
});
const messageActions = new MessageActions(chat, (id) => ownMessages.has(id), {
  reply: (item) => composer.startReply(item.dataset.id,
    "Replying to " + (item.dataset.handle || "") + ": " + excerpt(item.querySelector(".text").textContent)),
  edit: (item) => startEdit(item),
  remove: (item) => removeOwn(item.dataset.id),
  react: (item, emoji) => react(item.dataset.id, emoji, !ownReactions.has(item.dataset.id, emoji)),
});
view.added = (item) => {
  messageTools.attach(item);
  messageActions.attach(item);
};
for (const item of chat.querySelectorAll(":scope > li[data-id]")) messageActions.attach(item);
const composer = new Composer(document.getElementById("chatform"), {
  send: (handle, message, replyTo) => {
    announce(handle);
    outbox.add(handle, message, replyTo);
    view.scrollToNewest();
  },
  edit: (id, message) => edit(id, message),
  editLast: () => {
    const own = [...chat.querySelectorAll(":scope > li[data-id]")].filter((item) => ownMessages.has(item.dataset.id));
    if (own.length) startEdit(own[own.length - 1]);
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
  lock.refresh();
  // A moderator's token kept from before a reload that the server could not be asked about then.
  if (moderator.unchecked) moderator.resume();
}

function disconnected() {
  postedInFlight = null;
  // A reaction on its way may or may not have been counted: the frames of the next socket will say.
  if (reacting) clearTimeout(reacting.timer);
  reacting = null;
  outbox.connectionLost();
  presence.disconnected();
  typingLine.clear();
}

function receive(frame) {
  if (frame.type === "gap") {
    view.showGap();
  } else if (frame.type === "error") {
    // While a message is on its way by POST, an error on the socket is not its answer; while a reaction is
    // on its way (and no message: see transmit), it is the reaction's.
    if (reacting) reacted(frame);
    else if (postedInFlight) composer.showError(typeof frame.error === "string" ? frame.error : "The server refused a frame.");
    else refused(frame);
  } else if (frame.type === "presence") {
    presence.receive(frame);
  } else if (frame.type === "typing") {
    typingLine.receive(frame);
  } else if (frame.type === "delete") {
    view.changed(frame.at);
    if (typeof frame.id === "string") view.removeMessage(frame.id);
  } else if (frame.type === "edit") {
    view.changed(frame.at);
    if (typeof frame.id === "string" && typeof frame.message === "string") {
      view.showEdit(frame.id, frame.message, frame.edited);
    }
  } else if (frame.type === "reactions") {
    view.changed(frame.at);
    if (typeof frame.id === "string" && frame.reactions && typeof frame.reactions === "object") {
      view.showReactions(frame.id, frame.reactions);
    }
    if (reacting && reacting.id === frame.id) reacted(null);
  } else if (typeof frame.id === "string" && typeof frame.message === "string" && typeof frame.handle === "string") {
    received(frame);
  }
}

// The client_id of the outbox's item on its way by POST, or null. A moderator signed in with a typed token
// sends through the API with it as Authorization (the socket would need it in its address), so that the
// message is a moderator's; its answer, not the socket's next error frame, tells what became of it.
let postedInFlight = null;
const POST_REFUSALS = { 403: "forbidden", 429: "rate_limited" };

// What the outbox puts on the wire: false while no socket is open, as for a frame.
function transmit(frame) {
  if (!connection.isOpen || reacting) return false;
  if (!moderator.postsWithToken) return connection.send(frame);
  const clientId = frame.client_id;
  postedInFlight = clientId;
  moderator.request("POST", "/api/rooms/" + encodeURIComponent(room) + "/messages", frame).then(
    (msg) => {
      if (postedInFlight === clientId) postedInFlight = null;
      if (msg && typeof msg.id === "string" && typeof msg.handle === "string" && typeof msg.message === "string") {
        received(msg); // the socket's echo of it, whichever comes second, is shown once
      }
    },
    (err) => {
      if (postedInFlight !== clientId) return; // the socket dropped meanwhile: it is sent again on the next
      postedInFlight = null;
      if (err.status === 401) {
        // Signed out (the panel says so): the message goes again, by the socket, as anyone's.
        outbox.connectionLost();
        outbox.sendNext();
        return;
      }
      const code = POST_REFUSALS[err.status] || (err.status === 0 || err.status >= 500 ? "unavailable" : "refused");
      refused({ code, error: err.message });
    },
  );
  return true;
}

function received(msg) {
  const sentHere = typeof msg.client_id === "string" && outbox.has(msg.client_id);
  if (sentHere) ownMessages.add(msg.id); // before it is shown: its Edit and Delete come with it
  if (sentHere && outbox.acknowledge(msg.client_id)) composer.showError("");
  if (!view.showMessage(msg)) return;
  typingLine.stopped(msg.handle);
  newDivider.shown(msg.id, !sentHere && !isReader(msg.handle));
  if (sentHere || isReader(msg.handle)) return;
  unread.arrived();
  announcer.message(msg.handle, msg.message);
  if (mentions(mentionPattern(composer.handle), msg.message)) alerts.mentioned(msg);
}

// Editing and deleting the reader's own messages go through the API, whose answer is the request's own.
function startEdit(item) {
  composer.startEdit(item.dataset.id, sourceOf(item.querySelector(".text")), "Editing your message");
}

async function edit(id, message) {
  try {
    const msg = await editMessage(room, id, message);
    if (msg && typeof msg.message === "string") view.showEdit(id, msg.message, msg.edited);
    composer.leaveMode(true);
  } catch (err) {
    composer.showError("Not edited: " + err.message);
  }
}

async function removeOwn(id) {
  try {
    await deleteMessage(room, id);
  } catch (err) {
    if (err.status !== 404) {
      moderationNote.show("Not deleted: " + err.message, "problem");
      return;
    }
  }
  view.removeMessage(id);
}

// A reaction goes on the socket (the API has none), alone: while it waits for its answer no message is put
// on the wire, so that an error frame is known to be the reaction's. Its answer is the message's reactions
// frame, or an error; a reaction the server counted already may have none, so the wait is bounded.
const REACTION_WAIT_MS = 5000;
let reacting = null;

function react(id, emoji, on) {
  if (!composer.handle) {
    composer.showError("Choose a name first: a reaction is counted by name.");
    document.getElementById("handle").focus();
    return;
  }
  if (reacting || outbox.inFlight) {
    setTimeout(() => react(id, emoji, on), 300);
    return;
  }
  announce(composer.handle);
  if (!connection.send({ type: "react", id, emoji, on })) {
    composer.showError("Not connected: try the reaction again once the page is live.");
    return;
  }
  ownReactions.toggle(id, emoji, on);
  view.showReactions(id, JSON.parse(view.find(id)?.dataset.reactions || "{}"));
  reacting = { id, emoji, on, timer: setTimeout(() => reacted(null), REACTION_WAIT_MS) };
}

// The reaction's answer: null when it was taken, else the error frame.
function reacted(error) {
  const { id, emoji, on, timer } = reacting;
  clearTimeout(timer);
  reacting = null;
  if (error) {
    ownReactions.toggle(id, emoji, !on);
    view.showReactions(id, JSON.parse(view.find(id)?.dataset.reactions || "{}"));
    composer.showError("Reaction not taken: " + (typeof error.error === "string" ? error.error : "refused") + ".");
  }
  outbox.sendNext();
}

function openInLog(id) {
  return scrollback.loadUntil(id).then((shown) => shown && view.jumpTo(id));
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
    if (frame.code === "forbidden") lock.refresh(); // a lock, perhaps: the header says so
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
const scrollback = new Scrollback(room, view, chat.dataset.hasMore === "true");
new Search(room, openInLog);
messagesByKeyboard(view.log, chat);
chat.addEventListener("click", (event) => {
  const quote = event.target.closest(".reply-quote");
  if (quote) openInLog(quote.dataset.jump);
});
outbox.notify();
view.scrollToNewest();
newDivider.reveal(view.log);
composer.focus();
connection.start();
moderator.resume(); // a token kept for the tab, or the tab's sign-in token, may make the reader a moderator
