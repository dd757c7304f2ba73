"""A zone's rules, from the box's config or from central's schedule document, and the check
a schedule document must pass before the box runs it. Pure (no clock, no disk)."""

from __future__ import annotations

from collections.abc import Mapping
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from edge.config import ZoneConfig
from edge.schedule import DailyWindow, LadderStep, WeeklyWindow, ZoneRules, weekday_numbers
from firmware_protocols.uplink.models import ScheduleDocument, ZoneClass, ZoneSchedule


class ScheduleRejected(ValueError):
    """A schedule document the box will not run; ``reason`` says why, for the reply."""

    def __init__(self, version: int, reason: str) -> None:
        self.version = version
        self.reason = reason
        super().__init__(f"schedule version {version}: {reason}")


def rules_from_config(zone_id: str, zone: ZoneConfig, tz: ZoneInfo) -> ZoneRules:
    return ZoneRules(
        zone_id=zone_id,
        zone_class=zone.zone_class,
        tz=tz,
        weekly=tuple(
            WeeklyWindow(days=weekday_numbers(w.days), start=w.start, end=w.end)
            for w in zone.windows
        ),
        overrides={
            o.date: tuple(DailyWindow(w.start, w.end) for w in o.windows) for o in zone.overrides
        },
        grace_s=zone.grace,
        closing_soon_s=zone.closing_soon_s,
        ladder=tuple(
            LadderStep(after_s=after, severity=severity) for after, severity in zone.ladder_steps()
        ),
        version=0,
    )


def rules_from_document(
    entry: ZoneSchedule, zone: ZoneConfig, tz: ZoneInfo, version: int
) -> ZoneRules:
    """A zone's rules from a schedule document; what it leaves out comes from the config."""
    base = rules_from_config(entry.zone_id, zone, tz)
    ladder = base.ladder
    if entry.ladder is not None:
        ladder = tuple(
            LadderStep(after_s=s.after_s, severity=s.severity.value) for s in entry.ladder
        )
    return ZoneRules(
        zone_id=entry.zone_id,
        zone_class=entry.zone_class.value,
        tz=tz,
        weekly=tuple(
            WeeklyWindow(days=weekday_numbers([d.value for d in w.days]), start=w.start, end=w.end)
            for w in entry.weekly
        ),
        overrides={
            o.date: tuple(DailyWindow(w.start, w.end) for w in o.windows) for o in entry.overrides
        },
        grace_s=float(entry.grace_s),
        closing_soon_s=(
            float(entry.closing_soon_s) if entry.closing_soon_s is not None else base.closing_soon_s
        ),
        ladder=ladder,
        version=version,
    )


def check_document(document: ScheduleDocument, zones: Mapping[str, ZoneConfig]) -> None:
    """Raise ``ScheduleRejected`` unless the box can run ``document`` as it stands."""

    def reject(reason: str) -> ScheduleRejected:
        return ScheduleRejected(document.version, reason)

    try:
        ZoneInfo(document.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise reject(f"unknown time zone {document.timezone!r}") from None
    seen: set[str] = set()
    for entry in document.zones:
        if entry.zone_id in seen:
            raise reject(f"zone {entry.zone_id} appears twice")
        seen.add(entry.zone_id)
        if entry.zone_id not in zones:
            raise reject(f"no zone {entry.zone_id} on this box")
        if entry.zone_class is ZoneClass.PROHIBITED and (entry.weekly or entry.overrides):
            raise reject(f"zone {entry.zone_id} is prohibited: it takes no windows")
        dates = [o.date for o in entry.overrides]
        if len(set(dates)) != len(dates):
            raise reject(f"zone {entry.zone_id}: a date is overridden twice")
        if entry.ladder is not None:
            if not entry.ladder:
                raise reject(f"zone {entry.zone_id}: an empty ladder never alerts")
            times = [s.after_s for s in entry.ladder]
            if times != sorted(set(times)):
                raise reject(f"zone {entry.zone_id}: ladder steps must come in order")
