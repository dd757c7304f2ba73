"""The drivers' page reads in sunlight: every text colour on its ground at WCAG AA or better.

The pairs are read from the stylesheet itself (selector -> colour and background), so a
change of colour there is checked here. Large bold text (the state badges, 20 px bold) needs
4.5:1 for AAA; all other text 7:1 (AAA) except where noted; nothing below AA (4.5:1).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

CSS = (
    Path(__file__).resolve().parents[2] / "central" / "public" / "static" / "drivers.css"
).read_text(encoding="utf-8")


def _rule(selector: str, prop: str) -> str:
    for selectors, body in re.findall(r"([^{}]+)\{([^}]*)\}", CSS):
        if selector in [s.strip() for s in selectors.split(",")]:
            found = re.search(rf"(?:^|;){prop}:(#[0-9a-fA-F]{{3,6}})", body)
            if found:
                return found.group(1)
    raise AssertionError(f"no {prop} for {selector!r} in drivers.css")


def _luminance(colour: str) -> float:
    h = colour.lstrip("#")
    h = "".join(c * 2 for c in h) if len(h) == 3 else h
    channels = [int(h[i : i + 2], 16) / 255 for i in (0, 2, 4)]
    lin = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


def contrast(a: str, b: str) -> float:
    hi, lo = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


PAIRS = [
    # (what, text colour, ground colour, least ratio)
    ("body text", ("body", "color"), ("body", "background"), 7.0),
    ("header", (".top", "color"), (".top", "background"), 7.0),
    ("state: spaces", (".state", "color"), (".s-available .state", "background"), 4.5),
    ("state: almost full", (".state", "color"), (".s-tight .state", "background"), 4.5),
    ("state: full", (".state", "color"), (".s-full .state", "background"), 4.5),
    ("state: closed, no data", (".state", "color"), (".state", "background"), 4.5),
    ("navigation buttons", (".go a", "color"), (".go a", "background"), 7.0),
    ("nearest-first button", (".near", "color"), (".near", "background"), 7.0),
    ("lot details", (".meta", "color"), (".lot", "background"), 7.0),
]


@pytest.mark.parametrize(("what", "text", "ground", "least"), PAIRS, ids=[p[0] for p in PAIRS])
def test_contrast(what: str, text: tuple[str, str], ground: tuple[str, str], least: float) -> None:
    ratio = contrast(_rule(*text), _rule(*ground))
    assert ratio >= least, f"{what}: {ratio:.2f}:1 < {least}:1"


def test_the_check_can_fail() -> None:
    assert contrast("#777", "#888") < 4.5 and contrast("#000", "#fff") == pytest.approx(21.0)
