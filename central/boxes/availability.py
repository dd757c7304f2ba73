"""A box's availability as central's store knows it, through the one rule
(``site_model/availability.py``): the lots, bays, zones and boxes services all ask here."""

from __future__ import annotations

from typing import Any

from site_model.availability import Availability, AvailabilitySettings, box_availability


def box_age_s(row: Any, now: float) -> float | None:
    """Seconds since central marked the box offline (a will arrives up to 1.5 keepalives
    after the box's last packet); None while online or never heard."""
    if row.online or row.status_changed_at is None:
        return None
    return max(0.0, now - row.status_changed_at)


def reported_now(row: Any) -> bool:
    """The row's state (``updated_at``, when central received it) came on its box's
    present connection: not before the box last came online (``status_changed_at``)."""
    if row.updated_at is None or row.status_changed_at is None:
        return True
    return bool(row.updated_at >= row.status_changed_at)


def box_of(
    row: Any, settings: AvailabilitySettings, now: float
) -> tuple[Availability, float | None]:
    """(availability, age) of the box in ``row`` (its ``online``, ``seen`` and
    ``status_changed_at`` columns; all null when the box has no row)."""
    heard = bool(row.seen) or bool(row.online)
    age = box_age_s(row, now)
    return box_availability(bool(row.online) if heard else None, age, settings), age
