"""Audiences: serialisation, matching subscribers, kelurahan touched (bot/alerts/audience.py)."""

from __future__ import annotations

import json
import math

import pytest
from shapely.affinity import affine_transform
from shapely.geometry import Point

from bot.alerts.audience import (
    Circle,
    Everyone,
    Kecamatan,
    Kelurahan,
    Polygon,
    SubscriberArea,
    audience_from_dict,
    audience_to_dict,
    kecamatan_of,
    kelurahan_in,
    kelurahan_shapes,
    matches,
    select,
)
from bot.alerts.cap import cap_area_geometry, parse_cap

BENANGA = (-0.4547, 117.1563)  # Bendungan Benanga, Samarinda Utara
SEMPAJA_SELATAN = "64.72.05.1002"
SAMARINDA_UTARA = "64.72.05"


@pytest.fixture(scope="module")
def samarinda(shared_data):
    return json.loads((shared_data / "samarinda_kelurahan.geojson").read_text())


@pytest.fixture(scope="module")
def smd_shapes(samarinda):
    return kelurahan_shapes(samarinda)


@pytest.fixture(scope="module")
def palu_shapes(shared_data):
    return kelurahan_shapes(json.loads((shared_data / "palu_kelurahan.geojson").read_text()))


def km_to_polygon(geom, lat: float, lon: float) -> float:
    """Distance in km from a point to a lon/lat polygon in a local flat projection
    (independent of the geodesic code under test; good to ~0.5 % at this scale)."""
    kx, ky = 111.320 * math.cos(math.radians(lat)), 110.574
    flat = affine_transform(geom, [kx, 0, 0, ky, -kx * lon, -ky * lat])
    return float(flat.distance(Point(0, 0)))


# --- serialisation ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "audience",
    [
        Everyone(),
        Kecamatan(["64.72.05", "64.72.03"]),
        Kelurahan([SEMPAJA_SELATAN]),
        Circle(-0.4547, 117.1563, 2.5),
        Polygon.from_rings([[(-0.45, 117.15), (-0.45, 117.16), (-0.46, 117.16), (-0.45, 117.15)]]),
    ],
)
def test_round_trip_through_json(audience):
    data = json.loads(json.dumps(audience_to_dict(audience)))
    assert audience_from_dict(data) == audience


@pytest.mark.parametrize(
    "data",
    [
        {"type": "kota"},
        {},
        {"type": "kelurahan", "codes": []},
        {"type": "kelurahan", "codes": "64.72.05.1002"},
        {"type": "kecamatan"},
        {"type": "circle", "lat": -0.45, "lon": 117.15, "radius_km": 0},
        {"type": "circle", "lat": 95, "lon": 117.15, "radius_km": 1},
        {"type": "circle", "lat": -0.45, "lon": 117.15},
        {"type": "polygon", "geojson": {"type": "Point", "coordinates": [117, -0.4]}},
        {"type": "polygon", "geojson": "x"},
    ],
)
def test_bad_dicts_rejected(data):
    with pytest.raises(ValueError):
        audience_from_dict(data)


# --- matching subscribers -----------------------------------------------------------------


def test_matches_by_codes():
    sub = SubscriberArea(1, kelurahan_codes=frozenset({SEMPAJA_SELATAN}))
    assert matches(Everyone(), sub)
    assert matches(Kelurahan([SEMPAJA_SELATAN, "64.72.05.1003"]), sub)
    assert not matches(Kelurahan(["64.72.05.1003"]), sub)
    assert matches(Kecamatan([SAMARINDA_UTARA]), sub)  # via the kelurahan's kecamatan
    assert not matches(Kecamatan(["64.72.03"]), sub)
    kec_only = SubscriberArea(2, kecamatan_codes=frozenset({"64.72.03"}))
    assert matches(Kecamatan(["64.72.03"]), kec_only)
    assert not matches(Kelurahan([SEMPAJA_SELATAN]), kec_only)
    assert kecamatan_of("64.72.05.1002") == "64.72.05"


def test_circle_uses_geodesic_distance_of_home():
    circle = Circle(*BENANGA, radius_km=2.0)
    # 0.017° of latitude ≈ 1.88 km; 0.019° ≈ 2.10 km
    assert matches(circle, SubscriberArea(1, home=(BENANGA[0] + 0.017, BENANGA[1])))
    assert not matches(circle, SubscriberArea(2, home=(BENANGA[0] + 0.019, BENANGA[1])))
    assert not matches(circle, SubscriberArea(3))  # no home, no touched kelurahan


def test_polygon_home_point():
    poly = Polygon.from_rings(
        [[(-0.45, 117.15), (-0.45, 117.16), (-0.46, 117.16), (-0.46, 117.15)]]
    )
    assert matches(poly, SubscriberArea(1, home=(-0.455, 117.155)))  # (lat, lon)
    assert not matches(poly, SubscriberArea(2, home=(117.155, -0.455)))  # swapped by mistake
    assert not matches(poly, SubscriberArea(3, home=(-0.47, 117.155)))


