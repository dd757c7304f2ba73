"""Reading a release bundle's tar the one way both sides read it.

The office's release store (``central.releases``) and the box (``edge.update``) check a
bundle alike: the manifest and its signature members first, verified before anything in the
bundle is believed, then every file the manifest lists, hashed as it streams out of the tar
(the box also writes it out). Both may not import each other, so the reading lives beside
the manifest's format (``release_manifest``). The caller opens and closes the tar; every
refusal is a ``ReleaseRefused`` naming what failed and why.
"""

from __future__ import annotations

import hashlib
import tarfile
from collections.abc import Iterator
from typing import IO

from firmware_protocols.release_manifest import (
    MANIFEST_NAME,
    SIGNATURE_NAME,
    BundleFile,
    Manifest,
    ReleaseRefused,
    check_file,
    check_members,
    decode_manifest,
    verify_signature,
)

MAX_MANIFEST_BYTES = 1_000_000
MAX_SIGNATURE_BYTES = 1024
CHUNK = 1 << 20


def read_member(tar: tarfile.TarFile, name: str, limit: int) -> bytes | None:
    """The bytes of member ``name``, None when the bundle has none; refused when it is not
    a regular file or is over ``limit`` bytes."""
    try:
        info = tar.getmember(name)
    except KeyError:
        return None
    if not info.isfile() or info.size > limit:
        raise ReleaseRefused(name, "not a regular file of a sane size")
    source = tar.extractfile(info)
    assert source is not None
    return source.read()


def signed_manifest(
    tar: tarfile.TarFile, public_key_pem: bytes, *, bundle: str
) -> tuple[Manifest, bytes]:
    """The bundle's manifest and its exact bytes, once its signature checks under the key."""
    manifest_bytes = read_member(tar, MANIFEST_NAME, MAX_MANIFEST_BYTES)
    signature = read_member(tar, SIGNATURE_NAME, MAX_SIGNATURE_BYTES)
    if manifest_bytes is None:
        raise ReleaseRefused(bundle, f"has no {MANIFEST_NAME}: not a parkgrid bundle")
    verify_signature(manifest_bytes, signature, public_key_pem)
    return decode_manifest(manifest_bytes), manifest_bytes


def listed_files(
    tar: tarfile.TarFile, manifest: Manifest
) -> Iterator[tuple[BundleFile, IO[bytes]]]:
    """Each file the manifest lists with its stream, once the tar holds exactly those files
    (and the signature's); refused at the first that is not a regular file."""
    members = {info.name: info for info in tar.getmembers()}
    check_members(manifest, set(members))
    for entry in manifest.files:
        info = members[entry.name]
        if not info.isfile():
            raise ReleaseRefused(entry.name, "not a regular file in the bundle")
        source = tar.extractfile(info)
        assert source is not None
        yield entry, source


def stream_checked(entry: BundleFile, source: IO[bytes], out: IO[bytes] | None = None) -> None:
    """Read ``source`` to its end (copying it to ``out`` if given) and refuse it unless its
    size and sha256 are those the manifest lists."""
    sha, size = hashlib.sha256(), 0
    while chunk := source.read(CHUNK):
        sha.update(chunk)
        size += len(chunk)
        if out is not None:
            out.write(chunk)
    check_file(entry, size, sha.hexdigest())
