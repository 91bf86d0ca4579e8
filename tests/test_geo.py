"""Point → kelurahan and typed place names (bot/geo.py), on the real shared boundaries."""

from __future__ import annotations

import csv
import io
import json
import math
import statistics
import time
from pathlib import Path

import numpy as np
import pytest
import shapely

from bot.city import CityProfile, load_city
from bot.geo import AreaIndex, LocalProjection, normalise, parse_kelurahan_geojson
from bot.tools import LOCATE_COLUMNS, locate_csv

CITIES = ("palu", "samarinda")


def _haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6_371_008.8 * math.asin(math.sqrt(a))


@pytest.fixture(scope="module")
def profiles() -> dict[str, CityProfile]:
    return {key: load_city(key) for key in CITIES}


@pytest.fixture(scope="module")
def polygons(shared_data: Path, profiles: dict[str, CityProfile]) -> dict[str, dict[str, str]]:
    out = {}
    for key in CITIES:
        result = parse_kelurahan_geojson(
            (shared_data / f"{key}_kelurahan.geojson").read_bytes(), profiles[key]
        )
        assert result.refused == []
        out[key] = result.loaded
    return out


@pytest.fixture(scope="module")
def indexes(profiles, polygons) -> dict[str, AreaIndex]:
    return {key: AreaIndex(profiles[key], polygons[key]) for key in CITIES}


def _shapes(polys: dict[str, str]) -> dict[str, shapely.Geometry]:
    return {code: shapely.from_geojson(text) for code, text in polys.items()}


# --- projection ----------------------------------------------------------------------------
def test_local_projection_distances_match_haversine() -> None:
    proj = LocalProjection(-0.9, 119.9)
    for (a, b), (c, d) in [
        ((-0.9, 119.9), (-0.88, 119.93)),
        ((-0.75, 119.8), (-0.95, 120.0)),
        ((-0.9, 119.9), (-0.9, 119.90225)),  # ≈ 250 m east
    ]:
        x1, y1 = proj.xy(a, b)
        x2, y2 = proj.xy(c, d)
        assert math.hypot(x2 - x1, y2 - y1) == pytest.approx(_haversine_m(a, b, c, d), rel=2e-3)


# --- with polygons -------------------------------------------------------------------------
@pytest.mark.parametrize("key", CITIES)
def test_representative_point_of_every_kelurahan_maps_to_it(key, indexes, polygons) -> None:
    index = indexes[key]
    for code, geom in _shapes(polygons[key]).items():
        p = geom.representative_point()
        hit = index.locate(p.y, p.x)
        assert hit is not None and hit.kode_kel == code, (code, hit)
        assert hit.method == "polygon" and hit.distance_m == 0
        kel = index.profile.kelurahan_by_code(code)
        assert kel and hit.kode_kec == kel.kecamatan and hit.nama_kel == kel.name
        assert hit.nama_kec == index.profile.kecamatan_by_code(kel.kecamatan).name  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("key", "lat", "lon"),
    [
        ("palu", -0.80, 119.83),  # Teluk Palu, open water
        ("palu", -0.70, 119.75),  # Selat Makassar side, outside the bay
        ("palu", -6.2, 106.8),  # Jakarta
        ("samarinda", -0.60, 117.33),  # Kutai Kartanegara, east of the city
        ("samarinda", -0.9, 119.87),  # Palu is not in Samarinda
        ("samarinda", 0.0, 0.0),
    ],
)
def test_points_far_outside_are_none(key, lat, lon, indexes, polygons) -> None:
    union = shapely.union_all(list(_shapes(polygons[key]).values()))
    assert union.distance(shapely.Point(lon, lat)) > 0.01  # really outside (> 1 km)
    assert indexes[key].locate(lat, lon) is None


