"""rooms: a self-hosted real-time chat-room server."""
