"""A release bundle's manifest: its format, its Ed25519 signature, and every check a box makes.

A bundle is one tar file: ``manifest.json``, ``manifest.sig`` (the raw 64-byte Ed25519
signature of manifest.json's exact bytes, added by ``parkgrid release sign``) and the wheels
under ``wheels/``. The manifest lists every other file with its size and sha256, the version,
when it was made, the platform its wheels are for, and whether it is a rollback release
(the only kind allowed to go to an older version) or needs a minimum installed version.

This module is the format exchanged between the office that builds releases and the boxes
that install them, so it lives with the other wire formats: pure (bytes in, values or a
refusal out, no files), shared by ``parkgrid release`` (the office side) and ``edge.update``
(the box), which may not import each other. Every refusal is a ``ReleaseRefused`` naming what
failed (``what``) and why (``reason``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from packaging.version import InvalidVersion, Version

FORMAT = "parkgrid-release/1"
MANIFEST_NAME = "manifest.json"
SIGNATURE_NAME = "manifest.sig"
WHEELS_DIR = "wheels"
SIGNATURE_BYTES = 64


class ReleaseRefused(Exception):
    """A bundle the box will not install: ``what`` failed (a file, the signature, the
    version...) and ``reason`` says how, in one sentence."""

    def __init__(self, what: str, reason: str) -> None:
        self.what = what
        self.reason = reason
        super().__init__(f"{what}: {reason}")


@dataclass(frozen=True, slots=True)
class BundleFile:
    name: str
    size: int
    sha256: str


@dataclass(frozen=True, slots=True)
class Manifest:
    version: str
    created: str
    python: str  # "3.11": the interpreter the wheels are built for
    machine: str  # "x86_64", "aarch64": the box's CPU
    files: tuple[BundleFile, ...]
    rollback: bool = False
    min_version: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def wheel_names(self) -> list[str]:
        return [f.name for f in self.files if f.name.endswith(".whl")]

    @property
    def payload_bytes(self) -> int:
        return sum(f.size for f in self.files)


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def encode_manifest(manifest: Manifest) -> bytes:
    """The manifest's bytes, canonical (sorted keys): the exact bytes that are signed."""
    document = {
        "format": FORMAT,
        "version": manifest.version,
        "created": manifest.created,
        "python": manifest.python,
        "machine": manifest.machine,
        "rollback": manifest.rollback,
        "min_version": manifest.min_version,
        "files": [{"name": f.name, "size": f.size, "sha256": f.sha256} for f in manifest.files],
        **dict(manifest.extra),
    }
    return (json.dumps(document, sort_keys=True, indent=1) + "\n").encode()


def _version(text: object, where: str) -> Version:
    try:
        return Version(str(text))
    except InvalidVersion:
        raise ReleaseRefused(where, f"{text!r} is not a version (PEP 440)") from None


def _safe_name(name: object) -> str:
    if not isinstance(name, str) or not name.startswith(WHEELS_DIR + "/"):
        raise ReleaseRefused(MANIFEST_NAME, f"file {name!r} is not under {WHEELS_DIR}/")
    rest = name.removeprefix(WHEELS_DIR + "/")
    if not rest or "/" in rest or "\\" in rest or rest in (".", "..") or "\0" in rest:
        raise ReleaseRefused(MANIFEST_NAME, f"file name {name!r} is not a plain file name")
    return name


def decode_manifest(data: bytes) -> Manifest:
    """Read a manifest; refuse one that is not this format, with the field that is wrong."""
    try:
        document = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ReleaseRefused(MANIFEST_NAME, f"not JSON ({exc})") from None
    if not isinstance(document, dict):
        raise ReleaseRefused(MANIFEST_NAME, "not a JSON object")
    if document.get("format") != FORMAT:
        raise ReleaseRefused(
            MANIFEST_NAME, f"format is {document.get('format')!r}, this box reads {FORMAT!r}"
        )
    known = {"format", "version", "created", "python", "machine", "rollback", "min_version"}
    for key in ("version", "created", "python", "machine"):
        if not isinstance(document.get(key), str):
            raise ReleaseRefused(MANIFEST_NAME, f"{key} is missing or not a string")
    _version(document["version"], f"{MANIFEST_NAME}: version")
    min_version = document.get("min_version")
    if min_version is not None:
        _version(min_version, f"{MANIFEST_NAME}: min_version")
    if not isinstance(document.get("rollback"), bool):
        raise ReleaseRefused(MANIFEST_NAME, "rollback is missing or not true/false")
    raw_files = document.get("files")
    if not isinstance(raw_files, list) or not raw_files:
        raise ReleaseRefused(MANIFEST_NAME, "files is missing or empty")
    files: list[BundleFile] = []
    seen: set[str] = set()
    for index, entry in enumerate(raw_files):
        if not isinstance(entry, dict):
            raise ReleaseRefused(MANIFEST_NAME, f"files[{index}] is not an object")
        name = _safe_name(entry.get("name"))
        size, sha = entry.get("size"), entry.get("sha256")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise ReleaseRefused(MANIFEST_NAME, f"files[{index}] ({name}): size is not a count")
        if not isinstance(sha, str) or len(sha) != 64 or set(sha) - set("0123456789abcdef"):
            raise ReleaseRefused(MANIFEST_NAME, f"files[{index}] ({name}): sha256 is not hex")
        if name in seen:
            raise ReleaseRefused(MANIFEST_NAME, f"{name} is listed twice")
        seen.add(name)
        files.append(BundleFile(name=name, size=size, sha256=sha))
    return Manifest(
        version=document["version"],
        created=document["created"],
        python=document["python"],
        machine=document["machine"],
        files=tuple(files),
        rollback=document["rollback"],
        min_version=min_version,
        extra={k: v for k, v in document.items() if k not in known and k != "files"},
    )


