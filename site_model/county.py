"""The county file: one central deployment serving many towns, each with its own site file.

::

    [county]                    id, name
    [towns.<town_id>]           site = "towns/xigang.toml" (relative to the county file)

A town's id is its site file's ``[site] id`` (the boxes' topics carry it:
``parkgrid/v1/{site}/{box}/...``); the two must agree. Every id a site file defines (boxes,
lots, bays, zones, segments, cameras, grids, entries, signs) is unique across the county,
so the one database needs no town column on those rows: ``load_county`` refuses a county
whose towns share an id, naming the id and both towns.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import Field

from site_model.configfile import (
    ConfigFileError,
    ConfigProblem,
    load_file_data,
    validate_file_data,
)
from site_model.site import Site, SiteError, SiteIndex, load_site
from site_model.site_sections import Ident, SiteFileModel, SiteInfo


class CountyError(ConfigFileError):
    """A county file that cannot be used; ``problems`` lists every reason."""


class CountyInfo(SiteFileModel):
    id: Ident
    name: str = Field(min_length=1, max_length=200)


class TownEntry(SiteFileModel):
    site: str = Field(min_length=1, max_length=500, description="site file, relative path")


class CountyFile(SiteFileModel):
    county: CountyInfo
    towns: dict[Ident, TownEntry] = Field(min_length=1)


# What a site file defines, by section, that must not appear in two towns.
_SECTIONS = ("boxes", "lots", "zones", "segments", "cameras", "grids", "entries", "signs")


def defined_ids(site: Site) -> Iterator[tuple[str, str]]:
    """(kind, id) of everything the site file names that rows or topics carry."""
    for section in _SECTIONS:
        for key in getattr(site, section):
            yield section, key
    for _, bay_id in site.lot_bays():
        yield "bays", bay_id
    for _, bay_id in site.zone_bays():
        yield "bays", bay_id


def collisions(towns: Mapping[str, Site]) -> list[ConfigProblem]:
    """Every id two towns share, each named with both towns, whatever its kind in each, and
    a town's id among another town's ids. A town's view is the set of its ids, so north's
    zone ``market`` would otherwise show south's lot ``market``; one town may name a lot and
    a zone alike (its own view)."""
    owner: dict[str, tuple[str, str]] = {town_id: ("town", town_id) for town_id in towns}
    problems: list[ConfigProblem] = []
    for town_id, site in towns.items():
        for kind, key in defined_ids(site):
            first_kind, first = owner.setdefault(key, (kind, town_id))
            if first == town_id:
                continue
            if first_kind == kind:
                clash = f"{kind} id {key!r} is defined by both town {first!r} and town {town_id!r}"
            elif first_kind == "town":
                clash = f"{kind} id {key!r} of town {town_id!r} is the id of town {first!r}"
            else:
                clash = (
                    f"{kind} id {key!r} of town {town_id!r} is also {first_kind} id {key!r} "
                    f"of town {first!r}"
                )
            problems.append(
                ConfigProblem(
                    f"towns.{town_id}",
                    f"{clash}; ids must be unique across the county, whatever their kind",
                )
            )
    return problems


@dataclass(frozen=True, slots=True, kw_only=True)
class County:
    """The towns one central serves; one town for ``central serve --site``."""

    id: str
    name: str
    towns: dict[str, Site]
    is_county: bool = True  # False: a single town from --site (the paths stay unprefixed)

    @classmethod
    def single(cls, site: Site) -> County:
        return cls(id=site.id, name=site.site.name, towns={site.id: site}, is_county=False)

    def merged(self) -> Site:
        """One ``Site`` holding every town's things (ids are unique across the county): what
        the store is synced to and what the ingest looks boxes up in."""
        if not self.is_county:
            return next(iter(self.towns.values()))
        first = next(iter(self.towns.values()))
        union: dict[str, dict[str, Any]] = {section: {} for section in _SECTIONS}
        for site in self.towns.values():
            for section in _SECTIONS:
                union[section].update(getattr(site, section))
        values: dict[str, Any] = {
            "site": SiteInfo(id=self.id, name=self.name, timezone=first.site.timezone),
            "permits": [],
            "exempt": [],
            "rules": first.rules,
            "duty": first.duty,
            "availability": first.availability,
            **union,
        }
        return Site.model_construct(**values)

    def index(self) -> SiteIndex:
        """The ingest's look-ups over every town, knowing which town each box is in."""
        merged = SiteIndex.of(self.merged())
        if not self.is_county:
            return merged
        return merged.with_towns(
            {box_id: town_id for town_id, site in self.towns.items() for box_id in site.boxes}
        )

    def town_of_box(self, box_id: str) -> str | None:
        for town_id, site in self.towns.items():
            if box_id in site.boxes:
                return town_id
        return None


def load_county(path: Path | str) -> County:
    """Read a county file and every town's site file; CountyError with every problem."""
    path = Path(path)
    source = str(path)
    data = load_file_data(path, error=CountyError)
    parsed = validate_file_data(
        data, model=CountyFile, cross_check=lambda _: [], error=CountyError, source=source
    )
    towns: dict[str, Site] = {}
    problems: list[ConfigProblem] = []
    for town_id, entry in parsed.towns.items():
        site_path = path.parent / entry.site
        try:
            site = load_site(site_path)
        except SiteError as exc:
            problems.extend(
                ConfigProblem(f"towns.{town_id}.site", f"{site_path}: {p}") for p in exc.problems
            )
            continue
        if site.id != town_id:
            problems.append(
                ConfigProblem(
                    f"towns.{town_id}",
                    f"{site_path} is site {site.id!r}; a town's id is its site file's id",
                )
            )
            continue
        towns[town_id] = site
    if parsed.county.id in parsed.towns:
        problems.append(ConfigProblem("county.id", "the county's id is also a town's id"))
    problems.extend(collisions(towns))
    if problems:
        raise CountyError(source, problems)
    return County(id=parsed.county.id, name=parsed.county.name, towns=towns)


def load_deployment(*, site_file: Path | None, county_file: Path | None) -> County:
    """What one central serves: a county file's towns, or one site file's town."""
    if county_file is not None:
        return load_county(county_file)
    if site_file is None:
        raise CountyError("<settings>", [ConfigProblem("", "no site file and no county file")])
    return County.single(load_site(site_file))
