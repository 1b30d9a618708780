// The header's "Moderate" panel: signing in with a moderator's token (moderator.js keeps and checks it), then
// the room's lock and the bans in force, each ban with "Lift". What an action did, or why it could not be
// done, is told in the note under the header (ModerationNote), whatever the reader is looking at.
import { ApiError } from "./moderator.js";

// A ban's end, in the reader's time zone.
const untilFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });

// The words for an API error a moderator's action met (each action says what a 404 means for it).
export function problem(err) {
  if (!(err instanceof ApiError)) return "Something went wrong: " + String(err);
  if (err.status === 401) return "Signed out: the server no longer takes this token as a moderator's.";
  if (err.status === 0) return err.message;
  return "The server refused: " + err.message;
}

export class ModerationNote {
  constructor() {
    this.box = document.getElementById("mod-note");
    this.text = document.getElementById("mod-note-text");
    this.timer = null;
    document.getElementById("mod-note-dismiss").addEventListener("click", () => this.clear());
  }

  // kind: "done" (fades after a while) or "problem" (stays until dismissed or replaced).
  show(text, kind = "done") {
    clearTimeout(this.timer);
    this.text.textContent = text;
    this.box.dataset.kind = kind;
    this.box.hidden = false;
    if (kind === "done") this.timer = setTimeout(() => this.clear(), 8000);
  }

  clear() {
    clearTimeout(this.timer);
    this.box.hidden = true;
    this.text.textContent = "";
  }
}

export class ModerationPanel {
  // moderator: a Moderator; lock: the room's RoomLock; note: a ModerationNote.
  constructor(room, moderator, lock, note) {
    this.room = room;
    this.moderator = moderator;
    this.lock = lock;
    this.note = note;
    this.box = document.getElementById("moderation");
    this.summary = document.getElementById("moderation-summary");
    this.signInForm = document.getElementById("mod-signin");
    this.tokenInput = document.getElementById("mod-token");
    this.signInError = document.getElementById("mod-signin-error");
    this.signInButton = document.getElementById("mod-signin-submit");
    this.signedIn = document.getElementById("mod-signed-in");
    this.who = document.getElementById("mod-who");
    this.lockState = document.getElementById("mod-lock-state");
    this.lockButton = document.getElementById("mod-lock");
    this.unlockButton = document.getElementById("mod-unlock");
    this.bansState = document.getElementById("mod-bans-state");
    this.bansList = document.getElementById("mod-bans");
    this.signOutButton = document.getElementById("mod-signout");
    this.busy = false;

    this.signInForm.addEventListener("submit", (event) => {
      event.preventDefault();
      this.signIn();
    });
    this.signOutButton.addEventListener("click", () => {
      this.moderator.signOut();
      this.note.show("Signed out: this tab no longer moderates.");
      this.summary.focus();
    });
    this.lockButton.addEventListener("click", () => this.setLocked(true));
    this.unlockButton.addEventListener("click", () => this.setLocked(false));
    this.bansList.addEventListener("click", (event) => {
      const button = event.target.closest("button[data-ban-id]");
      if (button) this.lift(button);
    });
    this.box.addEventListener("toggle", () => {
      if (!this.box.open) return;
      if (this.moderator.active) {
        this.refreshBans();
        this.lock.refresh();
      } else if (this.moderator.state === "out") this.tokenInput.focus();
    });
    // Like the presence list: Escape or a click elsewhere closes it.
    this.box.addEventListener("keydown", (event) => {
      if (event.key === "Escape" && this.box.open) {
        this.box.open = false;
        this.summary.focus();
      }
    });
    document.addEventListener("click", (event) => {
      if (this.box.open && !this.box.contains(event.target) && !event.target.closest("dialog")) this.box.open = false;
    });
    this.box.hidden = false;
    this.render();
  }

  // The moderator's state changed (note: why, when the server signed the reader out).
  changed(note) {
    if (note) this.note.show(note, "problem");
    if (!this.moderator.active) this.bansList.replaceChildren(); // read again when the panel opens
    this.render();
  }

  render() {
    const { state, source } = this.moderator;
    const active = state === "in";
    const { locked } = this.lock;
    this.box.dataset.state = state;
    this.summary.textContent = active ? "Moderating" : "Moderate";
    this.signInForm.hidden = active;
    this.signedIn.hidden = !active;
    this.signInButton.textContent = state === "checking" ? "Checking…" : "Sign in";
    this.signInButton.setAttribute("aria-disabled", String(state === "checking"));
    this.who.textContent = source === "page" ?
      "Your sign-in token makes you a moderator here." :
      "Signed in with a moderator token, for this tab only. Your messages are sent as a moderator's.";
    // A sign-in token is the tab's identity, which the site that issued it signs out of.
    this.signOutButton.hidden = source !== "typed";
    // While the server has not told, both are offered.
    this.lockButton.hidden = locked === true;
    this.unlockButton.hidden = locked === false;
    this.lockButton.setAttribute("aria-disabled", String(this.busy));
    this.unlockButton.setAttribute("aria-disabled", String(this.busy));
    this.lockState.textContent = locked === null ? "Whether this room is locked is not known yet." :
      locked ? "This room is locked: only moderators can post." : "This room is open: everyone can post.";
    this.lockState.dataset.locked = String(locked);
  }

