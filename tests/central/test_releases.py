"""Central stores signed release bundles and serves them over HTTP with Range, to admins and
the town's boxes only (docs/fleet.md): a real central on a free port, real files."""

from __future__ import annotations

import hashlib
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from central.auth.models import Role
from central.auth.service import issue_token, revoke, token_hash
from central.db import schema as t
from parkgrid.cli import main
from tests.central.releases_support import keypair, running_central, small_bundle


def _add(central, bundle: Path, key: Path) -> int:  # type: ignore[no-untyped-def]
    return main(["central", "release", "add", str(bundle), "--key", str(key),
                 "--releases-dir", str(central.releases_dir),
                 "--database-url", central.database_url])  # fmt: skip


def _token(central, name: str, role: Role) -> str:  # type: ignore[no-untyped-def]
    return issue_token(central.engine, name=name, role=role, ttl_s=3600, actor="test")[0]


def test_central_refuses_an_unsigned_or_wrong_key_bundle_and_stores_a_signed_one_audited(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    private, public = keypair(tmp_path)
    other, _ = keypair(tmp_path, "other-key")
    with running_central(tmp_path / "central") as central:
        unsigned = small_bundle(tmp_path / "unsigned.tar", "2.0.0", None)
        assert _add(central, unsigned, public) == 2
        assert "not signed" in capsys.readouterr().err
        wrong = small_bundle(tmp_path / "wrong.tar", "2.0.0", other)
        assert _add(central, wrong, public) == 2
        assert "does not match manifest.json" in capsys.readouterr().err
        assert not (central.releases_dir / "2.0.0").exists()

        good = small_bundle(tmp_path / "good.tar", "2.0.0", private)
        assert _add(central, good, public) == 0
        assert _add(central, good, public) == 2  # a version is stored once
        assert "already stored" in capsys.readouterr().err
        admin = _token(central, "ops", Role.ADMIN)
        listed = httpx.get(f"{central.url}/api/v1/releases",
                           headers={"Authorization": f"Bearer {admin}"}).json()  # fmt: skip
        sha = hashlib.sha256(good.read_bytes()).hexdigest()
        assert [(r["version"], r["sha256"], r["size"]) for r in listed] == [
            ("2.0.0", sha, good.stat().st_size)
        ]
        with central.engine.connect() as conn:  # type: ignore[attr-defined]
            rows = conn.execute(
                select(t.audit.c.action, t.audit.c.target).where(t.audit.c.action == "release.add")
            ).all()
        assert [tuple(r) for r in rows] == [("release.add", "2.0.0")]


def test_the_bundle_is_served_with_range_and_its_sha256_as_etag(tmp_path: Path) -> None:
    private, public = keypair(tmp_path)
    bundle = small_bundle(tmp_path / "b.tar", "2.0.0", private, padding=50_000)
    data = bundle.read_bytes()
    size = len(data)
    with running_central(tmp_path / "central") as central:
        assert _add(central, bundle, public) == 0
        box = _token(central, "box-p1", Role.BOX)
        url = f"{central.url}/api/v1/releases/2.0.0/bundle"

        def get(range_: str | None = None) -> httpx.Response:
            headers = {"Authorization": f"Bearer {box}"}
            if range_ is not None:
                headers["Range"] = range_
            return httpx.get(url, headers=headers)

        whole = get()
        assert whole.status_code == 200 and whole.content == data
        assert whole.headers["etag"] == f'"{hashlib.sha256(data).hexdigest()}"'
        assert whole.headers["accept-ranges"] == "bytes"
        first = get("bytes=0-0")
        assert (first.status_code, first.content) == (206, data[:1])
        assert first.headers["content-range"] == f"bytes 0-0/{size}"
        middle = get("bytes=1000-1999")
        assert (middle.status_code, middle.content) == (206, data[1000:2000])
        assert middle.headers["content-range"] == f"bytes 1000-1999/{size}"
        suffix = get("bytes=-100")
        assert (suffix.status_code, suffix.content) == (206, data[-100:])
        assert suffix.headers["content-range"] == f"bytes {size - 100}-{size - 1}/{size}"
        past = get(f"bytes={size}-")
        assert past.status_code == 416
        assert past.headers["content-range"] == f"bytes */{size}"
        missing = httpx.get(f"{central.url}/api/v1/releases/9.9.9/bundle",
                            headers={"Authorization": f"Bearer {box}"})  # fmt: skip
        assert missing.status_code == 404


def test_only_admins_and_the_towns_boxes_fetch_bundles(tmp_path: Path) -> None:
    private, public = keypair(tmp_path)
    bundle = small_bundle(tmp_path / "b.tar", "2.0.0", private)
    with running_central(tmp_path / "central") as central:
        assert _add(central, bundle, public) == 0
        url = f"{central.url}/api/v1/releases/2.0.0/bundle"

        def status(token: str | None) -> int:
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            return httpx.get(url, headers=headers).status_code

        assert status(_token(central, "ops", Role.ADMIN)) == 200
        # bundles are per town, not per box: another box of the town fetches the same one
        assert status(_token(central, "box-p1", Role.BOX)) == 200
        assert status(_token(central, "box-p2", Role.BOX)) == 200
        assert status(_token(central, "CAM-1", Role.CAMERA)) == 403
        assert status(_token(central, "olga", Role.OPERATOR)) == 403
        assert status(_token(central, "viewer", Role.VIEWER)) == 403
        assert status(_token(central, "box-zz", Role.BOX)) == 401  # a token of no box
        # a box's token commands no box, and pushes nothing
        box_p1 = {"Authorization": f"Bearer {_token(central, 'box-p1', Role.BOX)}"}
        for path, body in (
            ("/api/v1/boxes/box-p2/commands", {"body": {"type": "rebirth"}}),
            ("/api/v1/fleet/config/push", {"all": True}),
        ):
            assert httpx.post(central.url + path, json=body, headers=box_p1).status_code == 403
        assert status(None) == 401
        revoked = _token(central, "box-p1", Role.BOX)
        revoke(central.engine, digest=token_hash(revoked), actor="test")  # type: ignore[arg-type]
        assert status(revoked) == 401


def test_provision_box_issues_the_box_a_central_token_that_fetches_bundles(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.central.helpers import SITE_FILE

    private, public = keypair(tmp_path)
    bundle = small_bundle(tmp_path / "b.tar", "2.0.0", private)
    with running_central(tmp_path / "central") as central:
        assert _add(central, bundle, public) == 0
        out = tmp_path / "box-p1"
        assert main(["central", "provision-box", "box-p1", "--site", str(SITE_FILE),
                     "--central-token"]) == 2  # fmt: skip
        assert "--central-token needs --out" in capsys.readouterr().err
        assert main(["central", "provision-box", "box-p1", "--site", str(SITE_FILE),
                     "--out", str(out), "--central-token",
                     "--database-url", central.database_url]) == 0  # fmt: skip
        token_file = out / "central-token"
        assert token_file.stat().st_mode & 0o777 == 0o600
        token = token_file.read_text().strip()
        got = httpx.get(f"{central.url}/api/v1/releases/2.0.0/bundle",
                        headers={"Authorization": f"Bearer {token}"})  # fmt: skip
        assert got.status_code == 200 and got.content == bundle.read_bytes()
        with central.engine.connect() as conn:  # type: ignore[attr-defined]
            issued = conn.execute(
                select(t.audit.c.target, t.audit.c.detail).where(t.audit.c.action == "token.issue")
            ).all()
        assert [(r.target, '"role": "box"' in r.detail) for r in issued] == [("box-p1", True)]