@pytest.mark.parametrize("key", CITIES)
def test_points_just_outside_the_edge_take_the_nearest_kelurahan(key, indexes, polygons) -> None:
    """Points 100 m outside the city edge → nearest kelurahan; 400 m outside → None."""
    index = indexes[key]
    codes = sorted(polygons[key])
    metric = [
        shapely.transform(shapely.from_geojson(polygons[key][c]), index.proj.coords) for c in codes
    ]
    union = shapely.union_all(metric).buffer(1.0)  # close hairline gaps between neighbours
    inv_x, inv_y = index.proj.kx, index.proj.ky

    def latlon(pt: shapely.Point) -> tuple[float, float]:
        return index.proj.lat0 + pt.y / inv_y, index.proj.lon0 + pt.x / inv_x

    for dist, expect_hit in ((100.0, True), (400.0, False)):
        ring = union.buffer(dist).exterior
        for f in np.linspace(0, 1, 25, endpoint=False):
            pt = ring.interpolate(f, normalized=True)
            lat, lon = latlon(pt)
            hit = index.locate(lat, lon)
            if not expect_hit:
                assert hit is None, (lat, lon, hit)
                continue
            dists = [g.distance(pt) for g in metric]
            nearest = codes[int(np.argmin(dists))]
            assert hit is not None and hit.method == "near_polygon", (lat, lon)
            assert hit.kode_kel == nearest
            assert hit.distance_m == pytest.approx(min(dists), abs=1.0)
            assert 95 <= hit.distance_m <= 105


@pytest.mark.parametrize("key", CITIES)
def test_overlap_slivers_resolve_deterministically(key, indexes, polygons) -> None:
    shapes = _shapes(polygons[key])
    codes = sorted(shapes)
    found = 0
    for i, a in enumerate(codes):
        for b in codes[i + 1 :]:
            inter = shapes[a].intersection(shapes[b])
            if inter.area > 1e-9:
                p = inter.representative_point()
                inside = [c for c in codes if shapes[c].covers(p)]
                hits = {indexes[key].locate(p.y, p.x) for _ in range(3)}
                assert len(hits) == 1
                (hit,) = hits
                assert hit is not None and hit.kode_kel == min(inside)
                found += 1
    assert found > 0  # the real data has overlaps (see SOURCES.md)


@pytest.mark.parametrize("key", CITIES)
def test_landmarks_lie_in_their_kelurahan(key, indexes) -> None:
    index = indexes[key]
    for lm in index.profile.landmarks:
        hit = index.locate(*lm.point)
        assert hit is not None and hit.kode_kel == lm.kelurahan, lm.name


def test_locate_is_fast_on_real_polygons(indexes) -> None:
    """Generous bound for a shared test machine; bench/geo.py measures the real figure."""
    index = indexes["samarinda"]
    rng = np.random.default_rng(7)
    min_lon, min_lat, max_lon, max_lat = index.profile.city.bbox
    pts = list(
        zip(rng.uniform(min_lat, max_lat, 3000), rng.uniform(min_lon, max_lon, 3000), strict=True)
    )
    times = []
    for lat, lon in pts:
        t = time.perf_counter()
        index.locate(lat, lon)
        times.append(time.perf_counter() - t)
    assert statistics.median(times) < 200e-6


# --- without polygons ----------------------------------------------------------------------
@pytest.mark.parametrize("key", CITIES)
def test_centroid_mode(key, profiles) -> None:
    profile = profiles[key]
    index = AreaIndex(profile)
    assert not index.has_polygons
    for kel in profile.kelurahan:
        hit = index.locate(*kel.centroid)
        assert hit is not None and hit.kode_kel == kel.code and hit.method == "centroid"
        assert hit.distance_m == pytest.approx(0, abs=0.01)
    kel = profile.kelurahan[0]
    lat, lon = kel.centroid
    hit = index.locate(lat + 0.001, lon)  # 111 m north
    assert hit is not None and hit.distance_m == pytest.approx(111.2, abs=1.0)
    assert index.locate(-6.2, 106.8) is None
    # inside the bbox but further than max_centroid_km from every centroid
    min_lon, _, _, max_lat = profile.city.bbox
    assert index.locate(max_lat - 0.001, min_lon + 0.001) is None


def test_mixed_polygons_and_centroids(profiles, polygons) -> None:
    profile = profiles["palu"]
    missing = "72.71.01.1004"  # Besusu Barat without a polygon
    partial = {c: g for c, g in polygons["palu"].items() if c != missing}
    index = AreaIndex(profile, partial)
    kel = profile.kelurahan_by_code(missing)
    assert kel is not None
    hit = index.locate(*kel.centroid)
    assert hit is not None and hit.kode_kel == missing and hit.method == "centroid"
    with pytest.raises(ValueError, match="unknown kelurahan"):
        AreaIndex(profile, {"99.99.99.9999": partial["72.71.02.1009"]})


def test_bad_inputs_do_not_crash(indexes) -> None:
    index = indexes["palu"]
    assert index.locate(float("nan"), 119.87) is None
    assert index.locate(-0.9, float("inf")) is None


