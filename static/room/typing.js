// Typing, both ways: the reader's own typing, told to the room at most once per TELL_EVERY_MS (the server
// drops any more than that), and the line under the log that says who else is typing.
import { isolated } from "./presence.js";

// A little over the server's 2 s, so that jitter on the way never gets a frame dropped there.
const TELL_EVERY_MS = 2100;
// How long "ann is typing…" stays after ann's last typing frame: a little over two of her frames, so that
// one frame lost or late does not make the line flicker.
const SHOWN_FOR_MS = 4500;
// Past this many names the line counts the rest.
const NAMED_AT_MOST = 2;

export class TypingTeller {
  // transmit(frame) puts a frame on the socket, or returns false when none is open.
  constructor(transmit) {
    this.transmit = transmit;
    this.toldAt = -Infinity;
  }

  // The reader typed in the message field; handle is theirs, or "" when they have no valid name yet.
  typed(handle) {
    const now = Date.now();
    if (!handle || now - this.toldAt < TELL_EVERY_MS) return;
    if (this.transmit({ type: "typing", handle })) this.toldAt = now;
  }

  // The next socket is a new conversation: its first keystroke is told at once.
  reset() {
    this.toldAt = -Infinity;
  }
}

export class TypingLine {
  // isOwn(handle) says whether a handle is the reader's own, which is never shown.
  constructor(element, isOwn) {
    this.element = element;
    this.isOwn = isOwn;
    // handle -> the timer that takes it off the line; in the order they started typing.
    this.typing = new Map();
  }

  // A typing frame: {"handle": "ann"}.
  receive(frame) {
    const handle = frame.handle;
    if (typeof handle !== "string" || !handle || this.isOwn(handle)) return;
    clearTimeout(this.typing.get(handle));
    this.typing.set(handle, setTimeout(() => this.stopped(handle), SHOWN_FOR_MS));
    this.render();
  }

  // Their message arrived, or they left: no longer typing.
  stopped(handle) {
    if (!this.typing.has(handle)) return;
    clearTimeout(this.typing.get(handle));
    this.typing.delete(handle);
    this.render();
  }

  clear() {
    for (const timer of this.typing.values()) clearTimeout(timer);
    this.typing.clear();
    this.render();
  }

  render() {
    const handles = [...this.typing.keys()].filter((handle) => !this.isOwn(handle));
    this.element.replaceChildren(...typingWords(handles));
  }
}

// "ann is typing…", "ann and bob are typing…", "ann, bob and carl are typing…",
// "ann, bob and 2 others are typing…", as nodes, each handle isolated.
export function typingWords(handles) {
  if (!handles.length) return [];
  const named = handles.length <= NAMED_AT_MOST + 1 ? handles : handles.slice(0, NAMED_AT_MOST);
  const rest = handles.length - named.length;
  const words = [];
  named.forEach((handle, index) => {
    if (index) words.push(index === named.length - 1 && !rest ? " and " : ", ");
    words.push(isolated(handle));
  });
  if (rest) words.push(" and " + rest + " others");
  words.push(handles.length === 1 ? " is typing…" : " are typing…");
  return words;
}
