"""The box's stores (the outbox, the zone store) taken back to the schemas an older release
knows, when the boot check rolls back to it.

A newer release reads older files and migrates them forward as it opens them; the older
release does not know the newer schema. So when the boot check returns to the slot a trial
came from, it asks that slot's code which schema versions it knows (``known_versions`` of
its own ``edge.update.store_schemas``; a release from before this module knows outbox 1 and
zone store 0, ``BEFORE_VERSIONED``) and runs this release's down-migrations to them. The boot
check runs as root: every file keeps its owner and mode.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
from pathlib import Path

from edge import outbox_line, zones_store
from edge.outbox import Outbox

# What the releases before this module know: the outbox's seq line (1), unversioned zones (0).
BEFORE_VERSIONED = {"outbox": 1, "zones": 0}
ASK_TIMEOUT_S = 60.0


def known_versions() -> dict[str, int]:
    """The store schemas this release reads and writes."""
    return {"outbox": outbox_line.SCHEMA_VERSION, "zones": zones_store.SCHEMA_VERSION}


def slot_versions(slot_dir: Path) -> tuple[dict[str, int], str]:
    """The store schemas the release in ``slot_dir`` knows, and how that was found out."""
    python = slot_dir / "bin" / "python"
    asked = "from edge.update.store_schemas import known_versions as k; import json; "
    asked += "print(json.dumps(k()))"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    try:
        done = subprocess.run(
            [str(python), "-c", asked], capture_output=True, text=True, timeout=ASK_TIMEOUT_S,
            env=env, cwd=slot_dir,
        )  # fmt: skip
        versions = json.loads(done.stdout) if done.returncode == 0 else None
    except (OSError, ValueError, subprocess.TimeoutExpired):
        versions = None
    if isinstance(versions, dict) and all(isinstance(v, int) for v in versions.values()):
        return {**BEFORE_VERSIONED, **versions}, "as its code says"
    return dict(BEFORE_VERSIONED), "a release from before versioned stores"


def _keep_owner(path: Path, like: os.stat_result) -> None:
    if path.exists() and (like.st_uid, like.st_gid) != (os.geteuid(), os.getegid()):
        os.chown(path, like.st_uid, like.st_gid)


def outbox_down(data_dir: Path, version: int) -> bool:
    """The outbox file taken back to ``version`` when it is newer; True when it changed."""
    path = Outbox.path_in(data_dir)
    if not path.exists():
        return False
    before = path.stat()
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        current = conn.execute("PRAGMA user_version").fetchone()[0]
        if current <= version:
            return False
        if version != 0:
            raise ValueError(f"outbox schema {current} to {version}: only 0 is known below")
        outbox_line.migrate_down(conn)
    finally:
        conn.close()
    for name in (path.name, f"{path.name}-wal", f"{path.name}-shm"):
        _keep_owner(path.with_name(name), before)
    return True


def migrate_down_to(data_dir: Path, versions: dict[str, int]) -> list[str]:
    """Every store of ``data_dir`` newer than ``versions`` migrated down; what was done."""
    done = []
    if outbox_down(data_dir, versions["outbox"]):
        done.append(f"outbox to schema {versions['outbox']}")
    if versions["zones"] < zones_store.SCHEMA_VERSION:
        changed = zones_store.migrate_down(data_dir, versions["zones"])
        if changed:
            done.append(f"{' and '.join(changed)} to schema {versions['zones']}")
    return done
