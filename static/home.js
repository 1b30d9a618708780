// The home page: open a room by name (checked here against the label rules, so a typo gets a clear
// message instead of a 404 page) and show "last active" times in the reader's own time zone.
"use strict";

(function () {
  // docs/protocol.md: 1 to 50 of A-Z a-z 0-9 _ -, case-sensitive; these are routes, not rooms.
  const LABEL = /^[A-Za-z0-9_-]{1,50}$/;
  const RESERVED = new Set(["new", "api", "chat", "static", "healthz", "metrics"]);

  function labelProblem(label) {
    if (!label) return "Type a room name.";
    if (label.length > 50) return "A room name is at most 50 characters.";
    if (!LABEL.test(label)) {
      const bad = Array.from(new Set(label.replace(/[A-Za-z0-9_-]/g, "")), (c) => (c === " " ? "space" : c));
      return "Use only A–Z, a–z, 0–9, - and _ in a room name (found: " + bad.join(" ") + ").";
    }
    if (RESERVED.has(label)) return "“" + label + "” is reserved; pick another name.";
    return "";
  }

  const form = document.getElementById("open-room");
  const input = document.getElementById("room-label");
  const error = document.getElementById("room-label-error");
  if (form && input && error) {
    const show = (text) => {
      error.textContent = text;
      error.hidden = !text;
      input.setAttribute("aria-invalid", text ? "true" : "false");
    };
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const label = input.value.trim();
      const problem = labelProblem(label);
      show(problem);
      if (problem) input.focus();
      else window.location.assign("/" + label + "/");
    });
    // Once a message is showing, keep it up to date as the reader fixes the name.
    input.addEventListener("input", () => {
      if (!error.hidden) show(labelProblem(input.value.trim()));
    });
  }

  const dayAndTime = new Intl.DateTimeFormat(undefined, {
    weekday: "short", day: "numeric", month: "short", hour: "numeric", minute: "2-digit",
  });
  const timeOnly = new Intl.DateTimeFormat(undefined, { hour: "numeric", minute: "2-digit" });
  for (const el of document.querySelectorAll("time[datetime]")) {
    const when = new Date(el.getAttribute("datetime"));
    if (Number.isNaN(when.getTime())) continue;
    el.textContent = when.toDateString() === new Date().toDateString()
      ? "today " + timeOnly.format(when) : dayAndTime.format(when);
  }
})();
