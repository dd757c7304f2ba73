"""The release key pair (Ed25519) and signing a bundle with it.

The private key stays off central and off the boxes (docs/fleet.md): ``keygen`` writes it
with mode 0600, created so (never a window where it is readable), and refuses to overwrite
one. ``sign`` appends ``manifest.sig`` to an unsigned bundle.
"""

from __future__ import annotations

import os
import tarfile
import time
from io import BytesIO
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from firmware_protocols.release_manifest import (
    MANIFEST_NAME,
    SIGNATURE_NAME,
    ReleaseRefused,
    decode_manifest,
    key_fingerprint,
    sign_manifest,
)


def keygen(private_path: Path) -> tuple[Path, str]:
    """Write ``private_path`` (0600, PKCS#8 PEM) and ``<private_path>.pub`` (0644).

    Returns the public key's path and its fingerprint."""
    public_path = private_path.with_name(private_path.name + ".pub")
    key = Ed25519PrivateKey.generate()
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    # O_EXCL: never overwrite a key; 0o600 from creation, whatever the umask.
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(private_pem)
    os.chmod(private_path, 0o600)
    public_path.write_bytes(public_pem)
    os.chmod(public_path, 0o644)
    return public_path, key_fingerprint(public_pem)


def read_manifest_bytes(bundle: Path) -> tuple[bytes, bool]:
    """The manifest's bytes and whether the bundle is already signed."""
    try:
        with tarfile.open(bundle, "r:") as tar:
            names = tar.getnames()
            if MANIFEST_NAME not in names:
                raise ReleaseRefused(str(bundle), f"has no {MANIFEST_NAME}: not a parkgrid bundle")
            member = tar.extractfile(MANIFEST_NAME)
            assert member is not None
            return member.read(), SIGNATURE_NAME in names
    except tarfile.TarError as exc:
        raise ReleaseRefused(str(bundle), f"not a tar bundle ({exc})") from None


def sign_bundle(bundle: Path, private_path: Path) -> str:
    """Append the manifest's signature to ``bundle``; return the key's fingerprint."""
    manifest_bytes, signed = read_manifest_bytes(bundle)
    if signed:
        raise ReleaseRefused(str(bundle), f"already holds {SIGNATURE_NAME}: not signed again")
    decode_manifest(manifest_bytes)  # never sign something a box would refuse to read
    private_pem = private_path.read_bytes()
    signature = sign_manifest(manifest_bytes, private_pem)
    key = serialization.load_pem_private_key(private_pem, password=None)
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    info = tarfile.TarInfo(SIGNATURE_NAME)
    info.size = len(signature)
    info.mtime = int(time.time())
    info.mode = 0o644
    with tarfile.open(bundle, "a:") as tar:
        tar.addfile(info, BytesIO(signature))
    return key_fingerprint(public_pem)
