"""Who is inside a warning's audience (pure functions, no storage).

An audience is one of `Everyone`, `Kecamatan(codes)`, `Kelurahan(codes)`,
`Circle(lat, lon, radius_km)` or `Polygon(geojson)`; each turns into a JSON dict and back
(`audience_to_dict` / `audience_from_dict`).  Codes are Kemendagri codes
(kecamatan ``64.72.05``, kelurahan ``64.72.05.1001``).

Coordinates are ``(lat, lon)`` in our API; GeoJSON and shapely use ``(lon, lat)``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

import shapely
from geopy.distance import geodesic
from shapely.geometry import Point, shape
from shapely.geometry import Polygon as ShapelyPolygon
from shapely.geometry.base import BaseGeometry

if TYPE_CHECKING:
    from bot.city import CityProfile

LatLon = tuple[float, float]
KelMap = dict[str, BaseGeometry | LatLon]
CIRCLE_SEGMENTS = 72


def geodesic_circle(lat: float, lon: float, radius_km: float) -> ShapelyPolygon:
    """A circle of `radius_km` around (lat, lon) as a lon/lat polygon (WGS84 geodesic)."""
    if radius_km <= 0:
        raise ValueError("radius must be positive")
    ring = []
    for i in range(CIRCLE_SEGMENTS):
        p = geodesic(kilometers=radius_km).destination(
            (lat, lon), bearing=360.0 * i / CIRCLE_SEGMENTS
        )
        ring.append((p.longitude, p.latitude))
    return ShapelyPolygon(ring)


def _codes(raw: Iterable[str]) -> frozenset[str]:
    codes = frozenset(str(c).strip() for c in raw)
    if not codes or "" in codes:
        raise ValueError("an audience needs at least one non-empty code")
    return codes


@dataclass(frozen=True)
class Everyone:
    """Every subscriber of the city."""


@dataclass(frozen=True)
class Kecamatan:
    codes: frozenset[str]

    def __init__(self, codes: Iterable[str]) -> None:
        object.__setattr__(self, "codes", _codes(codes))


@dataclass(frozen=True)
class Kelurahan:
    codes: frozenset[str]

    def __init__(self, codes: Iterable[str]) -> None:
        object.__setattr__(self, "codes", _codes(codes))


@dataclass(frozen=True)
class Circle:
    lat: float
    lon: float
    radius_km: float

    def __post_init__(self) -> None:
        if not (-90 <= self.lat <= 90 and -180 <= self.lon <= 180):
            raise ValueError("circle centre out of range")
        if not self.radius_km > 0:
            raise ValueError("radius must be positive")

    @cached_property
    def geometry(self) -> BaseGeometry:
        return geodesic_circle(self.lat, self.lon, self.radius_km)


@dataclass(frozen=True, eq=False)
class Polygon:
    """A GeoJSON Polygon or MultiPolygon (lon/lat order)."""

    geojson: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.geojson.get("type") not in ("Polygon", "MultiPolygon"):
            raise ValueError("polygon audience needs a GeoJSON Polygon or MultiPolygon")
        geom = shape(self.geojson)
        if geom.is_empty or not geom.is_valid:
            raise ValueError("polygon audience geometry is empty or invalid")

    @classmethod
    def from_rings(cls, rings: Sequence[Sequence[LatLon]]) -> Polygon:
        """One polygon per ring, rings given as (lat, lon) points (CAP order)."""
        polys = [[[[lon, lat] for lat, lon in ring]] for ring in rings]
        if len(polys) == 1:
            return cls({"type": "Polygon", "coordinates": polys[0]})
        return cls({"type": "MultiPolygon", "coordinates": polys})

    @cached_property
    def geometry(self) -> BaseGeometry:
        return shape(self.geojson)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Polygon) and self.geometry.equals(other.geometry)

    def __hash__(self) -> int:
        return hash(self.geometry.wkb)


Audience = Everyone | Kecamatan | Kelurahan | Circle | Polygon


def audience_to_dict(audience: Audience) -> dict[str, Any]:
    if isinstance(audience, Everyone):
        return {"type": "everyone"}
    if isinstance(audience, Kecamatan):
        return {"type": "kecamatan", "codes": sorted(audience.codes)}
    if isinstance(audience, Kelurahan):
        return {"type": "kelurahan", "codes": sorted(audience.codes)}
    if isinstance(audience, Circle):
        return {
            "type": "circle",
            "lat": audience.lat,
            "lon": audience.lon,
            "radius_km": audience.radius_km,
        }
    return {"type": "polygon", "geojson": audience.geojson}


def audience_from_dict(data: Mapping[str, Any]) -> Audience:
    """Inverse of `audience_to_dict`; ValueError on anything malformed."""
    kind = data.get("type")
    try:
        if kind == "everyone":
            return Everyone()
        if kind in ("kecamatan", "kelurahan"):
            codes = data["codes"]
            if isinstance(codes, str) or not isinstance(codes, list):
                raise ValueError("codes must be a list")
            return Kecamatan(codes) if kind == "kecamatan" else Kelurahan(codes)
        if kind == "circle":
            return Circle(float(data["lat"]), float(data["lon"]), float(data["radius_km"]))
        if kind == "polygon":
            geojson = data["geojson"]
            if not isinstance(geojson, dict):
                raise ValueError("geojson must be an object")
            return Polygon(geojson)
    except (KeyError, TypeError) as exc:
        raise ValueError(f"bad {kind} audience: {exc}") from None
    raise ValueError(f"unknown audience type {kind!r}")


@dataclass(frozen=True)
class SubscriberArea:
    """Where one person wants warnings for: subscribed kelurahan/kecamatan, home point."""

    person_id: int
    kelurahan_codes: frozenset[str] = frozenset()
    kecamatan_codes: frozenset[str] = frozenset()
    home: LatLon | None = None  # (lat, lon)


def kecamatan_of(kelurahan_code: str) -> str:
    """``64.72.05.1001`` → ``64.72.05``."""
    return kelurahan_code.rsplit(".", 1)[0]


def _point_inside(audience: Circle | Polygon, lat: float, lon: float) -> bool:
    if isinstance(audience, Circle):
        return bool(geodesic((audience.lat, audience.lon), (lat, lon)).km <= audience.radius_km)
    return bool(audience.geometry.covers(Point(lon, lat)))


def matches(
    audience: Audience, sub: SubscriberArea, touched_kelurahan: frozenset[str] | None = None
) -> bool:
    """Is `sub` in `audience`?

    Kelurahan/kecamatan audiences match on the subscriber's codes (a kelurahan subscription also
    counts for its kecamatan).  Circle/polygon audiences match when the home point is inside,
    or - if `touched_kelurahan` (from `kelurahan_in`) is given - when a subscribed kelurahan
    is touched by the area.
    """
    if isinstance(audience, Everyone):
        return True
    if isinstance(audience, Kelurahan):
        return bool(audience.codes & sub.kelurahan_codes)
    if isinstance(audience, Kecamatan):
        kecs = sub.kecamatan_codes | {kecamatan_of(c) for c in sub.kelurahan_codes}
        return bool(audience.codes & kecs)
    if sub.home is not None and _point_inside(audience, *sub.home):
        return True
    return bool(touched_kelurahan and touched_kelurahan & sub.kelurahan_codes)


def select(
    audience: Audience,
    subs: Iterable[SubscriberArea],
    kelurahan: Mapping[str, BaseGeometry | LatLon] | None = None,
) -> list[int]:
    """Person ids in `audience`, each once, in the order first seen.

    With `kelurahan` (code → polygon or centroid), circle/polygon audiences also reach people
    subscribed to a kelurahan the area touches.
    """
    touched = None
    if kelurahan is not None and isinstance(audience, Circle | Polygon):
        touched = frozenset(kelurahan_in(audience, kelurahan))
    seen: dict[int, None] = {}
    for sub in subs:
        if sub.person_id not in seen and matches(audience, sub, touched):
            seen[sub.person_id] = None
    return list(seen)


def kelurahan_in(audience: Audience, kelurahan: Mapping[str, BaseGeometry | LatLon]) -> set[str]:
    """Codes of the kelurahan the audience touches.

    `kelurahan` maps code → shapely polygon (lon/lat; "touches" = intersects) or → centroid
    ``(lat, lon)`` ("touches" = centroid inside).
    """
    if isinstance(audience, Everyone):
        return set(kelurahan)
    if isinstance(audience, Kelurahan):
        return {c for c in kelurahan if c in audience.codes}
    if isinstance(audience, Kecamatan):
        return {c for c in kelurahan if kecamatan_of(c) in audience.codes}
    area = audience.geometry
    hit: set[str] = set()
    for code, where in kelurahan.items():
        if isinstance(where, BaseGeometry):
            if area.intersects(where):
                hit.add(code)
        elif _point_inside(audience, where[0], where[1]):
            hit.add(code)
    return hit


def kelurahan_shapes(
    geojson: Mapping[str, Any], code_key: str = "kode_kel"
) -> dict[str, BaseGeometry]:
    """Code → shapely geometry from a kelurahan FeatureCollection (as in shared/data)."""
    out: dict[str, BaseGeometry] = {}
    for feature in geojson.get("features") or ():
        code = (feature.get("properties") or {}).get(code_key)
        if code and feature.get("geometry"):
            out[str(code)] = shape(feature["geometry"])
    return out


def kelurahan_map(city: CityProfile, polygons: Mapping[str, str] | None) -> KelMap:
    """Code → polygon (lon/lat) where imported, else → centroid (lat, lon)."""
    out: KelMap = {k.code: k.centroid for k in city.kelurahan}
    for code, text in (polygons or {}).items():
        if code in out:
            out[code] = shapely.from_geojson(text)
    return out
