// One message item. Its markup is written once, in templates/message.html: the server renders the history
// with it, and the page carries a blank copy in <template id="message-template"> that messageItem() clones.
//
// What a person typed goes in with textContent, never as HTML: the server hands back handles and messages
// exactly as they were sent. Its formatting and web addresses become elements (format.js), built as nodes too.
import { format, sourceOf } from "./format.js";

// A message that follows one by the same handle within this long drops its header, as chat apps do.
const GROUP_WITHIN_MS = 5 * 60 * 1000;

const timeOnly = new Intl.DateTimeFormat(undefined, { hour: "numeric", minute: "2-digit" });
const dayAndTime = new Intl.DateTimeFormat(undefined, {
  weekday: "short", day: "numeric", month: "short", hour: "numeric", minute: "2-digit",
});
const fullDate = new Intl.DateTimeFormat(undefined, { dateStyle: "full", timeStyle: "medium" });

// A filled clone of the template's item; without an id (an item not stored yet) it has no data-id. A message
// from the server may say who sent it beyond the handle: "user" (a signed token's subject: a verified
// handle) and "moderator": true; and how it changed: "edited" (when), "reply_to" (the id it answers) and
// "reactions" (counts per emoji).
export function messageItem(template, { id, handle, message, timestamp, user, moderator, edited, reply_to: replyTo,
  reactions }) {
  const item = template.content.firstElementChild.cloneNode(true);
  if (id === undefined) item.removeAttribute("data-id");
  else item.dataset.id = id;
  item.querySelector(".handle").textContent = handle;
  const timeEl = item.querySelector("time");
  timeEl.setAttribute("datetime", timestamp);
  timeEl.textContent = timestamp;
  item.querySelector(".text").textContent = message;
  if (typeof user === "string" && user) item.dataset.user = user;
  if (moderator === true) item.dataset.moderator = "true";
  if (typeof edited === "string" && edited) item.dataset.edited = edited;
  if (typeof replyTo === "string" && replyTo) item.dataset.replyTo = replyTo;
  if (reactions && typeof reactions === "object") item.dataset.reactions = JSON.stringify(reactions);
  return item;
}

// The row of buttons over an item (its own actions, a moderator's tools), made on first use.
export function messageBar(item) {
  let bar = item.querySelector(":scope > .msg-bar");
  if (!bar) {
    bar = document.createElement("div");
    bar.className = "msg-bar";
    item.querySelector(".text").after(bar);
  }
  return bar;
}

// "(edited)" after the text of an item with data-edited, with the time of the edit on hover.
export function showEdited(item) {
  let mark = item.querySelector(":scope > .edited-mark");
  if (!item.dataset.edited) {
    if (mark) mark.remove();
    return;
  }
  if (!mark) {
    mark = document.createElement("span");
    mark.className = "edited-mark";
    mark.textContent = "(edited)";
    item.querySelector(".text").after(mark);
  }
  const when = new Date(item.dataset.edited);
  mark.title = Number.isNaN(when.getTime()) ? "Edited" : "Edited " + fullDate.format(when);
}

// Who sent an item, as its attributes say (set above for live messages, by templates/message.html for the
// history the server rendered): { user, moderator }, user "" for a handle its writer picked.
function sender(item) {
  return { user: item.dataset.user || "", moderator: item.dataset.moderator === "true" };
}

// The marks after the handle: a check for a verified handle (one a signed token gave, which no one can pick),
// "mod" for a moderator. Each has a name for screen readers, and a title on hover.
function markSender(item) {
  const meta = item.querySelector(".meta");
  const handleEl = item.querySelector(".handle");
  if (!meta || !handleEl || meta.querySelector(".sender-mark")) return;
  const { user, moderator } = sender(item);
  item.classList.toggle("verified", Boolean(user));
  item.classList.toggle("moderator", moderator);
  const marks = [];
  if (user) marks.push(mark("verified", "✓", "verified", "verified"));
  if (moderator) marks.push(mark("mod", "mod", "moderator", "Moderator"));
  handleEl.after(...marks);
}

function mark(kind, shown, spoken, title) {
  const span = document.createElement("span");
  span.className = "sender-mark " + kind;
  span.title = title;
  const visible = document.createElement("span");
  visible.setAttribute("aria-hidden", "true");
  visible.textContent = shown;
  const said = document.createElement("span");
  said.className = "visually-hidden";
  said.textContent = " (" + spoken + ")";
  span.append(visible, said);
  return span;
}

// Rewrites a <time> (the server writes UTC) in the reader's own time zone, with the full date on hover.
export function localTime(timeEl) {
  const when = new Date(timeEl.getAttribute("datetime"));
  if (Number.isNaN(when.getTime())) return;
  const today = new Date();
  const sameDay = when.toDateString() === today.toDateString();
  timeEl.textContent = sameDay ? timeOnly.format(when) : dayAndTime.format(when);
  timeEl.title = fullDate.format(when);
}

// For an item already in its list: local time, a colour per handle, formatting and links, and grouping with
// the item before it. History rendered by the server goes through here too, so its text is formatted the same way.
export function decorate(item) {
  const handleEl = item.querySelector(".handle");
  const timeEl = item.querySelector("time");
  item.dataset.handle = handleEl.textContent;
  item.dataset.time = timeEl.getAttribute("datetime");
  item.style.setProperty("--hue", String(handleHue(handleEl.textContent)));
  markSender(item);
  localTime(timeEl);
  const textEl = item.querySelector(".text");
  format(textEl, sourceOf(textEl));
  groupWithPrevious(item);
}

function handleHue(handle) {
  let hash = 0;
  for (const ch of handle) hash = (hash * 31 + ch.codePointAt(0)) >>> 0;
  return hash % 360;
}

// Also for an item that got a new neighbour above it (older messages loaded before it). What is not a
// message between them (joins and leaves, the "New" divider) parts the two.
export function groupWithPrevious(item) {
  if (item.tagName !== "LI") return;
  const prev = item.previousElementSibling;
  if (!prev || prev.tagName !== "LI") {
    item.classList.remove("cont");
    return;
  }
  // The same sender: one handle, verified as the same user or picked by both, moderator or not. A picked
  // "admin" after a verified one starts a message of its own, with its own (unmarked) header.
  const before = sender(prev);
  const now = sender(item);
  const sameSender = prev.dataset.handle === item.dataset.handle && before.user === now.user &&
    before.moderator === now.moderator;
  const gap = Date.parse(item.dataset.time) - Date.parse(prev.dataset.time);
  item.classList.toggle("cont", sameSender && gap >= 0 && gap < GROUP_WITHIN_MS);
}
