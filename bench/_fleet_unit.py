"""A box's systemd unit, played by the fleet bench: deploy/systemd/parkgrid-edge.service.

Per start, as the unit: the boot check (``ExecStartPre``; a failure fails the start), then
``edge run`` (``ExecStart``) with ``edge confirm`` beside it (``ExecStartPost``). When the box
exits, whatever its exit code (``Restart=always``; 75, with which a box asks to be started
into the slot central's install-release switched to, is one of them), or the confirm fails,
both are stopped (SIGTERM, SIGKILL after ``TimeoutStopSec``) and the unit starts again after
``RestartSec``. ``restart()`` is
``systemctl restart`` (stop, then start at once); ``power_cut()`` is ``kill -9`` of every
process of the box, then a start after ``RestartSec`` as the box boots again. Every command
is the one under ``<prefix>/current`` at the time it starts, as systemd resolves it. The
three commands, ``RestartSec`` and ``TimeoutStopSec`` are read from the unit file itself, the
box's folders put in place of /opt/parkgrid, /etc/parkgrid/edge.toml and /var/lib/parkgrid.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
UNIT_FILE = REPO / "deploy" / "systemd" / "parkgrid-edge.service"
ENV = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}


def unit_seconds(key: str, text: str | None = None) -> float:
    """A ``KEY=N`` (seconds) setting of the unit file; ``min`` suffixes are understood."""
    text = UNIT_FILE.read_text() if text is None else text
    found = re.search(rf"^{key}=(\d+)(min|s)?\s*$", text, re.MULTILINE)
    if found is None:
        raise ValueError(f"{UNIT_FILE.name}: no {key}=")
    return float(found.group(1)) * (60 if found.group(2) == "min" else 1)


def unit_commands(prefix: Path, config: Path, data_dir: Path,
                  text: str | None = None) -> dict[str, list[str]]:  # fmt: skip
    """The unit file's ExecStartPre, ExecStart and ExecStartPost for a box installed under
    ``prefix`` (its /opt/parkgrid) with ``config`` and ``data_dir`` (/var/lib/parkgrid)."""
    text = UNIT_FILE.read_text() if text is None else text
    commands = {}
    for key in ("ExecStartPre", "ExecStart", "ExecStartPost"):
        found = re.search(rf"^{key}=\+?(.+)$", text, re.MULTILINE)
        if found is None:
            raise ValueError(f"{UNIT_FILE.name}: no {key}=")
        commands[key] = [
            arg.replace("/opt/parkgrid", str(prefix))
            .replace("/etc/parkgrid/edge.toml", str(config))
            .replace("/var/lib/parkgrid", str(data_dir))
            for arg in found.group(1).split()
        ]
    return commands


def signal_group(proc: subprocess.Popen[bytes] | subprocess.Popen[str], sig: int) -> None:
    """Signal a process and everything it started (each is spawned in a session of its own),
    as systemd signals the unit's control group: a power cut must also stop the pip an
    update runs, or it goes on writing into the slot."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


class Unit:
    """One box's unit; ``phase`` says what it is doing: stopped, boot-check, confirming
    (the box running, its confirm polling), running (confirmed or nothing on trial),
    restarting, down (after a power cut, before the boot)."""

    def __init__(self, name: str, prefix: Path, config: Path, data_dir: Path, log: Path, *,
                 restart_s: float | None = None,
                 env: dict[str, str] | None = None) -> None:  # fmt: skip
        """``restart_s`` replaces the unit file's RestartSec (the tests' quick units); ``env``
        is added to the environment, as the unit's ``EnvironmentFile`` (/etc/parkgrid/edge.env)."""
        self.name, self.prefix, self.config, self.log = name, prefix, config, log
        self.env = {**ENV, **(env or {})}
        self.commands = unit_commands(prefix, config, data_dir)
        self.restart_s = unit_seconds("RestartSec") if restart_s is None else restart_s
        self.stop_timeout_s = unit_seconds("TimeoutStopSec")
        self.phase = "stopped"
        self.starts = 0
        self.exits: list[int] = []  # exit codes of the box process, in order
        self._procs: list[subprocess.Popen[bytes]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._cut = False
        self._thread = threading.Thread(target=self._loop, name=f"unit-{name}", daemon=True)

    def _note(self, line: str) -> None:
        with self.log.open("a") as out:
            out.write(f"[{time.strftime('%H:%M:%S')}] unit: {line}\n")

    def _spawn(self, key: str) -> subprocess.Popen[bytes]:
        command = self.commands[key]  # run from <prefix>/current at the time, as systemd does
        self._note(f"{key}: {' '.join(command[1:])}")
        with self.log.open("ab") as out:
            proc = subprocess.Popen(
                command, stdout=out, stderr=subprocess.STDOUT, env=self.env, start_new_session=True
            )
        with self._lock:
            self._procs.append(proc)
        return proc

    def _pause(self, seconds: float) -> None:
        self._wake.wait(seconds)
        self._wake.clear()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._cut = False
            self.phase = "boot-check"
            check = self._spawn("ExecStartPre")
            if check.wait() != 0 or self._cut:
                self._forget()
                self.phase = "down" if self._cut else "failed"
                self._pause(self.restart_s)
                continue
            self.starts += 1
            box = self._spawn("ExecStart")
            confirm = self._spawn("ExecStartPost")
            self.phase = "confirming"
            restarting = False
            while not self._stop.is_set() and not self._cut:
                if self._wake.is_set():
                    self._wake.clear()
                    restarting = True
                    break
                if box.poll() is not None:
                    self._note(f"edge run exited {box.returncode}: restart in {self.restart_s:g} s")
                    break
                done = confirm.poll()
                if done not in (None, 0):
                    self._note(f"confirm exited {done}: the start failed")
                    break
                if done == 0 and self.phase == "confirming":
                    self.phase = "running"
                time.sleep(0.05)
            self.phase = "restarting" if restarting else self.phase
            if self._cut:  # also what was started just as the power went
                for proc in (confirm, box):
                    signal_group(proc, signal.SIGKILL)
                    proc.wait()
            else:
                self._terminate(confirm, box)
            if box.returncode is not None:
                self.exits.append(box.returncode)
            self._forget()
            if self._cut:
                self.phase = "down"
            if not restarting and not self._stop.is_set():
                self._pause(self.restart_s)

    def _terminate(self, *procs: subprocess.Popen[bytes]) -> None:
        # the whole group, even when its leader has exited: systemd stops what is left in
        # the unit's control group when the main process is gone
        for proc in procs:
            signal_group(proc, signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(self.stop_timeout_s)
            except subprocess.TimeoutExpired:
                signal_group(proc, signal.SIGKILL)
                proc.wait()

    def _forget(self) -> None:
        with self._lock:
            self._procs = [p for p in self._procs if p.poll() is None]

    def pids(self) -> list[int]:
        with self._lock:
            return [p.pid for p in self._procs if p.poll() is None]

    def restart(self) -> None:
        """``systemctl restart``: stop what runs, start again without waiting RestartSec."""
        self._note("systemctl restart")
        self._wake.set()

    def power_cut(self) -> None:
        """``kill -9`` of every process of the unit; it boots again after RestartSec."""
        self._cut = True
        with self._lock:
            procs = list(self._procs)
        for proc in procs:
            signal_group(proc, signal.SIGKILL)
        self._note(f"power cut: kill -9 of {len(procs)} process(es) and their children")

    def start(self) -> Unit:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        with self._lock:
            procs = list(self._procs)
        self._terminate(*procs)
        if self._thread.is_alive():
            self._thread.join(self.stop_timeout_s + 10)
        self.phase = "stopped"
