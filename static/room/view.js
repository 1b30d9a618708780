// The room page's log and header: the messages, the outbox's items under them, following new messages
// (or not, for a reader who scrolled up), older messages put above them without moving the reader, the
// joins and leaves between messages, mentions, the connection status, the gap notice and the copy-link
// button.
import { format } from "./format.js";
import { decorate, groupWithPrevious, localTime, messageItem, showEdited } from "./message.js";
import { markMention } from "./mentions.js";
import { showReactions } from "./reactions.js";
import { showReplyQuote } from "./reply.js";

const NEAR_BOTTOM_PX = 80;
// Joins and leaves kept after one message: a busy doorway should not push the conversation away.
const NOTES_PER_ITEM = 10;
const STATUS_TEXT = { connecting: "Connecting…", reconnecting: "Reconnecting…", live: "Live" };

export class View {
  // ownReaction(id, emoji): whether the reader added this reaction to the message of this id.
  constructor(ownReaction) {
    this.log = document.getElementById("log");
    this.chat = document.getElementById("chat");
    this.outboxList = document.getElementById("outbox");
    this.emptyNote = document.getElementById("empty");
    this.gapNotice = document.getElementById("gap-notice");
    this.jumpButton = document.getElementById("jump");
    this.statusBox = document.getElementById("status");
    this.statusText = document.getElementById("status-text");
    this.statusDetail = document.getElementById("status-detail");
    this.template = document.getElementById("message-template");
    // Where joins and leaves go while the room has no message to put them after.
    this.notesBefore = document.getElementById("notes-before");
    this.mentionPattern = null;
    // Ids are opaque, so "have I shown this?" is a set lookup, and "where do I resume?" is the last id that
    // arrived: the server sends one room's messages in order.
    this.shownIds = new Set();
    this.lastId = this.chat.dataset.newestId || "0";
    // Told of each message item put in the log after the history the server rendered (its buttons).
    this.added = () => {};
    this.ownReaction = ownReaction;

    for (const item of this.chat.children) {
      this.shownIds.add(item.dataset.id);
      decorate(item);
    }
    for (const item of this.chat.children) this.dress(item);
    this.log.addEventListener("scroll", () => {
      if (this.nearBottom()) this.jumpButton.hidden = true;
    });
    this.jumpButton.addEventListener("click", () => this.scrollToNewest());
    document.getElementById("gap-dismiss").addEventListener("click", () => {
      this.gapNotice.hidden = true;
    });
    offerCopyLink(document.getElementById("copy-link"));
  }

  // Shows a message from the socket, once however often it arrives; false when it was shown already.
  showMessage(msg) {
    if (this.shownIds.has(msg.id)) return false;
    this.shownIds.add(msg.id);
    this.lastId = msg.id;
    const item = messageItem(this.template, msg);
    this.withScroll(() => {
      this.chat.append(item);
      decorate(item);
      this.dress(item);
      markMention(item, this.mentionPattern);
      this.added(item);
      this.emptyNote.hidden = true;
    });
    return true;
  }

  // What changed a message, drawn from its data- attributes: "(edited)", the quote it answers, reactions.
  dress(item) {
    showEdited(item);
    showReplyQuote(item, (id) => this.find(id));
    showReactions(item, (emoji) => this.ownReaction(item.dataset.id, emoji));
  }

  // The item of the message of this id, if it is shown.
  find(id) {
    return this.chat.querySelector(`:scope > li[data-id="${CSS.escape(id)}"]`);
  }

  // A change frame arrived: where the socket resumes from now.
  changed(at) {
    if (typeof at === "string" && at) this.lastId = at;
  }

  // A message's new text (an edit frame, or the answer to the reader's own edit), with when it was edited.
  showEdit(id, text, edited) {
    const item = this.find(id);
    if (!item) return;
    format(item.querySelector(".text"), text);
    item.dataset.edited = edited || item.dataset.edited || new Date().toISOString();
    showEdited(item);
    markMention(item, this.mentionPattern);
    for (const reply of this.chat.querySelectorAll(`:scope > li[data-reply-to="${CSS.escape(id)}"]`)) {
      showReplyQuote(reply, (answered) => this.find(answered));
    }
  }

  showReactions(id, counts) {
    const item = this.find(id);
    if (!item) return;
    item.dataset.reactions = JSON.stringify(counts);
    showReactions(item, (emoji) => this.ownReaction(id, emoji));
  }

  // Scrolls to a shown message and marks it for a moment; the keyboard's focus goes there too.
  jumpTo(id) {
    const item = this.find(id);
    if (!item) return false;
    item.tabIndex = -1;
    item.focus({ preventScroll: true });
    item.scrollIntoView({ block: "center" });
    item.classList.remove("flash");
    void item.offsetWidth; // starts the highlight again when it is already on
    item.classList.add("flash");
    return true;
  }

  // The id of the oldest message shown, or null.
  get oldestId() {
    const item = this.chat.querySelector(":scope > li[data-id]:not([data-id=''])");
    return item ? item.dataset.id : null;
  }

  // Older messages (oldest first) above those shown. Does not touch lastId: that is where the socket resumes.
  showOlder(messages) {
    const items = [];
    for (const msg of messages) {
      if (this.shownIds.has(msg.id)) continue;
      this.shownIds.add(msg.id);
      items.push(messageItem(this.template, msg));
    }
    const formerFirst = this.chat.firstElementChild;
    this.chat.prepend(...items);
    for (const item of items) {
      decorate(item);
      this.dress(item);
      markMention(item, this.mentionPattern);
      this.added(item);
    }
    if (formerFirst) groupWithPrevious(formerFirst);
    if (items.length) this.emptyNote.hidden = true;
  }

