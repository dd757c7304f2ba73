"""The site file: loading, expansion of bays, and problems named by their dotted path."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from central.site import SiteError, SiteIndex, load_site, parse_site
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