def test_select_unique_stable_order(smd_shapes):
    circle = Circle(*BENANGA, radius_km=1.0)
    subs = [
        SubscriberArea(7, home=BENANGA),
        SubscriberArea(3, kelurahan_codes=frozenset({"64.72.01.1001"})),  # Palaran, far away
        SubscriberArea(5, kelurahan_codes=frozenset({"64.72.05.1013"})),  # Sempaja Timur, touched
        SubscriberArea(7, kelurahan_codes=frozenset({SEMPAJA_SELATAN})),  # second row, same person
        SubscriberArea(1, home=(-0.55, 117.2)),
    ]
    assert select(circle, subs, smd_shapes) == [7, 5]
    assert select(circle, subs) == [7]  # without kelurahan data only home points count
    assert select(Everyone(), subs) == [7, 3, 5, 1]
    assert select(Kecamatan([SAMARINDA_UTARA]), subs) == [5, 7]


# --- kelurahan touched, with the real Samarinda polygons ------------------------------------


def test_benanga_is_in_samarinda_utara(samarinda, smd_shapes):
    hits = [c for c, g in smd_shapes.items() if g.covers(Point(BENANGA[1], BENANGA[0]))]
    assert hits == [SEMPAJA_SELATAN]
    props = next(
        f["properties"] for f in samarinda["features"] if f["properties"]["kode_kel"] == hits[0]
    )
    assert props["nama_kec"] == "Samarinda Utara" and props["nama_kel"] == "Sempaja Selatan"


@pytest.mark.parametrize("radius_km", [1.0, 2.0])
def test_circle_around_benanga_selects_the_right_kelurahan(smd_shapes, radius_km):
    got = kelurahan_in(Circle(*BENANGA, radius_km=radius_km), smd_shapes)
    assert SEMPAJA_SELATAN in got
    # independent check: a kelurahan is touched iff its polygon is within the radius
    for code, geom in smd_shapes.items():
        d = km_to_polygon(geom, *BENANGA)
        if d < radius_km * 0.98:
            assert code in got, (code, d)
        elif d > radius_km * 1.02:
            assert code not in got, (code, d)


def test_circle_1km_exact_set(smd_shapes):
    got = kelurahan_in(Circle(*BENANGA, radius_km=1.0), smd_shapes)
    assert got == {"64.72.05.1002", "64.72.05.1012", "64.72.05.1013", "64.72.03.1008"}


def test_centroids_instead_of_polygons(samarinda, smd_shapes):
    centroids = {
        f["properties"]["kode_kel"]: (
            f["properties"]["centroid_lat_src"],
            f["properties"]["centroid_lng_src"],
        )
        for f in samarinda["features"]
    }
    circle = Circle(*BENANGA, radius_km=3.0)
    by_centroid = kelurahan_in(circle, centroids)
    by_polygon = kelurahan_in(circle, smd_shapes)
    assert SEMPAJA_SELATAN in by_centroid
    assert by_centroid < by_polygon  # centroid inside is stricter than touching
    for code in by_centroid:
        lat, lon = centroids[code]
        assert km_to_polygon(Point(lon, lat), *BENANGA) <= 3.0 * 1.01


def test_code_audiences_over_kelurahan(smd_shapes):
    assert kelurahan_in(Everyone(), smd_shapes) == set(smd_shapes) and len(smd_shapes) == 59
    utara = kelurahan_in(Kecamatan([SAMARINDA_UTARA]), smd_shapes)
    assert utara and all(c.startswith("64.72.05.") for c in utara)
    assert kelurahan_in(Kelurahan([SEMPAJA_SELATAN, "99.99.99.9999"]), smd_shapes) == {
        SEMPAJA_SELATAN
    }


def test_bmkg_cap_polygons_touch_nothing_here(shared_data, smd_shapes, palu_shapes):
    alert = parse_cap((shared_data / "bmkg" / "nowcast_cap_CBT20260216004.sample.xml").read_bytes())
    area = alert.infos[0].areas[0]
    audience = Polygon.from_rings(area.polygons)
    assert audience.geometry.equals(cap_area_geometry(area))
    assert kelurahan_in(audience, smd_shapes) == set()
    assert kelurahan_in(audience, palu_shapes) == set()
    # ...but a polygon drawn over Palu does touch Palu kelurahan
    palu = Polygon.from_rings(
        [[(-0.85, 119.85), (-0.85, 119.89), (-0.91, 119.89), (-0.91, 119.85)]]
    )
    assert len(kelurahan_in(palu, palu_shapes)) >= 3
    assert kelurahan_in(palu, smd_shapes) == set()
