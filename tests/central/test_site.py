"""The site file: loading, expansion of bays, and problems named by their dotted path."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from site_model.site import SiteError, SiteIndex, load_site, parse_site
from tests.central.helpers import SITE_FILE


def _data() -> dict[str, Any]:
    return tomllib.loads(SITE_FILE.read_text())


def test_site_small_loads_and_expands_bays() -> None:
    """The test site loads; counts, lists and patterns all become bay ids."""
    site = load_site(SITE_FILE)
    index = SiteIndex.of(site)
    assert site.id == "testtown"
    assert index.capacity == {"P1": 10, "P2": 4}
    assert index.bays["P1-010"].lot_id == "P1"
    assert index.bays["P2-C"].box_id == "box-p2"
    assert index.bays["S1-003"].zone_id == "S1"
    assert site.zones["S1"].zone_class.value == "regulated"


def _break(path: str, value: Any) -> dict[str, Any]:
    data = _data()
    *parents, last = path.split(".")
    node = data
    for part in parents:
        node = node[part]
    if value is None:
        del node[last]
    else:
        node[last] = value
    return data


@pytest.mark.parametrize(
    ("path", "value", "problem_path", "words"),
    [
        pytest.param(
            "lots.P1.box_id", "box-zz", "lots.P1.box_id", "not in [boxes]", id="unknown-box"
        ),
        pytest.param(
            "lots.P2.bays", ["P1-001"], "lots.P2.bays", "already in", id="bay-in-two-lots"
        ),
        pytest.param("site.timezone", "Mars/Olympus", "site.timezone", "time zone", id="bad-tz"),
        pytest.param("lots.P1.colour", "red", "lots.P1.colour", "unknown setting", id="typo"),
        pytest.param("lots.P1.name", None, "lots.P1.name", "missing", id="missing-name"),
        pytest.param("grids.G1.zones", ["S9"], "grids.G1.zones.0", "no zone", id="grid-ref"),
        pytest.param("cameras.C1.segment", "R9", "cameras.C1.segment", "no segment", id="cam-ref"),
        pytest.param("boxes.box-p1.lots", ["P2"], "boxes.box-p1.lots", "lists", id="box-lots"),
        pytest.param("zones.S1.class", "lenient", "zones.S1.class", "", id="zone-class"),
        pytest.param(
            "cameras.C3.timezone", "Mars/Olympus", "cameras.C3.timezone", "time zone", id="cam-tz"
        ),
        pytest.param(
            "cameras.C3.spaces", {"1": "S1-001"}, "cameras.C3.spaces.1", "not in", id="cam-space"
        ),
        pytest.param(
            "cameras.C3.max_clock_skew_minutes",
            0,
            "cameras.C3.max_clock_skew_minutes",
            "",
            id="cam-skew",
        ),
    ],
)
def test_site_problem_has_dotted_path(path: str, value: Any, problem_path: str, words: str) -> None:
    """Each mistake is reported at its dotted path with a plain reason."""
    with pytest.raises(SiteError) as caught:
        parse_site(_break(path, value))
    paths = {p.path: p.message for p in caught.value.problems}
    assert problem_path in paths, paths
    assert words in paths[problem_path]


def test_site_unreadable_file_is_a_site_error(tmp_path: Path) -> None:
    """A missing file or bad TOML is a SiteError, not a traceback."""
    with pytest.raises(SiteError, match="cannot read"):
        load_site(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[site\n")
    with pytest.raises(SiteError, match="not valid TOML"):
        load_site(bad)


XIGANG = Path(__file__).resolve().parents[2] / "sites" / "xigang.toml"


def test_site_fallbacks_carry_their_direction() -> None:
    """Finding 2: each fallback names the way to it; xigang's are not all "ahead"."""
    site = load_site(XIGANG)
    guidance = {sid: s for sid, s in site.signs.items() if s.kind.value == "guidance"}
    assert guidance
    arrows = {(sid, f.lot): f.arrow for sid, s in guidance.items() for f in s.fallback}
    assert arrows[("P1-ENTRANCE", "P4")] == "right"  # P4 lies south-east of P1
    assert len(set(arrows.values())) > 1


def test_site_fallback_without_a_direction_is_refused() -> None:
    """A bare lot id says nothing about where the lot is: the check names the entry."""
    data = tomllib.loads(XIGANG.read_text())
    data["signs"]["P1-ENTRANCE"]["fallback"] = ["P4"]
    with pytest.raises(SiteError) as info:
        parse_site(data)
    assert "signs.P1-ENTRANCE.fallback.0" in str(info.value)
    assert "arrow" in str(info.value)


def test_site_full_band_is_a_lot_setting() -> None:
    data = tomllib.loads(XIGANG.read_text())
    data["lots"]["P1"]["full_band"] = 3
    assert parse_site(data).lots["P1"].full_band == 3
    data["lots"]["P1"]["full_band"] = -1
    with pytest.raises(SiteError) as info:
        parse_site(data)
    assert "lots.P1.full_band" in str(info.value)
