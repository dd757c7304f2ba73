"""The site file's cross-section checks: references, duplicates, lists that disagree.

Run by ``site_model.site.parse_site`` after the field-by-field validation; each problem is a
``ConfigProblem`` with its dotted path (``signs.P1-ENTRANCE.fallback.0``) and one sentence.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from site_model.configfile import ConfigProblem as SiteProblem
from site_model.site_kinds import SignKind

if TYPE_CHECKING:
    from site_model.site import Site


def cross_check(site: Site) -> list[SiteProblem]:
    """Problems that span sections: references, duplicates, disagreeing lists."""
    problems: list[SiteProblem] = []
    owner: dict[str, str] = {}
    for section, items in (("lots", site.lots), ("zones", site.zones)):
        for item_id, item in items.items():
            path = f"{section}.{item_id}"
            if item.box_id not in site.boxes:
                problems.append(
                    SiteProblem(f"{path}.box_id", f"box {item.box_id!r} is not in [boxes]")
                )
            for bay_id in item.bay_ids(item_id):
                if bay_id in owner:
                    problems.append(
                        SiteProblem(f"{path}.bays", f"bay {bay_id!r} is already in {owner[bay_id]}")
                    )
                else:
                    owner[bay_id] = path
    if set(site.lots) & set(site.zones):
        for both in sorted(set(site.lots) & set(site.zones)):
            problems.append(SiteProblem(f"zones.{both}", "a lot already has this id"))
    for box_id, box in site.boxes.items():
        for section, listed, actual in (
            ("lots", box.lots, site.lots_of_box(box_id)),
            ("zones", box.zones, site.zones_of_box(box_id)),
        ):
            if listed is not None and sorted(listed) != sorted(actual):
                problems.append(
                    SiteProblem(
                        f"boxes.{box_id}.{section}",
                        f"lists {sorted(listed)} but the {section} naming this box are "
                        f"{sorted(actual)}",
                    )
                )
    refs: dict[str, Any] = {
        "lots": site.lots,
        "zones": site.zones,
        "segments": site.segments,
        "entries": site.entries,
    }
    for camera_id, camera in site.cameras.items():
        path = f"cameras.{camera_id}"
        if camera.segment is not None and camera.segment not in site.segments:
            problems.append(SiteProblem(f"{path}.segment", f"no segment {camera.segment!r}"))
        if camera.entry is not None and camera.entry not in site.entries:
            problems.append(SiteProblem(f"{path}.entry", f"no entry {camera.entry!r}"))
        if camera.segment is None and camera.entry is None and not camera.lots and not camera.zones:
            problems.append(SiteProblem(path, "a camera needs a segment, an entry, lots or zones"))
        for section in ("lots", "zones"):
            for index, ref in enumerate(getattr(camera, section)):
                if ref not in refs[section]:
                    problems.append(
                        SiteProblem(f"{path}.{section}.{index}", f"no {section[:-1]} {ref!r}")
                    )
        if camera.spaces:
            watched = {b for lot, b in site.lot_bays() if lot in camera.lots}
            watched |= {b for zone, b in site.zone_bays() if zone in camera.zones}
            for number, bay_id in camera.spaces.items():
                if bay_id not in watched:
                    problems.append(
                        SiteProblem(
                            f"{path}.spaces.{number}",
                            f"bay {bay_id!r} is not in the camera's lots or zones",
                        )
                    )
    problems.extend(_sign_problems(site, refs))
    problems.extend(_rule_problems(site))
    for grid_id, grid in site.grids.items():
        for section in ("lots", "zones", "segments", "entries"):
            for index, ref in enumerate(getattr(grid, section)):
                if ref not in refs[section]:
                    problems.append(
                        SiteProblem(
                            f"grids.{grid_id}.{section}.{index}", f"no {_singular(section)} {ref!r}"
                        )
                    )
    return problems


def _singular(section: str) -> str:
    return "entry" if section == "entries" else section[:-1]


def _rule_problems(site: Site) -> list[SiteProblem]:
    problems: list[SiteProblem] = []
    ban = site.rules.truck_ban
    for index, ref in enumerate(ban.segments or []):
        if ref not in site.segments:
            problems.append(SiteProblem(f"rules.truck_ban.segments.{index}", f"no segment {ref!r}"))
    for index, ref in enumerate(ban.cameras):
        if ref not in site.cameras:
            problems.append(SiteProblem(f"rules.truck_ban.cameras.{index}", f"no camera {ref!r}"))
    for index, permit in enumerate(site.permits):
        if permit.valid_until <= permit.valid_from:
            problems.append(SiteProblem(f"permits.{index}.valid_until", "ends before it starts"))
    return problems


def _sign_problems(site: Site, refs: dict[str, Any]) -> list[SiteProblem]:
    problems: list[SiteProblem] = []
    for sign_id, sign in site.signs.items():
        path = f"signs.{sign_id}"
        if sign.box_id not in site.boxes:
            problems.append(SiteProblem(f"{path}.box_id", f"box {sign.box_id!r} is not in [boxes]"))
        targets = {"lots": sign.lot, "zones": sign.zone, "segments": sign.segment}
        targets["entries"] = sign.entry
        for section, ref in targets.items():
            if ref is not None and ref not in refs[section]:
                field = {"lots": "lot", "zones": "zone", "segments": "segment"}.get(
                    section, "entry"
                )
                problems.append(SiteProblem(f"{path}.{field}", f"no {_singular(section)} {ref!r}"))
        if sign.kind is SignKind.GUIDANCE and sign.lot is None:
            problems.append(SiteProblem(f"{path}.lot", "a guidance sign needs the lot it shows"))
        if sign.kind is SignKind.WARNING and sign.zone is None and sign.message is None:
            problems.append(SiteProblem(path, "a warning sign needs a zone or a fixed message"))
        for index, target in enumerate(sign.fallback):
            lot = target.lot
            if lot not in site.lots:
                problems.append(SiteProblem(f"{path}.fallback.{index}", f"no lot {lot!r}"))
            elif lot == sign.lot:
                problems.append(
                    SiteProblem(f"{path}.fallback.{index}", "a lot cannot be its own fallback")
                )
    return problems
