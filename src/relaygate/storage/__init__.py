"""Persistence: engine (SQLite default, PostgreSQL), tables, named queries, migrations, group commit."""
