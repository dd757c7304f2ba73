"""HTTP routes of the dashboard: the pages, their scripts and the static assets.

The pages carry no data: each page's script logs in (token in sessionStorage), reads the
JSON API and listens to ``/api/v1/stream``. So the HTML routes need no login and the API
stays the one place that decides who may see and do what.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from central.dashboard.pages import (
    DEFAULT_LANGUAGE,
    LANGUAGES,
    STATIC,
    TEMPLATES,
    Page,
    page,
    register_page,
    render_page,
)
from central.deps import TOWN_SCOPE
from central.errors import NotFound
from central.townclock_router import clock_reading

router = APIRouter(include_in_schema=False)
LANG_COOKIE = "pg_lang"


def _builtin_pages() -> None:
    def add(page_id: str, title: str, name: str, order: int, **kw: object) -> None:
        register_page(
            Page(
                id=page_id,
                title=title,
                template=TEMPLATES / f"{name}.html",
                script=STATIC / f"{name}.js",
                order=order,
                **kw,  # type: ignore[arg-type]
            )
        )

    add("", "nav.overview", "overview", 10)
    add("lot", "nav.lot", "lot", 20, nav=False)
    add("zones", "nav.zones", "zones", 30)
    add("alerts", "nav.alerts", "alerts", 40)
    add("boxes", "nav.boxes", "boxes", 50)
    add("history", "nav.history", "history", 60)
    add("ledger", "nav.ledger", "ledger", 70)
    add("cases", "nav.cases", "cases", 75)
    add("grids", "nav.grids", "grids", 80)
    add("users", "nav.users", "users", 90, role="admin")
    add("login", "nav.login", "login", 99, nav=False)


_builtin_pages()


def _language(request: Request) -> tuple[str, bool]:
    """The page's language and whether the query chose it (then it is remembered)."""
    asked = request.query_params.get("lang")
    if asked in LANGUAGES:
        return asked, True
    cookie = request.cookies.get(LANG_COOKIE)
    return (cookie if cookie in LANGUAGES else DEFAULT_LANGUAGE), False


def _site(request: Request) -> dict[str, str]:
    central = getattr(request.app.state, "central", None)
    if central is None:
        return {}
    town = request.scope.get(TOWN_SCOPE)  # a county town's page: /towns/{town}/dashboard/
    if town is not None and town in central.towns:
        info = central.towns[town].site.site
        return {"id": info.id, "name": info.name, "timezone": info.timezone, "town": town}
    info = central.site.site
    return {"id": info.id, "name": info.name, "timezone": info.timezone}


def _show(request: Request, page_id: str) -> Response:
    p = page(page_id)
    if p is None:
        raise NotFound("page", page_id)
    lang, chosen = _language(request)
    kiosk = request.query_params.get("kiosk") in ("1", "true", "yes")
    text = render_page(p, lang=lang, kiosk=kiosk, site=_site(request), clock=clock_reading(request))
    response = HTMLResponse(text, headers={"Cache-Control": "no-cache"})
    if chosen:
        response.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, samesite="lax")
    return response


@router.get("/dashboard")
def dashboard_root() -> RedirectResponse:
    return RedirectResponse("/dashboard/")


@router.get("/dashboard/")
def overview(request: Request) -> Response:
    return _show(request, "")


@router.get("/dashboard/page/{page_id}.js")
def page_script(page_id: str) -> FileResponse:
    p = page("" if page_id == "overview" else page_id)
    if p is None or p.script is None:
        raise NotFound("page script", page_id)
    return FileResponse(
        p.script, media_type="text/javascript", headers={"Cache-Control": "no-cache"}
    )


@router.get("/dashboard/{page_id}")
def other(page_id: str, request: Request) -> Response:
    return _show(request, page_id)


def mount(app: FastAPI) -> None:
    """Serve the dashboard from ``app``: pages under /dashboard/, assets under its static/."""
    app.mount("/dashboard/static", StaticFiles(directory=STATIC), name="dashboard-static")
    app.include_router(router)
