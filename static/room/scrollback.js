// Scrollback: the messages before the oldest one shown, a page at a time from the history API, when the
// reader scrolls to the top of the log or presses "Load older messages" (the keyboard's way), until the
// room's first message. One request at a time; a failed one offers to try again.
import { accessHeaders, inviteQuery } from "./access.js";

const PAGE_SIZE = 50;
// Start loading a little before the very top, so that a reader scrolling up rarely has to wait.
const NEAR_TOP_PX = 150;

export class Scrollback {
  // hasMore: whether the server said, rendering the page, that older messages exist.
  constructor(room, view, hasMore) {
    this.room = room;
    this.view = view;
    this.button = document.getElementById("older");
    this.failure = document.getElementById("older-failed");
    this.start = document.getElementById("room-start");
    this.state = "";
    this.pending = Promise.resolve();
    this.set(hasMore ? "more" : "done");

    this.button.addEventListener("click", () => this.load());
    // Scrolling loads only while all is well; after a failure the reader chooses when to try again.
    view.log.addEventListener("scroll", () => {
      if (this.state === "more" && view.log.scrollTop < NEAR_TOP_PX) this.load();
    }, { passive: true });
    this.fillShortLog();
  }

  // The page being loaded, or a new one when there is more; settles once it is shown (or failed).
  load() {
    if (this.state === "loading") return this.pending;
    if (this.state !== "more" && this.state !== "failed") return Promise.resolve();
    this.pending = this.loadPage();
    return this.pending;
  }

  async loadPage() {
    const before = this.view.oldestId;
    if (before === null) return;
    this.set("loading");
    let page;
    try {
      page = await this.fetchPage(before);
    } catch (err) {
      this.set("failed");
      return;
    }
    this.view.keepingPlace(() => {
      this.view.showOlder(page.messages);
      this.set(page.hasMore ? "more" : "done");
    });
    this.fillShortLog();
  }

  // Loads older messages until the one of this id is shown, or the room's beginning; whether it is shown.
  async loadUntil(id) {
    while (!this.view.find(id) && ["more", "loading", "failed"].includes(this.state)) {
      const before = this.view.oldestId;
      await this.load();
      if (this.state === "failed" || (this.state !== "loading" && this.view.oldestId === before)) break;
    }
    return this.view.find(id) !== null;
  }

  // A log too short to scroll has no top to scroll to: fill it while there is more.
  fillShortLog() {
    if (this.state === "more" && this.view.log.scrollHeight <= this.view.log.clientHeight) this.load();
  }

  // The page before `before`, oldest first; throws on any failure, a malformed answer included.
  async fetchPage(before) {
    const url = "/api/rooms/" + encodeURIComponent(this.room) + "/messages?before=" + encodeURIComponent(before) +
      "&limit=" + PAGE_SIZE + inviteQuery(); // and the tab's token in the headers: a private room needs them
    const response = await fetch(url, { headers: { Accept: "application/json", ...accessHeaders() } });
    if (!response.ok) throw new Error("HTTP " + response.status);
    const body = await response.json();
    if (!body || !Array.isArray(body.messages) || typeof body.has_more !== "boolean") throw new Error("malformed");
    const messages = body.messages.filter((msg) => msg && typeof msg.id === "string" &&
      typeof msg.handle === "string" && typeof msg.message === "string" && typeof msg.timestamp === "string");
    return { messages, hasMore: body.has_more };
  }

  // "more": the button offers to load; "loading"; "failed": the button offers to try again; "done": the
  // room's first message is shown.
  set(state) {
    const hadFocus = document.activeElement === this.button;
    this.state = state;
    this.button.hidden = state === "done";
    this.button.textContent = state === "loading" ? "Loading older messages…" :
      state === "failed" ? "Try again" : "Load older messages";
    this.button.setAttribute("aria-disabled", String(state === "loading"));
    this.failure.hidden = state !== "failed";
    this.start.hidden = state !== "done";
    // The button is gone: the log itself keeps the keyboard's place.
    if (hadFocus && state === "done") this.view.log.focus();
  }
}