# --- importing boundaries ------------------------------------------------------------------
def test_parse_geojson_refuses_bad_features(profiles, polygons) -> None:
    profile = profiles["palu"]
    good = json.loads(polygons["palu"]["72.71.02.1009"])
    ring = [[119.8, -0.9], [119.81, -0.89], [119.81, -0.9], [119.8, -0.89], [119.8, -0.9]]
    bowtie = {"type": "Polygon", "coordinates": [ring]}
    swapped = {"type": "Polygon", "coordinates": [[[y, x] for x, y in good["coordinates"][0]]]}

    def feat(code: str | None, geometry: object) -> dict:
        return {"type": "Feature", "properties": {"kode_kel": code}, "geometry": geometry}

    doc = {
        "type": "FeatureCollection",
        "features": [
            feat("72.71.02.1009", good),
            feat("72.71.02.1009", good),
            feat("72.71.99.1001", good),
            feat(None, good),
            feat("72.71.01.1004", {"type": "Point", "coordinates": [119.86, -0.89]}),
            feat("72.71.01.1006", bowtie),
            feat("72.71.01.1007", swapped),
            feat("72.71.01.1009", None),
        ],
    }
    result = parse_kelurahan_geojson(json.dumps(doc), profile)
    assert list(result.loaded) == ["72.71.02.1009"]
    reasons = dict(result.refused)
    assert len(result.refused) == 7
    assert "duplicate" in result.refused[0][1] and result.refused[0][0] == "72.71.02.1009"
    assert reasons["72.71.99.1001"] == "unknown kelurahan code"
    assert reasons["feature #3"] == "no kode_kel"
    assert "not a polygon (Point)" in reasons["72.71.01.1004"]
    assert reasons["72.71.01.1006"].startswith("invalid geometry: Self-intersection")
    assert "outside the city bbox" in reasons["72.71.01.1007"]
    assert "not a polygon" in reasons["72.71.01.1009"]
    # the loaded geometry is usable
    index = AreaIndex(profile, result.loaded)
    assert index.locate(-0.8853, 119.8575) is not None
    with pytest.raises(ValueError, match="not JSON"):
        parse_kelurahan_geojson(b"\x00not json", profile)
    with pytest.raises(ValueError, match="FeatureCollection"):
        parse_kelurahan_geojson("[1, 2]", profile)


# --- typed place names ---------------------------------------------------------------------
def test_normalise_expands_abbreviations() -> None:
    assert normalise("Kel. Besusu Brt") == ["kelurahan", "besusu", "barat"]
    assert normalise("Jl.  Sei Pinang Dlm, SMD!") == [
        "jalan",
        "sungai",
        "pinang",
        "dalam",
        "samarinda",
    ]
    assert normalise("kec. Palu Tmr / Tgh / Sel / Utr") == [
        "kecamatan", "palu", "timur", "tengah", "selatan", "utara",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("key", "text", "kind", "name"),
    [
        ("palu", "kel. besusu brt", "kelurahan", "Besusu Barat"),
        ("palu", "Kelurahan Besusu Barat", "kelurahan", "Besusu Barat"),
        ("palu", "tatura utra", "kelurahan", "Tatura Utara"),  # typo
        ("palu", "lolu sltn", "kelurahan", "Lolu Selatan"),
        ("palu", "di kec palu tmr", "kecamatan", "Palu Timur"),
        ("palu", "dekat jembatan kuning", "landmark", "Jembatan Palu IV"),
        ("palu", "Pantai Talise dekat jembatan", "landmark", "Pantai Talise"),
        ("palu", "kampus untad", "landmark", "Universitas Tadulako"),
        ("palu", "baru", "kelurahan", "Baru"),
        ("palu", "kel baru", "kelurahan", "Baru"),
        ("samarinda", "smd seberang", "kecamatan", "Samarinda Seberang"),
        ("samarinda", "jl. sungai pinang dlm", "kelurahan", "Sungai Pinang Dalam"),
        ("samarinda", "kec sambutan", "kecamatan", "Sambutan"),
        ("samarinda", "sambutan", "kelurahan", "Sambutan"),
        ("samarinda", "islamic center", "landmark", "Masjid Islamic Center Samarinda"),
        ("samarinda", "Teluk Lerong Ulu", "kelurahan", "Teluk Lerong Ulu"),
    ],
)
def test_match_place_finds(key, text, kind, name, indexes) -> None:
    matches = indexes[key].match_place(text)
    assert matches, text
    best = matches[0]
    assert (best.kind, best.name) == (kind, name), matches
    assert best.score >= 85
    assert len(matches) <= 3


