// What the server accepts as a handle (rooms/protocol.py, _check_handle), checked before any frame carries
// one. A refused message comes back to the form, but a refused hello or typing frame would be worse: the
// server answers a socket's frames in order with no name on the answer, so its error would be taken for
// the answer to the message in flight, and invalid frames count towards closing the socket.

// Letters that draw nothing: a handle of them alone is no name.
const BLANK_LETTERS = /[\u115f\u1160\u3164\uffa0\u2800]/gu;
// Anything that draws: not a separator, control, format character or combining mark.
const VISIBLE = /[^\p{Z}\p{C}\p{M}]/u;
const CONTROL = /[\p{Cc}\p{Cs}]/u; // controls, and a lone surrogate no store can hold
// Format characters, and others that draw nothing (a grapheme joiner, variation selectors, fillers).
const FORMAT = /[\p{Cf}\p{Default_Ignorable_Code_Point}]/u;
// Scripts whose letters look alike ("а" is Cyrillic): one handle may use only one of them.
const LOOKALIKE_SCRIPTS = [
  ["Latin", /(?=\p{L})\p{Script=Latin}/u],
  ["Cyrillic", /(?=\p{L})\p{Script=Cyrillic}/u],
  ["Greek", /(?=\p{L})\p{Script=Greek}/u],
];

// Why the server would refuse this handle (already trimmed), or null when it would take it.
export function handleProblem(handle, maxChars) {
  const nfc = handle.normalize("NFC");
  if (!VISIBLE.test(nfc.replace(BLANK_LETTERS, ""))) return "Choose a name first.";
  if ([...nfc].length > maxChars) return "A name can be at most " + maxChars + " characters.";
  if (CONTROL.test(nfc)) return "A name cannot contain control characters.";
  if (FORMAT.test(nfc)) return "A name cannot contain invisible formatting characters.";
  const scripts = LOOKALIKE_SCRIPTS.filter(([, letters]) => letters.test(nfc)).map(([name]) => name);
  if (scripts.length > 1) return "A name cannot mix " + scripts.join(" and ") + " letters, which look alike.";
  return null;
}
