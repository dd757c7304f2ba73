"""The box's side of a concentrator replay: ask once per open, take what answers it.

Theory of operation
-------------------
When the box opens a concentrator line (at start and at every re-open) it sends a
``ReplayRequest`` with a fresh request id; a concentrator that keeps a table answers with
one ``StoredUplink`` per sensor it has heard (the uplink plus its age) and a ``ReplayEnd``
carrying how many it sent (docs/protocols/concentrator.md). ``LineReplay`` is that
exchange without I/O, owned by ``SerialLine``:

- ``request(now)`` gives the frame to send and forgets the previous request;
- ``take_stored(frame)`` says whether a stored uplink may go on to the agents: not if its
  request id is not the one outstanding (a late answer to an older request, or a
  concentrator confused) or its ``ReplayEnd`` already came (a line that keeps replaying
  after it said it was done is not believed), and not if that sensor was heard live
  since the request (``heard_live``): a live frame is the newer word;
- ``take_end(frame)`` closes the request and says what to log (a count that does not
  match what arrived means stored frames were lost on the line);
- ``overdue(now)`` is true once, when no ``ReplayEnd`` came within ``answer_within_s``:
  a concentrator with older firmware skips the request as an unknown type, and the box
  goes on with its bay memory (``edge/bay_memory.py``) and the live uplinks, as before.

What the agents do with a stored uplink's age is theirs (``edge/agents/occupancy.py``).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Final

from firmware_protocols.concentrator import ReplayEnd, ReplayRequest, StoredUplink

ANSWER_WITHIN_S: Final = 5.0


@dataclass(slots=True)
class ReplayStats:
    """Counters of one line's replays since the box started."""

    requested: int = 0
    completed: int = 0
    unanswered: int = 0
    stored_taken: int = 0
    stored_superseded: int = 0  # the sensor was heard live after the request
    unknown_request: int = 0  # a stored uplink or end for a request not outstanding
    lost: int = 0  # stored uplinks an end counted that never arrived


class LineReplay:
    """One line's replay requests and their answers (sans-I/O)."""

    def __init__(self, *, answer_within_s: float = ANSWER_WITHIN_S, seed: int | None = None):
        self.answer_within_s = answer_within_s
        self.stats = ReplayStats()
        self._next_id = random.Random(seed).randrange(0x10000)
        self._id: int | None = None
        self._sent_at = 0.0
        self._done = False
        self._said_overdue = False
        self._received = 0
        self._live: set[int] = set()

    @property
    def outstanding(self) -> int | None:
        """The request id being answered, or None."""
        return self._id

    def request(self, now: float) -> ReplayRequest:
        """A new request (the previous one, if any, is abandoned)."""
        self._id = self._next_id
        self._next_id = (self._next_id + 1) & 0xFFFF
        self._sent_at = now
        self._done = False
        self._said_overdue = False
        self._received = 0
        self._live.clear()
        self.stats.requested += 1
        return ReplayRequest(request_id=self._id)

    def heard_live(self, sensor_id: int) -> None:
        if self._id is not None:
            self._live.add(sensor_id)

    def take_stored(self, frame: StoredUplink) -> bool:
        """True if the stored uplink is for the outstanding request, that request is not
        closed by its ``ReplayEnd`` yet, and the uplink is still news."""
        if frame.request_id != self._id or self._done:
            self.stats.unknown_request += 1
            return False
        self._received += 1
        if frame.uplink.sensor_id in self._live:
            self.stats.stored_superseded += 1
            return False
        self.stats.stored_taken += 1
        return True

    def take_end(self, frame: ReplayEnd) -> str | None:
        """Close the outstanding request; what to log, None if not ours."""
        if frame.request_id != self._id or self._done:
            self.stats.unknown_request += 1
            return None
        self._done = True
        self.stats.completed += 1
        missing = max(frame.count - self._received, 0)
        self.stats.lost += missing
        text = f"replay {frame.request_id}: {self._received} stored uplink(s) of {frame.count}"
        if missing:
            text += f", {missing} lost on the line (those bays wait for their sensors)"
        return text

    def overdue(self, now: float) -> bool:
        """True once per request left unanswered past ``answer_within_s``."""
        if self._id is None or self._done or self._said_overdue:
            return False
        if now - self._sent_at < self.answer_within_s:
            return False
        self._said_overdue = True  # said once; a late answer is still taken
        self.stats.unanswered += 1
        return True
