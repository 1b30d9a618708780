"""Everything Tornado: the application and its routes, the handlers, the HTTP server and how it accepts
and closes connections, the keepalive timer and the writer of frames to a socket's stream."""
