"""The dashboard attacked in a real browser (Playwright + Debian's Chromium), issue 14.

One central per module (uvicorn on a free port, SQLite, a real Mosquitto), with a site file
whose names carry markup. The browser opens every page with hostile query strings, logs in
with hostile ``next`` targets, and reads what boxes put into names and messages. A dialog,
a script that runs, a page error or a console error is a failure; so is a navigation that
leaves central's origin (such requests are recorded and aborted, never sent).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, Route, expect

from central.auth.models import Role
from central.auth.service import add_user, issue_token
from central.dashboard.pages import pages
from firmware_protocols.uplink.models import (
    AlertRaised,
    AlertType,
    ConfigApply,
    ReleaseReport,
    Severity,
    SignArrow,
    SignColour,
    SignDisplay,
    SignMode,
    SignState,
    SiteConfigReport,
)
from simulators.broker import MosquittoBroker
from tests.central.helpers import central_app, serving, wait_for
from tests.central.test_dashboard import (
    PASSWORD,
    FakeBox,
    Server,
    _birth,
    _submit_login,
    broker,
    browser,
)
from tests.faults.rig import record

__all__ = ["broker", "browser"]  # fixtures, used by name

# Markup where a name goes: the site file is written by people, and a name is shown on pages.
MARKUP = (
    '<img src=x onerror="window.__pwned=1;alert(1)">{{nav}}'
    "</script><script>window.__pwned=1</script><!--"
)
SITE_TOML = f"""
[site]
id = "xigang"
name = '{MARKUP}'
timezone = "Asia/Shanghai"

[boxes.box-p1]
name = '{MARKUP}'

[lots.P1]
name = '{MARKUP}'
box_id = "box-p1"
bays = 4

[zones.Z1]
name = '{MARKUP}'
class = "regulated"
box_id = "box-p1"
bays = 2

[segments.S1]
name = '{MARKUP}'
road = "x"

