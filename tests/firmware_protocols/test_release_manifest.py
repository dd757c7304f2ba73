"""The release manifest: its bytes, its Ed25519 signature and the box's refusals, pure."""

from __future__ import annotations

import json

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from firmware_protocols.release_manifest import (
    BundleFile,
    Manifest,
    ReleaseRefused,
    check_file,
    check_members,
    check_platform,
    check_upgrade,
    decode_manifest,
    digest,
    encode_manifest,
    sign_manifest,
    verify_signature,
)

WHEEL = b"PK\x03\x04 a wheel's bytes"


def key_pair() -> tuple[bytes, bytes]:
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, public


def manifest(version: str = "1.2.0", **kw: object) -> Manifest:
    files = (BundleFile("wheels/parkgrid-1.2.0-py3-none-any.whl", len(WHEEL), digest(WHEEL)),)
    return Manifest(version=version, created="2026-12-06T20:00:00+00:00", python="3.11",
                    machine="x86_64", files=files, **kw)  # type: ignore[arg-type]  # fmt: skip


def test_manifest_round_trips_and_its_signature_verifies() -> None:
    private, public = key_pair()
    data = encode_manifest(manifest(rollback=True, min_version="1.0.0"))
    assert decode_manifest(data) == manifest(rollback=True, min_version="1.0.0")
    verify_signature(data, sign_manifest(data, private), public)


def test_unsigned_tampered_and_foreign_signatures_are_refused() -> None:
    private, public = key_pair()
    other_private, _ = key_pair()
    data = encode_manifest(manifest())
    with pytest.raises(ReleaseRefused, match="not signed") as unsigned:
        verify_signature(data, None, public)
    assert unsigned.value.what == "manifest.sig"
    changed = data.replace(b"1.2.0", b"1.3.0", 1)
    with pytest.raises(ReleaseRefused, match=r"does not match manifest.json"):
        verify_signature(changed, sign_manifest(data, private), public)
    with pytest.raises(ReleaseRefused, match=r"does not match manifest.json"):
        verify_signature(data, sign_manifest(data, other_private), public)
    with pytest.raises(ReleaseRefused, match="64"):
        verify_signature(data, b"\0" * 10, public)


def test_a_changed_byte_in_a_file_is_named() -> None:
    entry = manifest().files[0]
    check_file(entry, len(WHEEL), digest(WHEEL))
    changed = bytearray(WHEEL)
    changed[5] ^= 0x01
    with pytest.raises(ReleaseRefused) as refused:
        check_file(entry, len(changed), digest(bytes(changed)))
    assert refused.value.what == entry.name and "sha256" in refused.value.reason
    with pytest.raises(ReleaseRefused, match="bytes, the manifest says"):
        check_file(entry, len(WHEEL) - 1, digest(WHEEL[:-1]))


def test_files_missing_from_or_added_to_the_bundle_are_refused() -> None:
    m = manifest()
    check_members(m, {"manifest.json", "manifest.sig", m.files[0].name})
    with pytest.raises(ReleaseRefused, match="not in the bundle"):
        check_members(m, {"manifest.json"})
    with pytest.raises(ReleaseRefused, match="not listed") as extra:
        check_members(m, {"manifest.json", m.files[0].name, "wheels/evil.whl"})
    assert extra.value.what == "wheels/evil.whl"


@pytest.mark.parametrize(
    ("new", "installed", "rollback", "refused"),
    [
        ("1.2.0", None, False, None),
        ("1.2.0", "1.1.9", False, None),
        ("1.2.0", "1.2.0", False, "same version"),
        ("1.2.0", "1.10.0", False, "older than"),  # PEP 440 order, not string order
        ("1.2.0", "1.10.0", True, None),
        ("1.2.0", "1.2.0", True, "same version"),
    ],
)
def test_no_downgrade_except_a_rollback_release(
    new: str, installed: str | None, rollback: bool, refused: str | None
) -> None:
    if refused is None:
        check_upgrade(manifest(new, rollback=rollback), installed)
    else:
        with pytest.raises(ReleaseRefused, match=refused) as exc:
            check_upgrade(manifest(new, rollback=rollback), installed)
        assert exc.value.what == "version"


def test_min_version_and_platform_are_checked() -> None:
    with pytest.raises(ReleaseRefused, match=r"needs 1.1.0 or newer"):
        check_upgrade(manifest(min_version="1.1.0"), "1.0.5")
    check_platform(manifest(), python="3.11", machine="x86_64")
    with pytest.raises(ReleaseRefused, match="this box is aarch64"):
        check_platform(manifest(), python="3.11", machine="aarch64")
    with pytest.raises(ReleaseRefused, match=r"Python 3.12"):
        check_platform(manifest(), python="3.12", machine="x86_64")


@pytest.mark.parametrize(
    ("change", "said"),
    [
        ({"format": "parkgrid-release/9"}, "format is"),
        ({"version": "not a version"}, "not a version"),
        ({"rollback": "yes"}, "rollback"),
        ({"files": []}, "files is missing"),
        ({"files": [{"name": "wheels/../../etc/x", "size": 1, "sha256": "0" * 64}]}, "plain"),
        ({"files": [{"name": "/etc/passwd", "size": 1, "sha256": "0" * 64}]}, "not under"),
        ({"files": [{"name": "wheels/a.whl", "size": -1, "sha256": "0" * 64}]}, "size"),
        ({"files": [{"name": "wheels/a.whl", "size": 1, "sha256": "xyz"}]}, "sha256"),
    ],
)
def test_a_malformed_manifest_is_refused_with_the_field(
    change: dict[str, object], said: str
) -> None:
    document = json.loads(encode_manifest(manifest()))
    document.update(change)
    with pytest.raises(ReleaseRefused, match=said):
        decode_manifest(json.dumps(document).encode())
    with pytest.raises(ReleaseRefused, match="not JSON"):
        decode_manifest(b"\xff{")
