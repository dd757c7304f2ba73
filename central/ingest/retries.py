"""Store a batch with retries: a failing batch is tried again with back-off, then dropped.

Dropping loses nothing: its events were never acked, so the boxes send them again. A full
disk is recognised and said once in plain words.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from typing import Protocol

from central.ingest.batch import BatchResult, IngestStats, RawMessage

log = logging.getLogger(__name__)


class BatchStore(Protocol):
    """What ``store_with_retries`` needs of a writer (``IngestWriter`` is one)."""

    stats: IngestStats

    def store(self, raw: Sequence[RawMessage], *, live: bool | None = None) -> BatchResult: ...


def is_disk_full(exc: BaseException) -> bool:
    """The store refused a write for want of space (SQLite SQLITE_FULL, PostgreSQL 53100)."""
    orig = getattr(exc, "orig", exc)
    if getattr(orig, "sqlite_errorname", None) == "SQLITE_FULL":
        return True
    if getattr(orig, "sqlstate", None) == "53100":  # disk_full
        return True
    text = str(orig).lower()
    return "database or disk is full" in text or "no space left on device" in text


_store_full = threading.Event()  # per process: log the full disk once, and its end once


def store_with_retries(
    writer: BatchStore, raw: Sequence[RawMessage], live: bool | None = None
) -> BatchResult:
    """``writer.store`` tried five times with back-off; a batch that keeps failing is dropped.

    Dropping loses nothing: its events were never acked, so the boxes send them again. A
    full disk is said once in plain words (not a traceback per attempt), shown as the
    ``parkgrid_central_ingest_store_full`` gauge, and its end is logged once.
    """
    for attempt in range(1, 6):
        try:
            result = writer.store(raw, live=live)
        except Exception as exc:
            writer.stats.errors += 1
            if is_disk_full(exc):
                writer.stats.store_full = True
                if not _store_full.is_set():
                    _store_full.set()
                    log.error(
                        "central's database is full (%s): ingest is not storing or acking "
                        "events; the boxes keep them and send them again when space returns",
                        getattr(exc, "orig", exc),
                    )
            else:
                log.exception("ingest batch of %d failed (attempt %d)", len(raw), attempt)
            time.sleep(min(0.2 * 2**attempt, 5))
            continue
        writer.stats.store_full = False
        if _store_full.is_set():
            _store_full.clear()
            log.warning("central's database has space again: ingest is storing and acking")
        return result
    if writer.stats.store_full:
        writer.stats.store_full_batches += 1
    log.error("dropping a batch of %d after 5 failures; boxes will resend", len(raw))
    return BatchResult()
