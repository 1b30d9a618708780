// The log by keyboard: with the focus on the log or a message in it, ↑ and ↓ go from message to message
// (↑ from the log itself starts at the newest), and Tab then reaches that message's buttons.

export function messagesByKeyboard(log, chat) {
  log.addEventListener("keydown", (event) => {
    if (event.key !== "ArrowUp" && event.key !== "ArrowDown") return;
    const from = event.target === log ? null : event.target.closest("#chat > li[data-id]");
    if (event.target !== log && event.target !== from) return; // a button or field inside keeps its keys
    const items = [...chat.querySelectorAll(":scope > li[data-id]")];
    if (!items.length) return;
    const at = from ? items.indexOf(from) : items.length;
    const next = items[Math.min(items.length - 1, Math.max(0, at + (event.key === "ArrowUp" ? -1 : 1)))];
    if (!next || next === from) return;
    event.preventDefault();
    next.tabIndex = -1;
    next.focus();
    next.scrollIntoView({ block: "nearest" });
  });
}
