"""A lot's history from rollups: per-minute and per-hour count changes and the bays'
stays, kept at ingest in the batch's transaction (``rollups``), read by the history and
dwell endpoints (``read``), rebuilt from raw events for a range (``rollups.rebuild``), and
kept for good while raw events age out (``retention``). docs/scale.md, "History".
"""
