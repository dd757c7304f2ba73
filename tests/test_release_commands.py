"""``parkgrid release keygen|sign|build``: the key's mode, and what each refuses (no bundle
is built here: tests/edge/update builds real ones)."""

from __future__ import annotations

import stat
import tarfile
from pathlib import Path

import pytest

from firmware_protocols.release_manifest import BundleFile, Manifest, digest, encode_manifest
from parkgrid.cli import main


def test_keygen_writes_a_0600_private_key_and_never_overwrites_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = tmp_path / "release-key"
    assert main(["release", "keygen", "--out", str(key)]) == 0
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert b"PRIVATE KEY" in key.read_bytes()
    assert b"PUBLIC KEY" in (tmp_path / "release-key.pub").read_bytes()
    before = key.read_bytes()
    assert main(["release", "keygen", "--out", str(key)]) == 2
    assert "never overwritten" in capsys.readouterr().err
    assert key.read_bytes() == before


def small_bundle(path: Path) -> None:
    wheel = b"not really a wheel"
    (path.parent / "w.whl").write_bytes(wheel)
    manifest = Manifest(version="1.0.0", created="2026-12-06T00:00:00+00:00", python="3.11",
                        machine="x86_64", files=(BundleFile("wheels/w.whl", len(wheel),
                                                            digest(wheel)),))  # fmt: skip
    (path.parent / "manifest.json").write_bytes(encode_manifest(manifest))
    with tarfile.open(path, "w:") as tar:
        tar.add(path.parent / "manifest.json", arcname="manifest.json")
        tar.add(path.parent / "w.whl", arcname="wheels/w.whl")


def test_sign_signs_once_and_refuses_what_is_not_a_bundle(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = tmp_path / "k"
    main(["release", "keygen", "--out", str(key)])
    bundle = tmp_path / "b.tar"
    small_bundle(bundle)
    assert main(["release", "sign", str(bundle), "--key", str(key)]) == 0
    with tarfile.open(bundle) as tar:
        assert tar.getmember("manifest.sig").size == 64
    assert main(["release", "sign", str(bundle), "--key", str(key)]) == 2
    assert "already holds manifest.sig" in capsys.readouterr().err
    junk = tmp_path / "junk.tar"
    junk.write_bytes(b"\0" * 100)
    assert main(["release", "sign", str(junk), "--key", str(key)]) == 2
    assert "junk.tar" in capsys.readouterr().err
    unsigned = tmp_path / "other" / "b.tar"
    unsigned.parent.mkdir()
    small_bundle(unsigned)
    assert main(["release", "sign", str(unsigned), "--key", str(tmp_path / "k.pub")]) == 2
    assert "cannot use it as the private key" in capsys.readouterr().err


def test_build_refuses_a_folder_that_is_not_a_checkout(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "r.tar"
    assert main(["release", "build", "--out", str(out), "--source", str(tmp_path)]) == 2
    assert "has no pyproject.toml and requirements.lock" in capsys.readouterr().err
    assert not out.exists()
