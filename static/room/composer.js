// The form under the log: checks what was typed, sends on Enter (Shift+Enter makes a new line), grows the
// message field with its text, and remembers the handle for every room.
import { handleProblem } from "./handle.js";
import { NameField } from "./name-field.js";
import * as storage from "./storage.js";

const HANDLE_KEY = "rooms:handle";

export class Composer {
  // The handlers in `on`: send(handle, message) with each message that passed the checks;
  // handleChanged(handle) when the name field was changed and left (its valid handle, or ""); typing() on
  // every edit of the message field.
  constructor(form, on) {
    this.on = on;
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
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        this.submit();
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

  submit() {
    const handle = this.handleInput.value.trim();
    const message = this.messageInput.value;
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
    this.on.send(handle, message);
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
