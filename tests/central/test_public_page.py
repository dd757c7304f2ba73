"""The drivers' page at ``/`` and its JSON over HTTP: no login, every lot, cached, limited, private.

An app on SQLite without MQTT, fed by the ingest writer exactly as boxes feed it, on the
real town's site file (it has hours, addresses and coordinates).
"""

from __future__ import annotations

import datetime as dt
import gzip
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from markupsafe import escape
from sqlalchemy import event

from central.app import create_app
from central.auth.models import Role
from central.auth.service import add_user
from central.db.engine import make_engine
from central.ingest.service import IngestWriter
from central.settings import CentralSettings
from firmware_protocols.uplink import Topics
from site_model.site import SiteIndex, load_site
from tests.central.helpers import birth, lot_state, raw

ROOT = Path(__file__).resolve().parents[2]
SITE_FILE = ROOT / "sites" / "xigang.toml"
SITE = load_site(SITE_FILE)
TOPICS = {box: Topics("xigang", box) for box in SITE.boxes}
# 10:20 in Xigang: every lot open, the morning market (05:00-06:30) shut, opening at 05:00.
NOON = dt.datetime(2026, 6, 3, 10, 20, tzinfo=dt.timezone(dt.timedelta(hours=8))).timestamp()


def _feed(writer: IngestWriter, lot_id: str, *, free: int) -> None:
    box = SITE.lots[lot_id].box_id
    capacity = len(SITE.lots[lot_id].bay_ids(lot_id))
    state = lot_state(lot_id, free=free, occupied=capacity - free, capacity=capacity)
    writer.process([raw(TOPICS[box].lot(lot_id), state)])


@contextmanager
def running_central(
    tmp_path: Path, **overrides: object
) -> Iterator[tuple[TestClient, IngestWriter]]:
    url = f"sqlite:///{tmp_path / 'central.db'}"
    options: dict[str, object] = {"lots_cache_s": 0, "forecast_every_s": 0, **overrides}
    settings = CentralSettings(site_file=SITE_FILE, database_url=url, ingest=False, **options)
    app = create_app(settings)
    app.state.public_clock = lambda: NOON
    with TestClient(app) as client:
        engine = make_engine(url)
        add_user(engine, username="vic", password="vic-password", role=Role.VIEWER, actor="t")
        writer = IngestWriter(engine=engine, site=SiteIndex.of(SITE))
        for lot_id in ("P1", "P2", "P3"):  # box-p4 never reports: its lot has no data
            box = SITE.lots[lot_id].box_id
            sensors = len(SITE.lots[lot_id].bay_ids(lot_id))
            writer.process([raw(TOPICS[box].status, birth(box, sensors))])
        _feed(writer, "P1", free=57)
        _feed(writer, "P2", free=0)
        _feed(writer, "P3", free=9)
        yield client, writer
        engine.dispose()


@pytest.fixture
def app(tmp_path: Path) -> Iterator[tuple[TestClient, IngestWriter]]:
    with running_central(tmp_path) as running:
        yield running


def _esc(text: str) -> str:
    """As Jinja2 escapes (markupsafe): ' as &#39;."""
    return str(escape(text))


def _card(html: str, lot_id: str) -> str:
    match = re.search(rf'<article class="lot [^"]*" id="lot-{lot_id}".*?</article>', html, re.S)
    assert match, f"no card for {lot_id}"
    return match.group(0)


def test_root_needs_no_login_and_shows_every_lot_with_its_figure(app) -> None:
    client, _ = app
    response = client.get("/", follow_redirects=False)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    assert '<html lang="zh-CN">' in html
    for lot_id, lot in SITE.lots.items():
        card = _card(html, lot_id)
        assert _esc(lot.name) in card
        if lot.address:
            assert _esc(lot.address) in card
    assert '<b class="count">57</b>' in _card(html, "P1") and "有空位" in _card(html, "P1")
    assert '<b class="count">0</b>' in _card(html, "P2") and "已满" in _card(html, "P2")
    assert "暂无数据" in _card(html, "P4") and '<b class="count">–</b>' in _card(html, "P4")
    assert "05:00-22:00" in _card(html, "P1") and "24 小时" in _card(html, "P2")
    for zone in SITE.zones.values():
        assert _esc(zone.name) in html
    morning = re.search(r'id="zone-S1".*?</li>', html, re.S).group(0)
    assert "未营业" in morning and "05:00 开市" in morning
    assert '<b id="clock">10:20</b>' in html
    english = client.get("/?lang=en").text
    assert '<html lang="en">' in english and "Full" in _card(english, "P2")


def test_root_has_navigation_links_per_lot(app) -> None:
    client, _ = app
    card = _card(client.get("/").text, "P1")
    assert 'href="https://uri.amap.com/marker?position=' in card
    assert 'href="https://api.map.baidu.com/marker?location=' in card
    assert 'href="geo:34.961200,117.093500?q=' in card


