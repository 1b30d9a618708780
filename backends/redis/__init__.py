"""The Redis backend (``backend.RedisBackend``) and its parts."""
