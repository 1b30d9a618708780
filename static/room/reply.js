// A reply shows a quote of the message it answers above its text: who, and the first words. The quote is a
// button: it takes the reader to that message, loading older ones until it is there.

const EXCERPT_CHARS = 120;

// Puts (or refreshes) the quote in an item with data-reply-to; find(id) is the answered item, if shown.
export function showReplyQuote(item, find) {
  const id = item.dataset.replyTo;
  let quote = item.querySelector(":scope > .reply-quote");
  if (!id) {
    if (quote) quote.remove();
    return;
  }
  if (!quote) {
    quote = document.createElement("button");
    quote.type = "button";
    quote.className = "reply-quote";
    item.querySelector(".meta").before(quote);
  }
  quote.dataset.jump = id;
  const answered = find(id);
  const who = document.createElement("span");
  who.className = "who";
  who.dir = "auto";
  const said = document.createElement("span");
  said.className = "reply-excerpt";
  said.dir = "auto";
  if (answered) {
    who.textContent = answered.dataset.handle || "";
    said.textContent = excerpt(answered.querySelector(".text").textContent);
  } else {
    said.textContent = "an earlier message";
  }
  quote.replaceChildren("↪ ", who, answered ? ": " : "", said);
  quote.setAttribute("aria-label", "In reply to " + (answered ? who.textContent + ": " : "") + said.textContent +
    ". Show it");
}

export function excerpt(text) {
  const oneLine = text.replace(/\s+/g, " ").trim();
  return oneLine.length > EXCERPT_CHARS ? oneLine.slice(0, EXCERPT_CHARS - 1) + "…" : oneLine;
}
