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
        keys |= set(re.findall(r"""\{\{ t\("([A-Za-z0-9_.-]+)"\) \}\}""", html.read_text()))
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
    body.write_text('<h1>{{ t("nav.alerts") }}</h1>')
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


# --- hostile input: the query string and the page's script (issue 14) ---------------------

XSS = "<{{zz}}/script><script>alert(1)<{{zz}}/script>"
HOSTILE_QUERY = {"x": XSS, "y": "{{nav}}", "z": "</script><!--<script>", "w": "{{{body}}}"}


def _page_config(text: str) -> dict[str, object]:
    """The page's data block, read as the page's script reads it (JSON, never run)."""
    m = re.search(r'<script type="application/json" id="pg-config">(.*?)</script>', text, re.S)
    assert m, "no data block"
    config: dict[str, object] = json.loads(m.group(1))
    return config


def _script_tags(text: str) -> list[str]:
    return re.findall(r"<script\b[^>]*>", text, re.I)


def test_dashboard_query_parameters_never_become_script(client: TestClient) -> None:
    """Every page, login included: a hostile query is not echoed as markup or into the config.

    The page config carries no query at all (the scripts read ``location.search``); every
    ``<script>`` element loads a file from central or is a JSON block, and the one JSON
    block parses.
    """
    from tests.faults.rig import record

    every = pages.pages()
    for p in every:
        response = client.get(p.url, params=HOSTILE_QUERY)
        assert response.status_code == 200, p.id
        text = response.text
        assert "<script>alert(1)" not in text, p.id
        assert "alert(1)" not in text and "{{" not in text and "zz" not in text, p.id
        for tag in _script_tags(text):
            assert 'src="/dashboard/' in tag or 'type="application/json"' in tag, (p.id, tag)
        config = _page_config(text)
        assert "query" not in config and config["page"] == p.id
        site = {"id": "testtown", "name": "Test town", "timezone": "Asia/Shanghai"}
        assert config["site"] == site, p.id
    record(
        "hostile",
        "dashboard query XSS (HTTP)",
        {
            "attack": "script, template syntax and </script> in the query of every page",
            "tried": len(every) * len(HOSTILE_QUERY),
            "refused": len(every) * len(HOSTILE_QUERY),
            "notes": "not echoed: no inline script, page data in a JSON block without the query",
        },
    )


def _csp(response: object) -> dict[str, str]:
    header = response.headers["content-security-policy"]  # type: ignore[attr-defined]
    parts = (p.strip().split(None, 1) for p in header.split(";") if p.strip())
    return {p[0]: p[1] if len(p) > 1 else "" for p in parts}


@pytest.mark.parametrize("page_id", [p.id for p in pages.pages()])
def test_dashboard_pages_carry_a_strict_content_security_policy(
    client: TestClient, page_id: str
) -> None:
    """Scripts and styles only from central itself, no framing, no plugins, no base tag."""
    response = client.get("/dashboard/" + page_id)
    csp = _csp(response)
    assert not re.search(r"<[^>]+\sstyle=", response.text), "inline style: refused by style-src"
    assert csp["default-src"] == "'self'"
    assert csp["script-src"] == "'self'"
    assert csp["style-src"] == "'self'"
    assert csp["object-src"] == "'none'"
    assert csp["base-uri"] == "'none'"
    assert csp["frame-ancestors"] == "'none'"
    assert csp["form-action"] == "'self'"
