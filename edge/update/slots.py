"""Where releases live on a box, and the small state file that says which one is on trial.

    <prefix>/current -> releases/a      the release the unit starts (a relative symlink)
    <prefix>/releases/a/, b/            one virtual environment per slot
    <prefix>/releases/<slot>/parkgrid-release.json   written last: the slot is complete
    <prefix>/releases/state.json        the good slot, the trial, the history
    <prefix>/releases/staging/          a bundle's verified wheels while a slot is built

Every write is atomic (a temporary file, fsync, rename, fsync of the folder), and the
``current`` symlink is replaced by ``rename``, so a power cut leaves either the old or the
new value of each, never a torn one.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

SLOTS = ("a", "b")
RELEASE_FILE = "parkgrid-release.json"
HISTORY_KEPT = 20


@dataclass(slots=True)
class Trial:
    slot: str
    version: str
    from_slot: str
    confirm_within_s: float
    max_boots: int
    boots: int = 0
    since: float | None = None  # wall clock of its first boot
    gate_failed: str | None = None  # why the confirm gave up, for the boot check to say


@dataclass(slots=True)
class State:
    good: str | None = None  # the last confirmed slot: where a failed trial returns
    trial: Trial | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    unreadable: str | None = None  # why the state file could not be read, if it could not

    def note(self, event: str, version: str | None, reason: str = "") -> None:
        entry = {"at": round(time.time(), 3), "event": event, "version": version}
        if reason:
            entry["reason"] = reason
        self.history = [*self.history, entry][-HISTORY_KEPT:]


class Layout:
    def __init__(self, prefix: Path) -> None:
        self.prefix = prefix
        self.releases = prefix / "releases"
        self.current = prefix / "current"
        self.state_file = self.releases / "state.json"
        self.staging = self.releases / "staging"

    def slot_dir(self, slot: str) -> Path:
        return self.releases / slot

    def current_slot(self) -> str | None:
        try:
            target = os.readlink(self.current)
        except OSError:
            return None
        name = Path(target).name
        return name if name in SLOTS else None

    def inactive_slot(self) -> str:
        return "b" if self.current_slot() == "a" else "a"

    def slot_info(self, slot: str) -> dict[str, Any]:
        """A complete slot's release file (written last), else an empty dict."""
        try:
            info = json.loads((self.slot_dir(slot) / RELEASE_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return info if isinstance(info, dict) else {}

    def slot_version(self, slot: str) -> str | None:
        """The version of a complete slot, else None."""
        version = self.slot_info(slot).get("version")
        return version if isinstance(version, str) else None

    def installed_version(self) -> str | None:
        slot = self.current_slot()
        if slot is None:
            return None
        if (version := self.slot_version(slot)) is not None:
            return version
        # a slot made by install-box.sh before it wrote its release file: ask the slot
        python = self.slot_dir(slot) / "bin" / "python"
        asked = subprocess.run(
            [str(python), "-c", "import importlib.metadata as m; print(m.version('parkgrid'))"],
            capture_output=True, text=True,
        )  # fmt: skip
        if asked.returncode != 0:
            return None
        return asked.stdout.strip() or None

    def load(self) -> State:
        """The state; a missing file is a box with nothing on trial, and so is an unreadable
        one (a disk fault), noted in ``unreadable`` so that it is said, never a crash."""
        try:
            raw = json.loads(self.state_file.read_text(encoding="utf-8"))
            trial = raw.get("trial")
            return State(
                good=raw.get("good"),
                trial=Trial(**trial) if isinstance(trial, dict) else None,
                history=list(raw.get("history") or []),
            )
        except FileNotFoundError:
            return State(good=self.current_slot())
        except (OSError, ValueError, TypeError, AttributeError) as exc:
            state = State(good=self.current_slot(), unreadable=f"{self.state_file.name}: {exc}")
            state.note("state unreadable", None, state.unreadable or "")
            return state

    def save(self, state: State) -> None:
        document = {
            "good": state.good,
            "trial": asdict(state.trial) if state.trial else None,
            "history": state.history,
        }
        write_atomically(self.state_file, (json.dumps(document, indent=1) + "\n").encode())

    def point_current_at(self, slot: str) -> None:
        """Swap the ``current`` symlink to ``slot`` by rename (atomic)."""
        temporary = self.prefix / "current.new"
        temporary.unlink(missing_ok=True)
        os.symlink(f"releases/{slot}", temporary)
        os.replace(temporary, self.current)
        fsync_dir(self.prefix)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.new")
    with temporary.open("wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    os.replace(temporary, path)
    fsync_dir(path.parent)
