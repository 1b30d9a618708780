// Mentions: a message that names the reader as @handle, in any case, as a whole word ("@ann" mentions ann,
// "@anna" and "ann@example.org" do not). The item gets the class "mention"; the reader's handle can change,
// so every item is looked at again when it does.

// What may not stand right before the @ or right after the handle for it to be a word of its own.
const WORD = "[\\p{L}\\p{M}\\p{N}_]";

// A test for "this text mentions handle", or null for no handle.
export function mentionPattern(handle) {
  if (!handle) return null;
  // Only the characters with a meaning in a pattern: under the "u" flag any other escape is an error.
  const escaped = handle.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
  return new RegExp("(?<!" + WORD + ")@" + escaped + "(?!" + WORD + ")", "iu");
}

export function mentions(pattern, text) {
  return pattern !== null && pattern.test(text);
}

// Marks (or unmarks) one message item.
export function markMention(item, pattern) {
  const text = item.querySelector(".text");
  const mentioned = mentions(pattern, text ? text.textContent : "");
  item.classList.toggle("mention", mentioned);
  return mentioned;
}
