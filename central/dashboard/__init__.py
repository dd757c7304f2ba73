"""The office dashboard: HTML pages and static assets served by central itself.

Pages are thin shells (``templates/``) filled in the browser from central's JSON API and
kept live from its SSE stream (``static/pg.js``). Every word is in ``i18n/<lang>.json``.
Other packages add pages with ``central.dashboard.pages.register_page`` (docs/dashboard.md).
"""

from central.dashboard.pages import Page, register_page
from central.dashboard.router import mount

__all__ = ["Page", "mount", "register_page"]
