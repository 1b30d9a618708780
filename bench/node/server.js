// The Node.js comparison server: bench/baseline_server.py's broadcast written on `ws` 8.
//
// A map of rooms to client sets; per message: JSON.parse, add a timestamp, JSON.stringify once, send to
// each client of the room. No rate limit, no history, no bound on write buffers. It answers on the path
// rooms and the baseline answer on (/chat/<room>/, any query), so the load generator needs no switch.
//
// node bench/node/server.js --port 8100 [--host 127.0.0.1]

"use strict";

const http = require("node:http");
const { WebSocketServer } = require("ws");

function option(name, fallback) {
  const index = process.argv.indexOf(name);
  return index >= 0 ? process.argv[index + 1] : fallback;
}

const host = option("--host", "127.0.0.1");
const port = Number(option("--port", "8100"));
const ROOM_PATH = /^\/chat\/([^/?]+)\/?(?:\?.*)?$/;
const rooms = new Map();

const server = http.createServer((request, response) => {
  response.writeHead(404).end();
});
// perMessageDeflate is off by default on a ws server, as it is on Tornado's.
const sockets = new WebSocketServer({ noServer: true });

server.on("upgrade", (request, socket, head) => {
  const match = ROOM_PATH.exec(request.url);
  if (match === null) {
    socket.destroy();
    return;
  }
  sockets.handleUpgrade(request, socket, head, (ws) => join(ws, decodeURIComponent(match[1])));
});

function join(ws, room) {
  if (!rooms.has(room)) rooms.set(room, new Set());
  rooms.get(room).add(ws);
  ws.on("message", (data) => {
    let message;
    try {
      message = JSON.parse(data);
    } catch {
      return;
    }
    message.timestamp = new Date().toISOString();
    const text = JSON.stringify(message);
    for (const member of rooms.get(room) ?? []) {
      if (member.readyState === 1) member.send(text);
    }
  });
  ws.on("close", () => {
    const members = rooms.get(room);
    if (members === undefined) return;
    members.delete(ws);
    if (members.size === 0) rooms.delete(room);
  });
  ws.on("error", () => ws.terminate());
}

function stop() {
  sockets.close();
  for (const ws of sockets.clients) ws.terminate();
  server.close(() => process.exit(0));
}
process.on("SIGTERM", stop);
process.on("SIGINT", stop);

server.listen(port, host);
