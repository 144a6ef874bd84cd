"""Persistence: tables, the connection handling of SQLite and PostgreSQL, queries, migrations."""
