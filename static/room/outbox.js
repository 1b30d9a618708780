// What the reader sent that the server has not echoed back yet. It is kept in localStorage, so it survives a
// reload or a closed tab, and each item carries a client_id, so an item sent again after a drop is stored once.
// Each goes with the browser's author key, which makes it this browser's to edit or delete.
import { authorKey } from "./author-key.js";
import * as storage from "./storage.js";

const RETRY_SEND_MS = 2000;
// Refusals of a message the server did not store, but would if sent again a little later.
const RETRYABLE = new Set(["rate_limited", "unavailable"]);

export class Outbox {
  // transmit(frame) puts a frame on the socket, or returns false when none is open; changed(items, inFlight) is
  // called after every change, with the items oldest first.
  constructor(room, transmit, changed) {
    this.key = "rooms:outbox:" + room;
    this.transmit = transmit;
    this.changed = changed;
    this.items = load(this.key);
    // One item at a time is on the wire: the server answers each frame in order, so an error reply belongs
    // to the item in flight, and an item refused as too fast is sent again without reordering.
    this.inFlight = null;
    this.retryTimer = null;
  }

  // replyTo: the id of the message this one answers, or null.
  add(handle, message, replyTo = null) {
    const item = { client_id: newClientId(), handle, message, created: new Date().toISOString() };
    if (replyTo) item.reply_to = replyTo;
    this.items.push(item);
    this.save();
    this.notify();
    this.sendNext();
  }

  // Sends the oldest item, unless one is in flight, the outbox is empty or no socket is open.
  sendNext() {
    clearTimeout(this.retryTimer);
    if (this.inFlight || !this.items.length) return;
    const next = this.items[0];
    const frame = { handle: next.handle, message: next.message, client_id: next.client_id, author_key: authorKey() };
    if (typeof next.reply_to === "string") frame.reply_to = next.reply_to;
    if (!this.transmit(frame)) return;
    this.inFlight = next;
    this.notify();
  }

  // Whether this client_id is one of the items here: a message this page sent.
  has(clientId) {
    return this.items.some((item) => item.client_id === clientId);
  }

  // The server echoed this item back: it is stored. True when it was the item in flight.
  acknowledge(clientId) {
    const index = this.items.findIndex((item) => item.client_id === clientId);
    if (index === -1) return false;
    const wasInFlight = this.items[index] === this.inFlight;
    this.items.splice(index, 1);
    this.save();
    if (wasInFlight) {
      this.inFlight = null;
      this.sendNext();
    }
    this.notify();
    return wasInFlight;
  }

  // The server answered the item in flight with an error of this code. Says whether it will be sent again
  // shortly (retrying) or was taken out because the server will never accept it as it is (dropped).
  refused(code) {
    const item = this.inFlight;
    this.inFlight = null;
    const retrying = RETRYABLE.has(code);
    let dropped = null;
    if (retrying) {
      this.retryTimer = setTimeout(() => this.sendNext(), RETRY_SEND_MS);
    } else if (item) {
      this.items = this.items.filter((i) => i !== item);
      this.save();
      this.sendNext();
      dropped = item;
    }
    this.notify();
    return { retrying, dropped };
  }

  // The item in flight may or may not have been stored: it stays first in line, and its client_id makes
  // sending it again on the next socket safe.
  connectionLost() {
    this.inFlight = null;
    clearTimeout(this.retryTimer);
    this.notify();
  }

  notify() {
    this.changed(this.items, this.inFlight);
  }

  save() {
    storage.save(this.key, this.items.length ? JSON.stringify(this.items) : null);
  }
}

function load(key) {
  try {
    const items = JSON.parse(storage.load(key) || "[]");
    return Array.isArray(items)
      ? items.filter((i) => i && typeof i.client_id === "string" && typeof i.message === "string")
      : [];
  } catch (err) {
    return [];
  }
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
