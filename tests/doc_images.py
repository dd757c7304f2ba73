"""The README's screenshots, taken by the browser tests and kept in ``docs/images``.

A test run must not rewrite files the repository tracks (every run left a modified PNG in the
work tree), so the browser tests copy their screenshot there only when asked:
``PARKGRID_DOC_IMAGES=1 make test`` (or ``make doc-images``) refreshes the README's pictures;
otherwise the screenshot stays in the run's artifacts folder.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

DOC_IMAGES = Path(__file__).resolve().parents[1] / "docs" / "images"
ASKED = "PARKGRID_DOC_IMAGES"


def publish(screenshot: Path, name: str) -> Path | None:
    """Copy ``screenshot`` to ``docs/images/<name>`` when the run asked for it; where it went."""
    if os.environ.get(ASKED) != "1":
        return None
    DOC_IMAGES.mkdir(parents=True, exist_ok=True)
    target = DOC_IMAGES / name
    shutil.copyfile(screenshot, target)
    return target
