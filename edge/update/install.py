"""``parkgrid edge update --from FILE``: a verified bundle into the inactive slot, then switch.

The steps, in this order, each safe to cut by a power failure (docs/fleet.md):

1. verify   the signature, the platform, the version (no downgrade) - nothing written
2. disk     enough free space for the staging copy and the installed slot, or refuse
3. unpack   every wheel copied out and checked against the signed manifest
4. slot     the inactive slot rebuilt: a venv, the wheels with ``--no-index``, its command
            run once, then its release file written last (a slot without it is incomplete)
5. trial    the state file says the new slot is on trial (atomic), and the disk is synced
6. switch   the ``current`` symlink swapped by rename

Until step 6 the unit starts the old release; after it, the new one on trial, and the boot
check returns to the old one if it crashes on start or is not confirmed in time.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from edge.update.bundle import read_verified_manifest, unpack_verified
from edge.update.slots import RELEASE_FILE, Layout, Trial, write_atomically
from firmware_protocols.release_manifest import Manifest, ReleaseRefused

# An installed slot takes about 6.5x its wheels (141 MB from 21.7 MB of x86_64 wheels, with
# the .pyc files: docs/fleet.md); 7x is asked, plus the staging copy (1x) and a margin.
INSTALLED_PER_WHEEL_BYTE = 7
DISK_MARGIN_BYTES = 20_000_000


@dataclass(frozen=True, slots=True)
class UpdateOptions:
    bundle: Path
    prefix: Path
    public_key: Path
    confirm_within_s: float = 600.0
    max_boots: int = 3
    python: Path | None = None  # the interpreter a slot's venv is made from


class UpdateFailed(Exception):
    """A step that could not be done (not a refusal of the bundle): ``step``, ``reason``."""

    def __init__(self, step: str, reason: str) -> None:
        self.step = step
        self.reason = reason
        super().__init__(f"{step}: {reason}")


def disk_needed(manifest: Manifest) -> int:
    payload = manifest.payload_bytes
    return payload + payload * INSTALLED_PER_WHEEL_BYTE + DISK_MARGIN_BYTES


def check_free_disk(path: Path, manifest: Manifest) -> None:
    free = shutil.disk_usage(path).free
    need = disk_needed(manifest)
    if free < need:
        raise ReleaseRefused(
            "disk",
            f"{path} has {free / 1e6:.0f} MB free, the release needs {need / 1e6:.0f} MB "
            "(staging and the installed slot); nothing was changed",
        )


def base_python() -> Path:
    return Path(getattr(sys, "_base_executable", sys.executable))


def _run(step: str, argv: list[str]) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    done = subprocess.run(argv, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        said = "\n  ".join((done.stderr or done.stdout).strip().splitlines()[-8:])
        raise UpdateFailed(step, f"{Path(argv[0]).name} exited {done.returncode}:\n  {said}")
    return done.stdout


def build_slot(layout: Layout, slot: str, wheels: list[Path], manifest: Manifest,
               manifest_sha256: str, python: Path) -> None:  # fmt: skip
    target = layout.slot_dir(slot)
    if target.exists():
        shutil.rmtree(target)
    _run("slot", [str(python), "-m", "venv", str(target)])
    slot_python = str(target / "bin" / "python")
    _run("slot", [slot_python, "-m", "pip", "--disable-pip-version-check", "--no-input",
                  "install", "--quiet", "--no-index", "--no-deps",
                  *map(str, wheels)])  # fmt: skip
    said = _run("slot", [str(target / "bin" / "parkgrid"), "--version"]).strip()
    if said != manifest.version:
        raise UpdateFailed("slot", f"the new slot's parkgrid says {said!r}, not {manifest.version}")
    os.sync()  # every file of the slot on disk before the file that says it is complete
    info = {
        "version": manifest.version,
        "created": manifest.created,
        "manifest_sha256": manifest_sha256,
        "installed": time.time(),
    }
    write_atomically(target / RELEASE_FILE, (json.dumps(info) + "\n").encode())


def update(options: UpdateOptions, say: Callable[[str], None] = print) -> Manifest:
    """Install the bundle into the inactive slot and switch to it, on trial."""
    layout = Layout(options.prefix)
    state = layout.load()
    current = layout.current_slot()
    if state.trial is not None and state.trial.slot == current:
        raise ReleaseRefused(
            "state",
            f"release {state.trial.version} is still on trial: it must be confirmed or rolled "
            "back before another update (its slot is the only way back)",
        )
    try:
        public_key = options.public_key.read_bytes()
    except OSError as exc:
        raise ReleaseRefused(
            str(options.public_key), f"the release public key: {exc.strerror}"
        ) from None
    installed = layout.installed_version()

    say("update: step 1/6 verify")
    manifest, manifest_sha256 = read_verified_manifest(options.bundle, public_key, installed)
    slot = layout.inactive_slot()
    # A slot completed from this very manifest (an update cut after its step 4, or a release
    # rolled back from and installed again) is kept: its files were checked when it was built.
    kept = layout.slot_info(slot).get("manifest_sha256") == manifest_sha256
    say(f"update: step 2/6 disk (parkgrid {manifest.version} over {installed or 'nothing'})")
    layout.releases.mkdir(parents=True, exist_ok=True)  # nothing is written before this
    if not kept:
        check_free_disk(layout.releases, manifest)
    say("update: step 3/6 unpack")
    if not kept:
        wheels = unpack_verified(options.bundle, manifest, layout.staging)
    say(f"update: step 4/6 slot {slot}" + (" (already holds this release: kept)" if kept else ""))
    if not kept:
        python = options.python or base_python()
        build_slot(layout, slot, wheels, manifest, manifest_sha256, python)
        shutil.rmtree(layout.staging)
    say("update: step 5/6 trial")
    if current is None:
        state.good, state.trial = slot, None  # a first install has nothing to return to
        state.note("installed", manifest.version, "first release on this box")
    else:
        state.good = current
        state.trial = Trial(
            slot=slot,
            version=manifest.version,
            from_slot=current,
            confirm_within_s=options.confirm_within_s,
            max_boots=options.max_boots,
        )
        state.note("installed", manifest.version, f"on trial in slot {slot}")
    layout.save(state)
    say("update: step 6/6 switch")
    layout.point_current_at(slot)
    return manifest
