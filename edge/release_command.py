"""Central's ``cmd/install-release`` on the box, and the release the box reports in its birth.

The install is ``parkgrid edge update --from-central VERSION --sha256 ...`` in **another
process** (one code path with the technician's command, and the box's event loop never waits
on it: signs, sensors and the outbox go on for its 20-45 s). The box writes the request
(``edge/update/request.py``) and the runner, ``edge update --request FILE``, carries it out:
on a box, ``parkgrid-edge-release.service`` as root, started by its path unit
(``PARKGRID_RELEASE_RUNNER=unit``: the box's own sandbox may not write its slots); elsewhere
(a bench, a box run by hand) the box starts the runner itself, from the release it runs. The
runner downloads the bundle with the box's token (``edge/update/fetch.py``), checks the whole
file's sha256 against the command's before anything else, then verifies and installs it into
the inactive slot exactly as ``edge update --from FILE`` does, and writes its result. The box
replies once: ok when the new slot is switched to, or the refusal saying why nothing changed.
After an ok it stops cleanly (the reply sent, its outbox flushed and closed, ``offline
shutdown`` said) and exits with ``EXIT_RESTART_INTO_RELEASE`` so its supervisor starts it
again through the boot check, into the new slot on trial.

Where the box's slots are: the prefix whose ``releases/<slot>`` is the running interpreter's
``sys.prefix`` and whose ``current`` symlink exists (``deploy/install-box.sh``'s layout), or
``PARKGRID_RELEASE_PREFIX``. A box that runs from neither (a developer's checkout) is
``unmanaged``: it refuses the command and changes nothing.

The release report (``BoxStatus.release``) is read from the slots' ``state.json``, which the
boot check and ``edge confirm`` write from other processes: :meth:`ReleaseInstaller.watch`
looks at its modification time every few seconds and publishes the birth again on a change.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import os
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from edge.update.request import (
    REQUEST,
    BadRequest,
    Request,
    read_request,
    read_result,
    write_request,
)
from edge.update.request import folder_in as request_folder
from edge.update.slots import SLOTS, Layout
from firmware_protocols.uplink.models import Command, InstallRelease, ReleaseReport

log = logging.getLogger(__name__)

# The box stopped after installing a release: its supervisor restarts it into the new slot
# (deploy/systemd/parkgrid-edge.service: RestartForceExitStatus). 75 is EX_TEMPFAIL.
EXIT_RESTART_INTO_RELEASE = 75
STATE_POLL_S = 3.0
INSTALL_TIMEOUT_S = 900.0  # the unit's start timeout; a slot's install takes 20-45 s
RESULT_POLL_S = 0.5
REPLY_GRACE_S = 0.5  # the reply goes out before the box stops
MAX_REASON = 480
LAST_COMMAND = "release-command.json"  # in the data dir: the last install-release carried out
ROLLBACK_EVENTS = {"rolled back"}
OUTCOME_EVENTS = {"installed", "confirmed", "rolled back", "interrupted", "kept"}


@dataclass(frozen=True, slots=True)
class ReleaseSettings:
    prefix: Path | None  # None: the box does not run from a slot (unmanaged)
    central_url: str | None
    token_file: Path
    public_key: Path
    data_dir: Path
    runner: str = "process"  # "unit": a root service runs the request; "process": the box

    @classmethod
    def from_environment(cls, data_dir: Path) -> ReleaseSettings:
        """The running box's: its slots (see the module's doc), central's address
        (``PARKGRID_CENTRAL_URL``, as ``edge update`` reads it), its token and the release
        key (``PARKGRID_CENTRAL_TOKEN_FILE``, ``PARKGRID_RELEASE_KEY``, by default where
        ``provision-box`` and ``install-box.sh`` put them)."""
        env = os.environ
        forced = env.get("PARKGRID_RELEASE_PREFIX")
        return cls(
            prefix=Path(forced) if forced else running_prefix(),
            central_url=env.get("PARKGRID_CENTRAL_URL") or None,
            token_file=Path(env.get("PARKGRID_CENTRAL_TOKEN_FILE", "/etc/parkgrid/central-token")),
            public_key=Path(env.get("PARKGRID_RELEASE_KEY", "/etc/parkgrid/release.pub")),
            data_dir=data_dir,
            runner="unit" if env.get("PARKGRID_RELEASE_RUNNER") == "unit" else "process",
        )


def running_prefix(interpreter_prefix: str = sys.prefix) -> Path | None:
    """The slots' prefix when this interpreter is a slot's venv (``<prefix>/releases/a``)
    and ``<prefix>/current`` is a symlink; None otherwise (a developer's checkout)."""
    slot = Path(interpreter_prefix).resolve()
    prefix = slot.parent.parent
    if slot.name in SLOTS and slot.parent.name == "releases" and (prefix / "current").is_symlink():
        return prefix
    return None


def release_report(prefix: Path | None, now: float) -> ReleaseReport:
    """What the birth says about the release: read from the slots and ``state.json``."""
    ts = dt.datetime.fromtimestamp(now, dt.UTC)
    if prefix is None:
        return ReleaseReport(state="unmanaged", ts=ts)
    layout = Layout(prefix)
    current = layout.current_slot()
    version = layout.slot_version(current) if current else None
    state = layout.load()
    if current is None or version is None:
        return ReleaseReport(state="unmanaged", ts=ts)
    if state.trial is not None and state.trial.slot == current:
        since = state.trial.since
        return ReleaseReport(
            version=version, state="on_trial", ts=dt.datetime.fromtimestamp(since or now, dt.UTC)
        )
    outcome: dict[str, Any] = next(
        (e for e in reversed(state.history) if e.get("event") in OUTCOME_EVENTS), {}
    )
    at = dt.datetime.fromtimestamp(float(outcome.get("at", now)), dt.UTC)
    if outcome.get("event") in ROLLBACK_EVENTS:
        try:
            return ReleaseReport(
                version=version,
                state="rolled_back",
                failed_version=outcome.get("version"),
                reason=str(outcome.get("reason") or "")[:MAX_REASON] or None,
                ts=at,
            )
        except ValidationError:  # a version the wire does not allow: say the reason alone
            return ReleaseReport(version=version, state="rolled_back", reason="rolled back", ts=at)
    return ReleaseReport(version=version, state="confirmed", ts=at)


def _same_release(a: InstallRelease, b: InstallRelease) -> bool:
    return a.version == b.version and a.sha256 == b.sha256


def _drop(path: Path) -> None:
    """A request no runner will carry out (a path unit must not start it later)."""
    path.unlink(missing_ok=True)


class ReleaseInstaller:
    """Owns ``install-release`` for the running box, across runtime rebuilds."""

    def __init__(
        self,
        settings: ReleaseSettings,
        *,
        clock: Callable[[], float] = time.time,
        python: str = sys.executable,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.python = python
        self.installing: InstallRelease | None = None
        self.installed: InstallRelease | None = None  # switched to: the box is to restart
        self.last_error: str | None = None  # why the last install changed nothing
        self._idle = asyncio.Event()  # set while no install runs
        self._idle.set()
        self.announce: Callable[[], None] = lambda: None  # the running box's status, again
        self.restart: Callable[[], None] = lambda: None  # stop the box to start the new slot
        self._state_seen = self._state_stamp()

    # --- the report --------------------------------------------------------------------

    def report(self) -> ReleaseReport:
        try:
            return release_report(self.settings.prefix, self.clock())
        except OSError as exc:  # a disk fault must not stop the birth
            log.error("release state unreadable: %s", exc)
            return ReleaseReport(
                state="unmanaged", ts=dt.datetime.fromtimestamp(self.clock(), dt.UTC)
            )

    def _state_stamp(self) -> tuple[int, int, str] | None:
        """What changes when another process writes the release state: ``state.json``'s
        modification time and size, and where ``current`` points."""
        if self.settings.prefix is None:
            return None
        layout = Layout(self.settings.prefix)
        try:
            st = layout.state_file.stat()
            mtime, size = st.st_mtime_ns, st.st_size
        except OSError:
            mtime, size = 0, 0
        try:
            target = os.readlink(layout.current)
        except OSError:
            target = ""
        return mtime, size, target

    async def watch(self) -> None:
        """Publish the birth again whenever the slots' state changes (the boot check and
        ``edge confirm`` write it from other processes): a stat every ``STATE_POLL_S``."""
        if self.settings.prefix is None:
            return
        while True:
            await asyncio.sleep(STATE_POLL_S)
            stamp = self._state_stamp()
            if stamp != self._state_seen:
                self._state_seen = stamp
                log.info("release state changed: %s", self.report().state)
                self.announce()

    # --- the command -------------------------------------------------------------------

    async def handle(self, command: Command, now: float) -> str | None:
        """``cmd/install-release``: None when installed and switched to (or nothing to do),
        else why nothing changed (the reply's error)."""
        body = command.body
        assert isinstance(body, InstallRelease)  # the command table sends only these
        if self.installing is not None and _same_release(self.installing, body):
            return await self._outcome_of_running(body)
        if self.installing is not None:
            return (
                f"an install of {self.installing.version} is already running; this one is "
                "refused, nothing changed"
            )
        if self.installed is not None:
            same = self.installed.version == body.version
            return None if same else (
                f"{self.installed.version} was just installed and the box is restarting into "
                "it; nothing changed"
            )  # fmt: skip
        prefix = self.settings.prefix
        if prefix is None:
            return (
                "this box does not run from a release slot (no <prefix>/current layout, "
                "e.g. a developer's checkout): nothing changed"
            )
        if command.expires_at is not None and command.expires_at.timestamp() <= now:
            return "expired: nothing changed"
        if self._already_done(command, prefix):
            return None
        report = release_report(prefix, now)
        if report.state == "on_trial":
            return (
                f"release {report.version} is still on trial: it must be confirmed or rolled "
                "back before another install; nothing changed"
            )
        if not self.settings.central_url and self.settings.runner == "process":
            return "no central URL on this box (PARKGRID_CENTRAL_URL): nothing changed"
        self.installing = body
        self._idle.clear()
        try:
            error = await self._run_update(command, prefix)
        finally:
            self.installing = None
            self._idle.set()
        if error is not None:
            log.warning("install-release %s refused: %s", body.version, error)
            self.last_error = error
            return error[:MAX_REASON]
        self.installed = body
        self._remember(command)
        log.info("install-release %s: switched to; restarting into it", body.version)
        self.announce()
        asyncio.get_running_loop().call_later(REPLY_GRACE_S, self.restart)
        return None

    async def _outcome_of_running(self, body: InstallRelease) -> str | None:
        """The same release asked again while it installs (central asks again a box back on
        a new boot while the unit's runner carries on the request left by the power cut):
        the running install's outcome is this command's too."""
        log.info("install-release %s asked again while it installs: its outcome is the reply",
                 body.version)  # fmt: skip
        await self._idle.wait()
        if self.installed is not None and _same_release(self.installed, body):
            return None
        return (self.last_error or "the install asked before failed")[:MAX_REASON]

    def _already_done(self, command: Command, prefix: Path) -> bool:
        """The version asked for already runs as the good release, or this very command was
        carried out before the restart (a repeat): nothing to do, the reply is ok."""
        body = command.body
        assert isinstance(body, InstallRelease)
        report = release_report(prefix, self.clock())
        if report.version != body.version:
            return False
        if report.state in ("confirmed", "rolled_back"):  # rolled_back: it runs the good one
            return True
        last = self._last_command()
        return last is not None and last.get("command_id") == str(command.command_id)

    def _last_command(self) -> dict[str, object] | None:
        try:
            raw = json.loads((self.settings.data_dir / LAST_COMMAND).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return raw if isinstance(raw, dict) else None

    def _remember(self, command: Command) -> None:
        body = command.body
        assert isinstance(body, InstallRelease)
        record = {"command_id": str(command.command_id), "version": body.version}
        try:
            path = self.settings.data_dir / LAST_COMMAND
            temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}")
            temporary.write_text(json.dumps(record) + "\n", encoding="utf-8")
            os.replace(temporary, path)
        except OSError as exc:
            log.error("cannot keep %s: %s", LAST_COMMAND, exc)

    def runner_argv(self, request: Path, prefix: Path) -> list[str]:
        """The runner as the box starts it itself (``runner = "process"``)."""
        s = self.settings
        return [
            self.python, "-m", "parkgrid", "edge", "update", "--request", str(request),
            "--central-url", str(s.central_url), "--token-file", str(s.token_file),
            "--data-dir", str(s.data_dir), "--prefix", str(prefix), "--key", str(s.public_key),
        ]  # fmt: skip

    async def _run_update(self, command: Command, prefix: Path) -> str | None:
        body = command.body
        assert isinstance(body, InstallRelease)
        folder = request_folder(self.settings.data_dir)
        request = Request(
            str(command.command_id), body.version, body.sha256, body.rollout, body.confirm_within_s
        )
        try:
            path = write_request(folder, request)
        except OSError as exc:
            return f"{folder}: cannot write the request ({exc.strerror or exc}); nothing changed"
        log.info("install-release %s (rollout %s): asked of the %s runner", body.version,
                 body.rollout, self.settings.runner)  # fmt: skip
        if self.settings.runner == "process":
            error = await self._run_runner(path, prefix)
            if error is not None:
                return error
        return await self._result(path, request)

    async def _result(self, path: Path, request: Request) -> str | None:
        """The runner's outcome: None when installed, else what it said."""
        deadline = time.monotonic() + INSTALL_TIMEOUT_S
        while (result := read_result(path.parent, request.command_id)) is None:
            if time.monotonic() > deadline:
                _drop(path)
                return f"no result from the release runner within {INSTALL_TIMEOUT_S:g} s"
            await asyncio.sleep(RESULT_POLL_S)
        log.info("install-release %s: the runner said: %s", request.version, result.said)
        return None if result.code == 0 else result.said

    async def resume(self) -> None:
        """At start: a request left by a box stopped during an install (a power cut). Under
        the unit its root runner carries it out after the restart, so the box waits for the
        result as it would have, and restarts into the release when it is in (the reply is
        lost: central sees the birth). A runner the box started itself is gone: dropped."""
        path = request_folder(self.settings.data_dir) / REQUEST
        if not path.exists():
            return
        try:
            request = read_request(path)
        except BadRequest as exc:
            log.error("install request dropped: %s", exc)
            _drop(path)
            return
        if self.settings.runner != "unit" or self.settings.prefix is None:
            log.warning("install of %s asked before the restart dropped: its runner is gone; "
                        "central asks again", request.version)  # fmt: skip
            _drop(path)
            return
        body = InstallRelease(version=request.version, sha256=request.sha256,
                              rollout=request.rollout,
                              confirm_within_s=request.confirm_within_s)  # fmt: skip
        log.info("install of %s asked before the restart: waiting for its runner", body.version)
        self.installing = body
        self._idle.clear()
        try:
            error = await self._result(path, request)
        finally:
            self.installing = None
            self._idle.set()
        if error is None:
            self.installed = body
            self.announce()
            self.restart()
        else:
            self.last_error = error
            log.warning("install of %s asked before the restart: %s", body.version, error)

    async def _run_runner(self, request: Path, prefix: Path) -> str | None:
        """The runner started by the box; None once it wrote its result."""
        argv = self.runner_argv(request, prefix)
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        try:
            process = await asyncio.create_subprocess_exec(
                *argv,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                stdin=asyncio.subprocess.DEVNULL,
                env=env,
            )
        except OSError as exc:
            _drop(request)
            return f"the update could not start ({exc}): nothing changed"
        try:
            await asyncio.wait_for(_log_lines(process), INSTALL_TIMEOUT_S)
        except TimeoutError:
            process.kill()
            await process.wait()
            _drop(request)
            return f"the update took over {INSTALL_TIMEOUT_S:g} s and was stopped"
        return None


async def _log_lines(process: asyncio.subprocess.Process) -> None:
    """The runner's lines into the box's log as it says them (its steps, live), then its end."""
    assert process.stdout is not None
    while line := await process.stdout.readline():
        log.info("%s", line.decode(errors="replace").rstrip())
    await process.wait()
