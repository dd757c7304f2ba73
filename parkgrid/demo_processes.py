"""The demo's child processes (each in its own process group, stopped together), the
one-shot commands it runs, and ``DemoError``, what a failed step raises."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path


class DemoError(RuntimeError):
    """The demo could not start; ``str()`` says why in words for the terminal."""


def parkgrid_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "parkgrid", *args]


def run_checked(argv: list[str], *, stdin: str | None = None, what: str) -> str:
    result = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        raise DemoError(f"{what} failed ({result.returncode}): {result.stderr.strip()[-500:]}")
    return result.stdout


def free_port() -> int:
    from simulators.broker import free_port as _free

    return _free()


@dataclass
class Child:
    name: str
    argv: list[str]
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.proc.pid


@dataclass
class Processes:
    """Every child the demo started, each in its own process group."""

    logs: Path
    children: list[Child] = field(default_factory=list)

    def start(
        self,
        name: str,
        argv: list[str],
        *,
        stdin: bytes | None = None,
        env: dict[str, str] | None = None,
    ) -> Child:
        log = self.logs / f"{name}.log"
        with open(log, "ab") as out:
            proc = subprocess.Popen(
                argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                start_new_session=True,
                env=None if env is None else {**os.environ, **env},
            )
        if stdin is not None and proc.stdin is not None:
            proc.stdin.write(stdin)
            proc.stdin.close()
        child = Child(name=name, argv=argv, proc=proc, log=log)
        self.children.append(child)
        return child

    def stop(self, child: Child, *, grace_s: float = 8.0) -> int | None:
        """SIGTERM one child's group, wait up to ``grace_s``, then SIGKILL what is left."""
        if child.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(child.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.proc.wait(timeout=grace_s)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(child.pid, signal.SIGKILL)
        if child.proc.poll() is None:
            child.proc.wait(timeout=5)
        return child.proc.returncode

    def stop_all(self, *, grace_s: float = 8.0) -> list[tuple[str, int, int | None]]:
        """Stop in order, each stage given time to finish before the next: the boxes (they
        publish their last state and go), then central (it drains its ingest), then the
        broker; SIGKILL whatever outlives its grace."""
        stages = [
            [c for c in self.children if c.name not in ("central", "broker")],
            [c for c in self.children if c.name == "central"],
            [c for c in self.children if c.name == "broker"],
        ]
        for stage in stages:
            for child in stage:
                if child.proc.poll() is None:
                    # The leader only: it stops its own children (central's ingest writer)
                    # in its own time; the group is killed below if anything outlives it.
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.kill(child.pid, signal.SIGTERM)
            deadline = time.monotonic() + grace_s
            for child in stage:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    child.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        for child in self.children:
            # The group too: a child's own children never outlive the demo.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(child.pid, signal.SIGKILL)
            if child.proc.poll() is None:
                child.proc.wait(timeout=5)
        return [(c.name, c.pid, c.proc.returncode) for c in self.children]


def exit_words(rc: int | None) -> str:
    """A child's exit status in words. uvicorn (central) ends a graceful shutdown on SIGTERM
    by re-raising the signal (since 0.29), so -15 after the demo's SIGTERM is a clean stop."""
    if rc == -signal.SIGTERM:
        return "exit -15 (stopped by SIGTERM after its shutdown)"
    if rc == -signal.SIGKILL:
        return "exit -9 (killed: it outlived its grace)"
    return f"exit {rc}"
