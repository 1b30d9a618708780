// The messages this browser sent to a room, by id: the ones its author key lets it edit and delete. Kept in
// localStorage, the newest few hundred, so a reload still knows them.
import * as storage from "./storage.js";

const KEEP = 500;

export class OwnMessages {
  constructor(room) {
    this.key = "rooms:own:" + room;
    let ids = [];
    try {
      ids = JSON.parse(storage.load(this.key) || "[]");
    } catch (err) {
      ids = [];
    }
    this.ids = Array.isArray(ids) ? ids.filter((id) => typeof id === "string") : [];
  }

  add(id) {
    if (this.has(id)) return;
    this.ids = [...this.ids, id].slice(-KEEP);
    storage.save(this.key, JSON.stringify(this.ids));
  }

  has(id) {
    return this.ids.includes(id);
  }
}
