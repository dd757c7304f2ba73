"""``parkgrid edge update --from-central VERSION``: a bundle downloaded from a real central
over HTTP with resume, then the same checks and A/B install as ``--from FILE``.

The bundles are small (tests/central/releases_support.py: one tiny real wheel whose
``parkgrid`` prints its version), so a slot is really built in seconds.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from central.auth.models import Role
from central.auth.service import issue_token
from edge.update.fetch import DownloadFailed, download
from firmware_protocols.release_manifest import ReleaseRefused
from parkgrid.cli import main
from tests.central.releases_support import CuttingProxy, keypair, running_central, small_bundle

PARKGRID = str(Path(sys.executable).parent / "parkgrid")
ENV = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}


def _stored(central, tmp_path: Path, *, padding: int = 0) -> tuple[Path, Path]:  # type: ignore[no-untyped-def]
    private, public = keypair(tmp_path)
    bundle = small_bundle(tmp_path / "b.tar", "2.0.0", private, padding=padding)
    assert main(["central", "release", "add", str(bundle), "--key", str(public),
                 "--releases-dir", str(central.releases_dir),
                 "--database-url", central.database_url]) == 0  # fmt: skip
    return bundle, public


def _box_update(box: Path, public: Path, central_url: str, token: str,
                *extra: str) -> subprocess.CompletedProcess[str]:  # fmt: skip
    box.mkdir(parents=True, exist_ok=True)
    (box / "central-token").write_text(token + "\n")
    return subprocess.run(
        [PARKGRID, "edge", "update", "--from-central", "2.0.0", "--central-url", central_url,
         "--token-file", str(box / "central-token"), "--data-dir", str(box / "data"),
         "--prefix", str(box / "opt"), "--key", str(public), *extra],
        capture_output=True, text=True, env=ENV, timeout=600,
    )  # fmt: skip


@pytest.mark.long  # 15-28 s: a whole rig; `make test-long`
def test_a_download_cut_in_the_middle_resumes_with_range_and_installs(tmp_path: Path) -> None:
    with running_central(tmp_path / "central") as central:
        bundle, public = _stored(central, tmp_path, padding=3_000_000)
        size = bundle.stat().st_size
        token = issue_token(central.engine, name="box-p2", role=Role.BOX, ttl_s=600, actor="t")[0]
        port = int(central.url.rsplit(":", 1)[1])
        with CuttingProxy(("127.0.0.1", port), cut_after=size // 2) as proxy:
            done = _box_update(tmp_path / "box", public, f"http://127.0.0.1:{proxy.port}", token)
        assert done.returncode == 0, done.stdout + done.stderr
        lines = done.stdout.splitlines()
        cut = next(line for line in lines if line.startswith("download: cut at byte"))
        at = int(cut.split()[4])
        assert 0 < at < size
        assert f"download: resuming at byte {at}" in lines
        sha = hashlib.sha256(bundle.read_bytes()).hexdigest()
        assert any(line.startswith("download: ") and f"sha256 {sha[:16]}..." in line
                   for line in lines)  # fmt: skip
        asked = b"".join(proxy.requests)
        assert f"range: bytes={at}-".encode() in asked.lower()
        assert "update: parkgrid 2.0.0 installed (the first release on this box)" in lines
        slot = tmp_path / "box" / "opt" / "current"
        said = subprocess.run([str(slot / "bin" / "parkgrid")], capture_output=True, text=True)
        assert said.stdout.strip() == "2.0.0"
        assert not list((tmp_path / "box" / "data" / "downloads").iterdir())


def test_a_part_whose_file_changed_on_central_starts_again_and_matches(tmp_path: Path) -> None:
    with running_central(tmp_path / "central") as central:
        bundle, _ = _stored(central, tmp_path, padding=100_000)
        token = issue_token(central.engine, name="box-p1", role=Role.BOX, ttl_s=600, actor="t")[0]
        url = f"{central.url}/api/v1/releases/2.0.0/bundle"
        folder = tmp_path / "downloads"
        folder.mkdir()
        (folder / "b.part").write_bytes(b"x" * 5000)  # a part of an older file of that name
        (folder / "b.etag").write_text("0" * 64 + "\n")
        said: list[str] = []
        got = download(url, token, folder, "b", say=said.append)
        assert got.restarts == 1 and got.resumed_from == 0
        assert got.sha256 == hashlib.sha256(bundle.read_bytes()).hexdigest()
        assert got.path.read_bytes() == bundle.read_bytes()
        assert "download: the file on central changed; starting again" in said

        # a part of the same file: continued from its end with Range
        (folder / "c.part").write_bytes(bundle.read_bytes()[:7000])
        (folder / "c.etag").write_text(got.sha256 + "\n")
        again = download(url, token, folder, "c", say=said.append)
        assert (again.resumed_from, again.restarts) == (7000, 0)
        assert again.path.read_bytes() == bundle.read_bytes()


def test_a_tampered_stored_bundle_is_refused_by_the_box(tmp_path: Path) -> None:
    with running_central(tmp_path / "central") as central:
        _, public = _stored(central, tmp_path, padding=20_000)
        stored = central.releases_dir / "2.0.0" / "bundle.tar"
        data = bytearray(stored.read_bytes())
        with tarfile.open(stored) as tar:
            wheel = next(m for m in tar.getmembers() if m.name.startswith("wheels/"))
        data[wheel.offset_data + wheel.size // 2] ^= 0xFF  # a byte of the wheel, on central's disk
        stored.write_bytes(bytes(data))
        token = issue_token(central.engine, name="box-p1", role=Role.BOX, ttl_s=600, actor="t")[0]
        done = _box_update(tmp_path / "box", public, central.url, token)
        assert done.returncode == 2, done.stdout + done.stderr
        assert "update refused" in done.stderr and "ETag" in done.stderr
        assert not (tmp_path / "box" / "opt" / "current").exists()
        assert not list((tmp_path / "box" / "data" / "downloads").iterdir())


def test_a_token_of_no_box_is_refused_and_nothing_is_installed(tmp_path: Path) -> None:
    with running_central(tmp_path / "central") as central:
        _, public = _stored(central, tmp_path)
        token = issue_token(central.engine, name="box-zz", role=Role.BOX, ttl_s=600, actor="t")[0]
        done = _box_update(tmp_path / "box", public, central.url, token)
        assert done.returncode == 2, done.stdout + done.stderr
        assert "central answered 401" in done.stderr
        assert not (tmp_path / "box" / "opt").exists()


def test_download_gives_up_after_its_attempts_and_keeps_the_part(tmp_path: Path) -> None:
    with running_central(tmp_path / "central") as central:
        bundle, _ = _stored(central, tmp_path, padding=1_000_000)
        token = issue_token(central.engine, name="box-p1", role=Role.BOX, ttl_s=600, actor="t")[0]
        port = int(central.url.rsplit(":", 1)[1])
        with CuttingProxy(("127.0.0.1", port), cut_after=300_000) as proxy:
            url = f"http://127.0.0.1:{proxy.port}/api/v1/releases/2.0.0/bundle"
            with pytest.raises(DownloadFailed, match="run again to resume"):
                download(url, token, tmp_path / "dl", "b", attempts=1, say=lambda _l: None)
            kept = (tmp_path / "dl" / "b.part").stat().st_size
            assert 0 < kept < bundle.stat().st_size
            got = download(url, token, tmp_path / "dl", "b", say=lambda _l: None)
        assert got.resumed_from == kept
        assert got.path.read_bytes() == bundle.read_bytes()


def test_a_bundle_changed_with_its_etag_on_central_is_still_refused_by_its_signed_manifest(
    tmp_path: Path,
) -> None:
    """Whoever can write central's disk can change the bundle and its sha256 alike: the box
    then downloads it whole, and the same checks as ``--from FILE`` refuse it."""
    with running_central(tmp_path / "central") as central:
        _, public = _stored(central, tmp_path, padding=20_000)
        folder = central.releases_dir / "2.0.0"
        stored = folder / "bundle.tar"
        data = bytearray(stored.read_bytes())
        with tarfile.open(stored) as tar:
            wheel = next(m for m in tar.getmembers() if m.name.startswith("wheels/"))
        data[wheel.offset_data + wheel.size // 2] ^= 0xFF
        stored.write_bytes(bytes(data))
        info = json.loads((folder / "release.json").read_text())
        info["sha256"] = hashlib.sha256(bytes(data)).hexdigest()
        (folder / "release.json").write_text(json.dumps(info))
        token = issue_token(central.engine, name="box-p1", role=Role.BOX, ttl_s=600, actor="t")[0]
        done = _box_update(tmp_path / "box", public, central.url, token)
        assert done.returncode == 2, done.stdout + done.stderr
        assert "update refused: wheels/parkgrid-2.0.0-py3-none-any.whl: sha256" in done.stderr
        assert "the manifest says" in done.stderr
        assert not (tmp_path / "box" / "opt" / "current").exists()


def test_what_is_not_a_bundle_from_central_is_refused(tmp_path: Path) -> None:
    with running_central(tmp_path / "central") as central:
        _stored(central, tmp_path)
        token = issue_token(central.engine, name="box-p1", role=Role.BOX, ttl_s=600, actor="t")[0]
        with pytest.raises(ReleaseRefused, match="no sha256 ETag: not a parkgrid central"):
            download(f"{central.url}/openapi.json", token, tmp_path / "dl", "x")
        for version in ("..%2F..%2Fcentral.db", "2.0.0%00", "9.9.9"):
            with pytest.raises(ReleaseRefused, match="central answered 404"):
                download(f"{central.url}/api/v1/releases/{version}/bundle", token,
                         tmp_path / "dl", "y")  # fmt: skip
