"""Map coordinates for Chinese navigation apps, and the links that open them at a lot.

The site file holds WGS-84 (what GPS and ``geo:`` URIs use). Amap (高德) and most Chinese
maps use GCJ-02, a published obfuscation of WGS-84; Baidu uses BD-09, a further offset of
GCJ-02. The formulas are the ones every open implementation uses (eviltransform,
coordtransform); ``tests/central/test_public_geo.py`` checks them against those projects'
published reference points. Outside China GCJ-02 is WGS-84 unchanged.

Pure functions: no I/O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from urllib.parse import quote, urlencode

_A = 6378245.0  # Krasovsky 1940 semi-major axis, as GCJ-02 uses it
_EE = 0.00669342162296594323  # its eccentricity squared
_BD_PI = math.pi * 3000.0 / 180.0


@dataclass(frozen=True, slots=True)
class LatLon:
    lat: float
    lon: float


def outside_china(p: LatLon) -> bool:
    """The rough box GCJ-02 applies in (the same test the reference implementations use)."""
    return not (73.66 < p.lon < 135.05 and 3.86 < p.lat < 53.55)


def _d_lat(x: float, y: float) -> float:
    r = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * math.sqrt(abs(x))
    r += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    r += (20.0 * math.sin(y * math.pi) + 40.0 * math.sin(y / 3.0 * math.pi)) * 2.0 / 3.0
    r += (160.0 * math.sin(y / 12.0 * math.pi) + 320 * math.sin(y * math.pi / 30.0)) * 2.0 / 3.0
    return r


def _d_lon(x: float, y: float) -> float:
    r = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * math.sqrt(abs(x))
    r += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    r += (20.0 * math.sin(x * math.pi) + 40.0 * math.sin(x / 3.0 * math.pi)) * 2.0 / 3.0
    r += (150.0 * math.sin(x / 12.0 * math.pi) + 300.0 * math.sin(x / 30.0 * math.pi)) * 2.0 / 3.0
    return r


def wgs84_to_gcj02(p: LatLon) -> LatLon:
    if outside_china(p):
        return p
    x, y = p.lon - 105.0, p.lat - 35.0
    d_lat, d_lon = _d_lat(x, y), _d_lon(x, y)
    rad_lat = p.lat / 180.0 * math.pi
    magic = 1 - _EE * math.sin(rad_lat) ** 2
    sqrt_magic = math.sqrt(magic)
    d_lat = (d_lat * 180.0) / ((_A * (1 - _EE)) / (magic * sqrt_magic) * math.pi)
    d_lon = (d_lon * 180.0) / (_A / sqrt_magic * math.cos(rad_lat) * math.pi)
    return LatLon(p.lat + d_lat, p.lon + d_lon)


def gcj02_to_bd09(p: LatLon) -> LatLon:
    x, y = p.lon, p.lat
    z = math.sqrt(x * x + y * y) + 0.00002 * math.sin(y * _BD_PI)
    theta = math.atan2(y, x) + 0.000003 * math.cos(x * _BD_PI)
    return LatLon(z * math.sin(theta) + 0.006, z * math.cos(theta) + 0.0065)


def wgs84_to_bd09(p: LatLon) -> LatLon:
    return gcj02_to_bd09(wgs84_to_gcj02(p))


APP_NAME = "parkgrid"


@dataclass(frozen=True, slots=True)
class NavLinks:
    amap: str
    baidu: str
    geo: str


def nav_links(p: LatLon, name: str) -> NavLinks:
    """Links that open a navigation app at ``p`` (WGS-84) with the lot's ``name``.

    Web URIs, not app schemes: a chat app's built-in browser follows them and the map site
    hands over to the installed app. Amap's marker URI takes GCJ-02 (``coordinate=gaode``),
    Baidu's marker URI BD-09 (``coord_type=bd09ll``); ``geo:`` (RFC 5870) takes WGS-84.
    """
    gcj = wgs84_to_gcj02(p)
    bd = wgs84_to_bd09(p)
    amap = "https://uri.amap.com/marker?" + urlencode(
        {
            "position": f"{gcj.lon:.6f},{gcj.lat:.6f}",
            "name": name,
            "src": APP_NAME,
            "coordinate": "gaode",
            "callnative": "1",
        },
        quote_via=quote,
    )
    baidu = "https://api.map.baidu.com/marker?" + urlencode(
        {
            "location": f"{bd.lat:.6f},{bd.lon:.6f}",
            "title": name,
            "content": name,
            "output": "html",
            "coord_type": "bd09ll",
            "src": APP_NAME,
        },
        quote_via=quote,
    )
    geo = f"geo:{p.lat:.6f},{p.lon:.6f}?q={p.lat:.6f},{p.lon:.6f}({quote(name)})"
    return NavLinks(amap=amap, baidu=baidu, geo=geo)
