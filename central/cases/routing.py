"""Which grid answers for a place. A place is ``segment:R1``, ``lot:P1``, ``zone:S1``,
``entry:E1`` or ``bay:P1-001`` (a bay belongs to its lot or zone)."""

from __future__ import annotations

from site_model.site import Site, SiteIndex

_INDEXES: dict[int, tuple[Site, SiteIndex]] = {}


def _index(site: Site) -> SiteIndex:
    hit = _INDEXES.get(id(site))
    if hit is None or hit[0] is not site:
        if len(_INDEXES) > 8:
            _INDEXES.clear()
        hit = _INDEXES[id(site)] = (site, SiteIndex.of(site))
    return hit[1]


SECTIONS = {"segment": "segments", "lot": "lots", "zone": "zones", "entry": "entries"}


def normal_place(site: Site, place: str | None) -> str | None:
    """A bay's place is its lot or zone; others are as given."""
    if place is None or not place.startswith("bay:"):
        return place
    where = _index(site).bays.get(place[4:])
    if where is None:
        return place
    return f"lot:{where.lot_id}" if where.lot_id else f"zone:{where.zone_id}"


def grid_of(site: Site, place: str | None) -> str | None:
    """The first grid (in site-file order) whose area holds the place, or None."""
    place = normal_place(site, place)
    if not place or ":" not in place:
        return None
    section, ident = place.split(":", 1)
    attribute = SECTIONS.get(section)
    if attribute is None:
        return None
    for grid_id, grid in site.grids.items():
        if ident in getattr(grid, attribute, ()):
            return grid_id
    return None


def place_of_alert(
    site: Site,
    *,
    box_id: str,
    lot_id: str | None,
    zone_id: str | None,
    bay_id: str | None,
    sign_id: str | None,
) -> str | None:
    """Where an edge alert happened: its zone, lot, bay, sign, or the box's first lot/zone."""
    if zone_id:
        return f"zone:{zone_id}"
    if lot_id:
        return f"lot:{lot_id}"
    if bay_id:
        return normal_place(site, f"bay:{bay_id}")
    signs = getattr(site, "signs", {})
    sign = signs.get(sign_id) if sign_id else None
    if sign is not None:
        for section, ref in (
            ("lot", sign.lot),
            ("zone", sign.zone),
            ("segment", sign.segment),
            ("entry", sign.entry),
        ):
            if ref:
                return f"{section}:{ref}"
    lots, zones = site.lots_of_box(box_id), site.zones_of_box(box_id)
    if lots:
        return f"lot:{lots[0]}"
    if zones:
        return f"zone:{zones[0]}"
    return None
