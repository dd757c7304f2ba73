"""A configuration pushed by central (``cmd/config-push``): checked, kept, run, confirmed by
the health gate, or rolled back by the box alone.

The box's ``edge.toml`` stays the technician's file (root's, in ``/etc/parkgrid``, which the
box may not write). What central pushes is only the site-derived part
(``site_model.site_config``); the box keeps it in its data folder as
``<data_dir>/config/pushed.toml`` and lays it over its own file at every start
(:meth:`ConfigApplier.effective`): its identity, secrets, wiring and bays always come from
``edge.toml``. A push goes:

1. **check**: the TOML parses, hashes to the command's ``hash``, carries none of the box's
   own keys, and the merge passes the box's loader (``parse_config``: every problem with
   its dotted path). A refusal is the reply's error and the status's ``failed`` with the
   reason; the box runs on, nothing written.
2. **keep**: the running ``pushed.toml`` is copied to ``pushed.toml.previous``, then the
   new one written over it (both atomically, mode and owner kept: ``atomic_write``).
3. **apply**: the status says ``applying``; the runtime is rebuilt in the same process
   with the new configuration (``edge.runtime.run_box``): every stage stops, the outbox is
   closed and opened again, its events resent until acked.
4. **gate**: the box's health gate (``edge.update.gate.gate_failures``: the broker
   connected, every serial line up with a frame heard, every sign answering) must pass
   within ``health.config_confirm_within_s``: then ``confirmed``. Otherwise the previous
   file is renamed back (or the pushed one removed when there was none), the runtime
   rebuilt with it, and the status says ``rolled_back`` with the gate's failures.

The outcome is kept in ``<data_dir>/config/apply.json``, so it survives restarts; a box cut
during a trial starts with the pushed configuration and a new window for its gate.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from edge.config import ConfigError, EdgeConfig, parse_config
from edge.config_edit import atomic_write, fsync_folder
from firmware_protocols.uplink.models import Command, ConfigApply, ConfigPush, SiteConfigReport
from site_model.configfile import load_file_data
from site_model.site_config import (
    digest,
    local_keys,
    merge,
    section_digests,
    set_aside,
    site_part,
    unwired_signs,
)

log = logging.getLogger(__name__)

FOLDER = "config"
PUSHED = "pushed.toml"
PREVIOUS = "pushed.toml.previous"
STATE = "apply.json"
GATE_POLL_S = 1.0
REPLY_GRACE_S = 0.5  # the reply goes out on the old connection before the rebuild closes it
MAX_REASON = 480


class ApplyError(ValueError):
    """A pushed configuration refused; ``where`` is the dotted path or part, ``reason`` why."""

    def __init__(self, where: str, reason: str) -> None:
        self.where = where
        self.reason = reason
        super().__init__(f"{where}: {reason}")


@dataclass(frozen=True, slots=True)
class Trial:
    version: int
    hash: str
    deadline: float
    had_previous: bool


Gate = Callable[[], list[str]]


def pushed_summary(own: dict[str, Any], data_dir: Path) -> tuple[str, bool] | None:
    """For ``edge check-config``: what central pushed and whether it still loads over the
    file (a line, ok); None when nothing was pushed. Reads only."""
    folder = data_dir / FOLDER
    pushed = folder / PUSHED
    if not pushed.exists():
        return None
    try:
        outcome = ConfigApply.model_validate_json((folder / STATE).read_text(encoding="utf-8"))
        what = f"version {outcome.version}, {outcome.state}"
    except (OSError, ValueError):
        what = "no outcome recorded"
    try:
        part = tomllib.loads(pushed.read_text(encoding="utf-8"))
        document = merge(own, part)
        config = parse_config(document, source=str(pushed))
    except (OSError, ValueError) as exc:
        return f"{pushed} (pushed by central, {what}) does not load over it: {exc}", False
    notes = [f"set aside (mapped here, no longer listed): {', '.join(aside)}"
             for aside in [set_aside(own, part)] if aside]  # fmt: skip
    if bare := [f"{lot or zone}/{bay}" for lot, zone, bay in config.sensorless_bays()]:
        notes.append(f"{len(bare)} bay(s) without a sensor, unknown until mapped here: "
                     + ", ".join(bare[:10]) + (" ..." if len(bare) > 10 else ""))  # fmt: skip
    if unwired := unwired_signs(own, part):
        notes.append(f"pushed sign(s) on no bus here, not driven: {', '.join(unwired)}")
    return (
        f"{pushed} (pushed by central, {what}) is laid over it: the lots', zones', "
        f"signs' displays, bay lists, time zone's, broker's and timings' settings come from "
        f"there; runs {digest(site_part(document))[:19]}"
        + "".join(f"\n  {note}" for note in notes),
        True,
    )


class ConfigApplier:
    """Owns the box's effective configuration across runtime rebuilds."""

    def __init__(self, config_path: Path, *, clock: Callable[[], float] = time.time) -> None:
        self.config_path = config_path
        self.clock = clock
        self.own = load_file_data(config_path, error=ConfigError)
        own_config = parse_config(self.own, source=str(config_path))
        self.folder = own_config.data_dir / FOLDER
        self.folder.mkdir(parents=True, exist_ok=True)
        self.within_s = own_config.health.config_confirm_within_s
        self.state: ConfigApply | None = self._load_state()
        self.trial: Trial | None = None
        self.rebuild = asyncio.Event()
        self.announce: Callable[[], None] = lambda: None  # the running box's status, again
        self.document, self.config = self.effective()
        if self.state is not None and self.state.state == "applying":
            # cut during a trial: the pushed file runs, with a new window for its gate
            self.trial = Trial(
                self.state.version,
                self.state.hash,
                clock() + self.within_s,
                (self.folder / PREVIOUS).exists(),
            )

    # --- what runs ---------------------------------------------------------------------

    def effective(self) -> tuple[dict[str, Any], EdgeConfig]:
        """``edge.toml`` with ``pushed.toml`` laid over it (``edge.toml`` alone without one)."""
        pushed = self.folder / PUSHED
        if not pushed.exists():
            return self.own, parse_config(self.own, source=str(self.config_path))
        try:
            document = merge(self.own, tomllib.loads(pushed.read_text(encoding="utf-8")))
            return document, parse_config(document, source=str(pushed))
        except (OSError, ValueError) as exc:  # ConfigError and TOMLDecodeError are ValueErrors
            # edge.toml changed under it (a lot's sign now names a lot the push dropped...)
            log.error("%s no longer loads over %s (%s): running the file alone", pushed,
                      self.config_path, exc)  # fmt: skip
            self._set(self.state, "failed", f"{PUSHED} no longer loads over edge.toml: {exc}")
            return self.own, parse_config(self.own, source=str(self.config_path))

    def report(self) -> SiteConfigReport:
        """What the status says: the running site part's hash and sections, the last push."""
        part = site_part(self.document)
        return SiteConfigReport(hash=digest(part), sections=section_digests(part), apply=self.state)

    # --- the command -------------------------------------------------------------------

    def handle(self, command: Command, now: float) -> str | None:
        """``cmd/config-push``: None when accepted (applying or already running it), else the
        refusal (the reply's error; the status says failed; nothing changed)."""
        body = command.body
        assert isinstance(body, ConfigPush)  # the command table sends only these
        if self.trial is not None:
            return (
                f"version {self.trial.version} is still on trial: push again once it is "
                "confirmed or rolled back"
            )
        try:
            document, config = self.check(body)
        except ApplyError as exc:
            log.warning("config-push version %d refused: %s", body.version, exc)
            self._set_push(body, "failed", str(exc))
            return str(exc)[:MAX_REASON]
        if body.hash == self.report().hash:
            self._set_push(body, "confirmed", "already running it")
            return None
        try:
            self._keep(body.document)
        except OSError as exc:
            reason = f"{self.folder}: cannot write ({exc.strerror or exc}); nothing changed"
            self._set_push(body, "failed", reason)
            return reason[:MAX_REASON]
        self._set_push(body, "applying", None)
        self.trial = Trial(
            body.version, body.hash, now + self.within_s, (self.folder / PREVIOUS).exists()
        )
        self.document, self.config = document, config
        log.info("config-push version %d accepted: rebuilding the box with it", body.version)
        asyncio.get_running_loop().call_later(REPLY_GRACE_S, self.rebuild.set)
        return None

    def check(self, body: ConfigPush) -> tuple[dict[str, Any], EdgeConfig]:
        """Parse, hash, refuse the box's own keys, merge and validate; raise ApplyError."""
        try:
            pushed = tomllib.loads(body.document)
        except tomllib.TOMLDecodeError as exc:
            raise ApplyError("document", f"not TOML: {exc}") from None
        if (actual := digest(pushed)) != body.hash:
            raise ApplyError(
                "hash", f"the document hashes to {actual}, the command says {body.hash}"
            )
        if own := local_keys(pushed):
            raise ApplyError(
                own[0], f"the box's own key(s) {', '.join(own[:5])} are never pushed (they "
                "stay in edge.toml); nothing changed",
            )  # fmt: skip
        if unwired := unwired_signs(self.own, pushed):
            raise ApplyError(
                f"signs.{unwired[0]}", f"no sign {', '.join(unwired[:5])} on this box's sign "
                "buses: a technician wires it first (sign_buses.<bus>.signs.<id> with its "
                "unit, parkgrid edge scan-signs); nothing changed",
            )  # fmt: skip
        document = merge(self.own, pushed)
        try:
            config = parse_config(document, source=f"pushed version {body.version}")
        except ConfigError as exc:
            problems = "; ".join(str(p) for p in exc.problems[:5])
            raise ApplyError("document", f"invalid: {problems}; nothing changed") from None
        if aside := set_aside(self.own, pushed):
            log.warning(
                "config-push version %d no longer lists %d mapped bay(s) (%s): their sensor "
                "mapping stays in %s, unused while this push runs",
                body.version, len(aside), ", ".join(aside[:5]), self.config_path,
            )  # fmt: skip
        return document, config

    def _keep(self, text: str) -> None:
        pushed, previous = self.folder / PUSHED, self.folder / PREVIOUS
        if pushed.exists():
            atomic_write(previous, pushed.read_text(encoding="utf-8"), like=pushed)
        else:
            previous.unlink(missing_ok=True)
            fsync_folder(self.folder)
        atomic_write(pushed, text, mode=0o640)

    # --- the gate ----------------------------------------------------------------------

    async def watch(self, gate: Gate) -> None:
        """Poll the gate of the running trial: confirm it, or roll it back at its deadline."""
        trial = self.trial
        if trial is None:
            return
        while True:
            failures = gate()
            if not failures:
                self.trial = None
                self._set(self.state, "confirmed", "health gate passed")
                log.info("config version %d confirmed: health gate passed", trial.version)
                return
            if self.clock() >= trial.deadline:
                self.roll_back(f"failed its health gate within {self.within_s:g} s: "
                               + "; ".join(failures))  # fmt: skip
                return
            await asyncio.sleep(GATE_POLL_S)

    def roll_back(self, reason: str) -> None:
        """Back to the configuration run before the trial, at once; the runtime rebuilt."""
        trial = self.trial
        assert trial is not None
        pushed, previous = self.folder / PUSHED, self.folder / PREVIOUS
        if trial.had_previous and previous.exists():
            previous.replace(pushed)  # the previous copy already has the file's mode and owner
        else:
            pushed.unlink(missing_ok=True)
        fsync_folder(self.folder)
        self.trial = None
        self.document, self.config = self.effective()  # before the status says rolled back
        self._set(self.state, "rolled_back", reason)
        log.error("config version %d rolled back: %s", trial.version, reason)
        self.rebuild.set()

    # --- the outcome, kept -------------------------------------------------------------

    def _set_push(self, body: ConfigPush, state: str, reason: str | None) -> None:
        self._save(body.version, body.hash, state, reason)

    def _set(self, current: ConfigApply | None, state: str, reason: str | None) -> None:
        if current is not None:
            self._save(current.version, current.hash, state, reason)

    def _save(self, version: int, hash_: str, state: str, reason: str | None) -> None:
        self.state = ConfigApply.model_validate(
            {
                "version": version,
                "hash": hash_,
                "state": state,
                "reason": None if reason is None else reason[:MAX_REASON],
                "ts": dt.datetime.fromtimestamp(self.clock(), dt.UTC),
            }
        )
        try:
            atomic_write(self.folder / STATE, self.state.model_dump_json() + "\n", mode=0o640)
        except OSError as exc:  # the outcome still goes out in the status
            log.error("cannot keep %s: %s", self.folder / STATE, exc)
        self.announce()

    def _load_state(self) -> ConfigApply | None:
        path = self.folder / STATE
        try:
            return ConfigApply.model_validate_json(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, ValidationError) as exc:
            log.error("%s unreadable (%s): the last push's outcome is forgotten", path, exc)
            return None