[cameras.CAM-1]
kind = "parkgrid"
segment = "S1"
"""

XSS = "<{{zz}}/script><script>window.__pwned=1;alert(1)<{{zz}}/script>"
PAYLOADS = {
    "script": XSS,
    "template": "{{nav}}",
    "raw": "{{{body}}}",
    "close": "</script><script>window.__pwned=1;alert(1)</script><!--",
}
# The query each page needs to show its data (the lot page shows one lot).
BASE_QUERY = {"lot": "id=P1"}
LIVE_PAGES = {"", "lot", "zones", "alerts", "boxes", "history", "ledger", "cases", "grids"}


@pytest.fixture(scope="module")
def server(broker: MosquittoBroker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    work = tmp_path_factory.mktemp("central-hostile")
    app = central_app(
        work,
        SITE_TOML,
        site_name="hostile.toml",
        mqtt_url=broker.url,
        instance="central-hostile-test",
    )
    with serving(app) as (url, srv):
        running = Server(url=url, app=app, server=srv)
        wait_for(lambda: running.central.mqtt.wait_connected(0.1), what="central's MQTT link")
        engine = running.central.engine
        add_user(engine, username="chief", password=PASSWORD, role=Role.ADMIN, actor="t")
        add_user(engine, username="watch", password=PASSWORD, role=Role.VIEWER, actor="t")
        yield running


@dataclass
class Watch:
    """Everything a page did that an attack would show as: dialogs, errors, foreign requests."""

    origin: str
    dialogs: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    foreign: list[str] = field(default_factory=list)

    def attach(self, context: BrowserContext) -> None:
        def route(r: Route) -> None:
            url = r.request.url
            if url.startswith(self.origin + "/"):
                r.continue_()
            else:
                self.foreign.append(url)
                r.abort()

        context.route("**/*", route)

    def page(self, page: Page) -> Page:
        def dialog(d: Any) -> None:
            self.dialogs.append(d.message)
            d.dismiss()

        def console(m: ConsoleMessage) -> None:
            if m.type == "error":
                self.errors.append(m.text)

        page.on("dialog", dialog)
        page.on("console", console)
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        return page

    def clean(self) -> bool:
        return not (self.dialogs or self.errors or self.foreign)


def _context(browser: Browser, server: Server) -> tuple[BrowserContext, Page, Watch]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.set_default_timeout(15_000)
    watch = Watch(origin=server.url)
    watch.attach(context)
    return context, watch.page(context.new_page()), watch


def _log_in(page: Page, server: Server, next_target: str | None = None) -> None:
    url = f"{server.url}/dashboard/login"
    if next_target is not None:
        url += "?next=" + quote(next_target, safe="")
    page.goto(url)
    _submit_login(page, "chief")


def _booted(page: Page) -> None:
    """pg.js has run its boot (the clock ticks), so any inline script would have run first."""
    expect(page.locator("#clock")).not_to_have_text("")


@pytest.mark.long  # 15-28 s: a whole rig; `make test-long`
def test_dashboard_hostile_query_runs_no_script_on_any_page(
    browser: Browser, server: Server
) -> None:
    """Every page, login included, with each payload in the query: nothing runs, nothing breaks.

    Logged in, so each page's script runs all of its work; the payload arrives intact in
    ``pg.cfg.query`` (data, not markup), and names with markup from the site file show as text.
    """
    context, page, watch = _context(browser, server)
    tried = 0
    try:
        _log_in(page, server)
        expect(page).to_have_url(f"{server.url}/dashboard/")
        for p in pages():
            for name, payload in PAYLOADS.items():
                base = BASE_QUERY.get(p.id)
                query = (base + "&" if base else "") + "x=" + quote(payload, safe="")
                page.goto(f"{server.url}{p.url}?{query}")
                _booted(page)
                if p.id != "login":
                    expect(page.locator("#user")).to_contain_text("chief")
                if p.id in LIVE_PAGES:
                    expect(page.locator("#live")).to_have_attribute("data-state", "on")
                assert page.evaluate("pg.cfg.query.x") == payload, (p.id, name)
                assert page.evaluate("window.__pwned") is None, (p.id, name)
                assert page.locator("img[src=x]").count() == 0, (p.id, name)
                tried += 1
                assert watch.clean(), (p.id, name, watch)
        page.goto(f"{server.url}/dashboard/")
        expect(page.locator(".brand .site")).to_have_text(MARKUP)
        expect(page.locator('[data-lot="P1"] .lot-name')).to_have_text(MARKUP)
        page.goto(f"{server.url}/dashboard/zones")
        expect(page.locator('[data-zone="Z1"]')).to_contain_text(MARKUP)
        assert page.evaluate("window.__pwned") is None
        assert watch.clean(), watch
    finally:
        context.close()
    record(
        "hostile",
        "dashboard query XSS (Chromium)",
        {
            "attack": "script, template and </script> payloads in the query of every page, "
            "login included, and markup in site names",
            "tried": tried,
            "refused": tried,
            "notes": "no dialog, no script ran, no page or console error; names shown as text",
        },
    )


OPEN_REDIRECTS = [
    "/\\evil.invalid/",
    "/%09/evil.invalid/",
    "/\t/evil.invalid/",
    "//evil.invalid/",
    "\\\\evil.invalid/",
    "https://evil.invalid/dashboard/",
    "http:evil.invalid",
    "javascript:window.__pwned=1",
    "data:text/html,<script>alert(1)</script>",
    "/api/v1/auth/me",
    "/dashboard/../api/v1/auth/me",
]


@pytest.mark.long  # 15-28 s: a whole rig; `make test-long`
def test_dashboard_login_never_redirects_off_the_dashboard(
    browser: Browser, server: Server
) -> None:
    """After login, ``next`` is followed only to a dashboard page of central's own origin."""
    for target in OPEN_REDIRECTS:
        context, page, watch = _context(browser, server)
        try:
            _log_in(page, server, target)
            expect(page).to_have_url(f"{server.url}/dashboard/")
            _booted(page)
            assert page.evaluate("window.__pwned") is None, target
            assert watch.clean(), (target, watch)
        finally:
            context.close()
    record(
        "hostile",
        "login open redirect (Chromium)",
        {
            "attack": "a login link whose next= leaves the dashboard: /\\host, /%09/host, "
            "//host, https:, javascript:, data:, /dashboard/../api/...",
            "tried": len(OPEN_REDIRECTS),
            "refused": len(OPEN_REDIRECTS),
            "notes": "landed on /dashboard/ of central's origin; no off-origin request sent",
        },
    )


