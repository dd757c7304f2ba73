"""The page framework: a registry of pages, the word tables, and the Jinja2 renderer.

A page is a body template (an HTML fragment) plus one script, shown inside ``base.html``
(header, navigation, live-stream badge, language switch). Templates are Jinja2 with
autoescaping on, so every value is HTML-escaped where it is written:

    {{ t("key") }}   the word for ``key`` in the page's language
    {{ name }}       a value the renderer passes (``title``, ``site_name``, ...)

Words live in ``i18n/<lang>.json``, one flat table per language; the page's table is also
handed to its script in the page's JSON data block (``pg.t(key)`` in JavaScript). No page
has an inline script, so the Content-Security-Policy allows scripts from central only.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from jinja2 import Environment, FunctionLoader, StrictUndefined, TemplateNotFound

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"
I18N = HERE / "i18n"

LANGUAGES = ("zh", "en")
DEFAULT_LANGUAGE = "zh"
ROLES = ("viewer", "operator", "admin")


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


def _path_of(name: str) -> Path | None:
    """The file of a template name: ``base.html`` or ``page:<id>`` (a registered body)."""
    if name.startswith("page:"):
        registered = page(name.removeprefix("page:"))
        return registered.template if registered is not None else None
    return TEMPLATES / name


def _load(name: str) -> tuple[str, str, Callable[[], bool]]:
    """Jinja2's source of a template; stale once its file changes or its page is replaced."""
    path = _path_of(name)
    if path is None or not path.is_file():
        raise TemplateNotFound(name)
    mtime = path.stat().st_mtime
    text = path.read_text(encoding="utf-8")
    return text, str(path), lambda: _path_of(name) == path and _mtime(path) == mtime


def _mtime(path: Path) -> float | None:
    try:
        return path.stat().st_mtime
    except OSError:
        return None


def _environment() -> Environment:
    env = Environment(
        loader=FunctionLoader(_load),
        autoescape=True,  # every {{ value }} is HTML-escaped; nothing is marked safe
        undefined=StrictUndefined,  # a misspelt name fails the render, it never prints ""
        keep_trailing_newline=True,
    )
    # ``|tojson`` escapes < > & ' as \u003c... so the JSON block can never end its element.
    env.policies["json.dumps_kwargs"] = {"ensure_ascii": False, "separators": (",", ":")}
    return env


ENV = _environment()


def render_page(
    p: Page,
    *,
    lang: str,
    kiosk: bool,
    site: dict[str, str],
    clock: dict[str, float | bool] | None = None,
) -> str:
    """The page's HTML: ``base.html`` around the page's body, all values escaped by Jinja2.

    The page's data (language, site, words, a reading of the town's clock: ``GET
    /api/v1/clock``'s, so the page shows the API's wall times on the town's clock from its
    first paint) goes into a ``<script type="application/json"
    id="pg-config">`` block that is never run; ``pg.js`` parses it. The query string is not
    in it: scripts read ``location.search`` themselves, so nothing a link carries is ever
    written into the page.
    """
    config = {
        "lang": lang,
        "page": p.id,
        "kiosk": kiosk,
        "site": site,
        "strings": strings(lang),
        "clock": clock,
    }
    other = "en" if lang == "zh" else "zh"
    return ENV.get_template("base.html").render(
        t=lambda key: word(lang, key),
        lang="zh-CN" if lang == "zh" else lang,
        title=word(lang, p.title),
        site_name=site.get("name", ""),
        body_class=("kiosk " if kiosk else "") + f"page-{p.id or 'overview'}",
        nav=[
            {"url": q.url, "role": q.role, "title": word(lang, q.title), "current": q.id == p.id}
            for q in pages()
            if q.nav
        ],
        body=f"page:{p.id}",
        config=config,
        page_script=f"/dashboard/page/{p.id or 'overview'}.js" if p.script else None,
        other_lang=other,
        other_lang_name=word(other, "lang.name"),
    )
