// Web addresses in a message become links. Only http:// and https://: the pattern cannot match another
// scheme (javascript:, data:, ...), and each match is parsed again before it becomes an href. Everything is
// built as DOM nodes from the element's own text, so what people typed stays text.

const URL_LIKE = /\bhttps?:\/\/[^\s<>"]+/giu;
// Punctuation that ends a sentence around an address rather than the address itself.
const TRAILING = /[.,;:!?'"*_~\]}>»”’…]$/u;

// Replaces the element's text with text nodes and links; an element without an address is left as it is.
export function linkify(element) {
  const text = element.textContent;
  const parts = [];
  let last = 0;
  for (const match of text.matchAll(URL_LIKE)) {
    const address = trimmed(match[0]);
    const href = webAddress(address);
    if (!href) continue;
    if (match.index > last) parts.push(document.createTextNode(text.slice(last, match.index)));
    parts.push(link(href, address));
    last = match.index + address.length;
  }
  if (!parts.length) return;
  if (last < text.length) parts.push(document.createTextNode(text.slice(last)));
  element.replaceChildren(...parts);
}

// Drops what trails an address: "see https://example.org/a." links to /a. A closing bracket stays when
// the address opened one itself, as in https://en.wikipedia.org/wiki/Tornado_(web_server).
function trimmed(address) {
  for (;;) {
    if (TRAILING.test(address)) {
      address = address.slice(0, -1);
    } else if (address.endsWith(")") && count(address, "(") < count(address, ")")) {
      address = address.slice(0, -1);
    } else {
      return address;
    }
  }
}

function count(text, char) {
  return text.split(char).length - 1;
}

// The parsed address when it is an http(s) address with a host; else null.
function webAddress(address) {
  try {
    const url = new URL(address);
    return (url.protocol === "http:" || url.protocol === "https:") && url.hostname ? url.href : null;
  } catch (err) {
    return null;
  }
}

function link(href, text) {
  const a = document.createElement("a");
  a.href = href;
  a.rel = "noopener noreferrer";
  a.target = "_blank";
  a.textContent = text;
  return a;
}