def test_dashboard_login_follows_a_dashboard_next(browser: Browser, server: Server) -> None:
    """A real ``next`` (a dashboard page with its query) is still where login goes."""
    context, page, watch = _context(browser, server)
    try:
        _log_in(page, server, "/dashboard/lot?id=P1&lang=en")
        expect(page).to_have_url(f"{server.url}/dashboard/lot?id=P1&lang=en")
        _booted(page)
        assert urlsplit(page.url).path == "/dashboard/lot"
        assert watch.clean(), watch
    finally:
        context.close()


SVG = (
    b'<svg xmlns="http://www.w3.org/2000/svg" onload="window.__pwned=1;alert(1)">'
    b"<script>window.__pwned=1;alert(2)</script><text y='20'>plate</text></svg>"
)


def test_dashboard_picture_from_a_camera_is_never_a_page(browser: Browser, server: Server) -> None:
    """A camera uploads an SVG "picture" with script; opened in central's origin, none runs.

    Pictures are accepted as any ``image/*`` and served with their own type, and a viewer's
    token can ride in the link (``?access_token=``): without a policy the SVG would run in
    central's origin and read the tokens in storage. Every answer outside the dashboard's
    pages is ``default-src 'none'; sandbox``.
    """
    engine = server.central.engine
    camera, _ = issue_token(engine, name="CAM-1", role=Role.CAMERA, ttl_s=3600, actor="t")
    r = httpx.post(
        f"{server.url}/api/v1/pictures",
        content=SVG,
        headers={"Authorization": f"Bearer {camera}", "Content-Type": "image/svg+xml"},
    )
    assert r.status_code == 201, r.text
    url = f"{server.url}{r.json()['url']}?access_token={server.token('watch')}"
    context, page, watch = _context(browser, server)
    try:
        page.goto(url)
        expect(page.locator("text")).to_have_text("plate")  # the document did render
        assert page.evaluate("window.__pwned") is None
        assert not watch.dialogs and not watch.foreign, watch
    finally:
        context.close()
    record(
        "hostile",
        "stored XSS through a camera picture (SVG)",
        {
            "attack": "a camera uploads an image/svg+xml picture with script; a link opens it "
            "in central's origin with a viewer's token",
            "tried": 2,
            "refused": 2,
            "notes": "onload and <script> both blocked: default-src 'none' and sandbox on "
            "every non-page answer",
        },
    )