  async signIn() {
    if (this.moderator.state === "checking") return;
    const token = this.tokenInput.value.trim();
    if (!token) {
      this.showSignInError("Paste the moderator token first.");
      this.tokenInput.focus();
      return;
    }
    this.showSignInError("");
    try {
      await this.moderator.signIn(token);
    } catch (err) {
      const status = err instanceof ApiError ? err.status : -1;
      this.showSignInError(
        status === 401 ? "That token is not a moderator's." :
          status === 404 ? "This server does not offer moderation (no /api/bans)." :
            "The token could not be checked: " + (err instanceof ApiError ? err.message : String(err)),
      );
      this.tokenInput.focus();
      this.tokenInput.select();
      return;
    }
    this.tokenInput.value = "";
    // Out of the way of the messages, which now offer Delete and Ban.
    this.box.open = false;
    this.summary.focus();
    this.note.show("Signed in as a moderator: each message now offers Delete and Ban; \"Moderating\" above locks " +
      "the room and lists the bans.");
  }

  showSignInError(text) {
    this.signInError.textContent = text;
    this.signInError.hidden = !text;
    this.tokenInput.setAttribute("aria-invalid", String(Boolean(text)));
  }

  async setLocked(locked) {
    if (this.busy) return;
    this.busy = true;
    this.render();
    let answer;
    try {
      answer = await this.moderator.request("PATCH", "/api/rooms/" + encodeURIComponent(this.room), { locked });
    } catch (err) {
      this.note.show((locked ? "The room was not locked. " : "The room was not unlocked. ") + problem(err), "problem");
      return;
    } finally {
      this.busy = false;
      this.render();
    }
    this.lock.set(answer && typeof answer.locked === "boolean" ? answer.locked : locked);
    this.note.show(this.lock.locked ? "Room locked: only moderators can post." : "Room unlocked: everyone can post again.");
    (this.lock.locked ? this.unlockButton : this.lockButton).focus();
  }

  // A ban was made from a message (message-tools.js): the list shows it.
  banned() {
    if (this.box.open) this.refreshBans();
  }

  async refreshBans() {
    this.bansState.textContent = "Loading…";
    let answer;
    try {
      answer = await this.moderator.request("GET", "/api/bans");
    } catch (err) {
      this.bansState.textContent = "The bans could not be loaded. " + problem(err);
      return;
    }
    const bans = answer && Array.isArray(answer.bans) ? answer.bans.filter((ban) => ban && ban.id !== undefined) : [];
    this.bansList.replaceChildren(...bans.map((ban) => this.banItem(ban)));
    this.bansState.textContent = bans.length ? "" : "None.";
  }

  banItem(ban) {
    const item = document.createElement("li");
    item.className = "mod-ban";
    const who = document.createElement("span");
    who.className = "who";
    who.dir = "auto";
    who.textContent = typeof ban.handle === "string" ? ban.handle : typeof ban.address === "string" ? ban.address : "?";
    const where = typeof ban.room === "string" ? (ban.room === this.room ? "in this room" : "in #" + ban.room) :
      "in every room";
    const ends = typeof ban.expires === "string" ? new Date(ban.expires) : null;
    const until = ends && !Number.isNaN(ends.getTime()) ? "until " + untilFormat.format(ends) : "until lifted";
    const details = document.createElement("span");
    details.className = "mod-ban-details";
    details.textContent = " " + where + ", " + until;
    item.append(who, details);
    if (typeof ban.reason === "string" && ban.reason) {
      const reason = document.createElement("span");
      reason.className = "mod-ban-reason";
      reason.dir = "auto";
      reason.textContent = ban.reason;
      item.append(" — ", reason);
    }
    const lift = document.createElement("button");
    lift.type = "button";
    lift.className = "ghost";
    lift.textContent = "Lift";
    lift.dataset.banId = String(ban.id);
    lift.setAttribute("aria-label", "Lift the ban of " + who.textContent + " " + where);
    item.append(" ", lift);
    return item;
  }

  async lift(button) {
    if (button.getAttribute("aria-disabled") === "true") return;
    button.setAttribute("aria-disabled", "true");
    const who = button.parentElement.querySelector(".who").textContent;
    try {
      await this.moderator.request("DELETE", "/api/bans/" + encodeURIComponent(button.dataset.banId));
      this.note.show("The ban of " + who + " is lifted.");
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 404)) {
        button.setAttribute("aria-disabled", "false");
        this.note.show("The ban was not lifted. " + problem(err), "problem");
        return;
      }
      this.note.show("That ban was already lifted or had run out.");
    }
    // The keyboard's place: the next ban's Lift, else the one before, else the panel's summary.
    const item = button.parentElement;
    const near = item.nextElementSibling || item.previousElementSibling;
    item.remove();
    if (!this.bansList.childElementCount) this.bansState.textContent = "None.";
    (near ? near.querySelector("button") : this.summary).focus();
  }
}
