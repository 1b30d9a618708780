// While the tab is hidden, its title counts the new messages from others: "(3) lobby · rooms". Seeing the
// tab again resets it.

export class UnreadTitle {
  constructor() {
    this.title = document.title;
    this.count = 0;
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState !== "hidden") this.reset();
    });
  }

  // A new message from someone else arrived.
  arrived() {
    if (document.visibilityState !== "hidden") return;
    this.count += 1;
    document.title = "(" + this.count + ") " + this.title;
  }

  reset() {
    if (!this.count) return;
    this.count = 0;
    document.title = this.title;
  }
}