  // Runs change(), which adds content above what the reader is looking at, and scrolls by as much as the
  // first message on screen moved, so that it stays where it was. Its text is what is held still: a message
  // that now follows one by the same person loses its header, which must not move the words being read.
  keepingPlace(change) {
    const anchor = this.firstOnScreen();
    const before = anchor ? anchor.getBoundingClientRect().top : 0;
    const top = this.log.scrollTop;
    const height = this.log.scrollHeight;
    change();
    if (anchor && anchor.isConnected) this.log.scrollTop += anchor.getBoundingClientRect().top - before;
    else this.log.scrollTop = top + (this.log.scrollHeight - height);
  }

  // The text of the first message at least partly in view, or null.
  firstOnScreen() {
    const logTop = this.log.getBoundingClientRect().top;
    for (const item of this.chat.querySelectorAll(":scope > li")) {
      if (item.getBoundingClientRect().bottom > logTop) return item.querySelector(".text");
    }
    return null;
  }

  // A moderator deleted a message (from the socket's delete frame, or this page's own Delete), live or in the
  // history the server rendered. Its id stays known, so a replay cannot bring it back.
  removeMessage(id) {
    this.shownIds.add(id);
    const item = this.find(id);
    if (!item) return;
    const prev = item.previousElementSibling;
    const next = item.nextElementSibling;
    item.remove();
    // Notes that now follow no message, or follow other notes, join the group before them.
    if (next && next.classList.contains("notes")) {
      const into = !prev ? this.notesBefore : prev.classList.contains("notes") ? prev : null;
      if (into) {
        into.append(...next.children);
        next.remove();
      }
    }
    for (const reply of this.chat.querySelectorAll(`:scope > li[data-reply-to="${CSS.escape(id)}"]`)) {
      showReplyQuote(reply, (answered) => this.find(answered));
    }
    const after = prev ? prev.nextElementSibling : this.chat.firstElementChild;
    if (after) groupWithPrevious(after);
    if (!this.chat.querySelector(":scope > li") && !this.notesBefore.childElementCount) this.emptyNote.hidden = false;
  }

  // A join or leave: a small line after the newest message (nodes are its parts), in a group of notes of
  // its own between messages, never inside a message's item, whose mention highlight is not the note's. The
  // group is a <div>, so that the list's items are the messages alone. Not a message: lastId, unread counts
  // and the outbox never hear of it.
  showNote(...nodes) {
    let notes = this.notesBefore;
    if (this.chat.querySelector(":scope > li")) {
      notes = this.chat.lastElementChild;
      if (!notes.classList.contains("notes")) {
        notes = document.createElement("div");
        notes.className = "notes";
        this.chat.append(notes);
      }
    }
    const note = document.createElement("p");
    note.className = "note";
    note.append(...nodes);
    // Followed like a message, but no "New messages" button for a reader who scrolled up: it is not one.
    const follow = this.nearBottom();
    notes.append(note);
    while (notes.childElementCount > NOTES_PER_ITEM) notes.firstElementChild.remove();
    if (follow) this.scrollToNewest();
  }

  // The reader's handle changed (pattern: mentions.js's test for it): every message is looked at again.
  highlightMentions(pattern) {
    this.mentionPattern = pattern;
    for (const item of this.chat.querySelectorAll(":scope > li")) markMention(item, pattern);
  }

  // After a gap the server may start again from a store that was reset, reusing ids: only what arrives from
  // here on says which ids exist.
  showGap() {
    this.shownIds.clear();
    this.gapNotice.hidden = false;
  }

  showOutbox(items, inFlight) {
    this.withScroll(() => {
      this.outboxList.replaceChildren(
        ...items.map((entry) => {
          const item = messageItem(this.template, {
            handle: entry.handle, message: entry.message, timestamp: entry.created,
          });
          item.classList.add("pending");
          format(item.querySelector(".text"), entry.message);
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

  // state and seconds as Connection reports them.
  showConnection(state, seconds) {
    if (state !== "waiting") {
      this.setStatus(state, STATUS_TEXT[state]);
    } else if (navigator.onLine === false) {
      // navigator.onLine only hints (it can say "offline" on a machine that reaches this server over
      // loopback), so it changes the words shown, never whether to try.
      this.setStatus("offline", "Offline", " · retrying in " + seconds + "s");
    } else {
      this.setStatus("reconnecting", "Reconnecting", " in " + seconds + "s");
    }
  }

  setStatus(state, text, detail) {
    this.statusBox.dataset.state = state;
    // Only real changes, so that the polite live region is not re-announced every second of a countdown.
    if (this.statusText.textContent !== text) this.statusText.textContent = text;
    this.statusDetail.textContent = detail || "";
  }

  nearBottom() {
    return this.log.scrollHeight - this.log.scrollTop - this.log.clientHeight < NEAR_BOTTOM_PX;
  }

  scrollToNewest() {
    this.log.scrollTop = this.log.scrollHeight;
    this.jumpButton.hidden = true;
  }

  // Keep the reader where they are if they scrolled up to read; otherwise follow the conversation.
  withScroll(change) {
    const follow = this.nearBottom();
    change();
    if (follow) this.scrollToNewest();
    else this.jumpButton.hidden = false;
  }
}

function offerCopyLink(button) {
  if (!navigator.clipboard || !window.isSecureContext) return;
  button.hidden = false;
  button.addEventListener("click", () => {
    navigator.clipboard.writeText(window.location.href).then(() => {
      button.textContent = "Copied";
      setTimeout(() => { button.textContent = "Copy link"; }, 1500);
    });
  });
}
