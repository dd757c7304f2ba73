"""The kinds a site file names: zone classes, grid kinds, camera makes, sign kinds."""

from __future__ import annotations

from enum import StrEnum


class ZoneClass(StrEnum):
    PROHIBITED = "prohibited"
    CONTROLLED = "controlled"
    REGULATED = "regulated"


class GridKind(StrEnum):
    ROAD = "road"
    VILLAGE = "village"
    COMMUNITY = "community"


class CameraKind(StrEnum):
    HIKVISION = "hikvision"
    DAHUA = "dahua"
    PARKGRID = "parkgrid"


class SignKind(StrEnum):
    GUIDANCE = "guidance"
    WARNING = "warning"