def test_match_place_points_and_codes(indexes) -> None:
    index = indexes["samarinda"]
    (kec, *_) = index.match_place("kec samarinda seberang")
    assert kec.kind == "kecamatan" and kec.code == "64.72.02" and kec.kode_kel is None
    members = index.profile.kelurahan_in("64.72.02")
    assert kec.point == pytest.approx(
        (
            sum(k.centroid[0] for k in members) / len(members),
            sum(k.centroid[1] for k in members) / len(members),
        )
    )
    assert index.hit_for_place(kec) is None
    (lm, *_) = index.match_place("jembatan mahakam")
    assert lm.kind == "landmark" and lm.kode_kel == "64.72.02.1001" and lm.kode_kec == "64.72.02"
    hit = index.hit_for_place(lm)
    assert hit is not None and hit.method == "landmark" and hit.nama_kel == "Sungai Keledang"
    (kel, *_) = index.match_place("kel pelabuhan")
    hit = index.hit_for_place(kel)
    assert hit is not None and hit.method == "name" and hit.kode_kel == kel.code == "64.72.09.1002"


NOT_PLACES = [
    "pizza", "hello world", "saya mau makan", "jalan rusak parah sekali", "lampu mati",
    "sampah menumpuk di pinggir jalan", "terima kasih", "ok", "ya", "tidak tahu", "baru saja",
    "rumah baru", "dekat pasar baru", "asdfgh qwerty", "palu", "samarinda", "selatan",
    "utara", "kota", "123456", "", "   ", "!!!", "banjir lagi", "the quick brown fox",
]  # fmt: skip


@pytest.mark.parametrize("key", CITIES)
def test_random_words_do_not_match(key, indexes) -> None:
    for text in NOT_PLACES:
        assert indexes[key].match_place(text) == [], text


# --- operator tool -------------------------------------------------------------------------
def test_locate_csv_adds_columns_and_survives_bad_rows(indexes) -> None:
    inp = io.StringIO(
        "id,lat,lon,note\n"
        "1,-0.8853,119.8575,di Lere\n"
        "2,-0.5035,117.1265,Samarinda is not Palu\n"
        "3,abc,119.86,bad lat\n"
        "4,,,\n"
        "5,-0.8853,999,bad lon\n"
        '6,"-0,8853","119,8575",comma decimals\n'
        "7,-0.8853\n"
    )
    out = io.StringIO()
    assert locate_csv(inp, out, indexes["palu"]) == 7
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert list(rows[0]) == ["id", "lat", "lon", "note", *LOCATE_COLUMNS]
    assert rows[0]["nama_kel"] == "Lere" and rows[0]["nama_kec"] == "Palu Barat"
    assert rows[0]["in_city"] == "true" and rows[0]["note"] == "di Lere"
    assert rows[5]["kode_kel"] == "72.71.02.1009"
    for row in rows[1:5] + rows[6:]:
        assert row["in_city"] == "false" and row["kode_kel"] == "" and row["nama_kec"] == ""
    with pytest.raises(ValueError, match="'lat' and 'lon'"):
        locate_csv(io.StringIO("x,y\n1,2\n"), io.StringIO(), indexes["palu"])


@pytest.mark.parametrize("key", CITIES)
def test_locate_agrees_with_brute_force(key, indexes, polygons) -> None:
    """Random points around the city: same answer as testing every polygon one by one."""
    index = indexes[key]
    codes = sorted(polygons[key])
    metric = [
        shapely.transform(shapely.from_geojson(polygons[key][c]), index.proj.coords) for c in codes
    ]
    x0, y0, x1, y1 = shapely.total_bounds(metric)
    rng = np.random.default_rng(11)
    xs, ys = rng.uniform(x0 - 400, x1 + 400, 1500), rng.uniform(y0 - 400, y1 + 400, 1500)
    for x, y in zip(xs, ys, strict=True):
        lat, lon = index.proj.lat0 + y / index.proj.ky, index.proj.lon0 + x / index.proj.kx
        hit = index.locate(lat, lon)
        pt = shapely.Point(x, y)
        inside = [c for c, g in zip(codes, metric, strict=True) if g.intersects(pt)]
        if inside:
            assert hit is not None and hit.method == "polygon" and hit.kode_kel == inside[0]
            continue
        dists = np.array([g.distance(pt) for g in metric])
        if dists.min() <= 250:
            assert hit is not None and hit.method == "near_polygon"
            assert hit.kode_kel == codes[int(np.argmin(dists))]
        else:
            assert hit is None
