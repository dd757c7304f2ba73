"""One demo at a time: a lock file naming the running demo's pid, URL and run folder."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

from parkgrid.demo_processes import DemoError


def lock_path() -> Path:
    return Path(
        os.environ.get("PARKGRID_DEMO_LOCK", Path(tempfile.gettempdir()) / "parkgrid-demo.lock")
    )


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def port_busy(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


@contextlib.contextmanager
def demo_lock(*, url: str, run_dir: Path) -> Iterator[None]:
    """Hold the one-demo-at-a-time lock; raise DemoError naming the running demo."""
    path = lock_path()
    while True:
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                held = json.loads(path.read_text() or "{}")
            except (OSError, ValueError):
                held = {}
            pid = int(held.get("pid", 0))
            if pid and alive(pid):
                raise DemoError(
                    f"a demo is already running (pid {pid}) at {held.get('url', '?')}; "
                    f"its files are in {held.get('run_dir', '?')}. Stop it with Ctrl-C first."
                ) from None
            path.unlink(missing_ok=True)  # left by a demo that died: take it over
            continue
        with os.fdopen(fd, "w") as out:
            json.dump({"pid": os.getpid(), "url": url, "run_dir": str(run_dir)}, out)
        break
    try:
        yield
    finally:
        with contextlib.suppress(OSError, ValueError):
            if json.loads(path.read_text()).get("pid") == os.getpid():
                path.unlink()
