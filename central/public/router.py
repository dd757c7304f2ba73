"""The drivers' side of central: the public page at ``/``, its live JSON, assets and QR codes.

No login anywhere here. Every answer comes from ``BoardCache`` (one lot query per refresh
however many phones ask), carries a strong ETag and a short ``Cache-Control``, is gzipped
when the phone accepts it, and passes a per-client rate limit (429 with ``Retry-After``)
that the staff pages never see. The page has its own Content-Security-Policy: scripts,
styles, images and connections from central only, no inline script.
"""

from __future__ import annotations

import json
import threading
import time
from functools import cache
from pathlib import Path
from typing import Any

import segno
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from central.deps import get_central
from central.errors import NotFound
from central.public.cache import BoardCache, Encoded
from central.public.ratelimit import RateLimiter

HERE = Path(__file__).resolve().parent
STATIC = HERE / "static"
LANGUAGES = ("zh", "en")
PAGE_CSP = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)

router = APIRouter(tags=["drivers (public)"])
_setup_lock = threading.Lock()


@cache
def strings(lang: str) -> dict[str, str]:
    with open(HERE / "i18n" / f"{lang}.json", encoding="utf-8") as f:
        table: dict[str, str] = json.load(f)
    return table


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        keep_trailing_newline=True,
    )
    env.policies["json.dumps_kwargs"] = {"ensure_ascii": False, "separators": (",", ":")}
    return env


ENV = _environment()


def render_page(board: dict[str, Any], lang: str) -> str:
    table = strings(lang)

    def t(key: str, **values: object) -> str:
        text = table.get(key) or strings("zh").get(key) or key
        return text.format(**values) if values else text

    return ENV.get_template("drivers.html").render(
        t=t,
        board=board,
        html_lang="zh-CN" if lang == "zh" else lang,
        other_lang="en" if lang == "zh" else "zh",
        config={"lang": lang, "board": board, "strings": table},
    )


def _state(request: Request) -> tuple[BoardCache, RateLimiter]:
    """The board of the lots the path shows (a county town's at ``/towns/{town}/``, else
    every lot) and the one rate limiter."""
    app = request.app
    central = get_central(request)
    key = central.town_id if central.places is not None else None
    boards: dict[str | None, BoardCache] | None = getattr(app.state, "public_boards", None)
    board = boards.get(key) if boards is not None else None
    if board is None:
        with _setup_lock:
            if getattr(app.state, "public_boards", None) is None:
                app.state.public_boards = {}
            board = app.state.public_boards.get(key)
            if board is None:
                settings = central.settings
                if getattr(app.state, "public_limiter", None) is None:
                    app.state.public_limiter = RateLimiter(
                        rate_per_s=settings.public_rate_per_s, burst=settings.public_burst
                    )
                town = getattr(app.state, "town_clock", None)
                clock = getattr(app.state, "public_clock", None) or (
                    town.now if town is not None else time.time
                )
                forecaster = getattr(app.state, "forecaster", None)
                board = BoardCache(
                    central.lots,
                    central.site,
                    render=render_page,
                    clock=clock,
                    forecasts=forecaster.current if forecaster is not None else None,
                    to_town=town.town if town is not None else None,
                )
                app.state.public_boards[key] = board
    return board, app.state.public_limiter


def _client(request: Request) -> str:
    return request.client.host if request.client is not None else "unknown"


def refused(request: Request) -> Response | None:
    """The 429 for a client over the public rate limit, else None (and one token taken)."""
    _, limiter = _state(request)
    wait = limiter.take(_client(request))
    return _too_many(wait) if wait else None


def public_clock(request: Request) -> float:
    """Now, by the clock the public pages go by (``app.state.public_clock``, else wall)."""
    clock = getattr(request.app.state, "public_clock", None)
    if clock is None:
        town = getattr(request.app.state, "town_clock", None)
        clock = town.now if town is not None else time.time
    return float(clock())


def _too_many(retry_after: float) -> Response:
    body = json.dumps({"detail": "too many requests from this address; slow down"})
    return Response(
        body,
        status_code=429,
        media_type="application/json",
        headers={"Retry-After": str(max(1, round(retry_after + 0.5))), "Cache-Control": "no-store"},
    )


