"""The ingest writer in its own process, fed raw batches over a pipe.

Theory of operation
-------------------
paho's receive path and the writer share one GIL when they are two threads of one
process. Worse than the CPU they share is the hand-over: paho makes several system calls
per message (reads, the PUBACK, its wake-up socket), and after each one it waits for the
GIL while the writer holds it for up to the switch interval (5 ms). PUBACKs go out late,
the broker's in-flight window fills, and the two threads take turns instead of running
side by side (measured: ``bench/central_ingest.py``, docs/central.md).

So the decode and the transaction run in a child process with its own interpreter. The
MQTT process only queues ``(topic, bytes, received_at)`` and ships whole batches, one
pickle per batch; the child stores each batch in one transaction and sends back what is
left to do after the commit (acks, live-stream notices, other centrals' statuses, and its
counters). The MQTT process publishes the acks when that answer arrives, so an ack still
never leaves before its batch is committed. ::

    MQTT process                                      writer process
    paho thread --deque--> shipper --("batch", raw, live)--> store(): decode, one
                                                              transaction, move marks
    results thread <--("done", BatchResult, stats)----------- (commit)
      publish acks, notify SSE   <--("acks", marks)---------- sweep every interval
                                  --("stop",)--------------->  drain, ("stopped",), exit

The child is started with the ``forkserver`` method (forking a process that already runs
threads can copy a held lock), with this module preloaded, so a start costs a fork, not
an interpreter start-up. If the child dies, the batch it held is lost but was never acked:
the boxes send those events again; the shipper starts a new child for the next batch.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

from pythonjsonlogger.json import JsonFormatter

from central.db.engine import make_engine
from central.ingest.batch import BatchResult, IngestStats, RawMessage
from central.ingest.retries import store_with_retries
from central.ingest.service import IngestWriter
from central.quarantine.retention import QuarantineRetention
from site_model.site import SiteIndex

log = logging.getLogger(__name__)

_context_lock = threading.Lock()
_context: Any = None


def _mp_context() -> Any:
    global _context
    with _context_lock:
        if _context is None:
            context = multiprocessing.get_context("forkserver")
            # Replaces the default ['__main__']: the parent's main script has no business
            # being imported again in the writer.
            context.set_forkserver_preload(["central.ingest.process"])
            _context = context
        return _context


def writer_main(
    batches: Connection,
    results: Connection,
    database_url: str,
    site: SiteIndex,
    sweep_window_s: float,
    sweep_interval_s: float,
    retention: QuarantineRetention | None = None,
    shared: bool = True,
    stream_channel: str | None = None,
) -> None:
    """The child: store each batch, answer with the result; sweep between batches."""
    # JSON lines like its parent `central serve` (parkgrid/logs.py; this package may not
    # import parkgrid's, so the same formatter is named here).
    handler = logging.StreamHandler()
    handler.setFormatter(
        JsonFormatter(
            "{levelname}{name}{message}",
            style="{",
            timestamp="time",
            rename_fields={"levelname": "level", "name": "logger"},
        )
    )
    logging.basicConfig(level=logging.INFO, handlers=[handler])
    engine = make_engine(database_url)
    writer = IngestWriter(
        engine=engine,
        site=site,
        sweep_window_s=sweep_window_s,
        retention=retention,
        shared=shared,
        stream_channel=stream_channel,
    )
    next_sweep = time.monotonic() + sweep_interval_s
    try:
        while True:
            wait = max(0.0, next_sweep - time.monotonic())
            if batches.poll(wait):
                try:
                    message = batches.recv()
                except EOFError:
                    return  # the MQTT process is gone
                if message[0] == "stop":
                    results.send(("stopped",))
                    return
                _, raw, live = message
                writer.stats = IngestStats()
                result = store_with_retries(writer, raw, live)
                results.send(("done", result, writer.stats))
            if time.monotonic() >= next_sweep:
                next_sweep = time.monotonic() + sweep_interval_s
                try:
                    moved = writer.sweep_marks()
                except Exception:
                    log.exception("ack sweep failed")
                    continue
                if moved:
                    results.send(("acks", moved))
    except (BrokenPipeError, EOFError, KeyboardInterrupt):
        return
    finally:
        engine.dispose()


class WriterProcess:
    """The MQTT process's handle on the writer child: ship batches, apply the answers.

    ``writer`` is the MQTT process's own :class:`IngestWriter`: its engine URL, site index
    and sweep window configure the child, and its ``finish`` (publish the acks, notify,
    other centrals' statuses) and ``stats`` receive the child's answers.
    """

    def __init__(
        self,
        writer: IngestWriter,
        *,
        sweep_interval_s: float,
        results_lock: threading.Lock | None = None,
    ) -> None:
        self.writer = writer
        # Held while an answer is applied: the writers of one MQTT process share ``writer``.
        self.results_lock = results_lock or threading.Lock()
        self.sweep_interval_s = sweep_interval_s
        self.database_url = writer.engine.url.render_as_string(hide_password=False)
        self._process: Any = None
        self._batches: Connection | None = None
        self._results_thread: threading.Thread | None = None
        self._stopped = threading.Event()
        self.starts = 0

    def _start(self) -> None:
        context = _mp_context()
        batches_r, batches_w = context.Pipe(duplex=False)
        results_r, results_w = context.Pipe(duplex=False)
        process = context.Process(
            target=writer_main,
            name="central-ingest-writer",
            args=(
                batches_r,
                results_w,
                self.database_url,
                self.writer.site,
                self.writer.sweep_window_s,
                self.sweep_interval_s,
                self.writer.retention,
                self.writer.shared,
                self.writer.stream_channel,
            ),
            daemon=True,
        )
        process.start()
        # The child holds its own copies now; closing ours makes EOF reach the other side
        # when either process dies.
        batches_r.close()
        results_w.close()
        self._process = process
        self._batches = batches_w
        self._stopped = stopped = threading.Event()
        self.starts += 1
        thread = threading.Thread(
            target=self._read_results,
            args=(results_r, stopped),
            name="central-ingest-results",
            daemon=True,
        )
        thread.start()
        self._results_thread = thread
        log.info("ingest writer process %d started", process.pid)

    def _alive(self) -> bool:
        return self._process is not None and self._process.is_alive()

    def ship(self, batch: list[RawMessage], live: bool) -> bool:
        """Hand a batch to the child (starting one if needed); False if it could not."""
        for _ in range(2):
            if not self._alive():
                self._discard()
                self._start()
            assert self._batches is not None
            try:
                self._batches.send(("batch", batch, live))
                return True
            except (OSError, EOFError, ValueError):
                log.exception("the ingest writer process is gone; starting another")
                self._discard()
        log.error("could not hand a batch of %d to a writer; boxes will resend", len(batch))
        return False

    def _read_results(self, results: Connection, stopped: threading.Event) -> None:
        writer = self.writer
        try:
            while True:
                try:
                    message = results.recv()
                except (EOFError, OSError):
                    if not stopped.is_set():
                        log.error("the ingest writer process ended unexpectedly")
                    return
                kind = message[0]
                if kind == "stopped":
                    return
                with self.results_lock:
                    if kind == "done":
                        _, result, stats = message
                        writer.stats.merge(stats)
                        self._finish(writer.finish, result)
                    elif kind == "acks":
                        self._finish(writer.publish_marks, message[1])
        finally:
            stopped.set()
            results.close()

    @staticmethod
    def _finish(apply: Callable[[Any], None], value: BatchResult | dict[str, int]) -> None:
        try:
            apply(value)
        except Exception:  # a listener's failure must not stop the acks that follow
            log.exception("applying an ingest result failed")

    def stop(self, timeout: float = 10.0) -> None:
        """Let the child finish what it holds, wait for its answers, and end it."""
        self._stopped.set()
        if self._batches is not None and self._alive():
            with contextlib.suppress(OSError, ValueError):
                self._batches.send(("stop",))
        if self._results_thread is not None:
            self._results_thread.join(timeout)
        self._discard(timeout)

    def _discard(self, timeout: float = 2.0) -> None:
        process, self._process = self._process, None
        self._stopped.set()
        if self._batches is not None:
            self._batches.close()
            self._batches = None
        if process is not None:
            process.join(timeout)
            if process.is_alive():
                process.kill()
                process.join(timeout)
