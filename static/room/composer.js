// The form under the log: checks what was typed, sends on Enter (Shift+Enter makes a new line), grows the
// message field with its text, and remembers the handle for every room. It may be in a mode, said above the
// field: editing one of the reader's messages (↑ in the empty field edits the last one), or replying to a
// message; Escape or Cancel leaves it.
import { handleProblem } from "./handle.js";
import { NameField } from "./name-field.js";
import * as storage from "./storage.js";

const HANDLE_KEY = "rooms:handle";

export class Composer {
  // The handlers in `on`: send(handle, message, replyTo) with each message that passed the checks (replyTo:
  // an id, or null); edit(id, message) with the new text of a message being edited; editLast() for ↑ in the
  // empty field; handleChanged(handle) when the name field was changed and left (its valid handle, or "");
  // typing() on every edit of the message field.
  constructor(form, on) {
    this.on = on;
    // null, or { kind: "edit" | "reply", id }.
    this.mode = null;
    this.modeBox = document.getElementById("compose-mode");
    this.modeText = document.getElementById("compose-mode-text");
    document.getElementById("compose-mode-cancel").addEventListener("click", () => this.leaveMode(true));
    this.handleInput = document.getElementById("handle");
    this.messageInput = document.getElementById("message");
    this.error = document.getElementById("form-error");
    // What giveBack() last put in the message field.
    this.givenBack = null;

    form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.submit();
    });
    this.messageInput.addEventListener("keydown", (event) => {
      if (event.isComposing) return;
      if (event.key === "Enter" && !event.shiftKey) {
        event.preventDefault();
        this.submit();
      } else if (event.key === "ArrowUp" && !this.messageInput.value && !this.mode) {
        event.preventDefault();
        this.on.editLast();
      } else if (event.key === "Escape" && this.mode) {
        event.preventDefault();
        this.leaveMode(true);
      }
    });
    this.messageInput.addEventListener("input", () => {
      this.fitMessageInput();
      this.on.typing();
    });
    this.handleInput.addEventListener("input", () => {
      if (this.handleInput.value.trim()) storage.save(HANDLE_KEY, this.handleInput.value.trim());
    });
    // "change", not "input": the room hears of a new name once it is typed, not at every keystroke.
    this.handleInput.addEventListener("change", () => this.on.handleChanged(this.handle));
    this.handleInput.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.isComposing) {
        event.preventDefault();
        this.messageInput.focus();
      }
    });
    // Keep the focus (and a phone's keyboard) in the message field when Send is tapped.
    document.getElementById("send").addEventListener("mousedown", (event) => event.preventDefault());

    this.handleInput.value = this.handleInput.value || storage.load(HANDLE_KEY) || "";
    this.nameField = new NameField(() => Boolean(this.handle));
  }

  // The name in the field, trimmed, when the server would take it; else "".
  get handle() {
    const handle = this.handleInput.value.trim();
    return handle && !handleProblem(handle, this.handleInput.maxLength) ? handle : "";
  }

  // The name field while there is no name; else the message field, unless a touch keyboard would pop up.
  focus() {
    if (!this.handleInput.value) this.handleInput.focus();
    else if (window.matchMedia("(pointer: fine)").matches) this.messageInput.focus();
  }

  showError(text) {
    this.error.textContent = text;
    this.error.hidden = !text;
  }

  // A message the server will never accept goes back into the field for editing, unless the reader has
  // started typing another one. Several refused in a row (a ban or a lock refuses each one waiting) go back
  // together, a line each, so that none is lost.
  giveBack(message) {
    const value = this.messageInput.value;
    if (!value) this.messageInput.value = message;
    else if (value === this.givenBack) this.messageInput.value = value + "\n" + message;
    else return;
    this.givenBack = this.messageInput.value;
    this.fitMessageInput();
  }

  // Edits a message: its text goes in the field. label says which message, for the line above the field.
  startEdit(id, text, label) {
    this.enterMode({ kind: "edit", id }, label);
    this.messageInput.value = text;
    this.fitMessageInput();
    this.messageInput.setSelectionRange(text.length, text.length);
  }

  startReply(id, label) {
    if (this.mode && this.mode.kind === "edit") this.leaveMode(true);
    this.enterMode({ kind: "reply", id }, label);
  }

  enterMode(mode, label) {
    this.mode = mode;
    this.modeText.textContent = label;
    this.modeBox.dataset.kind = mode.kind;
    this.modeBox.hidden = false;
    this.showError("");
    this.messageInput.focus();
  }

  // cancelled: by the reader, so an edit's text leaves the field with it.
  leaveMode(cancelled) {
    if (cancelled && this.mode && this.mode.kind === "edit") {
      this.messageInput.value = "";
      this.fitMessageInput();
    }
    this.mode = null;
    this.modeBox.hidden = true;
    if (cancelled) this.messageInput.focus();
  }

  submit() {
    const handle = this.handleInput.value.trim();
    const message = this.messageInput.value;
    if (this.mode && this.mode.kind === "edit") {
      if (!message.trim()) {
        this.showError("Type the new text, or Cancel (Escape) to keep the message as it is.");
        return;
      }
      this.showError("");
      this.on.edit(this.mode.id, message);
      return;
    }
    const problem = this.problem(handle, message);
    if (problem) {
      const [field, text] = problem;
      this.showError(text);
      field.focus();
      return;
    }
    this.showError("");
    this.handleInput.value = handle;
    storage.save(HANDLE_KEY, handle);
    this.messageInput.value = "";
    this.fitMessageInput();
    const replyTo = this.mode && this.mode.kind === "reply" ? this.mode.id : null;
    if (replyTo) this.leaveMode(false);
    this.on.send(handle, message, replyTo);
  }

  // What keeps this message from being sent, if anything: the field to fix, and why.
  problem(handle, message) {
    const handleRefused = handleProblem(handle, this.handleInput.maxLength);
    if (handleRefused) return [this.handleInput, handleRefused];
    if (!message.trim()) return [this.messageInput, "Type a message first."];
    return null;
  }

  fitMessageInput() {
    this.messageInput.style.height = "auto";
    this.messageInput.style.height = this.messageInput.scrollHeight + "px";
  }
}
