"""The violation ledger: rules over captures, a hash-chained append-only store, review."""
