"""A virtual serial line: a pty pair whose device end has a stable, removable name.

The program under test opens ``link.path`` as it would ``/dev/serial/by-id/usb-...``; the
simulator holds the pty's master end. ``unplug()`` closes the master and removes the name,
which is what a USB adapter pulled out of a box looks like to pyserial (reads fail with
EIO, the path is gone); ``replug()`` brings a new pty back under the same name.
"""

from __future__ import annotations

import os
import select
import tempfile
import termios
import tty
from pathlib import Path
from types import TracebackType


class PtyLink:
    """One pty pair; the simulator side reads and writes through ``write``/``read``."""

    def __init__(self, *, name: str = "ttySIM0", directory: Path | None = None) -> None:
        self._own_dir: tempfile.TemporaryDirectory[str] | None = None
        if directory is None:
            self._own_dir = tempfile.TemporaryDirectory(prefix="parkgrid-pty-")
            directory = Path(self._own_dir.name)
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / name
        self.master_fd: int | None = None
        self._slave_fd: int | None = None
        self.replug()

    @property
    def plugged(self) -> bool:
        return self.master_fd is not None

    def replug(self) -> None:
        """(Re)create the pty and point ``path`` at its device end."""
        if self.master_fd is not None:
            return
        master, slave = os.openpty()
        # Raw mode on the device end: no echo, no line discipline, bytes pass untouched.
        tty.setraw(slave, termios.TCSANOW)
        tty.setraw(master, termios.TCSANOW)
        os.set_blocking(master, False)
        self.master_fd, self._slave_fd = master, slave
        tmp = self.path.with_suffix(".new")
        if tmp.is_symlink():
            tmp.unlink()
        tmp.symlink_to(os.ttyname(slave))
        tmp.replace(self.path)

    def unplug(self) -> None:
        """Remove the device, as pulling a USB adapter out does."""
        if self.path.is_symlink():
            self.path.unlink()
        for fd in (self.master_fd, self._slave_fd):
            if fd is not None:
                os.close(fd)
        self.master_fd = self._slave_fd = None

    def write(self, data: bytes) -> int:
        """Write toward the program under test; returns bytes written (0 when unplugged)."""
        if self.master_fd is None:
            return 0
        written = 0
        view = memoryview(data)
        while written < len(data):
            try:
                written += os.write(self.master_fd, view[written:])
            except BlockingIOError:
                select.select([], [self.master_fd], [], 1.0)
        return written

    def read(self, max_bytes: int = 4096) -> bytes:
        """Whatever the program under test has written so far (b"" if nothing)."""
        if self.master_fd is None:
            return b""
        try:
            return os.read(self.master_fd, max_bytes)
        except (BlockingIOError, OSError):
            return b""

    def close(self) -> None:
        self.unplug()
        if self._own_dir is not None:
            self._own_dir.cleanup()
            self._own_dir = None

    def __enter__(self) -> PtyLink:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
