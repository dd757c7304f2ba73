"""WGS-84 -> GCJ-02 -> BD-09 against published reference points, and the navigation links."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from central.public.geo import LatLon, gcj02_to_bd09, nav_links, wgs84_to_bd09, wgs84_to_gcj02

# googollee/eviltransform's test table (python/test_eviltransform.py): wgs lat, lon -> gcj lat, lon
EVILTRANSFORM = [
    ((31.1774276, 121.5272106), (31.17530398364597, 121.531541859215)),  # Shanghai
    ((22.543847, 113.912316), (22.540796131694766, 113.9171764808363)),  # Shenzhen
    ((39.911954, 116.377817), (39.91334545536069, 116.38404722455657)),  # Beijing
]
# wandergis/coordtransform's README example (lon, lat order there): (116.404, 39.915)
COORDTRANSFORM_WGS_GCJ = ((39.915, 116.404), (39.91640428150164, 116.41024449916938))
COORDTRANSFORM_GCJ_BD = ((39.915, 116.404), (39.92133699351021, 116.41036949371029))


@pytest.mark.parametrize(("wgs", "gcj"), [*EVILTRANSFORM, COORDTRANSFORM_WGS_GCJ])
def test_wgs84_to_gcj02_matches_published_points(wgs, gcj) -> None:
    got = wgs84_to_gcj02(LatLon(*wgs))
    assert got.lat == pytest.approx(gcj[0], abs=1e-9)
    assert got.lon == pytest.approx(gcj[1], abs=1e-9)


def test_gcj02_to_bd09_matches_published_point() -> None:
    gcj, bd = COORDTRANSFORM_GCJ_BD
    got = gcj02_to_bd09(LatLon(*gcj))
    assert got.lat == pytest.approx(bd[0], abs=1e-9)
    assert got.lon == pytest.approx(bd[1], abs=1e-9)


def test_wgs84_to_bd09_is_gcj02_then_bd09() -> None:
    wgs = LatLon(*COORDTRANSFORM_WGS_GCJ[0])
    assert wgs84_to_bd09(wgs) == gcj02_to_bd09(wgs84_to_gcj02(wgs))


def test_outside_china_is_unchanged() -> None:
    paris = LatLon(48.8566, 2.3522)
    assert wgs84_to_gcj02(paris) == paris


def test_nav_links_carry_converted_coordinates_and_the_name() -> None:
    wgs = LatLon(34.9612, 117.0935)
    links = nav_links(wgs, "西岗农贸市场停车场 & co")
    gcj, bd = wgs84_to_gcj02(wgs), wgs84_to_bd09(wgs)
    amap = urlsplit(links.amap)
    assert (amap.scheme, amap.netloc, amap.path) == ("https", "uri.amap.com", "/marker")
    q = parse_qs(amap.query)
    assert q["position"] == [f"{gcj.lon:.6f},{gcj.lat:.6f}"]
    assert q["name"] == ["西岗农贸市场停车场 & co"]
    assert q["coordinate"] == ["gaode"]
    baidu = urlsplit(links.baidu)
    assert (baidu.netloc, baidu.path) == ("api.map.baidu.com", "/marker")
    q = parse_qs(baidu.query)
    assert q["location"] == [f"{bd.lat:.6f},{bd.lon:.6f}"]
    assert q["coord_type"] == ["bd09ll"]
    assert links.geo.startswith("geo:34.961200,117.093500?q=34.961200,117.093500(")
    # The GCJ-02 shift in this town is a few hundred metres: converting matters.
    assert abs(gcj.lat - wgs.lat) + abs(gcj.lon - wgs.lon) > 0.002
