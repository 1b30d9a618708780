"""The thin Tornado handlers: decode the request, call the room layer once, map its answer to the wire."""
