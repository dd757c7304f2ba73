"""Why the outbox refuses a watermark: structured errors with the numbers involved."""

from __future__ import annotations

from firmware_protocols.uplink.models import MAX_SEQ, SEQ_HEADROOM

__all__ = ["SEQ_HEADROOM", "AckBeyondOutbox", "SeqLineFull"]
# ``advance_past`` refuses a watermark that would leave fewer than SEQ_HEADROOM seqs above
# the renumbered line (the constant is the wire's: central bounds a line's start by it).


class AckBeyondOutbox(ValueError):
    """Central's ack names seqs this outbox never committed, so central cannot hold them."""

    def __init__(self, acked_seq: int, last_seq: int) -> None:
        self.acked_seq = acked_seq
        self.last_seq = last_seq
        super().__init__(
            f"ack watermark {acked_seq} is above this outbox's last committed seq {last_seq}: "
            "central cannot hold events that were never sent; nothing deleted"
        )


class SeqLineFull(ValueError):
    """``advance_past`` would push the seq line past (or too near) its top, 2**63-1."""

    def __init__(self, acked_seq: int, last_seq: int) -> None:
        self.acked_seq = acked_seq
        self.last_seq = last_seq
        super().__init__(
            f"watermark {acked_seq} leaves fewer than {SEQ_HEADROOM} seqs above this outbox's "
            f"{last_seq} events before the top of the seq line ({MAX_SEQ}); not renumbered"
        )
