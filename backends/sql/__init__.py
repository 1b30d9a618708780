"""The SQL backend: SQLite, PostgreSQL and MySQL/MariaDB through peewee (see ``backend.py``)."""
