"""A county is one deployment: two towns on one central, roles scoped to a town.

The real app over HTTP (uvicorn on a free port), a real SQLite store, a real Mosquitto with
one box of each town publishing in the wire format (docs/scale.md, "A county").
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import Engine, select

from central.app import create_app
from central.auth.models import Role
from central.auth.service import add_user
from central.cases.routing import grid_of
from central.cases.service import open_case
from central.db import schema as t
from central.db.engine import writer
from central.ledger.service import order_tow, permit_for
from central.settings import CentralSettings
from firmware_protocols.uplink import Topics, encode_payload
from simulators.broker import MosquittoBroker
from site_model.county import CountyError, load_county
from tests.central.county_support import town_toml, write_county
from tests.central.helpers import birth, lot_state, serving, wait_for

PASSWORD = "county-secret-1"
BOXES = {"north": ("n-box1", "NP1"), "south": ("s-box1", "SP1")}


class Box:
    """A bare paho client playing one town's box."""

    def __init__(self, broker: MosquittoBroker, town: str) -> None:
        self.box_id, self.lot_id = BOXES[town]
        self.topics = Topics(town, self.box_id)
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"t-{self.box_id}")
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()

    def publish(self, topic: str, payload: Any) -> None:
        self.client.publish(topic, encode_payload(payload), qos=1).wait_for_publish(10)

    def report(self, free: int) -> None:
        """The box's birth and its lot's figures, dated now (newer than any sent before)."""
        self.publish(self.topics.status, birth(self.box_id, sensor_count=4))
        self.publish(
            self.topics.lot(self.lot_id),
            lot_state(self.lot_id, free=free, occupied=4 - free, capacity=4),
        )

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


class Stream:
    """One live stream read in a thread: each event's kind and data."""

    def __init__(self, url: str, token: str) -> None:
        self.events: list[tuple[str, Any]] = []
        self.hello = threading.Event()
        self._stop = threading.Event()
        threading.Thread(target=self._run, args=(url, token), daemon=True).start()
        assert self.hello.wait(20), f"no hello on {url}"

    def _run(self, url: str, token: str) -> None:
        try:
            headers = {"Authorization": f"Bearer {token}"}
            with httpx.stream("GET", url, headers=headers, timeout=None) as response:
                kind = ""
                for line in response.iter_lines():
                    if self._stop.is_set():
                        return
                    if line.startswith("event: "):
                        kind = line[7:]
                    elif line.startswith("data: "):
                        self.events.append((kind, json.loads(line[6:])))
                        if kind == "hello":
                            self.hello.set()
        except httpx.HTTPError:
            return

    def lots(self) -> set[str]:
        return {d["lot_id"] for k, d in list(self.events) if k == "lot"}

    def close(self) -> None:
        self._stop.set()


class County:
    def __init__(self, url: str, app: Any) -> None:
        self.url = url
        self.app = app
        self.tokens: dict[str, str] = {}

    @property
    def engine(self) -> Engine:
        return self.app.state.central.engine  # type: ignore[no-any-return]

    def login(self, name: str) -> str:
        if name not in self.tokens:
            r = httpx.post(
                f"{self.url}/api/v1/auth/login", data={"username": name, "password": PASSWORD}
            )
            r.raise_for_status()
            self.tokens[name] = str(r.json()["access_token"])
        return self.tokens[name]

    def get(self, path: str, who: str | None = None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.login(who)}"} if who else {}
        return httpx.get(f"{self.url}{path}", headers=headers, timeout=10)


def _open_case(engine: Engine, site: Any, town: str, lot_id: str) -> int:
    with writer(engine).begin() as conn:
        case_id, _ = open_case(
            conn,
            site,
            kind="overstay",
            source_ref=f"test:{town}",
            place=f"lot:{lot_id}",
            title=f"a case in {town}",
            now=time.time(),
        )
    return case_id


def _served(broker: MosquittoBroker, work: Path, database_url: str) -> Iterator[County]:
    county_file = write_county(work)
    app = create_app(
        CentralSettings(
            county_file=county_file,
            database_url=database_url,
            mqtt_url=broker.url,
            instance="central-county",
            lots_cache_s=0,
            forecast_every_s=0,
            pictures_dir=work / "pictures",
        )
    )
    with serving(app) as (url, _srv):
        running = County(url, app)
        wait_for(lambda: app.state.central.mqtt.wait_connected(0.1), what="central's MQTT link")
        engine = running.engine
        for name, role, town in (
            ("county-viewer", Role.VIEWER, None),
            ("county-admin", Role.ADMIN, None),
            ("north-viewer", Role.VIEWER, "north"),
            ("north-operator", Role.OPERATOR, "north"),
            ("north-admin", Role.ADMIN, "north"),
            ("south-viewer", Role.VIEWER, "south"),
        ):
            add_user(engine, username=name, password=PASSWORD, role=role, actor="t", town=town)
        county = load_county(county_file)
        running.cases = {  # type: ignore[attr-defined]
            town: _open_case(engine, county.towns[town], town, lot)
            for town, (_, lot) in BOXES.items()
        }
        yield running


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MosquittoBroker]:
    with MosquittoBroker(workdir=tmp_path_factory.mktemp("broker")) as b:
        yield b


