// The header's search: the room's messages holding every word typed, newest first, twenty at a time
// (changes-api.js). A result is a button: it opens the message in the log, loading older messages until it
// is there, and marks it.
import { localTime } from "./message.js";
import { excerpt } from "./reply.js";
import { search, RequestError } from "./changes-api.js";

const PROBLEMS = {
  404: "Search is not available on this server.",
  429: "Too many searches for now: try again in a minute.",
};

export class Search {
  // open(id) shows the message of this id in the log: a promise of whether it could.
  constructor(room, open) {
    this.room = room;
    this.open = open;
    this.box = document.getElementById("search");
    this.input = document.getElementById("search-q");
    this.state = document.getElementById("search-state");
    this.results = document.getElementById("search-results");
    this.more = document.getElementById("search-more");
    this.words = "";
    this.oldest = null;
    // Each search's number: the answer of one replaced by a newer search is dropped.
    this.asked = 0;

    document.getElementById("search-form").addEventListener("submit", (event) => {
      event.preventDefault();
      this.start(this.input.value.trim());
    });
    this.more.addEventListener("click", () => this.fetch(false));
    this.results.addEventListener("click", (event) => {
      const button = event.target.closest("button[data-id]");
      if (button) this.show(button.dataset.id);
    });
    this.box.addEventListener("toggle", () => {
      if (this.box.open) this.input.focus();
    });
    this.box.addEventListener("keydown", (event) => {
      if (event.key === "Escape" && this.box.open) {
        this.box.open = false;
        document.getElementById("search-summary").focus();
      }
    });
  }

  start(words) {
    this.words = words;
    this.oldest = null;
    this.results.replaceChildren();
    this.more.hidden = true;
    if (!words) {
      this.state.textContent = "";
      return;
    }
    this.fetch(true);
  }

  async fetch(first) {
    const asked = ++this.asked;
    this.state.textContent = "Searching…";
    let page;
    try {
      page = await search(this.room, this.words, first ? null : this.oldest);
    } catch (err) {
      if (asked !== this.asked) return;
      const status = err instanceof RequestError ? err.status : -1;
      this.state.textContent = PROBLEMS[status] || "The search failed: " + err.message + ".";
      return;
    }
    if (asked !== this.asked) return;
    this.results.append(...page.messages.map(result));
    if (page.messages.length) this.oldest = page.messages[page.messages.length - 1].id;
    this.more.hidden = !page.hasMore;
    const found = this.results.childElementCount;
    this.state.textContent = found ? found + (page.hasMore ? "+" : "") + (found === 1 ? " message" : " messages") :
      "No message holds all of these words.";
  }

  async show(id) {
    this.box.open = false;
    if (await this.open(id)) return;
    this.box.open = true;
    this.state.textContent = "That message is no longer in the room.";
  }
}

function result(msg) {
  const li = document.createElement("li");
  const button = document.createElement("button");
  button.type = "button";
  button.className = "search-result";
  button.dataset.id = msg.id;
  const who = document.createElement("span");
  who.className = "who";
  who.dir = "auto";
  who.textContent = msg.handle;
  const when = document.createElement("time");
  when.setAttribute("datetime", msg.timestamp);
  localTime(when);
  const said = document.createElement("span");
  said.className = "search-excerpt";
  said.dir = "auto";
  said.textContent = excerpt(msg.message);
  button.append(who, " ", when, said);
  li.append(button);
  return li;
}
