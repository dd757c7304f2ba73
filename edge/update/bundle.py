"""A bundle read the way a box must: signature first, then every file against the manifest.

Nothing in the tar is trusted before the signature of ``manifest.json`` checks out under the
box's public key; the wheels are then copied out one by one into the staging folder, hashed
as they are written, and refused at the first byte that differs. Only regular files the
signed manifest names are read (no links, no paths outside ``wheels/``), so a crafted tar
cannot write anywhere else.
"""

from __future__ import annotations

import hashlib
import platform
import shutil
import sys
import tarfile
from pathlib import Path

from firmware_protocols.release_manifest import (
    MANIFEST_NAME,
    SIGNATURE_NAME,
    Manifest,
    ReleaseRefused,
    check_file,
    check_members,
    check_platform,
    check_upgrade,
    decode_manifest,
    digest,
    verify_signature,
)

MAX_MANIFEST_BYTES = 1_000_000
CHUNK = 1 << 20


def _read_member(tar: tarfile.TarFile, name: str, limit: int) -> bytes | None:
    try:
        info = tar.getmember(name)
    except KeyError:
        return None
    if not info.isfile() or info.size > limit:
        raise ReleaseRefused(name, "not a regular file of a sane size")
    member = tar.extractfile(info)
    assert member is not None
    return member.read()


def read_verified_manifest(
    bundle: Path, public_key_pem: bytes, installed: str | None
) -> tuple[Manifest, str]:
    """The bundle's manifest, and the sha256 of its bytes, once its signature, platform and
    version are accepted."""
    try:
        with tarfile.open(bundle, "r:") as tar:
            manifest_bytes = _read_member(tar, MANIFEST_NAME, MAX_MANIFEST_BYTES)
            signature = _read_member(tar, SIGNATURE_NAME, 1024)
    except FileNotFoundError:
        raise ReleaseRefused(str(bundle), "no such file") from None
    except (tarfile.TarError, EOFError) as exc:
        raise ReleaseRefused(str(bundle), f"not a tar bundle ({exc})") from None
    if manifest_bytes is None:
        raise ReleaseRefused(str(bundle), f"has no {MANIFEST_NAME}: not a parkgrid bundle")
    verify_signature(manifest_bytes, signature, public_key_pem)
    manifest = decode_manifest(manifest_bytes)
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
    expected = {f.name: f for f in manifest.files}
    written: list[Path] = []
    with tarfile.open(bundle, "r:") as tar:
        members = {info.name: info for info in tar.getmembers()}
        check_members(manifest, set(members))
        for name, entry in expected.items():
            info = members[name]
            if not info.isfile():
                raise ReleaseRefused(name, "not a regular file in the bundle")
            source = tar.extractfile(info)
            assert source is not None
            target = staging / Path(name).name
            sha, size = hashlib.sha256(), 0
            with target.open("wb") as out:
                while chunk := source.read(CHUNK):
                    sha.update(chunk)
                    size += len(chunk)
                    out.write(chunk)
            check_file(entry, size, sha.hexdigest())
            written.append(target)
    return written
