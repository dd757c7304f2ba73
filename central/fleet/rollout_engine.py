"""The rollout engine: one step on a beat, in the process holding the ``fleet-rollouts`` lease.

Each step, for every running or halted rollout:

1. boxes it sent the release to are moved on from the command's reply and the box's newest
   birth (``rollout_plan.outcome``): confirmed, installing, or failed with the reason;
2. a running rollout halts itself when its failures (since the last resume) reach the
   threshold, naming each failed box and why (audited as ``fleet.rollout-halted``);
3. the current wave's waiting boxes get ``install-release`` through central's command path
   (``central.commands.service.send``: stored, audited, published), or are deferred when
   offline; a deferred box that is back is sent the release inside the maintenance window
   (town time, ``central.townclock``);
4. the next wave starts once every box of this one has settled (confirmed, failed, skipped)
   or is deferred, and not while the whole canary wave is deferred (a canary must answer
   first); the rollout is done when no box is left to serve.

All state is in the store, so a process that takes the lease from a dead holder goes on
where it stopped. A halted rollout still records what its sent boxes report.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine, select

from central import audit
from central.commands.service import SendCommand, send
from central.db import schema as t
from central.db.engine import writer
from central.errors import CentralError
from central.fleet.rollout_plan import IN_FLIGHT, SETTLED, Outcome, outcome, parse_window
from central.fleet.rollout_store import box_statuses
from site_model.site import Site, SiteIndex

log = logging.getLogger(__name__)
ENGINE_ACTOR = "rollout-engine"
INSTALL_TTL_S = 3600  # a box that does not take it within this fails on its confirm timeout


class RolloutEngine:
    def __init__(
        self,
        engine: Engine,
        site: Site,
        index: SiteIndex,
        *,
        publish: Callable[[], SendCommand | None],
        town_now: Callable[[], float] = time.time,
    ) -> None:
        self.engine = engine
        self.site = site
        self.index = index
        self.publish = publish
        self.town_now = town_now
        self.zone = ZoneInfo(site.site.timezone)

    def step(self) -> None:
        with self.engine.connect() as conn:
            rollouts = conn.execute(
                select(t.rollouts)
                .where(t.rollouts.c.state.in_(("running", "halted")))
                .order_by(t.rollouts.c.id)
            ).all()
        for rollout in rollouts:
            self._step_one(rollout)

    # --- one rollout ------------------------------------------------------------------

    def _read(self, rollout: Any) -> tuple[list[Any], dict[str, tuple[bool, dict[str, Any]]],
                                           dict[str, tuple[bool, str | None]]]:  # fmt: skip
        with self.engine.connect() as conn:
            boxes = conn.execute(
                select(t.rollout_boxes).where(t.rollout_boxes.c.rollout_id == rollout.id)
            ).all()
            statuses = box_statuses(conn, [b.box_id for b in boxes])
            commands = [b.command_id for b in boxes if b.command_id]
            replies = {
                cid: (bool(ok), error)
                for cid, ok, error, at in conn.execute(
                    select(
                        t.commands.c.command_id,
                        t.commands.c.reply_ok,
                        t.commands.c.reply_error,
                        t.commands.c.reply_at,
                    ).where(t.commands.c.command_id.in_(commands))
                )
                if at is not None
            }
        return list(boxes), statuses, replies

    def _step_one(self, rollout: Any) -> None:
        now = time.time()
        boxes, statuses, replies = self._read(rollout)
        states = {b.box_id: b.state for b in boxes}
        reasons: dict[str, str | None] = {b.box_id: b.reason for b in boxes}
        for box in boxes:
            if box.state not in IN_FLIGHT:
                continue
            seen = outcome(
                version=rollout.version,
                state=box.state,
                sent_boot=box.boot_id,
                sent_at=box.sent_at,
                now=now,
                confirm_timeout_s=rollout.confirm_timeout_s,
                reply=replies.get(box.command_id),
                status=statuses.get(box.box_id, (False, None))[1] or None,
            )
            if seen.state != box.state:
                self._set(rollout.id, box.box_id, seen)
                states[box.box_id], reasons[box.box_id] = seen.state, seen.reason
        if rollout.state != "running":
            return
        failed = sorted(b for b, s in states.items() if s == "failed")
        if len(failed) - rollout.failure_base >= rollout.max_failures:
            self._halt(rollout, failed, reasons)
            return
        window = parse_window(rollout.window)
        local = dt.datetime.fromtimestamp(self.town_now(), self.zone).time()
        in_window = window.holds(local)
        for box in sorted(boxes, key=lambda b: b.box_id):
            online = statuses.get(box.box_id, (False, {}))[0]
            state = states[box.box_id]
            if box.wave > rollout.wave:
                continue
            if state in ("waiting", "offline-deferred") and box.box_id not in self.index.boxes:
                gone = Outcome("skipped", None, "no longer a box of the site file")
                self._set(rollout.id, box.box_id, gone)
                states[box.box_id] = "skipped"
                continue
            if state == "waiting" and online:
                states[box.box_id] = self._send(rollout, box.box_id, statuses) or state
            elif state == "waiting":
                why = (f"offline when its wave started: gets the release once back, inside "
                       f"the window {window.text} (town time)")  # fmt: skip
                self._set(rollout.id, box.box_id, Outcome("offline-deferred", None, why))
                states[box.box_id] = "offline-deferred"
            elif state == "offline-deferred" and online and in_window:
                states[box.box_id] = self._send(rollout, box.box_id, statuses) or state
        self._advance(rollout, boxes, states)

    def _advance(self, rollout: Any, boxes: list[Any], states: dict[str, str]) -> None:
        current = [b.box_id for b in boxes if b.wave == rollout.wave]
        if not all(states[b] in SETTLED or states[b] == "offline-deferred" for b in current):
            return
        if rollout.wave == 0 and current and all(states[b] == "offline-deferred" for b in current):
            return  # no canary has answered yet: the next wave waits for one
        later = sorted({b.wave for b in boxes if b.wave > rollout.wave})
        values: dict[str, Any]
        if later:
            values = {"wave": later[0]}
        elif all(s in SETTLED for s in states.values()):
            values = {"state": "done", "reason": None}
        else:
            return
        with writer(self.engine).begin() as conn:
            conn.execute(
                t.rollouts.update()
                .where(t.rollouts.c.id == rollout.id, t.rollouts.c.state == "running")
                .values(updated_at=time.time(), **values)
            )
            if values.get("state") == "done":
                audit.record(conn, actor=ENGINE_ACTOR, action="fleet.rollout-done",
                             target=str(rollout.id), detail={"boxes": dict(states)})  # fmt: skip

    def _halt(self, rollout: Any, failed: list[str], reasons: dict[str, str | None]) -> None:
        detail = "; ".join(f"{box}: {reasons.get(box) or 'failed'}" for box in failed)
        reason = (f"halted by itself: {len(failed)} box(es) failed, the threshold is "
                  f"{rollout.max_failures}: {detail}")  # fmt: skip
        with writer(self.engine).begin() as conn:
            changed = conn.execute(
                t.rollouts.update()
                .where(t.rollouts.c.id == rollout.id, t.rollouts.c.state == "running")
                .values(state="halted", reason=reason, updated_at=time.time())
            ).rowcount
            if changed:
                audit.record(
                    conn,
                    actor=ENGINE_ACTOR,
                    action="fleet.rollout-halted",
                    target=str(rollout.id),
                    detail={"failed": {box: reasons.get(box) for box in failed}},
                )
        log.warning("rollout %s: %s", rollout.id, reason)

    def _send(
        self, rollout: Any, box_id: str, statuses: dict[str, tuple[bool, dict[str, Any]]]
    ) -> str | None:
        """Send the install command; the new state, or None when it could not go out.

        The box's row says ``sent`` in the very transaction that stores the command, so a
        process killed after it never sends the box a second install (which a box with the
        release on trial would refuse)."""
        body: dict[str, object] = {
            "command": "install-release",
            "version": rollout.version,
            "sha256": rollout.sha256,
            "rollout": rollout.id,
        }
        if rollout.trial_window_s is not None:  # else the box's own default window
            body["confirm_within_s"] = rollout.trial_window_s
        boot = statuses.get(box_id, (False, {}))[1].get("boot_id")
        box_row = (t.rollout_boxes.c.rollout_id == rollout.id) & (
            t.rollout_boxes.c.box_id == box_id
        )

        def mark_sent(conn: Connection, command_id: str) -> None:
            now = time.time()
            conn.execute(
                t.rollout_boxes.update()
                .where(box_row)
                .values(state="sent", command_id=command_id, boot_id=boot, sent_at=now,
                        reason=None, updated_at=now)
            )  # fmt: skip

        try:
            send(
                self.engine,
                site=self.index,
                box_id=box_id,
                body=body,
                expires_in_s=int(min(rollout.confirm_timeout_s, INSTALL_TTL_S)),
                actor=f"rollout:{rollout.id}",
                publish=self.publish(),
                fleet=True,
                within=mark_sent,
            )
        except CentralError as exc:
            log.warning("rollout %s: install-release to %s not sent: %s", rollout.id, box_id,
                        exc.detail)  # fmt: skip
            with writer(self.engine).begin() as conn:  # stored, not published: again later
                conn.execute(
                    t.rollout_boxes.update()
                    .where(box_row, t.rollout_boxes.c.state == "sent")
                    .values(state="waiting", command_id=None, sent_at=None,
                            reason=f"not sent: {exc.detail}", updated_at=time.time())
                )  # fmt: skip
            return None
        return "sent"

    def _set(self, rollout_id: int, box_id: str, seen: Outcome) -> None:
        with writer(self.engine).begin() as conn:
            conn.execute(
                t.rollout_boxes.update()
                .where(
                    t.rollout_boxes.c.rollout_id == rollout_id,
                    t.rollout_boxes.c.box_id == box_id,
                )
                .values(
                    state=seen.state,
                    failure=seen.failure,
                    reason=seen.reason,
                    updated_at=time.time(),
                )
            )