def test_dashboard_box_data_with_markup_shows_as_text(
    browser: Browser, server: Server, broker: MosquittoBroker
) -> None:
    """What a box says (alert message, software version, sign text) is shown, never run."""
    token = server.token("chief")
    auth = {"Authorization": f"Bearer {token}"}
    desired = httpx.get(f"{server.url}/api/v1/fleet", headers=auth).json()[0]["desired_hash"]
    box = FakeBox(broker, "box-p1")
    now = dt.datetime.now(dt.UTC)
    # The last push's outcome as the box tells it: rolled back, its reason and a section
    # name in markup (a reason is shown only for the hash central pushed).
    report = SiteConfigReport(
        hash=desired,
        sections={MARKUP: "0123456789abcdef"},
        apply=ConfigApply(version=1, hash=desired, state="rolled_back", reason=MARKUP, ts=now),
    )
    try:
        birth = _birth("box-p1", 4).model_copy(
            update={
                "software_version": MARKUP,
                "config_hash": MARKUP,
                "site_config": report,
                "release": ReleaseReport(
                    version="0.1.0",
                    state="rolled_back",
                    failed_version="0.2.0",
                    reason=MARKUP,
                    ts=now,
                ),
            }
        )
        box.send(box.topics.status, birth, retain=True)
        box.event(
            AlertRaised(
                alert_id="P1-markup",
                alert_type=AlertType.SIGN_DOWN,
                severity=Severity.CRITICAL,
                since=now,
                message=MARKUP,
                lot_id="P1",
                sign_id="P1-entry",
            ),
            now,
        )
        box.send(
            box.topics.sign("P1-entry"),
            SignState(
                sign_id="P1-entry",
                bus="signs",
                unit=1,
                profile="parkgrid-guidance",
                display=SignDisplay(
                    mode=SignMode.TEXT, text=MARKUP, colour=SignColour.RED, arrow=SignArrow.NONE
                ),
                up=True,
                last_verified=now,
                ts=now,
            ),
            retain=True,
        )
        box.flush()
    finally:
        box.close()

    def stored() -> bool:
        r = httpx.get(f"{server.url}/api/v1/alerts", headers=auth)
        return any(a["message"] == MARKUP for a in r.json())

    def reported() -> bool:
        r = httpx.get(f"{server.url}/api/v1/fleet", headers=auth)
        return r.json()[0]["reason"] == MARKUP

    wait_for(stored, timeout=30, what="the alert to reach central")
    wait_for(reported, timeout=30, what="the box's rollback reason to reach central")
    context, page, watch = _context(browser, server)
    shown = 0
    try:
        _log_in(page, server)
        expect(page).to_have_url(f"{server.url}/dashboard/")
        page.goto(f"{server.url}/dashboard/alerts")
        expect(page.locator("#alerts tbody tr")).to_have_count(1)
        expect(page.locator("#alerts tbody tr")).to_contain_text(MARKUP)
        shown += 1
        page.goto(f"{server.url}/dashboard/boxes")
        expect(page.locator('[data-box="box-p1"]')).to_contain_text(MARKUP)
        shown += 1
        state = page.locator('[data-box="box-p1"] [data-fleet-state]')
        expect(state).to_have_attribute("data-fleet-state", "rolled back")
        expect(page.locator('[data-box="box-p1"] .reason')).to_have_text(MARKUP)
        shown += 1
        expect(page.locator('[data-box="box-p1"] .release-reason')).to_contain_text(MARKUP)
        shown += 1  # why the box went back from a release
        expect(page.locator('[data-box="box-p1"]')).to_contain_text(MARKUP + ", ")
        shown += 1  # the box's section name, in what differs
        page.goto(f"{server.url}/dashboard/lot?id=P1")
        expect(page.locator('[data-sign="P1-entry"]')).to_contain_text(MARKUP)
        shown += 1
        assert page.evaluate("window.__pwned") is None
        assert page.locator("img[src=x]").count() == 0
        assert watch.clean(), watch
    finally:
        context.close()
    record(
        "hostile",
        "stored XSS through box data",
        {
            "attack": "a box (anyone with its credentials) puts markup in an alert message, "
            "its software version and config hash, a sign's text, and its configuration "
            "report (a rollback reason, a section name)",
            "tried": shown,
            "refused": shown,
            "notes": "alerts, boxes and lot pages show it as text (textContent, no innerHTML)",
        },
    )


def test_dashboard_cannot_be_framed(browser: Browser, server: Server) -> None:
    """Another site framing a page (to trick a click on an operator button) gets nothing."""
    context, page, watch = _context(browser, server)
    framed = ["/dashboard/", "/dashboard/login", "/dashboard/alerts", "/api/v1/lots"]
    try:
        page.set_content("".join(f'<iframe src="{server.url}{path}"></iframe>' for path in framed))
        expect(page.locator("iframe")).to_have_count(len(framed))

        def refused() -> list[str]:
            page.wait_for_timeout(100)  # lets Playwright process the frames' navigations
            return [f.url for f in page.main_frame.child_frames]

        # Chromium replaces a refused frame with its own error page, in place of ours.
        wait_for(
            lambda: all(u.startswith("chrome-error:") for u in refused()),
            timeout=30,
            what="every frame to be refused",
        )
        for frame in page.main_frame.child_frames:
            assert frame.locator("#login-form, #main, pre").count() == 0, frame.url
        assert not watch.dialogs and not watch.foreign, watch
    finally:
        context.close()
    record(
        "hostile",
        "clickjacking (Chromium)",
        {
            "attack": "frame dashboard pages and the API in another page",
            "tried": len(framed),
            "refused": len(framed),
            "notes": "X-Frame-Options DENY and frame-ancestors 'none': Chromium shows nothing",
        },
    )
