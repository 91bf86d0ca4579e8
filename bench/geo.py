"""Benchmark: point → kelurahan on the real boundaries (bot/geo.py).

Run: .venv/bin/python bench/geo.py [--per-kelurahan N]

For each city: median µs per `AreaIndex.locate` (grid + prepared polygons, STRtree for the
nearest) against a naive loop calling `contains` on every polygon, measured on the same
points in the same run; and the share of random points inside each kelurahan that are
assigned to it, with polygons and with centroids only (nearest centroid within
`max_centroid_km`).  Goal: median < 50 µs.
Reads ../shared/data (LAPOR_SHARED_DIR overrides), like tests/conftest.py.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import shapely  # noqa: E402

from bot.city import load_city  # noqa: E402
from bot.geo import AreaIndex, parse_kelurahan_geojson  # noqa: E402
from tests.conftest import shared_data_dir  # noqa: E402

GOAL_US = 50.0


def sample_inside(
    geom: shapely.Geometry, n: int, rng: np.random.Generator
) -> list[tuple[float, float]]:
    """n uniform random (lat, lon) points inside a lon/lat polygon (rejection sampling)."""
    minx, miny, maxx, maxy = geom.bounds
    shapely.prepare(geom)
    out: list[tuple[float, float]] = []
    while len(out) < n:
        xs = rng.uniform(minx, maxx, 4 * n)
        ys = rng.uniform(miny, maxy, 4 * n)
        keep = shapely.contains_xy(geom, xs, ys)
        out += [(float(y), float(x)) for x, y in zip(xs[keep], ys[keep], strict=True)]
    return out[:n]


def median_us(fn, points: list[tuple[float, float]]) -> float:
    times = []
    for lat, lon in points:
        t = time.perf_counter()
        fn(lat, lon)
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e6


def bench_city(key: str, per_kel: int, rng: np.random.Generator) -> dict[str, float | int | str]:
    profile = load_city(key)
    data = (shared_data_dir() / f"{key}_kelurahan.geojson").read_bytes()
    polys = parse_kelurahan_geojson(data, profile).loaded
    index = AreaIndex(profile, polys)
    centroid_index = AreaIndex(profile)
    shapes = {code: shapely.from_geojson(text) for code, text in polys.items()}

    # ground truth: random points inside each kelurahan (a point in an overlap sliver may
    # correctly go to either kelurahan)
    inside: list[tuple[float, float, set[str]]] = []
    for code, geom in shapes.items():
        for lat, lon in sample_inside(geom, per_kel, rng):
            inside.append((lat, lon, {code}))
    items = list(shapes.items())  # prepared by sample_inside: fine for the ground truth
    for lat, lon, codes in inside:
        pt = shapely.Point(lon, lat)
        codes.update(c for c, g in items if g.covers(pt))

    # baseline: plain (unprepared) polygons, a loop of `contains` over all of them
    plain = [(code, shapely.from_geojson(text)) for code, text in polys.items()]

    def naive(lat: float, lon: float) -> str | None:
        pt = shapely.Point(lon, lat)
        for code, geom in plain:
            if geom.contains(pt):
                return code
        return None

    pts = [(lat, lon) for lat, lon, _ in inside]
    min_lon, min_lat, max_lon, max_lat = profile.city.bbox
    bbox_pts = list(
        zip(rng.uniform(min_lat, max_lat, 3000), rng.uniform(min_lon, max_lon, 3000), strict=True)
    )
    index.locate(*pts[0])  # warm up
    fast = median_us(index.locate, pts)
    slow = median_us(naive, pts)
    fast_bbox = median_us(index.locate, bbox_pts)

    def share(idx: AreaIndex) -> tuple[float, float]:
        ok = none = 0
        for lat, lon, codes in inside:
            hit = idx.locate(lat, lon)
            ok += bool(hit and hit.kode_kel in codes)
            none += hit is None
        return 100.0 * ok / len(inside), 100.0 * none / len(inside)

    poly_ok, _ = share(index)
    cen_ok, cen_none = share(centroid_index)
    return {
        "city": key,
        "kel": len(shapes),
        "points": len(inside),
        "locate_us": fast,
        "locate_bbox_us": fast_bbox,
        "naive_us": slow,
        "speedup": slow / fast,
        "poly_ok": poly_ok,
        "cen_ok": cen_ok,
        "cen_none": cen_none,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description="point → kelurahan benchmark")
    parser.add_argument(
        "--per-kelurahan", type=int, default=100, help="random points per kelurahan"
    )
    args = parser.parse_args()
    rng = np.random.default_rng(2026)
    rows = [bench_city(key, args.per_kelurahan, rng) for key in ("palu", "samarinda")]

    print("locate(): median µs per call (points inside kelurahan; uniform in bbox)")
    head = (
        f"{'city':<10} {'kel':>4} {'points':>7} {'index µs':>9} {'bbox µs':>8} "
        f"{'naive µs':>9} {'speed-up':>9}  goal"
    )
    print(head)
    print("-" * len(head))
    for r in rows:
        ok = "ok" if float(r["locate_us"]) < GOAL_US else "MISSED"
        print(
            f"{r['city']:<10} {r['kel']:>4} {r['points']:>7} {r['locate_us']:>9.1f} "
            f"{r['locate_bbox_us']:>8.1f} {r['naive_us']:>9.1f} {r['speedup']:>8.1f}x  "
            f"< {GOAL_US:.0f} µs {ok}"
        )
    print()
    print("random points inside each kelurahan assigned to it (%)")
    head = f"{'city':<10} {'polygons':>9} {'centroids':>10} {'centroids: none':>16}"
    print(head)
    print("-" * len(head))
    for r in rows:
        print(f"{r['city']:<10} {r['poly_ok']:>9.1f} {r['cen_ok']:>10.1f} {r['cen_none']:>16.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
