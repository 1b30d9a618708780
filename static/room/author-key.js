// The author key: a secret this browser makes once and keeps, sent with every message it sends, so that the
// server lets it edit and delete its own messages later (docs/protocol.md, "Messages that change"). The server
// keeps only a hash of it and never sends it back.
import * as storage from "./storage.js";

const KEY = "rooms:author-key";
const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";
const LENGTH = 32;
const SHAPE = /^[A-Za-z0-9_-]{22,64}$/;

let current = null;

export function authorKey() {
  if (current) return current;
  const kept = storage.load(KEY);
  if (kept && SHAPE.test(kept)) {
    current = kept;
  } else {
    // 64 letters: each random byte picks one without bias (256 is a multiple of 64).
    const bytes = new Uint8Array(LENGTH);
    window.crypto.getRandomValues(bytes);
    current = Array.from(bytes, (byte) => ALPHABET[byte % ALPHABET.length]).join("");
    storage.save(KEY, current);
  }
  return current;
}
