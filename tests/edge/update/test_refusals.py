"""What a box refuses, before it changes anything: unsigned, tampered, foreign-key, older
bundles, and one that does not fit on its disk. Real bundles from ``parkgrid release``; the
box here is a prefix whose slot a holds a release file (all the checks read), so no venv."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge.update.slots import RELEASE_FILE, Layout
from tests.edge.update.conftest import PARKGRID, Kit, run

pytestmark = [pytest.mark.slow, pytest.mark.long]


def fake_box(prefix: Path, version: str) -> Layout:
    layout = Layout(prefix)
    layout.slot_dir("a").mkdir(parents=True)
    (layout.slot_dir("a") / RELEASE_FILE).write_text(json.dumps({"version": version}))
    layout.point_current_at("a")
    return layout


def refused(prefix: Path, bundle: Path, key: Path) -> str:
    done = run([PARKGRID, "edge", "update", "--from", str(bundle), "--prefix", str(prefix),
                "--key", str(key)], ok=False)  # fmt: skip
    assert done.returncode == 2, done.stdout + done.stderr
    assert "update refused: " in done.stderr
    layout = Layout(prefix)
    assert layout.current_slot() == "a" and not layout.slot_dir("b").exists()
    return done.stderr


def flip_byte(bundle: Path, out: Path, member_name: str, at: int = 100) -> None:
    shutil.copy(bundle, out)
    with tarfile.open(out) as tar:
        offset = tar.getmember(member_name).offset_data + at
    with out.open("r+b") as raw:
        raw.seek(offset)
        byte = raw.read(1)
        raw.seek(offset)
        raw.write(bytes([byte[0] ^ 0x01]))


def test_unsigned_and_foreign_key_bundles_are_refused(kit: Kit, tmp_path: Path) -> None:
    fake_box(tmp_path / "box", "1.0.0")
    said = refused(tmp_path / "box", kit.bundle("1.0.1", signed=False), kit.public)
    assert "manifest.sig: the bundle is not signed" in said
    other = tmp_path / "other-key"
    run([PARKGRID, "release", "keygen", "--out", str(other)])
    said = refused(tmp_path / "box", kit.bundle("1.0.1"), other.with_name("other-key.pub"))
    assert "manifest.sig: does not match manifest.json under this box's key" in said


def test_a_changed_byte_in_a_wheel_or_the_manifest_is_refused(kit: Kit, tmp_path: Path) -> None:
    fake_box(tmp_path / "box", "1.0.0")
    bundle = kit.bundle("1.0.1")
    with tarfile.open(bundle) as tar:
        wheel = next(n for n in tar.getnames() if n.startswith("wheels/cryptography-"))
    flip_byte(bundle, tmp_path / "wheel-changed.tar", wheel, at=5000)
    said = refused(tmp_path / "box", tmp_path / "wheel-changed.tar", kit.public)
    assert f"{wheel}: sha256" in said
    flip_byte(bundle, tmp_path / "manifest-changed.tar", "manifest.json", at=40)
    said = refused(tmp_path / "box", tmp_path / "manifest-changed.tar", kit.public)
    assert "manifest.sig: does not match" in said


def test_an_older_bundle_is_refused_unless_it_is_a_signed_rollback(
    kit: Kit, tmp_path: Path, small_disk: Path
) -> None:
    fake_box(tmp_path / "box", "1.0.5")
    said = refused(tmp_path / "box", kit.bundle("1.0.1"), kit.public)
    assert "version: 1.0.1 is older than the installed 1.0.5" in said
    # a rollback release passes the version check; this box's disk then stops it (step 2)
    fake_box(small_disk, "1.0.5")
    said = refused(small_disk, kit.bundle("1.0.1", rollback=True), kit.public)
    assert "disk: " in said and "nothing was changed" in said


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 16 MB tmpfs: a bundle of ~22 MB of wheels cannot be installed on it."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (CI runs these as root)")
    where = tmp_path / "small"
    where.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(where)], check=True)
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=True)


def test_a_bundle_that_does_not_fit_on_the_disk_is_refused_first(
    kit: Kit, small_disk: Path
) -> None:
    fake_box(small_disk, "1.0.0")
    said = refused(small_disk, kit.bundle("1.0.1"), kit.public)
    assert "disk: " in said and "MB free, the release needs" in said
    assert not (small_disk / "releases" / "staging").exists()
