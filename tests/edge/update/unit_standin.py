"""What the systemd unit does around a box, played by the tests (no systemd in a test).

Like deploy/systemd/parkgrid-edge.service: before each start the boot check (ExecStartPre;
a failure fails the start), then ``edge run`` (ExecStart) with ``edge confirm`` beside it
(ExecStartPost); when the box exits or the confirm fails, both are stopped and the unit
starts again after RestartSec; ``restart()`` is ``systemctl restart``. Every command is the
one under ``<prefix>/current`` at the time, as systemd resolves it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from pathlib import Path

RESTART_S = 0.5


class UnitStandin:
    def __init__(self, prefix: Path, config: Path, log: Path) -> None:
        self.prefix, self.config, self.log = prefix, config, log
        self.starts = 0
        self._stop = threading.Event()
        self._restart = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}

    def _command(self, *args: str) -> list[str]:
        return [str(self.prefix / "current" / "bin" / "parkgrid"), *args]

    def _spawn(self, *args: str) -> subprocess.Popen[bytes]:
        with self.log.open("ab") as out:
            out.write(f"$ {' '.join(args)}\n".encode())
        out = self.log.open("ab")
        try:
            return subprocess.Popen(self._command(*args), stdout=out, stderr=subprocess.STDOUT,
                                    env=self._env)  # fmt: skip
        finally:
            out.close()

    def _loop(self) -> None:
        while not self._stop.is_set():
            check = self._spawn("edge", "boot-check", "--prefix", str(self.prefix))
            if check.wait() != 0:
                self._stop.wait(RESTART_S)
                continue
            self.starts += 1
            box = self._spawn("edge", "run", "--config", str(self.config))
            confirm = self._spawn("edge", "confirm", "--prefix", str(self.prefix),
                                  "--config", str(self.config))  # fmt: skip
            self._restart.clear()
            while not self._stop.is_set() and not self._restart.is_set():
                if box.poll() is not None:
                    break
                if confirm.poll() not in (None, 0):
                    break  # ExecStartPost failed: the unit fails, and is restarted
                self._stop.wait(0.1)
            for process in (confirm, box):
                if process.poll() is None:
                    process.send_signal(signal.SIGTERM)
                    try:
                        process.wait(20)
                    except subprocess.TimeoutExpired:
                        process.kill()
                        process.wait()
            self._stop.wait(RESTART_S)

    def restart(self) -> None:
        self._restart.set()

    def __enter__(self) -> UnitStandin:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(60)
