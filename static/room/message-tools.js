// A moderator's Delete and Ban on each message of the log. The buttons are added to every message while the
// reader moderates (and to each one that arrives), shown on hover or when the keyboard reaches them, and always
// on a touch screen, which has no hover. Delete asks first; Ban asks where, for how long and why. Both ask in a
// <dialog> of the page (templates/room.html), which keeps the keyboard inside it until it closes.
import { messageBar } from "./message.js";
import { ApiError } from "./moderator.js";
import { problem } from "./moderation.js";

const DURATIONS = { 3600: "for 1 hour", 86400: "for 1 day", "": "until lifted" };

export class MessageTools {
  // The handlers in `on`: deleted(id), once a message is gone from the server; banned(), after a ban;
  // note(text, kind), what an action did.
  constructor(room, chat, moderator, on) {
    this.room = room;
    this.chat = chat;
    this.moderator = moderator;
    this.on = on;
    this.deleteDialog = new Dialog("delete-dialog", "delete-form", "delete-cancel", "delete-error");
    this.banDialog = new Dialog("ban-dialog", "ban-form", "ban-cancel", "ban-error");
    // The message each dialog is about.
    this.target = null;

    this.chat.addEventListener("click", (event) => {
      const button = event.target.closest("button[data-mod-action]");
      if (!button || !this.moderator.active) return;
      const item = button.closest("li[data-id]");
      if (!item) return;
      if (button.dataset.modAction === "delete") this.askDelete(item, button);
      else this.askBan(item, button);
    });
    this.deleteDialog.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.delete();
    });
    this.banDialog.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.ban();
    });
  }

  // The reader started or stopped moderating.
  changed() {
    if (this.moderator.active) {
      for (const item of this.chat.children) this.attach(item);
    } else {
      for (const tools of this.chat.querySelectorAll(":scope > li .msg-tools")) tools.remove();
      this.deleteDialog.close();
      this.banDialog.close();
    }
  }

  // A message now in the log (live, older, or the history the server rendered).
  attach(item) {
    if (!this.moderator.active || !item.dataset.id || item.querySelector(".msg-tools")) return;
    const handle = item.dataset.handle || "";
    const tools = document.createElement("div");
    tools.className = "msg-tools";
    tools.setAttribute("role", "group");
    tools.setAttribute("aria-label", "Moderate");
    tools.append(toolButton("delete", "Delete", "Delete the message of " + handle),
      toolButton("ban", "Ban", "Ban " + handle));
    messageBar(item).append(tools);
  }

  askDelete(item, opener) {
    this.target = item;
    document.getElementById("delete-who").textContent = item.dataset.handle || "";
    document.getElementById("delete-text").textContent = excerpt(item.querySelector(".text").textContent);
    this.deleteDialog.open(opener);
  }

  async delete() {
    const item = this.target;
    if (!item || this.deleteDialog.busy) return;
    const id = item.dataset.id;
    this.deleteDialog.working(true);
    let outcome = "Message deleted.";
    try {
      await this.moderator.request("DELETE", "/api/rooms/" + encodeURIComponent(this.room) + "/messages/" +
        encodeURIComponent(id));
    } catch (err) {
      const status = err instanceof ApiError ? err.status : -1;
      this.deleteDialog.working(false);
      // 401: the moderator is signed out, and told so; anything but a 404 (gone already) leaves it be.
      if (status === 401) this.deleteDialog.close();
      else if (status !== 404) this.deleteDialog.showError(problem(err));
      if (status !== 404) return;
      outcome = "That message was already gone.";
    }
    this.deleteDialog.working(false);
    this.on.deleted(id); // first: the dialog then gives the focus to the log, the message's button having gone
    this.deleteDialog.close();
    this.on.note(outcome);
  }

  askBan(item, opener) {
    this.target = item;
    document.getElementById("ban-who").textContent = item.dataset.handle || "";
    const form = this.banDialog.form;
    form.elements["ban-where"].value = "room";
    form.elements["ban-for"].value = "3600";
    form.elements["ban-reason"].value = "";
    this.banDialog.open(opener);
  }

  async ban() {
    const item = this.target;
    if (!item || this.banDialog.busy) return;
    const handle = item.dataset.handle || "";
    const form = this.banDialog.form;
    const everywhere = form.elements["ban-where"].value === "everywhere";
    const seconds = form.elements["ban-for"].value;
    const reason = form.elements["ban-reason"].value.trim();
    const body = { handle };
    if (!everywhere) body.room = this.room;
    if (seconds) body.seconds = Number(seconds);
    if (reason) body.reason = reason;
    this.banDialog.working(true);
    try {
      await this.moderator.request("POST", "/api/bans", body);
    } catch (err) {
      this.banDialog.working(false);
      if (err instanceof ApiError && err.status === 401) this.banDialog.close();
      else this.banDialog.showError(problem(err));
      return;
    }
    this.banDialog.working(false);
    this.banDialog.close();
    this.on.note(handle + " is banned " + (everywhere ? "in every room" : "in this room") + " " +
      DURATIONS[seconds] + ".");
    this.on.banned();
  }
}

function toolButton(action, text, label) {
  const button = document.createElement("button");
  button.type = "button";
  button.className = "ghost msg-tool";
  button.dataset.modAction = action;
  button.textContent = text;
  button.setAttribute("aria-label", label);
  return button;
}

function excerpt(text) {
  const oneLine = text.replace(/\s+/g, " ").trim();
  return oneLine.length > 200 ? oneLine.slice(0, 199) + "…" : oneLine;
}

// One of the page's <dialog>s: opened modal, closed by its Cancel button or Escape, and giving the focus back
// to what opened it (or to the log, when that is gone: a deleted message's button).
class Dialog {
  constructor(id, formId, cancelId, errorId) {
    this.dialog = document.getElementById(id);
    this.form = document.getElementById(formId);
    this.error = document.getElementById(errorId);
    this.opener = null;
    this.busy = false;
    document.getElementById(cancelId).addEventListener("click", () => this.close());
    // The browser may have given the focus back already (to the opener, if it is still there), and the
    // reader moved on: only a focus left on nothing, or in the closed dialog, is put back.
    this.dialog.addEventListener("close", () => {
      const back = this.opener && this.opener.isConnected ? this.opener : document.getElementById("log");
      this.opener = null;
      const lost = document.activeElement;
      if (!lost || lost === document.body || this.dialog.contains(lost)) back.focus();
    });
  }

  open(opener) {
    this.opener = opener;
    this.showError("");
    this.working(false);
    if (!this.dialog.open) this.dialog.showModal();
  }

  close() {
    if (this.dialog.open) this.dialog.close();
  }

  working(busy) {
    this.busy = busy;
    for (const button of this.form.querySelectorAll("button[type=submit]")) {
      button.setAttribute("aria-disabled", String(busy));
    }
  }

  showError(text) {
    this.error.textContent = text;
    this.error.hidden = !text;
  }
}
