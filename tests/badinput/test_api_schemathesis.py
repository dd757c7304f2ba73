"""Central's HTTP API under schemathesis: cases generated from its own OpenAPI document.

Theory of operation
-------------------
One real central per module: ``create_app`` on a SQLite file with the small test site, its
MQTT ingest on a real Mosquitto (so a command is accepted, not a 503), a box online with
figures, an alert, and three users. Schemathesis reads ``/openapi.json`` from the app itself
and, for every operation, generates requests (valid ones and, as its default, ones that break
the schema) and checks each response: never a 5xx, and the body, content type and headers
match what that operation declares for the status it answered. Two passes: with an admin's
bearer token (every endpoint reachable), and without any token (the public ones answer,
the rest must say 401 as declared). Hypothesis is derandomised (the same cases every run) and
bounded so the module takes about a minute.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.python.asgi import shutdown_lifespans
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
)

from central.app import create_app
from central.auth.models import Role
from central.auth.service import add_user, issue_token
from central.db.engine import make_engine
from central.db.migrate import upgrade
from central.ingest.service import IngestWriter
from central.sites.service import sync_site
from firmware_protocols.uplink import Topics
from simulators.broker import MosquittoBroker
from site_model.site import SiteIndex, load_site
from tests.central.helpers import SITE, SITE_FILE, bay_state, birth, lot_state, raw
from tests.faults.rig import record, soak_factor

# The two schemathesis passes take about 3.5 minutes (162 operations and passes): they are
# `long`, for `make test-long`, one test at a time. Not under pytest-xdist either: their
# generated cases run there as one item per test function, and what ran inside cannot be
# told apart. The module's other tests stay in `make test`.
LONG = pytest.mark.long

# Examples per operation and pass (79 operations, 2 passes): about a minute in all on a quiet
# machine (12 took 155 s at load 5 once the API had grown from 50 operations to 79).
# Raise it locally to dig deeper; make soak (PARKGRID_SOAK_FACTOR) digs deeper, up to 8 times
# as many.
MAX_EXAMPLES = int(8 * min(soak_factor(), 8))
CHECKS = [
    not_a_server_error,
    response_schema_conformance,
    content_type_conformance,
    response_headers_conformance,
]
SEEN: dict[str, dict[str, Any]] = {}
TRIED = {"admin": 0, "anonymous": 0}


class _App:
    def __init__(self, app: Any, engine: Any, admin_user: int) -> None:
        self.app = app
        self.engine = engine
        self.admin_user = admin_user

    def admin_headers(self) -> dict[str, str]:
        token, _ = issue_token(
            self.engine,
            name="ada",
            role=Role.ADMIN,
            ttl_s=3600,
            actor="test",
            user_id=self.admin_user,
        )
        return {"Authorization": f"Bearer {token}"}


# Central reads its settings from the environment when its lifespan starts (the first
# call), so the schema can be read at collection from the very app the cases then call;
# ``central_app`` sets that environment first. (schemathesis' ``from_fixture`` would be the
# other way, but 4.32 reads ``request.node._nodeid``, which pytest 9 no longer has.)
APP = create_app(None)
schema = schemathesis.openapi.from_dict(APP.openapi())
schema.app = APP
# The SSE stream never ends (an open event stream by design), so a generated call would
# hang; tests/central/ exercise it with real events instead. Every other operation is in.
schema = schema.exclude(path="/api/v1/stream")


@pytest.fixture(scope="module")
def central_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_App]:
    tmp = tmp_path_factory.mktemp("schemathesis")
    db_url = f"sqlite:///{tmp / 'central.db'}"
    site = load_site(SITE_FILE)
    engine = make_engine(db_url)
    upgrade(engine)
    sync_site(engine, site)
    admin = add_user(engine, username="ada", password="ada-password", role=Role.ADMIN, actor="t")
    add_user(engine, username="vic", password="vic-password", role=Role.VIEWER, actor="t")
    writer = IngestWriter(engine=engine, site=SiteIndex.of(site))
    topics = Topics(SITE, "box-p1")
    writer.process(
        [
            raw(topics.status, birth("box-p1")),
            raw(topics.lot("P1"), lot_state()),
            raw(topics.bay("P1-001"), bay_state("P1-001")),
        ]
    )
    with MosquittoBroker(workdir=tmp / "broker") as broker, pytest.MonkeyPatch.context() as env:
        env.setenv("PARKGRID_SITE_FILE", str(SITE_FILE))
        env.setenv("PARKGRID_DATABASE_URL", db_url)
        env.setenv("PARKGRID_MQTT_URL", broker.url)
        env.setenv("PARKGRID_PICTURES_DIR", str(tmp / "pictures"))
        env.setenv("PARKGRID_LOTS_CACHE_S", "0")
        yield _App(APP, engine, admin)
        _record()
        # Schemathesis keeps an ASGI app's lifespan running for the whole process: end it here.
        shutdown_lifespans()
    engine.dispose()


@pytest.fixture(scope="module")
def admin(central_app: _App) -> dict[str, str]:
    return central_app.admin_headers()


BOUND = settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)


def _seen(label: str, status: int) -> None:
    """Count a call that passed every check, by operation and status."""
    row = SEEN.setdefault(label, {"calls": 0, "statuses": set()})
    row["calls"] += 1
    row["statuses"].add(status)


@LONG
@schema.parametrize()
@BOUND
def test_api_schemathesis_with_admin_token(
    case: schemathesis.Case, central_app: _App, admin: dict[str, str]
) -> None:
    """With an admin's token: no 5xx, every response as its operation declares."""
    headers = dict(admin)
    if case.path == "/api/v1/auth/logout":
        # Logging out revokes the token used: each logout gets a token of its own.
        headers = central_app.admin_headers()
    TRIED["admin"] += 1
    response = case.call_and_validate(headers=headers, checks=CHECKS)
    _seen(f"admin {case.operation.label}", response.status_code)


