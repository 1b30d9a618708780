// Whether the room is locked (only moderators post): GET /api/rooms/<label>, which answers anyone who may
// enter the room, read when the page loads, at each reconnect, after the server refused one of the reader's
// messages and when a moderator opens the panel; a moderator's Lock or Unlock sets it at once. No frame tells
// of a change, so between those moments what is shown may be behind what another moderator did.
import { accessHeaders, inviteQuery } from "./access.js";

export class RoomLock {
  // changed() after every change of what is known.
  constructor(room, changed) {
    this.room = room;
    this.changed = changed;
    this.chip = document.getElementById("room-locked");
    // true, false, or null while the server has not told (or cannot: an older server).
    this.locked = null;
    this.asking = null;
  }

  // Asks the server; one request at a time. Failures leave what was known.
  refresh() {
    if (this.asking) return this.asking;
    const invite = inviteQuery(); // "&invite=...": this URL has no query of its own
    const url = "/api/rooms/" + encodeURIComponent(this.room) + (invite ? "?" + invite.slice(1) : "");
    this.asking = fetch(url, { headers: { Accept: "application/json", ...accessHeaders() }, cache: "no-store" })
      .then((response) => (response.ok ? response.json() : null))
      .then((body) => {
        if (body && typeof body.locked === "boolean") this.set(body.locked);
      })
      .catch(() => {})
      .finally(() => {
        this.asking = null;
      });
    return this.asking;
  }

  set(locked) {
    this.locked = locked;
    this.chip.hidden = locked !== true;
    this.changed();
  }
}
