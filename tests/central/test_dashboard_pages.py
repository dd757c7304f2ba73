"""The dashboard's page framework without a browser: words, templates, routes, registry."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from central.app import create_app
from central.dashboard import pages
from central.dashboard.pages import Page, register_page
from central.settings import CentralSettings
from tests.central.helpers import SITE_FILE

PKG = Path(pages.__file__).resolve().parent
# Keys built at run time from API values (status, severity, ...) are checked by prefix.
DYNAMIC = re.compile(r"""t\("([a-z_]+\.)"\s*\+""")


def _used_keys() -> set[str]:
    keys: set[str] = set()
    for html in (PKG / "templates").glob("*.html"):
        keys |= set(re.findall(r"\[\[([A-Za-z0-9_.-]+)\]\]", html.read_text()))
    for js in (PKG / "static").glob("*.js"):
        keys |= set(re.findall(r"""\bt\("([A-Za-z0-9_.-]+)"[,)]""", js.read_text()))
    return keys


def test_dashboard_words_exist_in_every_language() -> None:
    """Both word tables have the same keys, and every key a template or script uses."""
    zh = json.loads((PKG / "i18n" / "zh.json").read_text(encoding="utf-8"))
    en = json.loads((PKG / "i18n" / "en.json").read_text(encoding="utf-8"))
    assert set(zh) == set(en)
    missing = _used_keys() - set(zh)
    assert not missing, f"words used but not defined: {sorted(missing)}"
    prefixes = set()
    for js in (PKG / "static").glob("*.js"):
        prefixes |= set(DYNAMIC.findall(js.read_text()))
    for prefix in prefixes:
        assert any(k.startswith(prefix) for k in zh), f"no words for {prefix}*"
    for key in ("status.spacesAvailable", "status.almostFull", "status.full", "severity.critical"):
        assert zh[key] and en[key] and zh[key] != en[key]


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    settings = CentralSettings(
        site_file=SITE_FILE, database_url=f"sqlite:///{tmp_path / 'c.db'}", ingest=False
    )
    with TestClient(create_app(settings)) as c:
        yield c


def test_dashboard_pages_default_to_chinese_and_remember_english(client: TestClient) -> None:
    """Pages are Chinese by default; ?lang=en switches and a cookie keeps the choice."""
    page = client.get("/dashboard/")
    assert page.status_code == 200
    assert '<html lang="zh-CN">' in page.text and "总览" in page.text
    assert '"timezone":"Asia/Shanghai"' in page.text
    english = client.get("/dashboard/alerts?lang=en")
    assert '<html lang="en">' in english.text and "<th>Severity</th>" in english.text
    assert "pg_lang=en" in english.headers["set-cookie"]
    assert '<html lang="en">' in client.get("/dashboard/zones").text
    kiosk = client.get("/dashboard/?kiosk=1")
    assert 'class="kiosk page-overview"' in kiosk.text


@pytest.mark.parametrize(
    ("path", "status", "kind"),
    [
        pytest.param("/dashboard/static/pg.js", 200, "javascript", id="helper"),
        pytest.param("/dashboard/static/pg.css", 200, "css", id="style"),
        pytest.param("/dashboard/page/overview.js", 200, "javascript", id="page-script"),
        pytest.param("/dashboard/page/nothing.js", 404, "json", id="unknown-script"),
        pytest.param("/dashboard/nothing", 404, "json", id="unknown-page"),
    ],
)
def test_dashboard_assets_are_served_locally(
    client: TestClient, path: str, status: int, kind: str
) -> None:
    """Every asset comes from central itself; unknown pages are 404 with a reason."""
    response = client.get(path)
    assert response.status_code == status
    assert kind in response.headers["content-type"]


def test_dashboard_page_html_has_no_outside_urls(client: TestClient) -> None:
    """No page loads anything from another host (an office LAN may have no internet)."""
    for p in pages.pages():
        text = client.get(p.url).text
        assert not re.search(r"""(src|href)=["']?(https?:)?//""", text), p.id


def test_dashboard_register_page_adds_a_nav_entry(client: TestClient, tmp_path: Path) -> None:
    """Another package's page shows in the navigation and is served with its script."""
    body = tmp_path / "ledger.html"
    body.write_text("<h1>[[nav.alerts]]</h1>")
    script = tmp_path / "ledger.js"
    script.write_text("pg.page(async () => {});")
    register_page(Page(id="ledger-test", title="nav.alerts", template=body, script=script))
    try:
        text = client.get("/dashboard/ledger-test").text
        assert '<a href="/dashboard/ledger-test"' in client.get("/dashboard/").text
        assert "<h1>告警</h1>" in text
        assert client.get("/dashboard/page/ledger-test.js").text == script.read_text()
        with pytest.raises(ValueError, match="role"):
            register_page(Page(id="x", title="t", template=body, role="root"))
    finally:
        pages._PAGES.pop("ledger-test", None)