@LONG
@schema.parametrize()
@BOUND
def test_api_schemathesis_without_token(case: schemathesis.Case, central_app: _App) -> None:
    """Without a token: no 5xx, every response as its operation declares."""
    TRIED["anonymous"] += 1
    response = case.call_and_validate(checks=CHECKS)
    _seen(f"anonymous {case.operation.label}", response.status_code)


def test_api_openapi_declares_both_422_bodies() -> None:
    """A 422 is declared as FastAPI's parse error or central's own {detail, field}."""
    doc = APP.openapi()
    body = doc["paths"]["/api/v1/permits"]["post"]["responses"]["422"]["content"]
    refs = [s["$ref"] for s in body["application/json"]["schema"]["anyOf"]]
    assert refs == ["#/components/schemas/HTTPValidationError", "#/components/schemas/Invalid"]
    assert doc["components"]["schemas"]["Invalid"]["required"] == ["detail", "field"]


def _record() -> None:
    passed = sum(row["calls"] for row in SEEN.values())
    tried = sum(TRIED.values())
    if not tried:
        return
    statuses = sorted({s for row in SEEN.values() for s in row["statuses"]})
    operations = len({label.split(" ", 1)[1] for label in SEEN})
    record(
        "badinput",
        "HTTP API (schemathesis)",
        {
            "cases": tried,
            "refused": passed,
            "operations": operations,
            "how": f"{operations} operations, with an admin token and without one; every "
            f"response checked (no 5xx; body, content type, headers as declared); statuses "
            f"seen {', '.join(map(str, statuses))}",
        },
    )


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v1/ledger/9223372036854775808"),
        ("POST", "/api/v1/ledger/9223372036854775808/actions"),
        ("DELETE", "/api/v1/permits/9223372036854775808"),
        ("GET", "/api/v1/cases/9223372036854775808"),
        ("POST", "/api/v1/cases/9223372036854775808/actions"),
    ],
)
def test_api_row_ids_past_64_bits_are_422(
    central_app: _App, admin: dict[str, str], method: str, path: str
) -> None:
    """A row id past SQLite's INTEGER is 422 naming it (schemathesis found these as 500s)."""
    from schemathesis.python.asgi import get_client

    with get_client(central_app.app) as client:
        response = client.request(method, f"http://testserver{path}", headers=admin, json={})
    assert response.status_code == 422, response.text
