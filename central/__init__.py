"""central: the aggregator (ingest, store, API, dashboard, ledger, cases)."""
