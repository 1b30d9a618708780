"""Who a request is and where it may go: credentials (tokens, invites), the identity a message is sent
as, room patterns, and client addresses as limits and bans count them. No Tornado here."""
