// Web addresses in a message become links. Only http:// and https://: the pattern cannot match another
// scheme (javascript:, data:, ...), and each match is parsed again before it becomes an href. Everything is
// built as DOM nodes, so what people typed stays text.

const URL_LIKE = /\bhttps?:\/\/[^\s<>"]+/giu;
// Punctuation that ends a sentence around an address rather than the address itself.
const TRAILING = /[.,;:!?'"*_~\]}>»”’…]$/u;

// The first web address in text at or after `from`: { index, text, href }, or null.
export function findLink(text, from = 0) {
  URL_LIKE.lastIndex = from;
  for (let match = URL_LIKE.exec(text); match; match = URL_LIKE.exec(text)) {
    const address = trimmed(match[0]);
    const href = webAddress(address);
    if (href) return { index: match.index, text: address, href };
  }
  return null;
}

// Text as text nodes and links.
export function linkNodes(text) {
  const nodes = [];
  let last = 0;
  for (let found = findLink(text); found; found = findLink(text, last)) {
    if (found.index > last) nodes.push(document.createTextNode(text.slice(last, found.index)));
    nodes.push(link(found.href, found.text));
    last = found.index + found.text.length;
  }
  if (last < text.length) nodes.push(document.createTextNode(text.slice(last)));
  return nodes;
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
