"""The store: one schema (``schema``), the engine and its few dialect differences
(``engine``, the only module that knows SQLite from PostgreSQL), and migrations."""
