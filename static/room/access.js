// A room's credentials, kept for this tab. A token (?token=: who the reader is, from the site that sent them
// here) and an invite (?invite=: this room only) arrive in the address. They are kept in sessionStorage (this tab
// only, gone when it closes) and taken out of the address bar at once, so that they are not bookmarked, copied
// with the link or left in the history. The socket (connection.js) and API calls send them from here; the page
// itself never holds them in its HTML.
//
// Reloaded without them, a room answers with the sign-in page (401) or, if private, "not found" (404). Those pages
// load this module too: it asks once more with what the tab kept, and forgets what was refused.

const TOKEN_KEY = "rooms.token";
const INVITE_PREFIX = "rooms.invite.";
const ROOM_PATH = /^\/([A-Za-z0-9_-]{1,50})\/$/;

const room = (ROOM_PATH.exec(window.location.pathname) || [])[1] || null;
const params = new URLSearchParams(window.location.search);
const given = { token: params.get("token"), invite: params.get("invite") };

// sessionStorage can be disabled or throw in a private window: then the page works until it is reloaded.
function load(key) {
  try {
    return window.sessionStorage.getItem(key);
  } catch (err) {
    return null;
  }
}

function save(key, value) {
  try {
    if (value === null) window.sessionStorage.removeItem(key);
    else window.sessionStorage.setItem(key, value);
  } catch (err) {
    /* not kept: a reload then needs the link again */
  }
}

// What this tab holds for the room it shows: { token, invite }, each a string or null.
export function credentials() {
  return { token: load(TOKEN_KEY), invite: room === null ? null : load(INVITE_PREFIX + room) };
}

// "&token=...&invite=..." for the socket's URL (which already has a query), or "" when the tab holds neither.
export function accessQuery() {
  const { token, invite } = credentials();
  const query = new URLSearchParams();
  if (token) query.set("token", token);
  if (invite) query.set("invite", invite);
  const text = query.toString();
  return text ? "&" + text : "";
}

// The headers of an API request: the token as Authorization: Bearer.
export function accessHeaders() {
  const { token } = credentials();
  return token ? { Authorization: "Bearer " + token } : {};
}

// "&invite=..." for an API request's URL (which already has a query), or "": the API takes the invite there.
export function inviteQuery() {
  const { invite } = credentials();
  return invite ? "&invite=" + encodeURIComponent(invite) : "";
}

function removeFromAddress() {
  if (given.token === null && given.invite === null) return;
  params.delete("token");
  params.delete("invite");
  const query = params.toString();
  const url = window.location.pathname + (query ? "?" + query : "") + window.location.hash;
  window.history.replaceState(window.history.state, "", url);
}

function keep() {
  if (given.token) save(TOKEN_KEY, given.token);
  if (given.invite) save(INVITE_PREFIX + room, given.invite);
  removeFromAddress();
}

function refused() {
  // First, once: ask again with what the tab kept and the address lacks.
  const kept = credentials();
  const retry = new URLSearchParams(params);
  if (given.token === null && kept.token) retry.set("token", kept.token);
  if (given.invite === null && kept.invite) retry.set("invite", kept.invite);
  if (retry.toString() !== params.toString()) {
    window.location.replace(window.location.pathname + "?" + retry.toString() + window.location.hash);
    return;
  }
  // Asked with all there is and still refused: what of it the tab kept is no good (any more). A 401 refuses the
  // token; a 404 came past the token (or needed none), so it is the invite that did not let the reader in.
  if (document.body.classList.contains("page-signin")) {
    if (given.token !== null && given.token === kept.token) save(TOKEN_KEY, null);
    // A 401 did not judge the invite: it is kept for when the reader comes back signed in.
    if (given.invite) save(INVITE_PREFIX + room, given.invite);
  } else if (given.invite !== null && given.invite === kept.invite) {
    save(INVITE_PREFIX + room, null);
  }
  removeFromAddress();
}

if (room !== null) {
  if (document.getElementById("chat")) keep();
  else if (document.body.classList.contains("page-error")) refused();
}
