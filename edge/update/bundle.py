"""A bundle read the way a box must: signature first, then every file against the manifest.

Nothing in the tar is trusted before the signature of ``manifest.json`` checks out under the
box's public key; the wheels are then copied out one by one into the staging folder, hashed
as they are written, and refused at the first byte that differs. Only regular files the
signed manifest names are read (no links, no paths outside ``wheels/``), so a crafted tar
cannot write anywhere else.
"""

from __future__ import annotations

import platform
import shutil
import sys
import tarfile
from pathlib import Path

from firmware_protocols.release_bundle import listed_files, signed_manifest, stream_checked
from firmware_protocols.release_manifest import (
    Manifest,
    ReleaseRefused,
    check_platform,
    check_upgrade,
    digest,
)


def read_verified_manifest(
    bundle: Path, public_key_pem: bytes, installed: str | None
) -> tuple[Manifest, str]:
    """The bundle's manifest, and the sha256 of its bytes, once its signature, platform and
    version are accepted."""
    try:
        with tarfile.open(bundle, "r:") as tar:
            manifest, manifest_bytes = signed_manifest(tar, public_key_pem, bundle=str(bundle))
    except FileNotFoundError:
        raise ReleaseRefused(str(bundle), "no such file") from None
    except (tarfile.TarError, EOFError) as exc:
        raise ReleaseRefused(str(bundle), f"not a tar bundle ({exc})") from None
    check_platform(
        manifest,
        python=f"{sys.version_info.major}.{sys.version_info.minor}",
        machine=platform.machine(),
    )
    check_upgrade(manifest, installed)
    return manifest, digest(manifest_bytes)


def unpack_verified(bundle: Path, manifest: Manifest, staging: Path) -> list[Path]:
    """Copy every listed file into ``staging``, refusing the first one that is not as listed."""
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    written: list[Path] = []
    with tarfile.open(bundle, "r:") as tar:
        for entry, source in listed_files(tar, manifest):
            target = staging / Path(entry.name).name
            with target.open("wb") as out:
                stream_checked(entry, source, out)
            written.append(target)
    return written
