"""A Mosquitto broker started on a free loopback port, for tests, benchmarks and the demo.

The broker is the real thing (Debian's ``mosquitto``), started with a generated
configuration so each test gets its own, isolated, on its own port. ``set_tcp_nodelay true``
is always written: Mosquitto's default holds back acknowledgements, which cut QoS 1 rates
by a factor of four in our measurements.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Self


class BrokerError(RuntimeError):
    """The broker could not be started (binary missing, port never opened)."""


_handed_out: set[int] = set()
_FIRST_PORT = 10_000


def _ephemeral_low() -> int:
    """The bottom of the kernel's range for port-0 binds (32768 on most Linux)."""
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    return max(low, _FIRST_PORT + 1000)


def worker_port_range(worker: str | None, count: str | None) -> tuple[int, int]:
    """The ports ``[low, high)`` this process may hand out.

    Below the kernel's ephemeral range. Under pytest-xdist (``PYTEST_XDIST_WORKER`` ``gwN``
    of ``PYTEST_XDIST_WORKER_COUNT``) each worker gets its own slice of that range, so two
    workers are never handed the same port between the check and the bind. An id it cannot
    read takes the whole range, as outside pytest.
    """
    low, high = _FIRST_PORT, _ephemeral_low()
    if worker is None or count is None or not worker.startswith("gw"):
        return low, high
    try:
        index, total = int(worker.removeprefix("gw")), int(count)
    except ValueError:
        return low, high
    if not 0 <= index < total:
        return low, high
    width = (high - low) // total
    start = low + index * width
    return start, high if index == total - 1 else start + width


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that nothing listens on right now, for a process that binds it later.

    Chosen below the kernel's ephemeral range, so no port-0 bind made in the meantime (a
    sign simulator, a client socket) can take it before its owner binds it; never the same
    one twice in this process; and, under pytest-xdist, from this worker's own slice
    (``worker_port_range``).
    """
    rng = random.SystemRandom()
    low, high = worker_port_range(
        os.environ.get("PYTEST_XDIST_WORKER"), os.environ.get("PYTEST_XDIST_WORKER_COUNT")
    )
    for _ in range(200):
        port = rng.randrange(low, high)
        if port in _handed_out:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((host, port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise BrokerError(f"no free port found on {host} in [{low}, {high})")


def wait_for_port(host: str, port: int, timeout: float) -> None:
    """Block until ``host:port`` accepts a TCP connection, or raise TimeoutError."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listens on {host}:{port} after {timeout} s") from None
            time.sleep(0.02)


@dataclass(kw_only=True)
class BrokerProcess(ABC):
    """A broker in a child process of its own, on a loopback port: the shared lifecycle.

    Subclasses say how to start theirs (``command()``, which may write a config into
    ``workdir``) and what to call it. Use as a context manager, or call ``start()`` /
    ``stop()``; ``kill()`` sends SIGKILL (fault tests); ``start()`` again restarts it on the
    same port.
    """

    host: str = "127.0.0.1"
    port: int = 0
    allow_anonymous: bool = True
    workdir: Path | None = None
    _proc: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)
    _own_dir: tempfile.TemporaryDirectory[str] | None = field(default=None, init=False, repr=False)
    _argv: list[str] = field(default_factory=list, init=False, repr=False)

    name = "broker"
    start_timeout_s = 10.0

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    @property
    def log_path(self) -> Path:
        assert self.workdir is not None
        return self.workdir / f"{self.name}.log"

    @property
    def proc(self) -> subprocess.Popen[bytes] | None:
        """The child process while it runs."""
        return self._proc

    @property
    def argv(self) -> list[str]:
        """The command line the child was started with."""
        return list(self._argv)

    @abstractmethod
    def command(self) -> list[str]:
        """The child's argv; called with ``workdir`` and ``port`` settled."""

    def start(self) -> Self:
        if self.workdir is None:
            self._own_dir = tempfile.TemporaryDirectory(prefix=f"parkgrid-{self.name}-")
            self.workdir = Path(self._own_dir.name)
        self.workdir.mkdir(parents=True, exist_ok=True)
        if self.port == 0:
            self.port = free_port(self.host)
        self._argv = self.command()
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child process
        self._proc = subprocess.Popen(
            self._argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()
        try:
            wait_for_port(self.host, self.port, timeout=self.start_timeout_s)
        except TimeoutError as exc:
            self.stop()
            raise BrokerError(f"{self.name} did not start: {self.log_path.read_text()}") from exc
        return self

    def kill(self) -> None:
        """SIGKILL, as a crash or power cut would: no clean disconnects."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGKILL)
            self._proc.wait(timeout=10)
        self._proc = None

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout=5)
        self._proc = None

    def close(self) -> None:
        self.stop()
        if self._own_dir is not None:
            self._own_dir.cleanup()
            self._own_dir = None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


@dataclass(kw_only=True)
class MosquittoBroker(BrokerProcess):
    """A mosquitto process with a config of our own.

    ``extra_config`` lines are appended to the generated config (listeners with TLS,
    password and ACL files, ...).
    """

    persistence: bool = False
    extra_config: list[str] = field(default_factory=list)
    binary: str = "mosquitto"

    name = "mosquitto"

    def config_text(self) -> str:
        assert self.workdir is not None
        lines = [
            f"listener {self.port} {self.host}",
            f"allow_anonymous {'true' if self.allow_anonymous else 'false'}",
            "set_tcp_nodelay true",
            f"persistence {'true' if self.persistence else 'false'}",
            f"persistence_location {self.workdir}/",
            "max_inflight_messages 1000",
            "max_queued_messages 1000000",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
            *self.extra_config,
        ]
        return "\n".join(lines) + "\n"

    def command(self) -> list[str]:
        path = shutil.which(self.binary) or (
            "/usr/sbin/mosquitto" if os.path.exists("/usr/sbin/mosquitto") else None
        )
        if path is None:
            raise BrokerError("mosquitto is not installed (apt-get install mosquitto)")
        assert self.workdir is not None
        conf = self.workdir / "mosquitto.conf"
        conf.write_text(self.config_text())
        return [path, "-c", str(conf)]
