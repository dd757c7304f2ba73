"""The security headers of every answer central gives, in one middleware, and the API docs page.

Every answer: ``X-Content-Type-Options: nosniff``, ``X-Frame-Options: DENY``,
``Referrer-Policy: no-referrer``, ``Cross-Origin-Opener-Policy: same-origin`` and a
``Permissions-Policy`` that turns off camera, microphone and location (the drivers' page at
``/`` alone may ask for location, to sort the lots by distance). The dashboard's HTML
pages get ``PAGE_CSP`` (scripts, styles, images and connections from central only, no
inline script or style, no framing); every other answer, whatever its type, ``API_CSP``
(nothing may load or run, a sandboxed origin, no framing).
A route that sets its own ``Content-Security-Policy`` keeps it (the API docs page).

An answer to a request that carries a token (``Authorization`` or ``access_token`` in the
query, its name percent-decoded as the app decodes it) and every answer under
``/api/v1/auth/`` (a login answer is a token) is ``Cache-Control: no-store``: no browser
or proxy keeps a copy of what needed a login.
"""

from __future__ import annotations

import base64
import hashlib
import re
from urllib.parse import parse_qsl

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from central.town_paths import town_of_path

PAGE_CSP = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' blob:",  # evidence pictures are fetched with the token, shown as blobs
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
# Nothing may load or run, and the document gets an origin of its own (sandbox): a picture a
# camera uploaded as image/svg+xml, opened by a link, can neither run nor read storage.
API_CSP = "default-src 'none'; frame-ancestors 'none'; sandbox"
PAGE_PREFIX = "/dashboard"
COMMON = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}
NO_STORE_PREFIXES = ("/api/v1/auth/",)
LOCATION_PAGES = frozenset({"/"})  # the drivers' page sorts lots by the phone's location
TOKEN_PARAMETERS = frozenset({"access_token"})


def carries_token(scope: Scope) -> bool:
    """Whether a request presents a token: an Authorization header or a token in its query."""
    if any(name == b"authorization" for name, _ in scope.get("headers", ())):
        return True
    query = scope.get("query_string", b"").decode("latin-1")
    return any(name in TOKEN_PARAMETERS for name, _ in parse_qsl(query, keep_blank_values=True))


class SecurityHeaders:
    """Adds the headers above to every HTTP answer, errors and refusals included."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        town = town_of_path(path)
        if town is not None:  # a county town's page or API: the headers of the path it serves
            path = town[1]
        no_store = carries_token(scope) or path.startswith(NO_STORE_PREFIXES)
        dashboard = path.startswith(PAGE_PREFIX)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(raw=list(message.get("headers", ())))
                for name, value in COMMON.items():
                    headers[name] = value
                if path in LOCATION_PAGES:
                    headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=(self)"
                if "content-security-policy" not in headers:
                    html = headers.get("content-type", "").startswith("text/html")
                    page = html and dashboard
                    headers["Content-Security-Policy"] = PAGE_CSP if page else API_CSP
                if no_store:
                    headers["Cache-Control"] = "no-store"
                message["headers"] = headers.raw
            await send(message)

        await self.app(scope, receive, send_with_headers)


_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.S)


def _script_hashes(page: str) -> str:
    """CSP sources for the inline scripts of a page central writes itself (no outside input)."""
    hashes = (
        "'sha256-" + base64.b64encode(hashlib.sha256(body.encode()).digest()).decode() + "'"
        for body in _INLINE_SCRIPT.findall(page)
    )
    return " ".join(hashes)


def add_api_docs(app: FastAPI, *, path: str = "/docs") -> None:
    """Swagger UI at ``path`` with a CSP of its own: its CDN and the hash of its one script.

    FastAPI's page loads Swagger UI from a CDN and starts it with an inline script; the CSP
    names exactly that script by hash, so no other inline script can run on the page.
    """
    cdn = "https://cdn.jsdelivr.net"

    @app.get(path, include_in_schema=False)
    def api_docs() -> HTMLResponse:
        page = get_swagger_ui_html(openapi_url=app.openapi_url or "/openapi.json", title=app.title)
        text = bytes(page.body).decode()
        csp = "; ".join(
            (
                "default-src 'none'",
                f"script-src {cdn} {_script_hashes(text)}",
                f"style-src {cdn} 'unsafe-inline'",  # Swagger UI styles its own elements
                f"img-src 'self' data: {cdn} https://fastapi.tiangolo.com",
                "connect-src 'self'",
                "base-uri 'none'",
                "form-action 'self'",
                "frame-ancestors 'none'",
            )
        )
        return HTMLResponse(text, headers={"Content-Security-Policy": csp})
