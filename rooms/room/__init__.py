"""The room layer: the one door between the web layer and the backend (the hub), each socket's session,
the local fan-out, presence, typing and deletions, moderation in force and the rate policy. Nothing here
imports Tornado (``tests/test_layers.py`` holds it to that)."""
