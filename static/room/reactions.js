// Reactions under a message: a chip per emoji with its count, pressed for the ones this browser added, and
// a small picker of common ones. Counts come from the server (a message's "reactions", or a reactions frame);
// which ones are the reader's own is kept per room in localStorage, since the server says only how many.
import * as storage from "./storage.js";

export const PICKER = ["👍", "❤️", "😂", "🎉", "😮", "😢", "👀", "🙏"];
const KEEP = 500;

export class OwnReactions {
  constructor(room) {
    this.key = "rooms:reacted:" + room;
    try {
      this.set = new Set(JSON.parse(storage.load(this.key) || "[]"));
    } catch (err) {
      this.set = new Set();
    }
  }

  has(id, emoji) {
    return this.set.has(id + " " + emoji);
  }

  toggle(id, emoji, on) {
    this.set.delete(id + " " + emoji);
    if (on) this.set.add(id + " " + emoji);
    storage.save(this.key, JSON.stringify([...this.set].slice(-KEEP)));
  }
}

// The counts an item holds (data-reactions: JSON, an object of counts by emoji, or a list of [emoji, count]
// pairs), only entries with a positive count.
export function countsOf(item) {
  try {
    const counts = JSON.parse(item.dataset.reactions || "{}");
    const entries = Array.isArray(counts) ? counts.filter((pair) => Array.isArray(pair)) : Object.entries(counts);
    return entries.filter(([emoji, n]) => typeof emoji === "string" && Number.isInteger(n) && n > 0);
  } catch (err) {
    return [];
  }
}

// Draws the chips of an item from its data-reactions; own(emoji) says whether the reader added one.
export function showReactions(item, own) {
  let row = item.querySelector(":scope > .reactions");
  const counts = countsOf(item);
  if (!counts.length) {
    if (row) row.remove();
    return;
  }
  if (!row) {
    row = document.createElement("div");
    row.className = "reactions";
    item.append(row);
  }
  row.replaceChildren(...counts.map(([emoji, n]) => {
    const chip = document.createElement("button");
    chip.type = "button";
    chip.className = "reaction";
    chip.tabIndex = -1; // reached through its message, as its buttons are (message-actions.js)
    chip.dataset.emoji = emoji;
    chip.setAttribute("aria-pressed", String(own(emoji)));
    chip.setAttribute("aria-label", emoji + " " + n + (own(emoji) ? ", yours" : ""));
    const face = document.createElement("span");
    face.className = "reaction-emoji";
    face.textContent = emoji;
    const count = document.createElement("span");
    count.className = "reaction-count";
    count.textContent = String(n);
    chip.append(face, count);
    return chip;
  }));
}

// The picker: a row of buttons, one per emoji, for a message's React button to open.
export function picker() {
  const box = document.createElement("div");
  box.className = "reaction-picker";
  box.setAttribute("role", "group");
  box.setAttribute("aria-label", "Add a reaction");
  for (const emoji of PICKER) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "ghost pick";
    button.dataset.emoji = emoji;
    button.textContent = emoji;
    box.append(button);
  }
  return box;
}
