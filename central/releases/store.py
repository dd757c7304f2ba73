"""Central's release store: a bundle is checked as a box checks it, then kept by version.

Central holds the release *public* key only (``PARKGRID_RELEASE_PUBLIC_KEY``); the private
key stays with whoever signs releases. ``add`` reads the bundle's ``manifest.json`` and
``manifest.sig``, verifies the signature and every listed file with the same pure checks the
box makes (``firmware_protocols.release_manifest``), and only then copies the bundle to
``<releases_dir>/<version>/bundle.tar`` beside ``release.json`` (its sha256, size, key).
The sha256 of the stored file is the ETag boxes resume their downloads against.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tarfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from firmware_protocols.release_bundle import CHUNK, listed_files, signed_manifest, stream_checked
from firmware_protocols.release_manifest import (
    ReleaseRefused,
    key_fingerprint,
)

BUNDLE_NAME = "bundle.tar"
INFO_NAME = "release.json"
SAFE_VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.+!_-]{0,63}$")


@dataclass(frozen=True, slots=True)
class StoredRelease:
    version: str
    sha256: str
    size: int
    created: str
    rollback: bool
    key: str  # the fingerprint of the key it was verified under
    added_at: float


def file_sha256(path: Path) -> str:
    sha = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            sha.update(chunk)
    return sha.hexdigest()


def check_bundle(bundle: Path, public_key_pem: bytes) -> StoredRelease:
    """The release a bundle holds, once its signature and every listed file check out."""
    try:
        with tarfile.open(bundle, "r:") as tar:
            manifest, _ = signed_manifest(tar, public_key_pem, bundle=str(bundle))
            for entry, source in listed_files(tar, manifest):
                stream_checked(entry, source)
    except FileNotFoundError:
        raise ReleaseRefused(str(bundle), "no such file") from None
    except (tarfile.TarError, EOFError) as exc:
        raise ReleaseRefused(str(bundle), f"not a tar bundle ({exc})") from None
    if not SAFE_VERSION.match(manifest.version):
        raise ReleaseRefused("version", f"{manifest.version!r} cannot name a folder")
    return StoredRelease(
        version=manifest.version,
        sha256=file_sha256(bundle),
        size=bundle.stat().st_size,
        created=manifest.created,
        rollback=manifest.rollback,
        key=key_fingerprint(public_key_pem),
        added_at=time.time(),
    )


def add(releases_dir: Path, bundle: Path, public_key_pem: bytes) -> StoredRelease:
    """Check ``bundle`` and store it under its version; a version is stored once."""
    release = check_bundle(bundle, public_key_pem)
    target = releases_dir / release.version
    if (target / INFO_NAME).exists():
        raise ReleaseRefused("version", f"{release.version} is already stored at {target}")
    target.mkdir(parents=True, exist_ok=True)
    tmp = target / (BUNDLE_NAME + ".tmp")
    shutil.copyfile(bundle, tmp)
    if file_sha256(tmp) != release.sha256:
        tmp.unlink()
        raise ReleaseRefused(str(bundle), "changed while it was being stored; nothing stored")
    os.replace(tmp, target / BUNDLE_NAME)
    info = target / (INFO_NAME + ".tmp")
    info.write_text(json.dumps(asdict(release), indent=1) + "\n", encoding="utf-8")
    os.replace(info, target / INFO_NAME)  # written last: a folder without it is not a release
    return release


def stored(releases_dir: Path) -> list[StoredRelease]:
    """Every stored release (folders without a readable ``release.json`` are skipped)."""
    found: list[StoredRelease] = []
    if not releases_dir.is_dir():
        return found
    for folder in sorted(releases_dir.iterdir()):
        release = get(releases_dir, folder.name)
        if release is not None:
            found.append(release)
    return found


def get(releases_dir: Path, version: str) -> StoredRelease | None:
    if not SAFE_VERSION.match(version):
        return None
    try:
        data = json.loads((releases_dir / version / INFO_NAME).read_text(encoding="utf-8"))
        return StoredRelease(**data)
    except (OSError, ValueError, TypeError):
        return None


def bundle_path(releases_dir: Path, version: str) -> Path:
    return releases_dir / version / BUNDLE_NAME