def test_root_loads_nothing_from_another_origin_and_runs_no_inline_script(app) -> None:
    client, _ = app
    response = client.get("/")
    html = response.text
    loaded = re.findall(r'<(?:script|img|iframe)[^>]*\ssrc="([^"]*)"', html)
    loaded += re.findall(r'<link[^>]*\shref="([^"]*)"', html)
    assert loaded, "the page loads its script and style"
    assert all(url.startswith("/") and not url.startswith("//") for url in loaded), loaded
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", html, re.S)
    for attrs, body in scripts:
        assert 'type="application/json"' in attrs or ("src=" in attrs and not body.strip())
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "geolocation=(self)" in response.headers["permissions-policy"]
    # Staff pages keep location off.
    assert "geolocation=()" in client.get("/dashboard/").headers["permissions-policy"]


def test_first_load_is_under_60_kb_compressed(app) -> None:
    client, _ = app
    total = 0
    page = client.get("/", headers={"Accept-Encoding": "gzip"})
    assert page.headers["content-encoding"] == "gzip"
    parts = [page]
    for path in re.findall(r'(?:src|href)="(/public/[^"]+|/dashboard/static/[^"]+)"', page.text):
        part = client.get(path, headers={"Accept-Encoding": "gzip"})
        assert part.status_code == 200, path
        parts.append(part)
    assert len(parts) >= 3
    for part in parts:  # httpx decodes the body: count what went over the wire
        if part.headers.get("content-encoding") == "gzip":
            total += int(part.headers["content-length"])
        else:
            total += len(gzip.compress(part.content))
    assert total < 60 * 1024, total


def test_etag_answers_304_and_cache_control_is_short(app) -> None:
    client, _ = app
    for path in ("/", "/api/v1/public/board"):
        first = client.get(path)
        etag = first.headers["etag"]
        assert first.headers["cache-control"] == "public, max-age=2"
        again = client.get(path, headers={"If-None-Match": etag})
        assert again.status_code == 304 and again.content == b""


def test_board_follows_a_change(app) -> None:
    client, writer = app
    before = client.get("/api/v1/public/board")
    _feed(writer, "P1", free=3)
    after = client.get("/api/v1/public/board", headers={"If-None-Match": before.headers["etag"]})
    assert after.status_code == 200
    lot = next(lot for lot in after.json()["lots"] if lot["id"] == "P1")
    assert lot["free"] == 3
    assert '<b class="count">3</b>' in _card(client.get("/").text, "P1")


def test_many_phones_cost_one_lot_query_per_refresh(tmp_path: Path) -> None:
    with running_central(tmp_path, lots_cache_s=3600, public_burst=10_000) as (client, _):
        engine = client.app.state.central.engine
        lot_queries: list[str] = []

        def count(conn, cursor, statement, *args) -> None:
            if "FROM lots" in statement:
                lot_queries.append(statement)

        event.listen(engine, "before_cursor_execute", count)
        try:
            for i in range(300):
                path = "/" if i % 3 else "/api/v1/public/board"
                assert client.get(path, headers={"Accept-Language": "en"}).status_code == 200
        finally:
            event.remove(engine, "before_cursor_execute", count)
        assert len(lot_queries) <= 1, lot_queries


def test_rate_limit_answers_429_and_never_touches_staff_pages(tmp_path: Path) -> None:
    with running_central(tmp_path, public_burst=5, public_rate_per_s=0.01) as (client, _):
        answers = [client.get("/api/v1/public/board").status_code for _ in range(5)]
        assert answers == [200] * 5
        refused = client.get("/")
        assert refused.status_code == 429
        assert int(refused.headers["retry-after"]) >= 1
        assert "too many requests" in refused.json()["detail"]
        token = client.post(
            "/api/v1/auth/login", data={"username": "vic", "password": "vic-password"}
        ).json()["access_token"]
        for _ in range(20):  # the same client, far over the public limit
            assert client.get("/dashboard/").status_code == 200
            staff = client.get("/api/v1/alerts", headers={"Authorization": f"Bearer {token}"})
            assert staff.status_code == 200


def test_nothing_private_reaches_the_public_page(app) -> None:
    client, _ = app
    texts = [
        client.get("/").text,
        client.get("/?lang=en").text,
        client.get("/api/v1/public/board").text,
    ]
    private = set(SITE.boxes)  # box ids
    private |= {box.name for box in SITE.boxes.values() if box.name}
    private |= {bay for _, bay in SITE.lot_bays()} | {bay for _, bay in SITE.zone_bays()}
    private |= set(SITE.cameras) | {grid.duty_role for grid in SITE.grids.values()}
    private |= {p.plate for p in SITE.permits} | {e.plate for e in SITE.exempt}
    private |= {"sensor", "plate", "capture", "case", "box_id", "bay_id"}
    for text in texts:
        found = sorted(word for word in private if re.search(rf"\b{re.escape(word)}\b", text))
        assert not found, found


def test_qr_code_per_lot_is_an_svg(app) -> None:
    client, _ = app
    svg = client.get("/api/v1/public/lots/P1/qr.svg")
    assert svg.status_code == 200
    assert svg.headers["content-type"] == "image/svg+xml"
    assert svg.text.startswith("<svg") and "/#lot-P1" in svg.text
    assert client.get("/api/v1/public/lots/P9/qr.svg").status_code == 404
