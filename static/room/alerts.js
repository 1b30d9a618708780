// Desktop notifications of mentions. Permission is asked only when the reader presses "Notify me of
// mentions" (never on load), the choice is remembered for every room, and a notification is raised only
// while the tab is hidden: a reader looking at the room sees the highlight instead.
import * as storage from "./storage.js";

const KEY = "rooms:notify-mentions";
const BODY_CHARS = 200;

export class MentionAlerts {
  constructor(button, room) {
    this.button = button;
    this.room = room;
    this.enabled = false;
    // Without the API (some phones, an insecure origin) the button stays hidden.
    if (!("Notification" in window)) return;
    this.enabled = storage.load(KEY) === "on" && Notification.permission === "granted";
    button.hidden = false;
    button.addEventListener("click", () => this.toggle());
    this.render();
  }

  async toggle() {
    if (Notification.permission === "denied") return;
    if (this.enabled) {
      this.enabled = false;
    } else {
      const permission = Notification.permission === "granted" ? "granted" : await Notification.requestPermission();
      this.enabled = permission === "granted";
    }
    storage.save(KEY, this.enabled ? "on" : null);
    this.render();
  }

  render() {
    const denied = Notification.permission === "denied";
    this.button.setAttribute("aria-pressed", String(this.enabled));
    this.button.setAttribute("aria-disabled", String(denied));
    if (denied) {
      this.button.textContent = "Notifications blocked";
    } else {
      // On a narrow screen the end is hidden from sight but kept in the button's name.
      const rest = document.createElement("span");
      rest.className = "notify-rest";
      rest.textContent = "\u00a0of mentions";
      this.button.replaceChildren("Notify me", rest);
    }
    this.button.title = denied ? "This browser blocks notifications from this site; its site settings can allow them." :
      this.enabled ? "On: a mention raises a notification while this tab is hidden. Press to turn off." : "";
  }

  // A message that mentions the reader arrived.
  mentioned(msg) {
    if (!this.enabled || document.visibilityState !== "hidden" || Notification.permission !== "granted") return;
    const notification = new Notification(msg.handle + " mentioned you in #" + this.room, {
      body: msg.message.slice(0, BODY_CHARS),
      tag: "rooms:" + this.room + ":" + msg.id,
    });
    notification.addEventListener("click", () => {
      window.focus();
      notification.close();
    });
  }
}
