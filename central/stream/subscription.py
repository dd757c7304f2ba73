"""What one live-stream client asked for, and which figure a notice is (pure, no I/O).

A client says in the stream's query string what its page shows (docs/central.md, "The
live stream"): ``kinds=lot,bay`` (the notice kinds it handles; absent: every kind, empty:
none) and ``lots=P1,P2`` (the lots it shows; absent: every lot). A notice about a place
(it names a ``lot_id`` or a ``zone_id``) reaches a client with ``lots`` only if its lot is
listed; a notice about a box (``box_id``, no place: box, sign, command reply, alert) only
if the box serves a listed lot; the rest (cases, the ledger, ...) by kind alone.

``figure_key`` names the figure a notice sets (a lot's counts, a bay's state, a sign's,
a zone's, a box's link): within a coalescing window only the latest notice of each figure
is sent. Notices that are not a figure (alerts, cases, replies) each stand alone.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from central.errors import Invalid

# kind -> the notice field that names its figure
FIGURES = {
    "lot": "lot_id",
    "bay": "bay_id",
    "bay_changed": "bay_id",
    "sign": "sign_id",
    "zone": "zone_id",
    "box": "box_id",
}
# The notice fields that name a thing of a site file (site_model/county.py), or its town.
PLACE_FIELDS = ("lot_id", "zone_id", "bay_id", "box_id", "sign_id", "camera_id", "grid_id", "town")
KIND = re.compile(r"[a-z][a-z_]{0,31}")
MAX_ITEMS = 200  # kinds or lots one subscription may name


def place_ids(notice: dict[str, Any]) -> tuple[str, ...]:
    """The ids of the site-file things (or the town) a notice names."""
    return tuple(str(notice[f]) for f in PLACE_FIELDS if notice.get(f) is not None)


def figure_key(notice: dict[str, Any]) -> tuple[str, str] | None:
    """``(kind, id)`` of the figure this notice sets, or None if it stands alone."""
    kind = str(notice.get("type", ""))
    field = FIGURES.get(kind)
    if field is None:
        return None
    ident = notice.get(field)
    return (kind, str(ident)) if ident is not None else None


@dataclass(frozen=True)
class Subscription:
    kinds: frozenset[str] | None = None  # None: every kind
    lots: frozenset[str] | None = None  # None: every lot
    boxes: frozenset[str] | None = None  # the boxes of ``lots`` (None with it)
    # A county town's stream: every id its site file defines (None: the whole deployment).
    # A notice naming none of them (a case sweep, a ledger entry) is not the town's.
    places: frozenset[str] | None = None

    def in_town(self, notice: dict[str, Any]) -> bool:
        return self.holds_all(place_ids(notice))

    def holds_all(self, ids: tuple[str, ...]) -> bool:
        """Whether ids (``place_ids`` of a notice) are all of this stream's town."""
        if self.places is None:
            return True
        return bool(ids) and all(i in self.places for i in ids)

    def wants(self, notice: dict[str, Any]) -> bool:
        return self.in_town(notice) and self.wants_in_town(notice)

    def wants_in_town(self, notice: dict[str, Any]) -> bool:
        """``wants`` for a notice already known to be of this stream's town."""
        if self.kinds is not None and notice.get("type") not in self.kinds:
            return False
        if self.lots is None:
            return True
        if "lot_id" in notice or "zone_id" in notice:
            return notice.get("lot_id") in self.lots
        if "box_id" in notice:
            return notice["box_id"] in (self.boxes or ())
        return True

    def wants_kind(self, kind: str) -> bool:
        return self.kinds is None or kind in self.kinds


def _items(raw: str, what: str) -> list[str]:
    items = [item.strip() for item in raw.split(",") if item.strip()]
    if len(items) > MAX_ITEMS:
        raise Invalid(f"{what}: at most {MAX_ITEMS} items, got {len(items)}", field=what)
    return items


def parse(kinds: str | None, lots: str | None, lot_boxes: dict[str, str]) -> Subscription:
    """The subscription from the query string's ``kinds`` and ``lots``; ``lot_boxes`` maps
    each lot of the site to its box. Refuses (422) a malformed kind or an unknown lot."""
    wanted_kinds: frozenset[str] | None = None
    if kinds is not None:
        names = _items(kinds, "kinds")
        bad = [k for k in names if not KIND.fullmatch(k)]
        if bad:
            raise Invalid(f"kinds: {bad[0][:40]!r} is not a notice kind", field="kinds")
        wanted_kinds = frozenset(names)
    if lots is None:
        return Subscription(kinds=wanted_kinds)
    ids = _items(lots, "lots")
    unknown = [lot for lot in ids if lot not in lot_boxes]
    if unknown:
        raise Invalid(f"lots: lot {unknown[0][:64]!r} is not in the site", field="lots")
    return Subscription(
        kinds=wanted_kinds,
        lots=frozenset(ids),
        boxes=frozenset(lot_boxes[lot] for lot in ids),
    )


def coalesce(
    pending: dict[Any, dict[str, Any]],
    notices: Iterable[dict[str, Any]],
    serial: int,
    *,
    merge: bool = True,
) -> int:
    """Add ``notices`` to ``pending`` (insertion-ordered): a figure's notice replaces the
    one pending for it and moves to the end; a notice that stands alone (or every notice,
    with ``merge`` false) gets its own key. Returns the next serial for those keys."""
    for notice in notices:
        key: Any = figure_key(notice) if merge else None
        if key is None:
            key = serial
            serial += 1
        else:
            pending.pop(key, None)
        pending[key] = notice
    return serial
