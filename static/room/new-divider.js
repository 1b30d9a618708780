// The "New" line in the log: before the first message from others that arrived while the tab was hidden,
// or, on coming back to the room (a reload, a new tab), before the first message after the last one this
// browser had shown in it. There is one at most; it stays put while the reader reads, and moves when
// the tab is hidden and another message from others arrives.
import { groupWithPrevious } from "./message.js";
import * as storage from "./storage.js";

export class NewDivider {
  constructor(room, chat) {
    this.key = "rooms:seen:" + room;
    this.chat = chat;
    this.line = null;
    // The next message from others starts a new unread run: the tab is hidden and none came since.
    this.waiting = document.visibilityState === "hidden";
    const seen = storage.load(this.key);
    const seenItem = seen ? this.item(seen) : null;
    const firstNew = seenItem ? nextMessage(seenItem) : null;
    if (firstNew) this.place(firstNew);
    if (!this.waiting) this.seen();
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "hidden") this.waiting = true;
      else this.seen();
    });
  }

  // A message was put in the log; fromOthers: not the reader's own.
  shown(id, fromOthers) {
    if (document.visibilityState !== "hidden") {
      this.seen();
    } else if (fromOthers && this.waiting) {
      const item = this.item(id);
      if (item) this.place(item);
      this.waiting = false;
    }
  }

  // Shows the line, scrolled to the top of the log, when the reader would not see it from the newest message.
  reveal(log) {
    if (this.line && this.line.getBoundingClientRect().top < log.getBoundingClientRect().top) {
      this.line.scrollIntoView({ block: "start" });
    }
  }

  // Remembers the newest message shown as seen.
  seen() {
    const items = this.chat.querySelectorAll(":scope > li[data-id]");
    if (items.length) storage.save(this.key, items[items.length - 1].dataset.id);
  }

  item(id) {
    return this.chat.querySelector(`:scope > li[data-id="${CSS.escape(id)}"]`);
  }

  place(item) {
    if (!this.line) {
      this.line = document.createElement("div");
      this.line.className = "new-divider";
      this.line.setAttribute("role", "separator");
      this.line.setAttribute("aria-label", "New messages");
      const label = document.createElement("span");
      label.textContent = "New";
      this.line.append(label);
    }
    const formerNext = this.line.nextElementSibling;
    item.before(this.line);
    groupWithPrevious(item);
    if (formerNext) groupWithPrevious(formerNext);
  }
}

function nextMessage(item) {
  let next = item.nextElementSibling;
  while (next && next.tagName !== "LI") next = next.nextElementSibling;
  return next;
}
