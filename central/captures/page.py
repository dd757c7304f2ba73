"""The dashboard's Cameras page: captures held for their camera's clock, unmapped values.

The page is registered with the dashboard's page framework when capture intake is loaded;
its template and script live here, beside the API they read (``/api/v1/captures/held``,
``/api/v1/cameras/unmapped``, the confirm actions).
"""

from __future__ import annotations

from pathlib import Path

from central.dashboard.pages import Page, register_page

HERE = Path(__file__).resolve().parent / "dashboard"

CAMERAS_PAGE = register_page(
    Page(
        id="cameras",
        title="nav.cameras",
        template=HERE / "cameras.html",
        script=HERE / "cameras.js",
        order=72,
    )
)