@pytest.fixture(scope="module")
def served(broker: MosquittoBroker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[County]:
    work = tmp_path_factory.mktemp("county")
    yield from _served(broker, work, f"sqlite:///{work / 'central.db'}")


def _both_towns_land(served: County, broker: MosquittoBroker) -> None:
    boxes = [Box(broker, town) for town in BOXES]
    try:
        for i, box in enumerate(boxes):
            box.report(free=1 + i)

        def landed() -> bool:
            with served.engine.connect() as conn:
                rows = dict(conn.execute(select(t.lots.c.lot_id, t.lots.c.free)).all())
            return rows.get("NP1") == 1 and rows.get("SP1") == 2

        wait_for(landed, what="both towns' lot states in the one store")
    finally:
        for box in boxes:
            box.close()


def test_county_boxes_of_every_town_ingest_into_one_store(
    served: County, broker: MosquittoBroker
) -> None:
    _both_towns_land(served, broker)
    # Each town's open data shows its own lots only; the county's shows both.
    north = served.get("/api/v1/towns/north/lots").json()["lots"]
    south = served.get("/api/v1/towns/south/lots").json()["lots"]
    assert [lot["id"] for lot in north] == ["NP1"] and north[0]["free"] == 1
    assert [lot["id"] for lot in south] == ["SP1"] and south[0]["free"] == 2
    every = {lot["id"] for lot in served.get("/api/v1/lots").json()["lots"]}
    assert every == {"NP1", "SP1"}
    assert served.get("/api/v1/towns/north/lots/SP1").status_code == 404
    assert served.get("/api/v1/towns/nowhere/lots").status_code == 404


def test_county_a_box_publishing_under_another_towns_topic_is_quarantined(
    served: County, broker: MosquittoBroker
) -> None:
    box = Box(broker, "north")
    try:
        wrong = Topics("south", "n-box1")  # north's box under south's site id
        box.publish(wrong.lot("NP1"), lot_state("NP1", free=0, occupied=4, capacity=4, ts=50))
        unknown = Topics("elsewhere", "n-box1")
        box.publish(unknown.lot("NP1"), lot_state("NP1", free=0, occupied=4, capacity=4, ts=51))

        def reasons() -> list[str]:
            with served.engine.connect() as conn:
                return list(conn.execute(select(t.quarantine.c.reason)).scalars())

        wait_for(lambda: len(reasons()) >= 1, what="the misrouted message quarantined")
        found = " | ".join(reasons())
        assert "is in town 'north', not 'south'" in found
    finally:
        box.close()


@pytest.mark.parametrize("who", ["north-viewer", "north-operator", "north-admin"])
def test_county_a_towns_staff_get_403_on_another_town(served: County, who: str) -> None:
    south_case = served.cases["south"]  # type: ignore[attr-defined]
    north_case = served.cases["north"]  # type: ignore[attr-defined]
    for path in (
        "/api/v1/towns/south/lots/SP1/bays",
        "/api/v1/towns/south/cases",
        f"/api/v1/towns/south/cases/{south_case}",
        "/api/v1/towns/south/captures",
        "/api/v1/towns/south/stream",
        "/api/v1/cases",  # the whole county
    ):
        r = served.get(path, who)
        assert r.status_code == 403, (path, r.status_code, r.text)
        body = r.json()
        assert body["actor_town"] == "north"
        assert body["town"] == ("south" if "/towns/south/" in path else None)
    for path in (
        "/api/v1/towns/north/lots/NP1/bays",
        "/api/v1/towns/north/cases",
        f"/api/v1/towns/north/cases/{north_case}",
        "/api/v1/towns/north/captures",
        "/api/v1/auth/me",
    ):
        r = served.get(path, who)
        assert r.status_code == 200, (path, r.status_code, r.text)
    cases = served.get("/api/v1/towns/north/cases", who).json()
    assert [c["id"] for c in cases] == [north_case]
    assert served.get(f"/api/v1/towns/north/cases/{south_case}", who).status_code == 404
    assert served.get("/api/v1/auth/me", who).json()["town"] == "north"


def test_county_staff_see_every_town(served: County) -> None:
    for town in ("north", "south"):
        assert served.get(f"/api/v1/towns/{town}/cases", "county-viewer").status_code == 200
    ids = {c["id"] for c in served.get("/api/v1/cases", "county-viewer").json()}
    assert ids == set(served.cases.values())  # type: ignore[attr-defined]


def test_county_a_towns_admin_cannot_manage_users(served: County) -> None:
    r = httpx.post(
        f"{served.url}/api/v1/users",
        headers={"Authorization": f"Bearer {served.login('north-admin')}"},
        json={"username": "sneaky", "password": PASSWORD, "role": "admin"},
    )
    assert r.status_code == 403
    r = httpx.post(
        f"{served.url}/api/v1/users",
        headers={"Authorization": f"Bearer {served.login('county-admin')}"},
        json={"username": "north-2", "password": PASSWORD, "role": "viewer", "town": "north"},
    )
    assert r.status_code == 201 and r.json()["town"] == "north"
    r = httpx.post(
        f"{served.url}/api/v1/users",
        headers={"Authorization": f"Bearer {served.login('county-admin')}"},
        json={"username": "lost", "password": PASSWORD, "role": "viewer", "town": "atlantis"},
    )
    assert r.status_code == 422 and r.json()["field"] == "town"


def test_county_a_towns_stream_never_hears_another_town(
    served: County, broker: MosquittoBroker
) -> None:
    north = Stream(f"{served.url}/api/v1/towns/north/stream", served.login("north-viewer"))
    county = Stream(f"{served.url}/api/v1/stream", served.login("county-viewer"))
    boxes = [Box(broker, town) for town in BOXES]
    try:
        for step in range(3):
            for box in boxes:
                box.report(free=step % 3)
        wait_for(lambda: county.lots() == {"NP1", "SP1"}, what="the county stream hears both")
        wait_for(lambda: "NP1" in north.lots(), what="north's stream hears north")
        time.sleep(0.5)  # what south sent has reached the county stream: it would be here too
        assert north.lots() == {"NP1"}
        kinds_ids = {
            (k, d.get("box_id") or d.get("lot_id")) for k, d in north.events if k != "hello"
        }
        assert all(ident is None or ident.startswith(("n-", "N")) for _, ident in kinds_ids)
    finally:
        north.close()
        county.close()
        for box in boxes:
            box.close()


def test_county_a_box_token_fetches_only_its_towns_releases(served: County) -> None:
    from central.auth.service import issue_token

    token, _ = issue_token(
        served.engine, name="n-box1", role=Role.BOX, ttl_s=600, actor="t", town="north"
    )
    headers = {"Authorization": f"Bearer {token}"}
    own = httpx.get(f"{served.url}/api/v1/towns/north/releases", headers=headers)
    other = httpx.get(f"{served.url}/api/v1/towns/south/releases", headers=headers)
    bundle = httpx.get(f"{served.url}/api/v1/towns/south/releases/1.0.0/bundle", headers=headers)
    assert own.status_code == 200, own.text
    assert other.status_code == 403 and other.json()["town"] == "south"
    assert bundle.status_code == 403


def test_county_a_camera_posts_only_to_its_town(served: County) -> None:
    from central.auth.service import issue_token

    token, _ = issue_token(
        served.engine, name="NC1", role=Role.CAMERA, ttl_s=600, actor="t", town="north"
    )
    r = httpx.post(
        f"{served.url}/api/v1/towns/south/captures",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        content=b"{}",
    )
    assert r.status_code == 403


def test_county_loader_refuses_a_shared_id_naming_both_towns(tmp_path: Path) -> None:
    clash = town_toml("south").replace('"s-box1"', '"n-box1"').replace("s-box1", "n-box1")
    path = write_county(tmp_path, towns={"north": town_toml("north"), "south": clash})
    with pytest.raises(CountyError) as caught:
        load_county(path)
    text = str(caught.value)
    assert "boxes id 'n-box1'" in text and "'north'" in text and "'south'" in text


def test_county_loader_refuses_a_town_whose_site_id_differs(tmp_path: Path) -> None:
    path = write_county(tmp_path, towns={"north": town_toml("south")})
    with pytest.raises(CountyError, match="a town's id is its site file's id"):
        load_county(path)


def test_county_on_postgresql(broker: MosquittoBroker, pg_schema_url: str, tmp_path: Path) -> None:
    """The same county on PostgreSQL: both towns land, a town's viewer is kept to its town."""
    for served in _served(broker, tmp_path, pg_schema_url):
        _both_towns_land(served, broker)
        assert [x["id"] for x in served.get("/api/v1/towns/south/lots").json()["lots"]] == ["SP1"]
        assert served.get("/api/v1/towns/north/cases", "south-viewer").status_code == 403
        assert served.get("/api/v1/towns/south/cases", "south-viewer").status_code == 200


def test_county_overview_is_for_county_staff(served: County, broker: MosquittoBroker) -> None:
    _both_towns_land(served, broker)
    assert served.get("/api/v1/county", "north-viewer").status_code == 403
    assert served.get("/api/v1/county").status_code == 401
    r = served.get("/api/v1/county", "county-viewer")
    assert r.status_code == 200, r.text
    body = r.json()
    towns = {town["id"]: town for town in body["towns"]}
    assert body["county"] == "vale" and set(towns) == {"north", "south"}
    lots = {lot["id"]: lot for lot in served.get("/api/v1/lots").json()["lots"]}
    for town, (_, lot_id) in BOXES.items():
        figures = towns[town]
        assert (figures["lots"], figures["capacity"], figures["boxes"]) == (1, 4, 1)
        assert figures["free"] == lots[lot_id]["free"]
        assert figures["occupied"] == lots[lot_id]["occupied"]
        assert figures["boxes_online"] == 1  # its birth landed
        assert figures["open_cases"] == 1
        assert len(figures["sparkline"]["occupied_share"]) == 24


def test_county_a_towns_lists_hold_its_own_rows(served: County, broker: MosquittoBroker) -> None:
    _both_towns_land(served, broker)
    boxes = served.get("/api/v1/towns/north/boxes", "north-viewer").json()
    assert [b["id"] for b in boxes] == ["n-box1"]
    assert served.get("/api/v1/towns/north/boxes/s-box1", "north-viewer").status_code == 404
    every = {b["id"] for b in served.get("/api/v1/boxes", "county-viewer").json()}
    assert every == {"n-box1", "s-box1"}
    assert served.get("/api/v1/towns/north/site", "north-viewer").json()["id"] == "north"
    quarantined = served.get("/api/v1/towns/south/quarantine", "county-admin").json()
    assert all(item["box_id"] == "s-box1" for item in quarantined["items"])
    north_q = served.get("/api/v1/towns/north/quarantine", "north-operator").json()
    assert all(item["box_id"] == "n-box1" for item in north_q["items"])


def test_county_a_towns_dashboard_pages_are_served_for_the_town(served: County) -> None:
    page = httpx.get(f"{served.url}/towns/north/dashboard/")
    assert page.status_code == 200
    assert '"town": "north"' in page.text or '"town":"north"' in page.text
    assert "North town" in page.text
    assert httpx.get(f"{served.url}/towns/atlantis/dashboard/").status_code == 404
    assert httpx.get(f"{served.url}/dashboard/").status_code == 200  # the county's own


def test_county_a_towns_open_data_and_drivers_page_show_its_lots(served: County) -> None:
    for path in (
        "/towns/north/",
        "/api/v1/towns/north/public/board",
        "/api/v1/towns/north/parkapi/v3/parking-sites",
        "/api/v1/towns/north/datex2/v3/parking-table",
        "/api/v1/towns/north/datex2/v3/parking-status",
        "/api/v1/towns/north/ngsi/lots",
    ):
        r = served.get(path)
        assert r.status_code == 200, (path, r.status_code)
        assert "NP1" in r.text and "SP1" not in r.text, path
    for path in ("/", "/api/v1/parkapi/v3/parking-sites", "/api/v1/datex2/v3/parking-table"):
        r = served.get(path)  # the county's: both towns
        assert "NP1" in r.text and "SP1" in r.text, path
    qr = served.get("/api/v1/towns/north/public/lots/NP1/qr.svg")
    assert qr.status_code == 200 and "/towns/north/#lot-NP1" in qr.text
    assert served.get("/api/v1/towns/north/public/lots/SP1/qr.svg").status_code == 404


def test_county_a_towns_grid_report_and_ledger_are_its_own(served: County) -> None:
    report = served.get("/api/v1/towns/north/reports/grids", "north-viewer").json()
    assert [(g["grid_id"], g["cases"]) for g in report["grids"]] == [("NG1", 1)]
    county = served.get("/api/v1/reports/grids", "county-viewer").json()
    assert {g["grid_id"] for g in county["grids"]} >= {"NG1", "SG1"}
    assert served.get("/api/v1/towns/north/ledger", "north-viewer").status_code == 200
    assert served.get("/api/v1/towns/south/ledger", "north-viewer").status_code == 403


def test_county_the_sweep_applies_each_towns_own_rules(served: County) -> None:
    """A bay occupied three days: south (48 h) orders a tow, north (1000 h) does not."""
    since = time.time() - 3 * 86400
    with writer(served.engine).begin() as conn:
        for bay in ("NP1-2", "SP1-2"):
            conn.execute(
                t.bays.update().where(t.bays.c.bay_id == bay).values(state="occupied", since=since)
            )
    r = httpx.post(
        f"{served.url}/api/v1/cases/sweep",
        headers={"Authorization": f"Bearer {served.login('county-admin')}"},
    )
    assert r.status_code == 200, r.text

    def tows(town: str) -> list[str]:
        entries = served.get(f"/api/v1/towns/{town}/ledger?kind=tow", "county-viewer").json()
        return [e["evidence"]["bay_id"] for e in entries]

    assert tows("south") == ["SP1-2"]
    assert tows("north") == []


def test_county_a_towns_alerts_are_its_boxes(served: County) -> None:
    now = time.time()
    ids = {}
    with writer(served.engine).begin() as conn:
        for box in ("n-box1", "s-box1"):
            ids[box] = conn.execute(
                t.alerts.insert().values(
                    box_id=box,
                    alert_id=f"a-{box}",
                    alert_type="sensor_offline",
                    severity="warning",
                    step=0,
                    since=now,
                    message="test",
                    state="raised",
                    raised_at=now,
                    updated_at=now,
                    last_seq=1,
                )
            ).inserted_primary_key[0]
    listed = served.get("/api/v1/towns/north/alerts", "north-viewer").json()
    assert {a["box_id"] for a in listed} == {"n-box1"}
    south = ids["s-box1"]
    assert served.get(f"/api/v1/towns/north/alerts/{south}", "north-viewer").status_code == 404
    r = httpx.post(
        f"{served.url}/api/v1/towns/north/alerts/{south}/acknowledge",
        headers={"Authorization": f"Bearer {served.login('north-operator')}"},
    )
    assert r.status_code == 404
    every = {a["box_id"] for a in served.get("/api/v1/alerts", "county-viewer").json()}
    assert every >= {"n-box1", "s-box1"}


def test_county_a_towns_forecasts_are_its_lots(served: County) -> None:
    assert served.get("/api/v1/towns/north/lots/SP1/forecast").status_code == 404
    assert served.get("/api/v1/towns/north/lots/NP1/forecast").status_code == 200
    assert served.get("/api/v1/lots/SP1/forecast").status_code == 200  # the county's


def test_county_a_towns_zones_signs_commands_and_problems_are_its_own(served: County) -> None:
    """The filters the county's tables listed as written but untested (docs/scale.md)."""
    now = time.time()
    with writer(served.engine).begin() as conn:
        for box, sign in (("n-box1", "NSIGN"), ("s-box1", "SSIGN")):
            conn.execute(
                t.signs.insert().values(
                    sign_id=sign, box_id=box, up=True, state_json="{}", state_ts=now,
                    updated_at=now,
                )
            )  # fmt: skip
            conn.execute(
                t.site_problems.insert().values(
                    box_id=box, subject=f"lot/{sign}", message="test", first_seen_at=now,
                    last_seen_at=now, count=1,
                )
            )  # fmt: skip
    zones = served.get("/api/v1/towns/north/zones", "north-viewer").json()
    assert [z["id"] for z in zones] == ["NS1"]
    for path in ("/api/v1/towns/north/zones/SS1", "/api/v1/towns/north/zones/SS1/bays"):
        assert served.get(path, "north-viewer").status_code == 404, path
    assert served.get("/api/v1/towns/north/zones/NS1/bays", "north-viewer").status_code == 200
    signs = served.get("/api/v1/towns/north/signs", "north-viewer").json()
    assert [s["id"] for s in signs] == ["NSIGN"]
    problems = served.get("/api/v1/towns/north/site/problems", "north-viewer").json()
    assert {p["box_id"] for p in problems} == {"n-box1"}
    # A command to another town's box: refused, and nothing stored or sent.
    r = httpx.post(
        f"{served.url}/api/v1/towns/north/boxes/s-box1/commands",
        headers={"Authorization": f"Bearer {served.login('north-operator')}"},
        json={"body": {"command": "rebirth"}},
    )
    assert r.status_code == 404, r.text
    assert (
        served.get("/api/v1/towns/north/boxes/s-box1/commands", "north-viewer").status_code == 404
    )
    r = httpx.post(
        f"{served.url}/api/v1/towns/south/boxes/s-box1/commands",
        headers={"Authorization": f"Bearer {served.login('county-admin')}"},
        json={"body": {"command": "rebirth"}},
    )
    assert r.status_code == 202, r.text
    command = r.json()["id"]
    assert served.get(f"/api/v1/towns/north/commands/{command}", "north-viewer").status_code == 404
    assert served.get(f"/api/v1/towns/south/commands/{command}", "county-viewer").status_code == 200
    with served.engine.connect() as conn:
        sent = list(conn.execute(select(t.commands.c.box_id)).scalars())
    assert sent == ["s-box1"]
    every = {s["id"] for s in served.get("/api/v1/signs", "county-viewer").json()}
    assert every >= {"NSIGN", "SSIGN"}


def test_county_a_towns_permit_exempts_a_plate_in_that_town_only(served: County) -> None:
    """A permit issued under a town's path is that town's: it exempts the plate from that
    town's truck ban, is listed and revoked there, and another town's staff neither see
    nor revoke it. Before, the permits table had no town: a north operator's permit let
    the truck through south's ban too, and north could revoke south's permits."""
    county = load_county(served.app.state.central.settings.county_file)
    now = time.time()
    valid = {"valid_from": _iso(now - 60), "valid_until": _iso(now + 3600)}

    def issue(town: str, who: str, plate: str) -> int:
        r = httpx.post(
            f"{served.url}/api/v1/towns/{town}/permits",
            headers={"Authorization": f"Bearer {served.login(who)}"},
            json={"plate": plate, "area": "truck_ban", "reason": f"{town} delivery", **valid},
        )
        assert r.status_code == 201, r.text
        return int(r.json()["id"])

    north = issue("north", "north-operator", "苏C11111")
    south = issue("south", "county-admin", "苏C22222")
    with served.engine.connect() as conn:
        for town, plate, reason in (
            ("north", "苏C11111", "north delivery"),
            ("south", "苏C11111", None),
            ("south", "苏C22222", "south delivery"),
            ("north", "苏C22222", None),
        ):
            got = permit_for(conn, county.towns[town], plate=plate, area="truck_ban", at=now)
            assert got == reason, (town, plate, got)
    listed = served.get("/api/v1/towns/north/permits", "north-viewer").json()
    assert {p["id"] for p in listed if p["source"] == "api"} == {north}
    every = served.get("/api/v1/permits", "county-viewer").json()
    assert {(p["id"], p["town"]) for p in every if p["source"] == "api"} >= {
        (north, "north"),
        (south, "south"),
    }
    r = httpx.delete(
        f"{served.url}/api/v1/towns/north/permits/{south}",
        headers={"Authorization": f"Bearer {served.login('north-operator')}"},
    )
    assert r.status_code == 404, r.text
    with served.engine.connect() as conn:
        assert permit_for(conn, county.towns["south"], plate="苏C22222", area="truck_ban", at=now)
    r = httpx.delete(
        f"{served.url}/api/v1/towns/north/permits/{north}",
        headers={"Authorization": f"Bearer {served.login('north-operator')}"},
    )
    assert r.status_code == 204, r.text


def _iso(at: float) -> str:
    return dt.datetime.fromtimestamp(at, dt.UTC).isoformat()


def test_county_a_towns_ledger_export_holds_its_own_entries(served: County) -> None:
    """Before, a town operator's export (``/api/v1/towns/north/ledger/export``) held every
    town's entries: other towns' plates and places. Now the town's grids' entries (with
    their review steps), as the town's ledger list; the county's export holds all."""
    county = load_county(served.app.state.central.settings.county_file)
    now = time.time()
    with writer(served.engine).begin() as conn:
        for town, lot, plate in (("north", "NP1", "苏N00001"), ("south", "SP1", "苏S00002")):
            site = county.towns[town]
            order_tow(
                conn, site, now=now, evidence={"captures": [], "pictures": []},
                dedup_key=f"test-export:{town}", title=f"a tow in {town}",
                place=f"lot:{lot}", grid_id=grid_of(site, f"lot:{lot}"), plate=plate,
            )  # fmt: skip
    window = {"start": _iso(now - 60), "end": _iso(now + 60)}

    def export(path: str, who: str) -> str:
        r = httpx.get(
            f"{served.url}{path}",
            params=window,
            headers={"Authorization": f"Bearer {served.login(who)}"},
        )
        assert r.status_code == 200, r.text
        return r.content.decode("utf-8-sig")

    north = export("/api/v1/towns/north/ledger/export", "north-operator")
    assert "苏N00001" in north and "苏S00002" not in north and "SG1" not in north
    every = export("/api/v1/ledger/export", "county-admin")
    assert "苏N00001" in every and "苏S00002" in every


def test_county_a_towns_rollouts_are_its_own(served: County) -> None:
    """Before, rollouts were listed and read, halted and resumed from any town's path:
    north's admin could halt south's rollout."""
    now = time.time()
    with writer(served.engine).begin() as conn:
        south = conn.execute(
            t.rollouts.insert().values(
                town="south", version="9.9.9", sha256="sha256:" + "0" * 64, kind="rollout",
                state="running", wave=0, canary=1, share=100, max_failures=1, failure_base=0,
                confirm_timeout_s=600.0, window="any", created_by="test", created_at=now,
                updated_at=now,
            )
        ).inserted_primary_key[0]  # fmt: skip
    listed = served.get("/api/v1/towns/north/fleet/rollouts", "north-viewer").json()
    assert south not in {r["id"] for r in listed}
    assert (
        served.get(f"/api/v1/towns/north/fleet/rollouts/{south}", "north-viewer").status_code == 404
    )
    for action in ("halt", "resume"):
        r = httpx.post(
            f"{served.url}/api/v1/towns/north/fleet/rollouts/{south}/{action}",
            headers={"Authorization": f"Bearer {served.login('north-admin')}"},
        )
        assert r.status_code == 404, (action, r.text)
    r = httpx.post(
        f"{served.url}/api/v1/towns/north/fleet/rollouts/{south}/rollback",
        headers={"Authorization": f"Bearer {served.login('north-admin')}"},
        json={"version": "1.0.0"},
    )
    assert r.status_code == 404 and "rollout" in r.json()["detail"], r.text
    with served.engine.connect() as conn:
        state = conn.execute(select(t.rollouts.c.state).where(t.rollouts.c.id == south)).scalar()
    assert state == "running"
    got = served.get(f"/api/v1/towns/south/fleet/rollouts/{south}", "county-viewer")
    assert got.status_code == 200 and got.json()["town"] == "south"
    every = {r["id"] for r in served.get("/api/v1/fleet/rollouts", "county-viewer").json()}
    assert south in every


def _camera_headers(served: County, camera: str, town: str) -> dict[str, str]:
    from central.auth.service import issue_token

    token, _ = issue_token(
        served.engine, name=camera, role=Role.CAMERA, ttl_s=600, actor="t", town=town
    )
    return {"Authorization": f"Bearer {token}"}


def test_county_a_towns_pictures_are_its_cameras(served: County) -> None:
    """Before, ``/api/v1/towns/north/pictures/{sha256}`` served any town's evidence picture
    to north's staff: a south plate's picture by its hash. Now a town's view serves a
    picture one of its own cameras gave central, and a camera may name by hash only a
    picture its town gave (another town's hash is "not stored" to it)."""
    south_jpeg = b"\xff\xd8south plate " + str(time.time()).encode() + b"\xff\xd9"
    south = _camera_headers(served, "SC1", "south")
    upload = httpx.post(
        f"{served.url}/api/v1/towns/south/pictures",
        content=south_jpeg,
        headers={**south, "Content-Type": "image/jpeg"},
    )
    assert upload.status_code == 201, upload.text
    digest = upload.json()["sha256"]
    capture = {
        "camera_id": "SC1",
        "event_id": f"pic-{digest[:8]}",
        "time": _iso(time.time()),
        "plate": "苏S33333",
        "plate_color": "blue",
        "vehicle_class": "car",
        "lot_id": "SP1",
        "pictures": [{"name": "plate.jpg", "kind": "plate", "sha256": digest}],
    }
    r = httpx.post(f"{served.url}/api/v1/towns/south/captures", json=capture, headers=south)
    assert r.status_code == 201, r.text
    url = f"/api/v1/towns/{{}}/pictures/{digest}"
    assert served.get(url.format("south"), "south-viewer").status_code == 200
    assert served.get(url.format("south"), "county-viewer").content == south_jpeg
    assert served.get(f"/api/v1/pictures/{digest}", "county-viewer").status_code == 200
    for who in ("north-viewer", "north-admin"):
        r = served.get(url.format("north"), who)
        assert r.status_code == 404, (who, r.status_code)
        assert served.get(url.format("south"), who).status_code == 403
    # North's camera cannot launder south's picture into a north capture by its hash.
    north = _camera_headers(served, "NC1", "north")
    laundered = {**capture, "camera_id": "NC1", "lot_id": "NP1", "plate": "苏N33333"}
    r = httpx.post(f"{served.url}/api/v1/towns/north/captures", json=laundered, headers=north)
    assert r.status_code == 422 and r.json()["field"] == "pictures", r.text
    assert served.get(url.format("north"), "north-viewer").status_code == 404
    # North's own upload of the same bytes is north's to see as well.
    again = httpx.post(
        f"{served.url}/api/v1/towns/north/pictures",
        content=south_jpeg,
        headers={**north, "Content-Type": "image/jpeg"},
    )
    assert again.status_code == 201 and again.json()["sha256"] == digest
    assert served.get(url.format("north"), "north-viewer").content == south_jpeg


@pytest.mark.parametrize(
    ("south_lot", "clash"),
    [
        ("NS1", "lots id 'NS1' of town 'south' is also zones id 'NS1' of town 'north'"),
        ("north", "lots id 'north' of town 'south' is the id of town 'north'"),
    ],
)
def test_county_loader_refuses_an_id_another_town_uses_for_another_kind(
    tmp_path: Path, south_lot: str, clash: str
) -> None:
    """Before, only ids of the same kind were compared: south's lot ``NS1`` beside north's
    zone ``NS1`` loaded, and north's staff read south's lot's bays, history and live
    figures through ``/api/v1/towns/north/lots/NS1/...`` (a town's view is the set of its
    ids). A town's own id is one of its ids too."""
    south = town_toml("south").replace("SP1", south_lot)
    path = write_county(tmp_path, towns={"north": town_toml("north"), "south": south})
    with pytest.raises(CountyError) as caught:
        load_county(path)
    assert clash in str(caught.value) and "whatever their kind" in str(caught.value)


def test_county_a_towns_sweep_escalates_only_its_own_cases(served: County) -> None:
    """Before, ``POST /api/v1/towns/north/cases/sweep`` (north's admin) escalated every
    overdue case in the store, south's too, and counted them in its answer."""
    county = load_county(served.app.state.central.settings.county_file)
    past = time.time() - 10 * 86400
    with writer(served.engine).begin() as conn:
        overdue = {
            town: open_case(
                conn, county.towns[town], kind="overstay", source_ref=f"test:late:{town}",
                place=f"lot:{lot}", title=f"a late case in {town}", now=past,
            )[0]
            for town, (_, lot) in BOXES.items()
        }  # fmt: skip

    def escalation(town: str) -> int:
        with served.engine.connect() as conn:
            level = conn.execute(
                select(t.cases.c.escalation).where(t.cases.c.id == overdue[town])
            ).scalar_one()
        return int(level)

    r = httpx.post(
        f"{served.url}/api/v1/towns/north/cases/sweep",
        headers={"Authorization": f"Bearer {served.login('north-admin')}"},
    )
    assert r.status_code == 200, r.text
    assert escalation("north") == 2
    assert escalation("south") == 0
    assert r.json()["escalated_close"] == 1, r.json()
    r = httpx.post(
        f"{served.url}/api/v1/cases/sweep",
        headers={"Authorization": f"Bearer {served.login('county-admin')}"},
    )
    assert r.status_code == 200 and escalation("south") == 2, r.text


def test_county_a_truck_caught_in_two_towns_is_each_towns_violation(served: County) -> None:
    """Before, the truck ban's once-a-day key was the plate and the day only: south's
    violation made north's capture of the same truck that day "already in the ledger",
    so north's violation was lost and north learnt of south's fine."""
    plate = "苏T77777"

    def capture(town: str, camera: str) -> list[dict[str, Any]]:
        doc = {
            "camera_id": camera,
            "event_id": f"truck-{camera}-{time.time()}",
            "time": _iso(time.time()),
            "plate": plate,
            "plate_color": "yellow",
            "vehicle_class": "truck",
        }
        r = httpx.post(
            f"{served.url}/api/v1/towns/{town}/captures",
            json=doc,
            headers=_camera_headers(served, camera, town),
        )
        assert r.status_code == 201, r.text
        return [o for o in r.json()["outcomes"] if o["rule"] == "truck_ban"]

    assert [o["outcome"] for o in capture("south", "SC2")] == ["violation"]
    assert [o["outcome"] for o in capture("north", "NC2")] == ["violation"]
    assert [o["outcome"] for o in capture("north", "NC2")] == ["already in the ledger"]
    for town in ("north", "south"):
        entries = served.get(f"/api/v1/towns/{town}/ledger?plate={plate}", "county-viewer").json()
        assert [e["rule_id"] for e in entries] == ["truck_ban"], (town, entries)


def test_county_a_truck_ban_entry_made_before_town_keys_holds_for_its_own_town(
    served: County,
) -> None:
    """An entry keyed the old way (plate and day) still holds that day for the town its
    grid is in: the upgrade fines no truck twice, nor keeps another town from fining it."""
    county = load_county(served.app.state.central.settings.county_file)
    plate = "苏T66666"
    day = dt.datetime.now(dt.timezone(dt.timedelta(hours=8))).date().isoformat()
    with writer(served.engine).begin() as conn:
        order_tow(
            conn, county.towns["north"], now=time.time(),
            evidence={"captures": [], "pictures": []}, dedup_key=f"truck_ban:{plate}:{day}",
            title="held the old way", place="segment:NR1", grid_id="NG1", plate=plate,
        )  # fmt: skip
    for town, camera, outcome in (
        ("north", "NC2", "already in the ledger"),
        ("south", "SC2", "violation"),
    ):
        doc = {
            "camera_id": camera, "event_id": f"old-{camera}-{time.time()}",
            "time": _iso(time.time()), "plate": plate, "plate_color": "yellow",
            "vehicle_class": "truck",
        }  # fmt: skip
        r = httpx.post(
            f"{served.url}/api/v1/towns/{town}/captures",
            json=doc,
            headers=_camera_headers(served, camera, town),
        )
        assert r.status_code == 201, r.text
        got = [o["outcome"] for o in r.json()["outcomes"] if o["rule"] == "truck_ban"]
        assert got == [outcome], (town, r.json())


def test_county_logins_and_metrics_have_no_towns_spelling(served: County) -> None:
    """Before, ``/api/v1/towns/north/auth/login`` and ``/towns/north/api/v1/auth/login``
    logged in (past the balancer's per-address login limit, which names the one path), and
    ``/towns/north/metrics`` showed the county's metrics under a town's name."""
    form = {"username": "north-viewer", "password": PASSWORD}
    for path in ("/api/v1/towns/north/auth/login", "/towns/north/api/v1/auth/login"):
        r = httpx.post(f"{served.url}{path}", data=form)
        assert r.status_code == 404, (path, r.status_code)
    assert httpx.get(f"{served.url}/towns/north/metrics").status_code == 404
    assert httpx.post(f"{served.url}/api/v1/auth/login", data=form).status_code == 200
    assert served.get("/towns/north/", None).status_code == 200
