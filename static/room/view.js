// The room page's log and header: the messages, the outbox's items under them, following new messages
// (or not, for a reader who scrolled up), the connection status, the gap notice and the copy-link button.
import { decorate, localTime, messageItem } from "./message.js";

const NEAR_BOTTOM_PX = 80;
const STATUS_TEXT = { connecting: "Connecting…", reconnecting: "Reconnecting…", live: "Live" };

export class View {
  constructor() {
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
    // Ids are opaque, so "have I shown this?" is a set lookup, and "where do I resume?" is the last id that
    // arrived: the server sends one room's messages in order.
    this.shownIds = new Set();
    this.lastId = this.chat.dataset.newestId || "0";

    for (const item of this.chat.children) {
      this.shownIds.add(item.dataset.id);
      decorate(item);
    }
    this.log.addEventListener("scroll", () => {
      if (this.nearBottom()) this.jumpButton.hidden = true;
    });
    this.jumpButton.addEventListener("click", () => this.scrollToNewest());
    document.getElementById("gap-dismiss").addEventListener("click", () => {
      this.gapNotice.hidden = true;
    });
    offerCopyLink(document.getElementById("copy-link"));
  }

  // Shows a message from the socket, once however often it arrives.
  showMessage(msg) {
    if (this.shownIds.has(msg.id)) return;
    this.shownIds.add(msg.id);
    this.lastId = msg.id;
    const item = messageItem(this.template, msg);
    this.withScroll(() => {
      this.chat.append(item);
      decorate(item);
      this.emptyNote.hidden = true;
    });
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
