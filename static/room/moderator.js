// Whether the reader moderates, and the moderation API (docs/protocol.md, "Moderation") with their token.
//
// The token is either one typed into the page's "Moderate" form, kept in sessionStorage (this tab only) and
// sent only as "Authorization: Bearer" to the API, never in an address, the socket's included; or the tab's
// sign-in token from ?token= (access.js), when the site that issued it made its holder a moderator (mod: true).
// Either way one harmless moderator's request, GET /api/bans, tells whether the server takes it.
import { credentials } from "./access.js";

const TOKEN_KEY = "rooms.moderator-token";

// An answer of the API other than a success: status 0 when the server could not be reached at all.
export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

function load() {
  try {
    return window.sessionStorage.getItem(TOKEN_KEY);
  } catch (err) {
    return null;
  }
}

function save(token) {
  try {
    if (token === null) window.sessionStorage.removeItem(TOKEN_KEY);
    else window.sessionStorage.setItem(TOKEN_KEY, token);
  } catch (err) {
    /* not kept: the moderator signs in again after a reload */
  }
}

// One request with this token; the parsed JSON of a success (null for 204 or no JSON), or throws ApiError.
export async function call(token, method, path, body) {
  const headers = { Accept: "application/json", Authorization: "Bearer " + token };
  const init = { method, headers, credentials: "same-origin", cache: "no-store" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (err) {
    throw new ApiError(0, "The server could not be reached.");
  }
  let answer = null;
  if (response.status !== 204) {
    try {
      answer = await response.json();
    } catch (err) {
      answer = null;
    }
  }
  if (!response.ok) {
    const text = answer && typeof answer.error === "string" ? answer.error : "the server answered " + response.status;
    throw new ApiError(response.status, text);
  }
  return answer;
}

export class Moderator {
  // changed(note) is called whenever the reader starts or stops moderating, or a check is under way; note says
  // why, when the server signed the reader out.
  constructor(changed) {
    this.changed = changed;
    // "out", "checking" or "in"; source: "typed" (the form's token) or "page" (the tab's sign-in token).
    this.state = "out";
    this.source = null;
    this.token = null;
    // A typed token whose check could not be made (the server was not reached): tried again later.
    this.unchecked = load();
  }

  get active() {
    return this.state === "in";
  }

  // The token the reader moderates with posts messages through the API, not the socket, which would need
  // it in its address.
  get postsWithToken() {
    return this.active && this.source === "typed";
  }

  // At start, and again whenever the page gets its connection back while a kept token is unchecked.
  async resume() {
    if (this.state !== "out") return;
    if (this.unchecked) {
      await this.check(this.unchecked, "typed").catch((err) => {
        if (err.status === 401) this.changed("Signed out: the token this tab kept is not a moderator's any more.");
      });
      return;
    }
    const { token } = credentials();
    if (token) await this.check(token, "page").catch(() => {});
  }

  // Signs in with a typed token; throws ApiError when the server refuses it (401) or cannot say.
  async signIn(token) {
    await this.check(token, "typed");
  }

  async check(token, source) {
    this.state = "checking";
    this.changed();
    try {
      await call(token, "GET", "/api/bans");
    } catch (err) {
      this.state = "out";
      // A typed token the server refused is forgotten; one it could not judge is kept for another try.
      if (source === "typed") {
        this.unchecked = err.status === 401 ? null : token;
        save(this.unchecked);
      }
      this.changed();
      throw err;
    }
    this.state = "in";
    this.source = source;
    this.token = token;
    this.unchecked = null;
    if (source === "typed") save(token);
    this.changed();
  }

  // Forgets a typed token. A sign-in token stays the tab's identity: the page only stops using it to moderate.
  signOut(note = "") {
    if (this.source === "typed") save(null);
    this.state = "out";
    this.source = null;
    this.token = null;
    this.unchecked = null;
    this.changed(note);
  }

  // A moderator's request. A 401 means the server no longer takes the token: the reader is signed out.
  async request(method, path, body) {
    if (!this.active) throw new ApiError(401, "Not signed in as a moderator.");
    try {
      return await call(this.token, method, path, body);
    } catch (err) {
      if (err.status === 401) this.signOut("Signed out: the server no longer takes this token as a moderator's.");
      throw err;
    }
  }
}
