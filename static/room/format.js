// The formatting subset a message may use, built as DOM nodes from its text, never as HTML: **bold**,
// *italic*, `code`, ~~strike~~, "> " quote lines and ``` fenced code blocks. A marker without its pair stays
// as typed. Web addresses become links (linkify.js) wherever the text is not code, and an address is never
// cut by a marker inside it.
import { findLink, linkNodes } from "./linkify.js";

// A fence opens a code block on a line of its own (a language name may follow it) and closes it on another.
const FENCE_OPEN = /^ {0,3}```[^`]*$/u;
const FENCE_CLOSE = /^ {0,3}```\s*$/u;
const QUOTE = /^>[ \t]?/u;
// On one line each. The code span comes first: what is inside it is not formatted (and it neither starts nor
// ends with a backtick, so a lone ``` stays as typed). Bold and strike need text
// that does not start or end with a space, italic too, so "2 * 3 * 4" stays as it is.
const INLINE = /(`+)([^`\n]|[^`\n][^\n]*?[^`\n])\1(?!`)|\*\*(?=\S)([^\n]*?\S)\*\*|~~(?=\S)([^\n]*?\S)~~|\*(?=[^\s*])([^\n]*?[^\s*])\*/gu;
const SPAN_TAGS = [null, null, "code", "strong", "s", "em"];

// The text each formatted element was made from: what an edit starts from.
const sources = new WeakMap();

// Fills element with the formatted text.
export function format(element, text) {
  sources.set(element, text);
  element.replaceChildren(...blocks(text));
}

// The text element was formatted from, or its text when it was not.
export function sourceOf(element) {
  return sources.has(element) ? sources.get(element) : element.textContent;
}

function blocks(text) {
  const lines = text.split("\n");
  const nodes = [];
  let plain = [];
  const endPlain = () => {
    if (plain.length) nodes.push(...inline(plain.join("\n")));
    plain = [];
  };
  for (let i = 0; i < lines.length; i += 1) {
    const close = FENCE_OPEN.test(lines[i]) ? lines.findIndex((line, j) => j > i && FENCE_CLOSE.test(line)) : -1;
    if (close !== -1) {
      endPlain();
      nodes.push(element("pre", [element("code", [document.createTextNode(lines.slice(i + 1, close).join("\n"))])]));
      i = close;
    } else if (QUOTE.test(lines[i])) {
      let end = i;
      while (end < lines.length && QUOTE.test(lines[end])) end += 1;
      const quoted = lines.slice(i, end).map((line) => line.replace(QUOTE, "")).join("\n");
      if (quoted.trim()) {
        endPlain();
        nodes.push(element("blockquote", inline(quoted)));
      } else {
        plain.push(...lines.slice(i, end)); // ">" and nothing else quotes nothing: it stays as typed
      }
      i = end - 1;
    } else {
      plain.push(lines[i]);
    }
  }
  endPlain();
  return nodes;
}

// Spans and links, in the order they start; what lies between is text.
function inline(text) {
  const nodes = [];
  let last = 0;
  while (last < text.length) {
    INLINE.lastIndex = last;
    const span = INLINE.exec(text);
    const link = findLink(text, last);
    if (link && (!span || link.index <= span.index)) {
      nodes.push(...linkNodes(text.slice(last, link.index + link.text.length)));
      last = link.index + link.text.length;
    } else if (span) {
      nodes.push(...linkNodes(text.slice(last, span.index)));
      const group = span.findIndex((part, n) => n > 1 && part !== undefined);
      const inner = span[group];
      nodes.push(element(SPAN_TAGS[group], group === 2 ? [document.createTextNode(inner)] : inline(inner)));
      last = span.index + span[0].length;
    } else {
      nodes.push(...linkNodes(text.slice(last)));
      break;
    }
  }
  return nodes;
}

function element(tag, children) {
  const el = document.createElement(tag);
  el.append(...children);
  return el;
}
