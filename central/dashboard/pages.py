"""The page framework: a registry of pages, the word tables, and the template renderer.

A page is a body template (an HTML fragment) plus one script, shown inside ``base.html``
(header, navigation, live-stream badge, language switch). Templates know two forms:

    [[key]]        the word for ``key`` in the page's language, HTML-escaped
    {{name}}       a value from the render context, HTML-escaped ({{{name}}} raw)

Words live in ``i18n/<lang>.json``, one flat table per language; the page's table is also
handed to its script as ``PG.strings`` (``pg.t(key)`` in JavaScript).
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"
I18N = HERE / "i18n"

LANGUAGES = ("zh", "en")
DEFAULT_LANGUAGE = "zh"
ROLES = ("viewer", "operator", "admin")

_WORD = re.compile(r"\[\[([A-Za-z0-9_.-]+)\]\]")
_RAW = re.compile(r"\{\{\{([A-Za-z0-9_]+)\}\}\}")
_VALUE = re.compile(r"\{\{([A-Za-z0-9_]+)\}\}")


@dataclass(frozen=True, slots=True, kw_only=True)
class Page:
    """One dashboard page, served at ``/dashboard/<id>`` (the overview's id is empty).

    ``title`` is an i18n key; ``template`` an HTML fragment for ``<main>``; ``script`` the
    page's JavaScript (served at ``/dashboard/page/<id>.js``, loaded after ``pg.js``).
    ``role`` is the least role that sees the page in the navigation; the JSON API enforces
    the real permissions. ``nav`` False keeps a page out of the navigation (the lot page,
    reached from a card).
    """

    id: str
    title: str
    template: Path
    script: Path | None = None
    role: str = "viewer"
    nav: bool = True
    order: int = 100

    @property
    def url(self) -> str:
        return f"/dashboard/{self.id}" if self.id else "/dashboard/"


_PAGES: dict[str, Page] = {}


def register_page(page: Page) -> Page:
    """Add (or replace) a page; call at import time of the module that owns it."""
    if page.role not in ROLES:
        raise ValueError(f"page {page.id!r}: role must be one of {ROLES}, not {page.role!r}")
    if not page.template.is_file():
        raise ValueError(f"page {page.id!r}: no template at {page.template}")
    if page.script is not None and not page.script.is_file():
        raise ValueError(f"page {page.id!r}: no script at {page.script}")
    _PAGES[page.id] = page
    return page


def pages() -> list[Page]:
    return sorted(_PAGES.values(), key=lambda p: (p.order, p.id))


def page(page_id: str) -> Page | None:
    return _PAGES.get(page_id)


@cache
def strings(lang: str) -> dict[str, str]:
    """The word table of one language (read once per process)."""
    with open(I18N / f"{lang}.json", encoding="utf-8") as f:
        table: dict[str, str] = json.load(f)
    return table


def word(lang: str, key: str) -> str:
    return strings(lang).get(key) or strings(DEFAULT_LANGUAGE).get(key) or key


def render(text: str, *, lang: str, context: dict[str, Any]) -> str:
    text = _WORD.sub(lambda m: html.escape(word(lang, m.group(1))), text)
    text = _RAW.sub(lambda m: str(context.get(m.group(1), "")), text)
    return _VALUE.sub(lambda m: html.escape(str(context.get(m.group(1), ""))), text)


def script_json(value: Any) -> str:
    """JSON safe to put inside a <script> element."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return text.replace("</", "<\\/").replace("<!--", "<\\!--")


def nav_html(lang: str, current: str) -> str:
    items = []
    for p in pages():
        if not p.nav:
            continue
        cls = ' class="current"' if p.id == current else ""
        items.append(
            f'<a href="{p.url}" data-role="{p.role}"{cls}>{html.escape(word(lang, p.title))}</a>'
        )
    return "\n".join(items)


def render_page(
    p: Page, *, lang: str, kiosk: bool, site: dict[str, str], query: dict[str, str]
) -> str:
    config = {
        "lang": lang,
        "page": p.id,
        "kiosk": kiosk,
        "site": site,
        "query": query,
        "strings": strings(lang),
    }
    body = render(p.template.read_text(encoding="utf-8"), lang=lang, context={})
    base = (TEMPLATES / "base.html").read_text(encoding="utf-8")
    script = (
        f'<script src="/dashboard/page/{p.id or "overview"}.js" defer></script>' if p.script else ""
    )
    return render(
        base,
        lang=lang,
        context={
            "lang": "zh-CN" if lang == "zh" else lang,
            "title": word(lang, p.title),
            "site_name": site.get("name", ""),
            "body_class": ("kiosk " if kiosk else "") + f"page-{p.id or 'overview'}",
            "nav": nav_html(lang, p.id),
            "body": body,
            "config": script_json(config),
            "page_script": script,
            "other_lang": "en" if lang == "zh" else "zh",
            "other_lang_name": word("en" if lang == "zh" else "zh", "lang.name"),
        },
    )
