"""Where is it?  A point → kelurahan → kecamatan, and typed place names → areas.

`AreaIndex.locate` uses kelurahan polygons when given, else the nearest kelurahan centroid.
Polygons are indexed by a 200 m grid built once with a shapely 2 STRtree: most cells lie
wholly inside one kelurahan and answer at once; edge cells test their few candidates with
prepared geometries; off the edge the STRtree gives the nearest kelurahan within 250 m.
All distances are in metres in a local equirectangular projection centred on the city's
bounding box (error ≪ 0.1 % over a city).

`AreaIndex.match_place` fuzzy-matches what a citizen typed ("kel. besusu brt", "smd seberang",
"jembatan kuning") against kelurahan, kecamatan and landmark names (rapidfuzz).
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import shapely
from rapidfuzz import fuzz, process
from shapely import STRtree

from bot.city import CityProfile

Method = Literal["polygon", "near_polygon", "centroid", "landmark", "name"]
PlaceKind = Literal["kelurahan", "kecamatan", "landmark"]

EARTH_RADIUS_M = 6_371_008.8
NEAR_POLYGON_M = 250.0  # a point in a gap or just off the edge takes the nearest kelurahan


@dataclass(frozen=True)
class AreaHit:
    kode_kel: str
    nama_kel: str
    kode_kec: str
    nama_kec: str
    method: Method
    distance_m: float  # 0 inside a polygon; else to the polygon edge / centroid / landmark


@dataclass(frozen=True)
class PlaceMatch:
    kind: PlaceKind
    code: str  # kelurahan or kecamatan code; for a landmark, the code of its kelurahan
    name: str
    kode_kec: str
    point: tuple[float, float]  # (lat, lon)
    score: float  # 0–100
    kode_kel: str | None = None  # set for kelurahan and landmarks


@dataclass
class ImportResult:
    loaded: dict[str, str] = field(default_factory=dict)  # kode_kel -> GeoJSON geometry text
    refused: list[tuple[str, str]] = field(default_factory=list)  # (feature, reason)


class LocalProjection:
    """Equirectangular projection to metres around (lat0, lon0)."""

    def __init__(self, lat0: float, lon0: float) -> None:
        self.lat0, self.lon0 = lat0, lon0
        self.ky = EARTH_RADIUS_M * math.pi / 180.0
        self.kx = self.ky * math.cos(math.radians(lat0))

    def xy(self, lat: float, lon: float) -> tuple[float, float]:
        return (lon - self.lon0) * self.kx, (lat - self.lat0) * self.ky

    def coords(self, lonlat: np.ndarray) -> np.ndarray:
        """(N, 2) array of lon, lat → x, y metres (for shapely.transform)."""
        return np.column_stack(
            ((lonlat[:, 0] - self.lon0) * self.kx, (lonlat[:, 1] - self.lat0) * self.ky)
        )


# --- text normalisation ----------------------------------------------------------------------
_ABBREV = {
    "brt": "barat",
    "bar": "barat",
    "tmr": "timur",
    "tim": "timur",
    "sel": "selatan",
    "slt": "selatan",
    "sltn": "selatan",
    "utr": "utara",
    "ut": "utara",
    "tgh": "tengah",
    "dlm": "dalam",
    "lr": "luar",
    "hlr": "hilir",
    "hul": "hulu",
    "gn": "gunung",
    "gng": "gunung",
    "tng": "tengah",
    "smd": "samarinda",
    "jl": "jalan",
    "jln": "jalan",
    "ds": "desa",
    "kel": "kelurahan",
    "kec": "kecamatan",
    "kab": "kabupaten",
    "sei": "sungai",
    "sg": "sungai",
    "sgi": "sungai",
    "gg": "gang",
    "mesjid": "masjid",
    "msjd": "masjid",
    "jemb": "jembatan",
    "jbt": "jembatan",
}
_KEL_MARKERS = {"kelurahan", "desa"}
_KEC_MARKERS = {"kecamatan"}
# words around a place name that are not part of it
_STOPWORDS = {
    "di", "ke", "dari", "dekat", "depan", "belakang", "samping", "sebelah", "sekitar", "daerah",
    "wilayah", "kawasan", "area", "dan", "yang", "arah", "nya",
}  # fmt: skip


def normalise(text: str) -> list[str]:
    """Lower-case tokens with punctuation removed and abbreviations expanded."""
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    words = re.findall(r"[a-z0-9]+", text)
    return [_ABBREV.get(w, w) for w in words]


@dataclass(frozen=True)
class _Candidate:
    text: str  # normalised name
    n_tokens: int
    kind: PlaceKind
    code: str
    name: str
    kode_kec: str
    point: tuple[float, float]
    kode_kel: str | None


_KIND_RANK = {"kelurahan": 0, "landmark": 1, "kecamatan": 2}


class AreaIndex:
    """Locate points and match place names for one city.

    `polygons` maps kelurahan code → GeoJSON geometry text (see `parse_kelurahan_geojson`).
    Kelurahan without a polygon are still found through their centroid.
    """

    def __init__(
        self,
        profile: CityProfile,
        polygons: dict[str, str] | None = None,
        *,
        near_polygon_m: float = NEAR_POLYGON_M,
        match_threshold: float = 85.0,
        grid_m: float = 200.0,
    ) -> None:
        self.profile = profile
        self.near_polygon_m = near_polygon_m
        self.match_threshold = match_threshold
        min_lon, min_lat, max_lon, max_lat = profile.city.bbox
        self.proj = LocalProjection((min_lat + max_lat) / 2, (min_lon + max_lon) / 2)
        self._kec_name = {k.code: k.name for k in profile.kecamatan}

        polygons = polygons or {}
        unknown = sorted(set(polygons) - {k.code for k in profile.kelurahan})
        if unknown:
            raise ValueError(f"polygons for unknown kelurahan: {', '.join(unknown)}")
        # deterministic order: by code, so overlap slivers always resolve the same way
        self._poly_codes: list[str] = sorted(polygons)
        geoms = [
            shapely.transform(shapely.from_geojson(polygons[c]), self.proj.coords)
            for c in self._poly_codes
        ]
        for g in geoms:
            shapely.prepare(g)
        self._geoms = geoms
        self._tree: STRtree | None = STRtree(geoms) if geoms else None
        self._poly_hits = [self._hit(c, "polygon", 0.0) for c in self._poly_codes]
        self._build_grid(grid_m)

        # centroids of kelurahan without a polygon (all of them in centroid-only mode)
        self._cen_codes = [k.code for k in profile.kelurahan if k.code not in polygons]
        cen = [self.proj.xy(*profile.kelurahan_by_code(c).centroid) for c in self._cen_codes]  # type: ignore[union-attr]
        self._cen_xy = np.array(cen, dtype=float).reshape(-1, 2)
        self._max_centroid_m = profile.city.max_centroid_km * 1000.0

        self._candidates = self._build_candidates()
        self._cand_texts = [c.text for c in self._candidates]

    @property
    def has_polygons(self) -> bool:
        return self._tree is not None

    # --- point → area ----------------------------------------------------------------------
    def _build_grid(self, cell_m: float) -> None:
        """A uniform grid over the polygons: each cell holds the one polygon covering it
        entirely (answer without any geometry test) or the polygons touching it (test those).
        Cells beyond the polygons' extent by `near_polygon_m` are "outside"."""
        self._cell = cell_m
        self._grid: list[int | tuple[int, ...] | None] = []
        self._nx = self._ny = 0
        self._gx0 = self._gy0 = 0.0
        if self._tree is None:
            return
        x0, y0, x1, y1 = shapely.total_bounds(self._geoms)
        m = self.near_polygon_m
        self._gx0, self._gy0 = x0 - m, y0 - m
        self._nx = max(1, math.ceil((x1 - x0 + 2 * m) / cell_m))
        self._ny = max(1, math.ceil((y1 - y0 + 2 * m) / cell_m))
        gi, gj = np.meshgrid(np.arange(self._nx), np.arange(self._ny), indexing="ij")
        ii, jj = gi.ravel(), gj.ravel()
        boxes = shapely.box(
            self._gx0 + ii * cell_m,
            self._gy0 + jj * cell_m,
            self._gx0 + (ii + 1) * cell_m,
            self._gy0 + (jj + 1) * cell_m,
        )
        touching: dict[int, list[int]] = {}
        for b, g in zip(*self._tree.query(boxes, predicate="intersects"), strict=True):
            touching.setdefault(int(b), []).append(int(g))
        covering: dict[int, int] = {}
        for b, g in zip(*self._tree.query(boxes, predicate="within"), strict=True):
            covering[int(b)] = int(g)
        grid: list[int | tuple[int, ...] | None] = [None] * (self._nx * self._ny)
        for b, gs in touching.items():
            if len(gs) == 1 and covering.get(b) == gs[0]:
                grid[b] = gs[0]
            else:
                grid[b] = tuple(sorted(gs))  # by code: the first hit is the lowest code
        self._grid = grid

    def _hit(self, code: str, method: Method, distance_m: float) -> AreaHit:
        kel = self.profile.kelurahan_by_code(code)
        assert kel is not None
        return AreaHit(
            kel.code,
            kel.name,
            kel.kecamatan,
            self._kec_name.get(kel.kecamatan, ""),
            method,
            distance_m,
        )

    def locate(self, lat: float, lon: float) -> AreaHit | None:
        """The kelurahan containing (lat, lon), or the nearest one close by; None if outside."""
        if not (math.isfinite(lat) and math.isfinite(lon)):
            return None
        x, y = self.proj.xy(lat, lon)
        if self._tree is not None:
            i = int((x - self._gx0) // self._cell)
            j = int((y - self._gy0) // self._cell)
            if 0 <= i < self._nx and 0 <= j < self._ny:
                cell = self._grid[i * self._ny + j]
                if isinstance(cell, int):
                    return self._poly_hits[cell]
                if cell is not None:
                    for g in cell:
                        if shapely.intersects_xy(self._geoms[g], x, y):
                            return self._poly_hits[g]
                near, dist = self._tree.query_nearest(
                    shapely.Point(x, y), max_distance=self.near_polygon_m, return_distance=True
                )
                if len(near):
                    k = int(np.argmin(dist))  # ties: lowest index = lowest code
                    code = self._poly_codes[int(near[k])]
                    return self._hit(code, "near_polygon", float(dist[k]))
        if len(self._cen_codes) and self.profile.in_bbox(lat, lon):
            d2 = (self._cen_xy[:, 0] - x) ** 2 + (self._cen_xy[:, 1] - y) ** 2
            i = int(np.argmin(d2))
            d = math.sqrt(float(d2[i]))
            if d <= self._max_centroid_m:
                return self._hit(self._cen_codes[i], "centroid", d)
        return None

    def hit_for_place(self, match: PlaceMatch) -> AreaHit | None:
        """An AreaHit for a typed place (kelurahan or landmark); None for a whole kecamatan."""
        if match.kode_kel is None:
            return None
        method: Method = "landmark" if match.kind == "landmark" else "name"
        return self._hit(match.kode_kel, method, 0.0)

    # --- typed names → places ----------------------------------------------------------------
    def _build_candidates(self) -> list[_Candidate]:
        p = self.profile
        out: list[_Candidate] = []

        def add(text: str, kind: PlaceKind, code: str, name: str, kec: str,
                point: tuple[float, float], kel: str | None) -> None:  # fmt: skip
            tokens = [t for t in normalise(text) if t not in _KEL_MARKERS | _KEC_MARKERS]
            if tokens:
                out.append(
                    _Candidate(" ".join(tokens), len(tokens), kind, code, name, kec, point, kel)
                )

        for kel in p.kelurahan:
            add(kel.name, "kelurahan", kel.code, kel.name, kel.kecamatan, kel.centroid, kel.code)
        for kec in p.kecamatan:
            members = p.kelurahan_in(kec.code)
            if not members:
                continue
            lat = sum(k.centroid[0] for k in members) / len(members)
            lon = sum(k.centroid[1] for k in members) / len(members)
            add(kec.name, "kecamatan", kec.code, kec.name, kec.code, (lat, lon), None)
        for lm in p.landmarks:
            kel_ = p.kelurahan_by_code(lm.kelurahan)
            kec_code = kel_.kecamatan if kel_ else ""
            for text in [lm.name, *lm.aliases]:
                add(text, "landmark", lm.kelurahan, lm.name, kec_code, lm.point, lm.kelurahan)
        return out

    def match_place(self, text: str, limit: int = 3) -> list[PlaceMatch]:
        """Best matching places for free text, best first; [] when nothing matches well.

        The text is cut into word windows; each window is compared (rapidfuzz ratio) with
        each name of about the same number of words.  Short one-word names ("Baru", "Lere")
        must match exactly and either be the whole text or follow "kel."/"desa", so that
        ordinary words in a sentence do not turn into places.
        """
        tokens = normalise(text)
        kel_hint = any(t in _KEL_MARKERS for t in tokens)
        kec_hint = any(t in _KEC_MARKERS for t in tokens)
        # a marker word "protects" the word after it
        after_marker: set[int] = set()
        words: list[str] = []
        for t in tokens:
            if t in _KEL_MARKERS or t in _KEC_MARKERS:
                after_marker.add(len(words))
                continue
            if t in _STOPWORDS:
                continue
            words.append(t)
        if not words:
            return []

        best: dict[tuple[str, str], tuple[float, _Candidate]] = {}
        for start in range(len(words)):
            for size in range(1, min(4, len(words) - start) + 1):
                window = " ".join(words[start : start + size])
                whole = size == len(words)
                for _, score, ci in process.extract(
                    window,
                    self._cand_texts,
                    scorer=fuzz.ratio,
                    score_cutoff=self.match_threshold,
                    limit=None,
                ):
                    cand = self._candidates[ci]
                    if abs(cand.n_tokens - size) > 1:
                        continue
                    if len(cand.text) < 6:  # short names: exact, and alone or after a marker
                        if score < 100 or not (whole or start in after_marker):
                            continue
                    key = (cand.kind, cand.code if cand.kind != "landmark" else cand.name)
                    if key not in best or score > best[key][0]:
                        best[key] = (score, cand)

        def rank(item: tuple[float, _Candidate]) -> tuple[float, bool, int, int, str]:
            # best score; then the kind the text named ("kec."/"kel."); then the longer
            # (more specific) name; then kelurahan before landmark before kecamatan
            score, cand = item
            hinted = (kec_hint and cand.kind == "kecamatan") or (
                kel_hint and cand.kind == "kelurahan"
            )
            return (-score, not hinted, -cand.n_tokens, _KIND_RANK[cand.kind], cand.name)

        ranked = sorted(best.values(), key=rank)[:limit]
        return [
            PlaceMatch(c.kind, c.code, c.name, c.kode_kec, c.point, round(s, 1), c.kode_kel)
            for s, c in ranked
        ]


# --- importing boundaries ------------------------------------------------------------------
def parse_kelurahan_geojson(data: bytes | str, profile: CityProfile) -> ImportResult:
    """Check a kelurahan GeoJSON (FeatureCollection or Feature) against the profile.

    A feature's code is `properties.kode_kel` (or `kode`, or the feature id).  Refused: no
    code, unknown code, duplicate code, not a (Multi)Polygon, invalid or empty geometry,
    geometry outside the city's bounding box.  Raises ValueError when `data` is not GeoJSON.
    """
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"not JSON: {exc}") from None
    if isinstance(doc, dict) and doc.get("type") == "FeatureCollection":
        features: Sequence[Any] = doc.get("features") or []
    elif isinstance(doc, dict) and doc.get("type") == "Feature":
        features = [doc]
    else:
        raise ValueError("not a GeoJSON FeatureCollection or Feature")

    known = {k.code for k in profile.kelurahan}
    bbox = shapely.box(*profile.city.bbox)
    result = ImportResult()
    for i, feat in enumerate(features):
        label = f"feature #{i}"
        if not isinstance(feat, dict):
            result.refused.append((label, "not a GeoJSON feature"))
            continue
        props = feat.get("properties") or {}
        code = props.get("kode_kel") or props.get("kode") or feat.get("id")
        if not code:
            result.refused.append((label, "no kode_kel"))
            continue
        code = str(code).strip()
        if code not in known:
            result.refused.append((code, "unknown kelurahan code"))
            continue
        if code in result.loaded:
            result.refused.append((code, "duplicate kelurahan code"))
            continue
        geometry = feat.get("geometry")
        if not isinstance(geometry, dict) or geometry.get("type") not in (
            "Polygon",
            "MultiPolygon",
        ):
            kind = geometry.get("type") if isinstance(geometry, dict) else geometry
            result.refused.append((code, f"not a polygon ({kind})"))
            continue
        text = json.dumps(geometry, separators=(",", ":"))
        try:
            geom = shapely.from_geojson(text)
        except Exception as exc:  # shapely raises GEOSException for malformed coordinates
            result.refused.append((code, f"unreadable geometry: {exc}"))
            continue
        if geom.is_empty:
            result.refused.append((code, "empty geometry"))
        elif not geom.is_valid:
            result.refused.append((code, f"invalid geometry: {shapely.is_valid_reason(geom)}"))
        elif not geom.intersects(bbox):
            result.refused.append((code, "outside the city bbox (lon/lat swapped?)"))
        else:
            result.loaded[code] = text
    return result
