// A polite live region that tells screen-reader users of new messages from others, briefly: "ann: hello".
// Messages that arrive together (a reconnect's catch-up) are told as one line, not read out one by one.

const GATHER_MS = 300;
const TOLD_ONE_BY_ONE = 3;
const TEXT_CHARS = 140;
// Lines kept in the region: enough for a screen reader to catch up, not a second copy of the log.
const KEEP = 3;

export class Announcer {
  constructor(region) {
    this.region = region;
    this.pending = [];
    this.timer = null;
  }

  message(handle, text) {
    this.pending.push(handle + ": " + short(text));
    if (!this.timer) this.timer = setTimeout(() => this.flush(), GATHER_MS);
  }

  flush() {
    this.timer = null;
    const lines = this.pending.length <= TOLD_ONE_BY_ONE ? this.pending :
      [this.pending.length + " new messages; the last, " + this.pending[this.pending.length - 1]];
    this.pending = [];
    for (const line of lines) {
      const p = document.createElement("p");
      p.textContent = line;
      this.region.append(p);
    }
    while (this.region.childElementCount > KEEP) this.region.firstElementChild.remove();
  }
}

function short(text) {
  const oneLine = text.replace(/\s+/g, " ").trim();
  return oneLine.length > TEXT_CHARS ? oneLine.slice(0, TEXT_CHARS - 1) + "…" : oneLine;
}
