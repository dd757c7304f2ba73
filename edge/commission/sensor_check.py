"""doctor's ``sensors`` item: every mapped sensor heard, helped by what the walk proved.

Sensors speak on a change and on their heartbeat (up to 30 minutes), so hearing all of them
can take a heartbeat window. walk-test (and learn-bays) already saw most of them react to
a car minutes ago; their record (:mod:`edge.commission.bay_records`) is used so::

    proven   the walk saw this sensor react on its bay    -> counts as heard, not waited for
    failed   the walk found the bay SILENT, WRONG or NOT MAPPED with this very mapping
                                                           -> not waited for; named at once
    others   no current record                             -> listened for, up to --listen-s

Listening stops as soon as every sensor of the last group is heard (at once when there is
none). A failed sensor heard meanwhile (a battery just changed) counts as heard.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping

from edge.commission.bay_records import PASS, BayRecord
from edge.commission.checklist import CheckResult, failed, listed, passed
from edge.commission.common import Sightings, listening
from edge.config import BayConfig, EdgeConfig
from edge.drivers.serial_line import SerialLine
from edge.observations import SensorObservation


def _walk_failure(sensor: str, bay: str, record: BayRecord) -> str:
    if record.outcome == "SILENT":
        return f"{sensor} ({bay}) silent in {record.by}"
    if record.heard is None:
        return f"{sensor} ({bay}) {record.outcome} in {record.by}"
    return f"{sensor} ({bay}) {record.outcome} in {record.by} (heard {record.heard} instead)"


async def check_sensors(
    config: EdgeConfig,
    *,
    listen_s: float,
    records: Mapping[str, BayRecord] | None = None,
) -> CheckResult:
    """``records``: sensor id -> its current walk record (``bay_records.current``)."""
    records = records or {}
    mapped = {bay.sensor: (f"{lot}/{bay_id}", bay) for lot, bay_id, bay in config.bays()}
    if not mapped:
        return passed("sensors", "no bays mapped in the config")
    if not config.serial:
        return failed(
            "sensors",
            f"{len(mapped)} sensor(s) mapped but no [serial] line to hear them on",
            "add the concentrator or receiver line under [serial] in the config.",
        )
    proven = {s for s in mapped if s in records and records[s].outcome == PASS}
    walk_failed = {s for s in mapped if s in records and records[s].outcome != PASS}
    wait_for = set(mapped) - proven - walk_failed
    sightings = Sightings()
    all_heard = asyncio.Event()
    if not wait_for:
        all_heard.set()

    def sink(obs: SensorObservation) -> None:
        sightings.observe(obs)
        if wait_for <= sightings.by_id.keys():
            all_heard.set()

    started = time.monotonic()
    owners: list[SerialLine]
    async with listening(config.serial, sink) as owners:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(all_heard.wait(), listen_s)
        # a line not up yet has no reason: it was not given time to open (nothing to
        # listen for), which is no fault of the line
        reasons = {o.name: o.stats().down_reason for o in owners if not o.up}
        down = [
            f"{o.name} ({o.config.device}): {reasons[o.name]}"
            for o in owners
            if reasons.get(o.name) is not None
        ]
    waited = time.monotonic() - started
    heard = proven | sightings.by_id.keys()
    dead = sorted(s for s in walk_failed if s not in sightings.by_id)
    missing = [s for s in mapped if s not in heard and s not in dead]
    unmapped = sorted(s for s in sightings.by_id if s not in mapped)
    extra = f"; heard but not mapped: {listed(unmapped)}" if unmapped else ""
    by_walk = {records[s].by for s in proven}
    rest = ", the rest heard" if len(proven) < len(mapped) else ""
    walk_note = f" ({len(proven)} proven by {'/'.join(sorted(by_walk))}{rest})" if proven else ""
    if not missing and not dead:
        return passed(
            "sensors",
            f"all {len(mapped)} mapped sensor(s) heard in {waited:.1f} s{walk_note}{extra}",
        )
    parts = []
    if dead:
        parts.append(
            f"{len(dead)} failed the walk: "
            + listed([_walk_failure(s, mapped[s][0], records[s]) for s in dead])
        )
    if missing:
        parts.append(
            f"{len(missing)} not heard in {listen_s:g} s: "
            + listed([f"{s} ({mapped[s][0]})" for s in missing])
        )
    detail = (
        f"{len(dead) + len(missing)} of {len(mapped)} sensor(s): {'; '.join(parts)}"
        + (f"; {len(proven)} proven by {'/'.join(sorted(by_walk))}" if proven else "")
        + extra
    )
    if down:
        detail += f"; line(s) down: {'; '.join(down)}"
    return failed("sensors", detail, _fix(config, mapped, missing, dead, listen_s))


def _fix(
    config: EdgeConfig,
    mapped: Mapping[str, tuple[str, BayConfig]],
    missing: list[str],
    dead: list[str],
    listen_s: float,
) -> str:
    fixes = []
    if dead:
        fixes.append(
            "for each sensor that failed the walk: check its id in bays.csv (import-bays "
            "again), its battery and radio range, then walk its bay again with walk-test "
            "--bays"
        )
    if missing:
        default = config.sensors.heartbeat_timeout_s
        window = max((mapped[s][1].heartbeat_timeout_s or default) for s in missing)
        if listen_s < window:
            fixes.append(
                f"trigger each bay listed (a car or the test magnet) while doctor listens, or "
                f"rerun with --listen-s {window:g} to wait a whole heartbeat window (or walk "
                "them with walk-test); if one stays silent, check its id in bays.csv and its "
                "radio range"
            )
        else:
            fixes.append(
                "each sensor not heard missed a whole heartbeat window: check its id in "
                "bays.csv, its battery and its radio range to the concentrator"
            )
    return "; ".join(fixes) + "."