def sign_manifest(manifest_bytes: bytes, private_key_pem: bytes) -> bytes:
    """The detached signature of the manifest's exact bytes (64 bytes, Ed25519)."""
    key = serialization.load_pem_private_key(private_key_pem, password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ReleaseRefused("key", "the private key is not an Ed25519 key")
    return key.sign(manifest_bytes)


def load_public_key(public_key_pem: bytes) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(public_key_pem)
    except ValueError as exc:
        raise ReleaseRefused("public key", f"not a PEM public key ({exc})") from None
    if not isinstance(key, Ed25519PublicKey):
        raise ReleaseRefused("public key", "not an Ed25519 key")
    return key


def key_fingerprint(public_key_pem: bytes) -> str:
    """A short name for a public key: the first 16 hex digits of the sha256 of its raw bytes."""
    raw = load_public_key(public_key_pem).public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    return digest(raw)[:16]


def verify_signature(manifest_bytes: bytes, signature: bytes | None, public_key_pem: bytes) -> None:
    """Refuse an unsigned manifest, or one whose signature is not the box's key's."""
    if signature is None:
        raise ReleaseRefused(
            SIGNATURE_NAME, "the bundle is not signed (run `parkgrid release sign` on it)"
        )
    if len(signature) != SIGNATURE_BYTES:
        raise ReleaseRefused(
            SIGNATURE_NAME, f"{len(signature)} bytes, an Ed25519 signature has {SIGNATURE_BYTES}"
        )
    key = load_public_key(public_key_pem)
    try:
        key.verify(signature, manifest_bytes)
    except InvalidSignature:
        raise ReleaseRefused(
            SIGNATURE_NAME,
            f"does not match manifest.json under this box's key {key_fingerprint(public_key_pem)}"
            " (the manifest was changed, or it was signed with another key)",
        ) from None


def check_file(expected: BundleFile, size: int, sha256: str) -> None:
    """Refuse a file whose bytes are not the ones the signed manifest lists."""
    if size != expected.size:
        raise ReleaseRefused(
            expected.name, f"{size} bytes, the manifest says {expected.size} (changed or cut)"
        )
    if sha256 != expected.sha256:
        raise ReleaseRefused(
            expected.name, f"sha256 {sha256[:16]}..., the manifest says {expected.sha256[:16]}..."
        )


def check_members(manifest: Manifest, members: set[str]) -> None:
    """Refuse a bundle missing a listed file, or holding one the manifest does not list."""
    listed = {f.name for f in manifest.files}
    if missing := sorted(listed - members):
        raise ReleaseRefused(missing[0], "listed in the manifest but not in the bundle")
    if extra := sorted(members - listed - {MANIFEST_NAME, SIGNATURE_NAME}):
        raise ReleaseRefused(extra[0], "in the bundle but not listed in the signed manifest")


def check_platform(manifest: Manifest, *, python: str, machine: str) -> None:
    """Refuse wheels made for another interpreter or CPU than the box's."""
    if manifest.python != python:
        raise ReleaseRefused(
            "platform", f"wheels for Python {manifest.python}, this box runs Python {python}"
        )
    if manifest.machine != machine:
        raise ReleaseRefused("platform", f"wheels for {manifest.machine}, this box is {machine}")


def check_upgrade(manifest: Manifest, installed: str | None) -> None:
    """No downgrade (nor the same version again) except a signed rollback release; and no
    install over a version older than the release's ``min_version``."""
    if installed is None:
        return
    new = _version(manifest.version, "version")
    now = _version(installed, "installed version")
    if manifest.min_version is not None and now < Version(manifest.min_version):
        raise ReleaseRefused(
            "version",
            f"{manifest.version} needs {manifest.min_version} or newer installed first; "
            f"this box runs {installed}",
        )
    if new > now:
        return
    if manifest.rollback and new < now:
        return
    kind = "the same version as" if new == now else "older than"
    hint = "" if new == now else " (only a release built with --rollback may go back)"
    raise ReleaseRefused("version", f"{manifest.version} is {kind} the installed {installed}{hint}")
