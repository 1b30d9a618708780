"""The SQL backend's tables: one set on SQLite, PostgreSQL and MySQL/MariaDB.

Tables:

* ``rooms``: one row per label (unique, compared byte for byte), with the running message count and
  last activity the home page's busiest rooms are read from, and ``pruned_through``, the greatest id
  retention has deleted, which tells a reconnecting client that history has a gap.
* ``messages``: the message id is the table's increasing key; ``(room_id, id)`` makes "newest N",
  "before id" and "after id" index range scans, and the unique ``(room_id, client_id)`` is the
  ``client_id`` dedup that outlives the process. A message a moderator deleted stays as a tombstone
  (``deleted`` 1, its handle, text and user emptied) until retention prunes it: see
  ``migrations._migrate_to_4``. ``search_words`` holds the message's words for each engine's full-text
  index (``backends/sql/tokens.py``; on SQLite the FTS5 table ``message_words``, and a message in ASCII
  holds its own text). A change to a message (an edit, a deletion, reactions) is a row too (``deleted``
  2, no search words), so that it takes a position among the ids (``backends/sql/changes.py``).
* ``bans``: the moderators' bans, each with its expiry (``NULL``: until lifted); expired ones are
  deleted when bans are next read or added. ``locked_rooms``: one row per locked label, apart from
  ``rooms``, so that locking a room never writes the room itself.
* ``audit_log``: the moderators' actions, newest ``audit_keep`` kept (``backends/sql/audit.py``); the
  action's details are JSON text.
* ``schema_version``: one row, so a later release can migrate an existing file or database in place
  (``backends/sql/migrations.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import peewee


class RoomTable(peewee.Model):
    """The columns of ``rooms``; each database gets a subclass bound to it (see ``build_schema``)."""

    id = peewee.AutoField()
    label = peewee.CharField(max_length=50, unique=True)
    created = peewee.CharField(max_length=40)
    message_count = peewee.BigIntegerField(default=0, index=True)
    last_active = peewee.CharField(max_length=40, null=True)
    pruned_through = peewee.BigIntegerField(default=0)


class MessageTable(peewee.Model):
    """The columns of ``messages``."""

    id = peewee.BigAutoField()
    # (room_id, id) and (room_id, client_id) both start with room_id: no index of its own.
    room = peewee.ForeignKeyField(RoomTable, on_delete="CASCADE", index=False)
    handle = peewee.TextField()
    message = peewee.TextField()
    timestamp = peewee.CharField(max_length=40)
    client_id = peewee.CharField(max_length=64, null=True)
    # 1: a moderator deleted it. A default in the table itself, as the writer's INSERT does not name it.
    deleted = peewee.SmallIntegerField(default=0, constraints=[peewee.SQL("DEFAULT 0")])
    # The ``sub`` of the token it was sent with (NULL: none), and whether its sender moderates the room.
    # ``user`` is a reserved word in PostgreSQL and MySQL, hence ``user_id``. Defaults in the table, for
    # the rows written before version 5.
    user_id = peewee.TextField(null=True)
    moderator = peewee.BooleanField(default=False, constraints=[peewee.SQL("DEFAULT FALSE")])
    # The message's words as the full-text index reads them (``backends/sql/tokens.py``); NULL for a tombstone
    # and for a change's row.
    # Whatever changes a message's text sets them again, or searches would find its old words.
    search_words = peewee.TextField(null=True)
    # The room's log (``backends/sql/changes.py``). A message: who may change it (never sent), the message
    # it answers, when it was last edited, and its reactions as JSON (each emoji with who reacted). A change
    # takes a row of its own (``deleted`` 2, so no read of messages sees it), for its position in the ids:
    # the message it changed and what it says, as JSON. ``change`` is a keyword in MySQL.
    author = peewee.TextField(null=True)
    reply_to = peewee.BigIntegerField(null=True)
    edited = peewee.CharField(max_length=40, null=True)
    reactions = peewee.TextField(null=True)
    change_of = peewee.BigIntegerField(null=True)
    change_data = peewee.TextField(null=True)


class BanTable(peewee.Model):
    """The columns of ``bans``: exactly one of ``handle`` and ``address``; ``room`` NULL for every room.
    ``created`` and ``expires`` are ISO 8601 UTC with microseconds, so they compare as text."""

    id = peewee.AutoField()
    handle = peewee.TextField(null=True)
    address = peewee.TextField(null=True)
    room = peewee.CharField(max_length=50, null=True)
    reason = peewee.TextField()
    created = peewee.CharField(max_length=40)
    expires = peewee.CharField(max_length=40, null=True)


class LockTable(peewee.Model):
    """The columns of ``locked_rooms``."""

    label = peewee.CharField(max_length=50, primary_key=True)


class AuditTable(peewee.Model):
    """The columns of ``audit_log``: ``room`` NULL for every room, ``reason`` NULL for none; ``at`` as a
    ban's ``created``."""

    id = peewee.BigAutoField()
    at = peewee.CharField(max_length=40)
    actor = peewee.TextField()
    action = peewee.CharField(max_length=16)
    room = peewee.CharField(max_length=50, null=True)
    reason = peewee.TextField(null=True)
    details = peewee.TextField()


class VersionTable(peewee.Model):
    """The one row of ``schema_version``."""

    version = peewee.IntegerField()


@dataclass(frozen=True)
class Schema:
    """The model classes of one database (MySQL needs its own table options, so each backend builds its own)."""

    room: type[RoomTable]
    message: type[MessageTable]
    version: type[VersionTable]
    ban: type[BanTable]
    lock: type[LockTable]
    audit: type[AuditTable]

    @property
    def models(self) -> list[type[peewee.Model]]:
        return [self.room, self.message, self.version, self.ban, self.lock, self.audit]


def build_schema(database: peewee.Database) -> Schema:
    """Model classes bound to ``database`` (queries on other threads pass their own connection)."""
    # Labels and client ids are case- and accent-sensitive; MySQL's default collation is neither.
    settings = (
        ("DEFAULT CHARSET=utf8mb4", "COLLATE=utf8mb4_bin") if isinstance(database, peewee.MySQLDatabase) else None
    )

    class Room(RoomTable):
        class Meta:
            table_name = "rooms"
            table_settings = settings

    class Message(MessageTable):
        room = peewee.ForeignKeyField(Room, on_delete="CASCADE", index=False)

        class Meta:
            table_name = "messages"
            table_settings = settings
            indexes = ((("room", "id"), False), (("room", "client_id"), True))

    class SchemaVersion(VersionTable):
        class Meta:
            table_name = "schema_version"
            table_settings = settings

    class Ban(BanTable):
        class Meta:
            table_name = "bans"
            table_settings = settings

    class Lock(LockTable):
        class Meta:
            table_name = "locked_rooms"
            table_settings = settings

    class Audit(AuditTable):
        class Meta:
            table_name = "audit_log"
            table_settings = settings

    schema = Schema(Room, Message, SchemaVersion, Ban, Lock, Audit)
    for model in schema.models:
        model._meta.set_database(database)
    return schema
