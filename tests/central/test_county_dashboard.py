"""A county town's dashboard in a real browser: its staff see their town only, live."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from playwright.sync_api import expect, sync_playwright

from simulators.broker import MosquittoBroker
from tests.central.test_county import PASSWORD, County, _both_towns_land, _served

CHROMIUM = "/usr/bin/chromium"


@pytest.fixture
def served(
    mosquitto: MosquittoBroker, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[County]:
    work = tmp_path_factory.mktemp("county-pages")
    yield from _served(mosquitto, work, f"sqlite:///{work / 'central.db'}")


def test_county_a_towns_staff_see_their_towns_dashboard(
    served: County, mosquitto: MosquittoBroker
) -> None:
    _both_towns_land(served, mosquitto)
    args = ["--disable-gpu", "--no-first-run", "--disable-background-networking"]
    if os.geteuid() == 0:
        args.append("--no-sandbox")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=args)
        try:
            page = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
            page.set_default_timeout(10_000)
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(f"{served.url}/towns/north/dashboard/")
            expect(page).to_have_url(
                f"{served.url}/dashboard/login?next=%2Ftowns%2Fnorth%2Fdashboard%2F"
            )
            page.fill("#username", "north-viewer")
            page.fill("#password", PASSWORD)
            page.click("#login-button")
            expect(page).to_have_url(f"{served.url}/towns/north/dashboard/")
            expect(page.locator('[data-lot="NP1"]')).to_be_visible()
            expect(page.locator('[data-lot="SP1"]')).to_have_count(0)
            expect(page.locator("#live")).to_have_attribute("data-state", "on")
            page.locator('[data-lot="NP1"]').click()
            expect(page).to_have_url(f"{served.url}/towns/north/dashboard/lot?id=NP1")
            expect(page.locator("#live")).to_have_attribute("data-state", "on")
            assert errors == []  # no call refused: each went through the town's paths
        finally:
            browser.close()
