// Each message's own actions, shown on hover or when the keyboard reaches them (on a touch screen, a tap):
// Reply and React for every message, Edit and Delete for the reader's own. React opens a small picker. The
// buttons sit in the item's bar (messageBar), beside a moderator's tools. They are out of the Tab order, so
// that a long log is not hundreds of stops: the keyboard reaches a message first (log-keys.js), then its
// buttons.
import { messageBar } from "./message.js";
import { picker } from "./reactions.js";

export class MessageActions {
  // isOwn(id): a message this browser sent. The handlers in `on`: reply(item), edit(item), remove(item),
  // react(item, emoji) (a chip or the picker: the reader's reaction is toggled).
  constructor(chat, isOwn, on) {
    this.isOwn = isOwn;
    this.on = on;
    chat.addEventListener("click", (event) => {
      const target = event.target.closest("button[data-action], button[data-emoji]");
      const item = target && target.closest("li[data-id]");
      if (!item) return;
      if (target.dataset.emoji) {
        this.closePicker(item);
        this.on.react(item, target.dataset.emoji);
      } else if (target.dataset.action === "react") {
        this.togglePicker(item, target);
      } else if (target.dataset.action === "reply") {
        this.on.reply(item);
      } else if (target.dataset.action === "edit") {
        this.on.edit(item);
      } else if (target.dataset.action === "delete") {
        this.confirmDelete(item, target);
      }
    });
    chat.addEventListener("focusin", (event) => tabbable(event.target.closest("li[data-id]"), true));
    chat.addEventListener("focusout", (event) => {
      const item = event.target.closest("li[data-id]");
      if (item && !item.contains(event.relatedTarget)) tabbable(item, false);
      const asking = event.target.closest("button[data-confirm]");
      if (asking) unask(asking);
    });
    // A picker closes when the reader goes on elsewhere.
    document.addEventListener("click", (event) => {
      if (event.target.closest(".reaction-picker, button[data-action=react]")) return;
      for (const open of chat.querySelectorAll(".reaction-picker")) this.closePicker(open.closest("li"));
    });
    chat.addEventListener("keydown", (event) => {
      if (event.key !== "Escape") return;
      const open = event.target.closest("li[data-id]");
      if (open && open.querySelector(".reaction-picker")) {
        this.closePicker(open);
        open.querySelector("button[data-action=react]").focus();
      }
    });
  }

  // A message now in the log; again when it became the reader's own (its echo arrived).
  attach(item) {
    if (!item.dataset.id || item.classList.contains("pending")) return;
    item.tabIndex = -1; // a tap gives it the focus, which shows its buttons on a touch screen
    const bar = messageBar(item);
    let actions = bar.querySelector(".msg-actions");
    if (!actions) {
      actions = document.createElement("div");
      actions.className = "msg-actions";
      actions.setAttribute("role", "group");
      actions.setAttribute("aria-label", "Message");
      bar.prepend(actions);
    }
    const handle = item.dataset.handle || "";
    const buttons = [action("reply", "Reply", "Reply to " + handle), action("react", "React", "React to this message")];
    if (this.isOwn(item.dataset.id)) {
      buttons.push(action("edit", "Edit", "Edit your message"), action("delete", "Delete", "Delete your message"));
    }
    actions.replaceChildren(...buttons);
  }

  // Delete asks once, in the button itself: a second press deletes.
  confirmDelete(item, button) {
    if (button.dataset.confirm) {
      unask(button);
      this.on.remove(item);
      return;
    }
    button.dataset.confirm = "asking";
    button.textContent = "Delete? Press again";
    button.setAttribute("aria-label", "Press again to delete your message");
    button.focus();
  }

  togglePicker(item, opener) {
    const open = item.querySelector(".reaction-picker");
    if (open) {
      open.remove();
      opener.setAttribute("aria-expanded", "false");
      return;
    }
    const box = picker();
    messageBar(item).after(box);
    opener.setAttribute("aria-expanded", "true");
    box.querySelector("button").focus();
  }

  closePicker(item) {
    const open = item.querySelector(".reaction-picker");
    if (open) open.remove();
    const opener = item.querySelector("button[data-action=react]");
    if (opener) opener.setAttribute("aria-expanded", "false");
  }
}

function unask(button) {
  delete button.dataset.confirm;
  button.textContent = "Delete";
  button.setAttribute("aria-label", "Delete your message");
}

function tabbable(item, on) {
  if (!item) return;
  for (const button of item.querySelectorAll(".msg-actions button, .reaction-picker button, .reaction")) {
    button.tabIndex = on ? 0 : -1;
  }
}

function action(name, text, label) {
  const button = document.createElement("button");
  button.type = "button";
  button.tabIndex = -1;
  button.className = "ghost msg-action";
  button.dataset.action = name;
  button.textContent = text;
  button.setAttribute("aria-label", label);
  return button;
}