def send_encoded(request: Request, encoded: Encoded, media_type: str, max_age: int) -> Response:
    """``encoded`` with its ETag (304 when the client has it), gzipped when accepted."""
    headers = {
        "ETag": encoded.etag,
        "Cache-Control": f"public, max-age={max_age}",
        "Vary": "Accept-Encoding, Accept-Language, Cookie",
    }
    inm = request.headers.get("if-none-match", "")
    if encoded.etag in (tag.strip().removeprefix("W/") for tag in inm.split(",")):
        return Response(status_code=304, headers=headers)
    accepts = request.headers.get("accept-encoding", "")
    if "gzip" in accepts:
        headers["Content-Encoding"] = "gzip"
        return Response(encoded.gzipped, media_type=media_type, headers=headers)
    return Response(encoded.body, media_type=media_type, headers=headers)


def _language(request: Request) -> str:
    asked = request.query_params.get("lang")
    if asked in LANGUAGES:
        return asked
    cookie = request.cookies.get("pg_lang")
    if cookie in LANGUAGES:
        return cookie
    accept = request.headers.get("accept-language", "").strip().lower()
    return "en" if accept.startswith("en") else "zh"


@router.get("/", include_in_schema=False)
def drivers_page(request: Request) -> Response:
    board, limiter = _state(request)
    wait = limiter.take(_client(request))
    if wait:
        return _too_many(wait)
    lang = _language(request)
    response = send_encoded(request, board.page(lang), "text/html; charset=utf-8", max_age(request))
    response.headers["Content-Security-Policy"] = PAGE_CSP
    if request.query_params.get("lang") in LANGUAGES:
        response.set_cookie("pg_lang", lang, max_age=365 * 86400, samesite="lax")
    return response


def max_age(request: Request) -> int:
    return int(request.app.state.central.settings.public_cache_s)


@router.get(
    "/api/v1/public/board",
    summary="The drivers' board: every lot's free count, state, trend, hours, links; stall zones",
    responses={304: {"description": "Not modified (ETag)"}, 429: {"description": "Too fast"}},
)
def public_board(request: Request) -> Response:
    board, limiter = _state(request)
    wait = limiter.take(_client(request))
    if wait:
        return _too_many(wait)
    return send_encoded(request, board.json(), "application/json", max_age(request))


@cache
def _asset(name: str) -> Encoded:
    return Encoded.of((STATIC / name).read_bytes())


ASSETS = {"drivers.js": "text/javascript", "drivers.css": "text/css"}


@router.get("/public/{name}", include_in_schema=False)
def asset(name: str, request: Request) -> Response:
    if name not in ASSETS:
        raise NotFound("file", name)
    return send_encoded(request, _asset(name), ASSETS[name], 300)


@router.get(
    "/api/v1/public/lots/{lot_id}/qr.svg",
    summary="A QR code (SVG) for the lot's sign post: it opens the drivers' page at the lot",
    responses={200: {"content": {"image/svg+xml": {}}}, 404: {"description": "No such lot"}},
)
def lot_qr(lot_id: str, request: Request) -> Response:
    central = get_central(request)
    if lot_id not in central.site.lots:
        raise NotFound("lot", lot_id)
    base = central.settings.public_url or str(request.base_url)
    town = f"/towns/{central.town_id}" if central.places is not None else ""
    url = base.rstrip("/") + f"{town}/#lot-{lot_id}"
    qr = segno.make(url, error="m", micro=False)
    svg = qr.svg_inline(scale=8, border=4, dark="#000", light="#fff", title=url)
    return Response(
        svg,
        media_type="image/svg+xml",
        headers={"Cache-Control": "public, max-age=3600", "Content-Disposition": "inline"},
    )


def mount(app: FastAPI) -> None:
    """Serve the drivers' page at ``/`` and its JSON, assets and QR codes.

    ``app.state.public_clock`` (epoch seconds), set before the first request, is the clock
    the page shows and opens zones by: the demo's town clock, a test's fixed time.
    """
    app.include_router(router)
