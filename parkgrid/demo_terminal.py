"""What the demo says on the terminal: its banner, the live table (or plain lines when
headless), and the final summary, from central's public API and the town's statistics."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import sys
import time
from typing import Any
from zoneinfo import ZoneInfo

DEMO_USER = "demo"


class DemoTerminal:
    """Mixed into ``parkgrid.demo.Demo``, whose state it reads."""

    url: str
    password: str
    options: Any
    site: Any
    run_dir: Any
    clock: Any
    driver: Any
    user_token: str | None

    def say(self, text: str) -> None:
        print(f"[demo] {text}", flush=True)

    def print_banner(self) -> None:
        self.say(f"Xigang is running. Dashboard: {self.url}/  (API docs: {self.url}/docs)")
        self.say(f"login: {DEMO_USER} / {self.password}")
        self.say(
            f"speed x{self.options.speed:g}, seed {self.options.seed}, "
            f"{len(self.site.boxes)} boxes, run folder {self.run_dir}"
        )
        self.say("Ctrl-C stops everything." if not self.options.duration else
                 f"stops by itself after {self.options.duration:g} s (or Ctrl-C).")  # fmt: skip

    async def snapshot(self) -> dict[str, Any]:
        import httpx

        out: dict[str, Any] = {"lots": [], "boxes_online": None, "alerts": None}
        async with httpx.AsyncClient(timeout=3) as client:
            headers = {"Authorization": f"Bearer {self.user_token}"} if self.user_token else {}
            with contextlib.suppress(httpx.HTTPError, ValueError):
                out["lots"] = (await client.get(f"{self.url}/api/v1/lots")).json()["lots"]
            with contextlib.suppress(httpx.HTTPError, ValueError, TypeError):
                boxes = (await client.get(f"{self.url}/api/v1/boxes", headers=headers)).json()
                out["boxes_online"] = sum(1 for b in boxes if b.get("online"))
            with contextlib.suppress(httpx.HTTPError, ValueError, TypeError):
                alerts = (await client.get(f"{self.url}/api/v1/alerts", headers=headers)).json()
                out["alerts"] = len(alerts)
        return out

    def render(self, snap: dict[str, Any]) -> Any:
        from rich.table import Table

        assert self.clock is not None and self.driver is not None
        now = dt.datetime.fromtimestamp(
            self.clock.sim(time.time()), ZoneInfo(self.site.site.timezone)
        )
        stats = self.driver.stats
        table = Table(
            title=f"Xigang {now:%H:%M} (x{self.options.speed:g})  {self.url}/",
            caption=(
                f"boxes online {snap['boxes_online']}/{len(self.site.boxes)}  alerts "
                f"{snap['alerts']}  captures {stats.captures} (refused {stats.capture_failures})"
                f"  faults {stats.faults}"
            ),
        )
        for column in ("lot", "free", "occupied", "unknown", "status"):
            table.add_column(column)
        for lot in snap["lots"] if isinstance(snap["lots"], list) else []:
            table.add_row(
                str(lot.get("id")), str(lot.get("free")), str(lot.get("occupied")),
                str(lot.get("unknown")), str(lot.get("status")),
            )  # fmt: skip
        return table

    async def summary_loop(self) -> None:
        if self.options.headless or not sys.stdout.isatty():
            while True:
                await asyncio.sleep(15)
                snap = await self.snapshot()
                lots = " ".join(
                    f"{lot.get('id')}:{lot.get('free')}free"
                    for lot in snap["lots"]
                    if isinstance(lot, dict)
                )
                self.say(f"{lots} boxes online {snap['boxes_online']} alerts {snap['alerts']}")
        from rich.live import Live

        with Live(self.render(await self.snapshot()), refresh_per_second=1) as live:
            while True:
                await asyncio.sleep(2)
                live.update(self.render(await self.snapshot()))

    async def final_summary(self) -> None:
        assert self.driver is not None
        stats = self.driver.stats
        self.say(
            f"the town played {self.driver.position} of {len(self.driver.events)} events: "
            f"{stats.bay_changes} bay changes, {stats.captures} captures posted "
            f"({stats.capture_failures} refused), {stats.faults} faults injected"
        )
        if stats.last_capture_error:
            self.say(f"last refused capture: {stats.last_capture_error}")
