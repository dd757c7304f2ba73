"""Two small towns of one county, for central's county tests (ids distinct across them)."""

from __future__ import annotations

from pathlib import Path

TOWN = """\
[site]
id = "{town}"
name = "{name}"
timezone = "Asia/Shanghai"

[boxes.{p}-box1]
name = "{name} car park box"

[lots.{P}P1]
name = "{name} market car park"
box_id = "{p}-box1"
bays = ["{P}P1-1", "{P}P1-2", "{P}P1-3", "{P}P1-4"]
location = {{ lat = {lat}, lon = 117.26 }}

[zones.{P}S1]
name = "{name} morning market stalls"
class = "regulated"
box_id = "{p}-box1"
bays = 2

[segments.{P}R1]
name = "{name} main road"
road = "{name} main road"

[cameras.{P}C1]
kind = "parkgrid"
lots = ["{P}P1"]

[cameras.{P}C2]
kind = "parkgrid"
segment = "{P}R1"

[grids.{P}G1]
name = "{name} grid"
kind = "road"
duty_role = "road chief"
lots = ["{P}P1"]
segments = ["{P}R1"]
"""

TOWNS = {"north": ("n", "N", "North town"), "south": ("s", "S", "South town")}


# The towns' own rules differ: north tows a bay after 1000 hours, south after the default 48.
NORTH_RULES = """
[rules.left_for_days]
dwell_hours = 1000.0
"""


def town_toml(town: str) -> str:
    p, big, name = TOWNS[town]
    lat = 34.8 if town == "north" else 34.7
    text = TOWN.format(town=town, name=name, p=p, P=big, lat=lat)
    return text + (NORTH_RULES if town == "north" else "")


def write_county(work: Path, *, towns: dict[str, str] | None = None) -> Path:
    """``work/county.toml`` naming ``towns/<town>.toml`` (the two towns unless given)."""
    towns = towns if towns is not None else {t: town_toml(t) for t in TOWNS}
    (work / "towns").mkdir(parents=True, exist_ok=True)
    lines = ['[county]\nid = "vale"\nname = "Vale county"\n']
    for town, text in towns.items():
        (work / "towns" / f"{town}.toml").write_text(text, encoding="utf-8")
        lines.append(f'[towns.{town}]\nsite = "towns/{town}.toml"\n')
    path = work / "county.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path
