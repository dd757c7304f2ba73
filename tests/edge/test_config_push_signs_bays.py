"""A sign's display and a bay added, changed in the site file and pushed from the office
(issue 20): the box confirms, its Modbus sign shows the new arrow, the bay without a sensor
is a real bay of the lot (unknown, counted) at central, and ``fleet status`` is in sync.

Everything runs for real (tests/edge/fleet_town.py): Mosquitto with the field ACL, central
with its ingest, box-p1 as ``parkgrid edge run`` with a concentrator and a sign simulator.
"""

from __future__ import annotations

import asyncio
import tomllib

from firmware_protocols.signs import Arrow, GuidanceDisplay
from tests.edge.fleet_town import BOX, SENSORS, SIGN_UNIT, Town, town, until

SITE_BAYS = len(SENSORS) + 1  # central's site file has one bay more than the box counts


def _arrow(t: Town) -> Arrow | None:
    shown = t.signs.display(SIGN_UNIT)
    return shown.arrow if isinstance(shown, GuidanceDisplay) else None


def _lot_row(t: Town) -> tuple[int | None, int | None]:
    with t.engine.connect() as conn:
        row = conn.exec_driver_sql(
            "SELECT reported_capacity, unknown FROM lots WHERE lot_id = 'P1'"
        ).first()
    return (row[0], row[1]) if row else (None, None)


def _bay_row(t: Town, bay_id: str) -> tuple[str, str | None] | None:
    with t.engine.connect() as conn:
        row = conn.exec_driver_sql(
            "SELECT state, sensor_id FROM bays WHERE bay_id = ? AND state_ts IS NOT NULL",
            (bay_id,),
        ).first()
    return (row[0], row[1]) if row else None


async def _all_free(t: Town) -> None:
    for sensor in SENSORS:
        await t.sim.send_status(sensor, occupied=False)
    await until(
        lambda: t.healthz().get("lots", {}).get("P1", {}).get("free") == len(SENSORS),
        60, f"the box counted its free bays: {t.log()[-2000:]}",
    )  # fmt: skip


async def test_a_sign_arrow_and_a_bay_added_in_the_site_file_reach_the_box(tmp_path) -> None:
    async with town(tmp_path, confirm_within_s=60, p1_bays=SITE_BAYS) as t:
        await _all_free(t)
        await until(lambda: _arrow(t) is Arrow.LEFT, 30, "the sign shows the site's arrow")
        await until(lambda: _lot_row(t)[0] == len(SENSORS), 60, "central heard the box's lot")
        # The office moves the sign's arrow and its fallbacks; the lot already has a bay more.
        text = t.site_file.read_text()
        t.site_file.write_text(
            text.replace('arrow = "left"\nfallback = [{ lot = "P2", arrow = "right" }]',
                         'arrow = "right"\nfallback = [{ lot = "P2", arrow = "ahead" }]')
        )  # fmt: skip
        row = t.row()
        assert (row.state, row.differs) == ("pending", ["lots.P1", "signs.S1"])

        ran = await asyncio.to_thread(t.cli, "fleet", "config", "push", "--box", BOX)
        assert ran.returncode == 0, ran.stderr
        await until(
            lambda: t.row().state == "in sync" and t.reported()["apply"]["state"] == "confirmed",
            90, f"the push confirmed: {t.log()[-3000:]}",
        )  # fmt: skip
        await _all_free(t)  # the rebuilt box hears its sensors again
        await until(lambda: _arrow(t) is Arrow.RIGHT, 30, "the sign shows the pushed arrow")
        shown = t.signs.display(SIGN_UNIT)
        assert isinstance(shown, GuidanceDisplay) and shown.free == len(SENSORS)

        # The bay without a sensor: a real bay of the lot, unknown, counted at central.
        added = f"P1-{SITE_BAYS:03d}"
        await until(lambda: _lot_row(t) == (SITE_BAYS, 1), 60, "central counts the new bay")
        await until(lambda: _bay_row(t, added) == ("unknown", None), 60, "the bay at central")
        health = t.healthz()["lots"]["P1"]
        assert (health["capacity"], health["free"]) == (SITE_BAYS, len(SENSORS))

        pushed = tomllib.loads((t.data_dir / "config" / "pushed.toml").read_text())
        assert pushed["signs"]["S1"]["fallback"] == [{"lot": "P2", "arrow": "ahead"}]
        assert pushed["lots"]["P1"]["bay_ids"] == [f"P1-{n:03d}" for n in range(1, SITE_BAYS + 1)]
        assert "unit" not in pushed["signs"]["S1"] and "bays" not in pushed["lots"]["P1"]
        ran = await asyncio.to_thread(t.cli, "fleet", "status")
        mine = next(line for line in ran.stdout.splitlines() if line.startswith(BOX))
        assert "in sync" in mine, ran.stdout
        assert t.box.poll() is None
