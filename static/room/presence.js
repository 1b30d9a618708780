// Who is in the room, from the server's presence frames: "3 online: ann, bob" in the header, the full list
// behind it (a <details>, so it opens by keyboard too), and who joined or left between two frames.

export class Presence {
  // isOwn(handle) says whether a handle is the reader's own; changed(handle, "joined" | "left") is called for
  // everyone else who came or went.
  constructor(isOwn, changed) {
    this.isOwn = isOwn;
    this.changed = changed;
    this.box = document.getElementById("presence");
    this.summary = document.getElementById("presence-summary");
    this.list = document.getElementById("presence-list");
    // The handles of the last frame on this socket; null until its first frame, which tells how the room is,
    // not who just came: a page that connects (or reconnects) does not see everyone "join".
    this.handles = null;
    this.online = 0;

    // A <details> does not close on Escape by itself, nor when the reader clicks elsewhere.
    this.box.addEventListener("keydown", (event) => {
      if (event.key === "Escape" && this.box.open) {
        this.box.open = false;
        this.summary.focus();
      }
    });
    document.addEventListener("click", (event) => {
      if (this.box.open && !this.box.contains(event.target)) this.box.open = false;
    });
  }

  // A new socket: its first frame starts afresh.
  connected() {
    this.handles = null;
    delete this.box.dataset.stale;
  }

  // The socket went: what is shown may be out of date until the next one's first frame.
  disconnected() {
    this.box.dataset.stale = "true";
  }

  // A presence frame: {"online": N, "handles": [...]}.
  receive(frame) {
    if (typeof frame.online !== "number" || !Array.isArray(frame.handles)) return;
    const handles = frame.handles.filter((handle) => typeof handle === "string");
    if (this.handles !== null) {
      const before = new Set(this.handles);
      const now = new Set(handles);
      for (const handle of handles) if (!before.has(handle) && !this.isOwn(handle)) this.changed(handle, "joined");
      for (const handle of this.handles) if (!now.has(handle) && !this.isOwn(handle)) this.changed(handle, "left");
    }
    this.handles = handles;
    this.online = frame.online;
    this.render();
  }

  // Also when the reader's own handle changed, which the list marks.
  render() {
    if (this.handles === null) return;
    const handles = this.handles;
    const summary = [this.online + " online"];
    handles.forEach((handle, index) => summary.push(index ? ", " : ": ", isolated(handle)));
    this.summary.replaceChildren(...summary);
    this.list.replaceChildren(
      ...handles.map((handle) => {
        const item = document.createElement("li");
        item.append(isolated(handle));
        if (this.isOwn(handle)) {
          const you = document.createElement("span");
          you.className = "you";
          you.textContent = " (you)";
          item.append(you);
        }
        return item;
      }),
    );
    if (!handles.length) {
      const item = document.createElement("li");
      item.className = "nobody";
      item.textContent = "No one here has chosen a name yet.";
      this.list.append(item);
    }
    this.box.hidden = false;
  }
}

// A handle in its own direction, so that a right-to-left name cannot reorder the list around it.
export function isolated(handle) {
  const span = document.createElement("span");
  span.className = "who";
  span.dir = "auto";
  span.textContent = handle;
  return span;
}
