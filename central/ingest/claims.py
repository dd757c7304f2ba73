"""What central believes of a box's word about its own seq line.

A box's events move its ack watermark, and the box deletes its outbox up to that watermark,
so a false claim makes a box throw away events central never stored. The wire format
already refuses an ``events_dropped`` range that does not end below the reporting event's
own seq (``Event``); this module holds the checks that need central's records:

* **A dropped range must fit in the box's outbox.** The box's last birth says how many bytes
  its event lane may hold (``health.outbox.event.cap_bytes``); no event body encodes to
  fewer than ``MIN_EVENT_BODY_BYTES``, so one overflow cannot drop more seqs than
  ``cap_bytes // MIN_EVENT_BODY_BYTES``. A longer range is refused (quarantined with the
  reason, the watermark stays). Without a birth on record only the own-seq bound applies.
* **A seq central holds must come back with the same event_id.** A repeat of a stored seq
  is normal (a resend after a lost ack) and is dropped; a repeat carrying *another*
  event_id is a different event under a used number: a box whose outbox was recreated
  behind central's watermark, or a forgery. Counting it as a duplicate would lose it
  silently, so it is quarantined and recorded as a site problem.
* **A line's first seq must leave the box room to renumber.** An event of a new seq line
  moves the watermark to ``line_from - 1`` (``central.ingest.lines``); a box's real line
  then renumbers above it, and a box renumbers only while ``SEQ_HEADROOM`` seqs stay free
  at the top. A line starting within ``2 * SEQ_HEADROOM`` of the top (2^63-1) is no box's:
  refused, so one forged event cannot leave the box's real line held back for good.

Pure functions over plain values, so the rules are tested on their own.
"""

from __future__ import annotations

import json
from typing import Final

from firmware_protocols.uplink import EventsDropped
from firmware_protocols.uplink.models import MAX_SEQ, SEQ_HEADROOM

MIN_EVENT_BODY_BYTES: Final = 16
"""No uplink event body encodes to fewer bytes (``{"kind":"x"}`` alone is 12 and every
kind carries more fields), so a lane of N bytes holds at most N // 16 events."""


def outbox_capacity(status_json: str | None) -> int | None:
    """How many events the box's event lane can hold, from its last birth; None if unknown."""
    if not status_json:
        return None
    try:
        cap = json.loads(status_json)["health"]["outbox"]["event"]["cap_bytes"]
    except (ValueError, KeyError, TypeError):
        return None
    return capacity_of(cap) if isinstance(cap, int) and not isinstance(cap, bool) else None


def capacity_of(cap_bytes: int) -> int:
    """Events an event lane of ``cap_bytes`` can hold at most (a box's config never allows
    less than 64 KiB, so a birth claiming 0 makes every drop report implausible)."""
    return max(0, cap_bytes) // MIN_EVENT_BODY_BYTES


def implausible_drop(body: EventsDropped, capacity: int | None) -> str | None:
    """Why a dropped range cannot be true, or None if it can."""
    length = body.last_seq - body.first_seq + 1
    if capacity is not None and length > capacity:
        return (
            f"events_dropped range {body.first_seq}..{body.last_seq} ({length} seqs) is longer "
            f"than the box's outbox can hold ({capacity} events at most, from the event lane's "
            "cap in its birth); the watermark does not pass it"
        )
    return None


LINE_FROM_MAX: Final = MAX_SEQ - 2 * SEQ_HEADROOM + 1
"""The highest first seq central believes of a line: the watermark it sets stays at least
``2 * SEQ_HEADROOM`` below the top, so any real line (which keeps ``SEQ_HEADROOM`` free
above its last seq) can still be renumbered above it."""


def implausible_line(line_from: int | None) -> str | None:
    """Why an event's seq line cannot be a box's, or None if it can (an event below its
    line's start is refused by the wire format already)."""
    if line_from is None:
        return None
    if line_from > LINE_FROM_MAX:
        return (
            f"line_from {line_from} starts a seq line within {2 * SEQ_HEADROOM} seqs of the "
            f"top ({MAX_SEQ}), where no box renumbers: not taken, the watermark stays"
        )
    return None


def replayed_seq(seq: int, held_event_id: str, event_id: str) -> str:
    """The reason for a stored seq sent again as another event."""
    return (
        f"seq {seq} is already held as event {held_event_id}; this is another event "
        f"({event_id}) under the same seq (an outbox recreated behind central's watermark, "
        "or a forgery): not counted as a repeat, not stored"
    )
