"""Hostile clients: the broker configuration parkgrid generates, TLS, the API, the ledger."""
