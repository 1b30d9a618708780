// The requests that change a message of the reader's own, and the room's search, through the API
// (docs/protocol.md, "Messages that change" and "Search"): each answer belongs to its request, where a
// socket's error frame would have to be matched to the frame it answers. The tab's token and invite go as
// for any other request of the page (access.js); the browser's author key proves the message is its own.
import { accessHeaders, inviteQuery } from "./access.js";
import { authorKey } from "./author-key.js";

// An answer other than a success: status 0 when the server could not be reached.
export class RequestError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

function messagesPath(room, id) {
  return "/api/rooms/" + encodeURIComponent(room) + "/messages/" + encodeURIComponent(id) + inviteQuery().replace("&", "?");
}

// The message as it now stands.
export function editMessage(room, id, message) {
  return request("PATCH", messagesPath(room, id), { message, author_key: authorKey() });
}

export function deleteMessage(room, id) {
  return request("DELETE", messagesPath(room, id), undefined, { "Author-Key": authorKey() });
}

// { messages (newest first), hasMore }.
export async function search(room, words, before) {
  let path = "/api/rooms/" + encodeURIComponent(room) + "/search?q=" + encodeURIComponent(words) + "&limit=20";
  if (before) path += "&before=" + encodeURIComponent(before);
  const body = await request("GET", path + inviteQuery());
  if (!body || !Array.isArray(body.messages)) throw new RequestError(-1, "the server's answer was not understood");
  const messages = body.messages.filter((msg) => msg && typeof msg.id === "string" &&
    typeof msg.handle === "string" && typeof msg.message === "string" && typeof msg.timestamp === "string");
  return { messages, hasMore: body.has_more === true };
}

async function request(method, path, body, headers = {}) {
  const init = { method, headers: { Accept: "application/json", ...accessHeaders(), ...headers }, cache: "no-store" };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (err) {
    throw new RequestError(0, "the server could not be reached");
  }
  let answer = null;
  if (response.status !== 204) answer = await response.json().catch(() => null);
  if (!response.ok) {
    const reason = answer && typeof answer.error === "string" ? answer.error : "the server answered " + response.status;
    throw new RequestError(response.status, reason);
  }
  return answer;
}
