"""City profiles: `cities/<key>.toml` → `CityProfile` (routing is data).

A profile holds the city's identity, SLA defaults, OPDs (government offices), report
categories (with the OPD that handles each), the official kecamatan/kelurahan list with
centroids, a few landmarks and routing overrides.  A new city is a new file, not new code.

`load_city` parses and validates (pydantic for shapes, `check_city` for cross references) and
raises `CityProfileError` with a message naming the file and the field.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator

CITIES_DIR = Path(__file__).resolve().parent.parent / "cities"
KEY_RE = re.compile(r"^[a-z][a-z0-9_]*$")
MAX_BUTTON_LABEL = 24  # emoji + space + label; WhatsApp reply buttons allow 20, list rows 24

LatLon = tuple[float, float]


class CityProfileError(ValueError):
    """A city profile is missing or invalid; the message names the file and the field."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class CityInfo(_Model):
    key: str = Field(pattern=KEY_RE.pattern)
    name: str = Field(min_length=1)
    code: str = Field(pattern=r"^\d{2}\.\d{2}$", description="Kemendagri kota code")
    prefix: str = Field(pattern=r"^[A-Z]{2,5}$", description="prefix of report codes")
    province: str = Field(min_length=1)
    province_code: str = Field(pattern=r"^\d{2}$")
    timezone: str
    bbox: tuple[float, float, float, float]  # min_lon, min_lat, max_lon, max_lat
    max_centroid_km: float = Field(default=3.0, gt=0, le=50)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {v!r}") from None
        return v

    @field_validator("bbox")
    @classmethod
    def _ordered_bbox(
        cls, v: tuple[float, float, float, float]
    ) -> tuple[float, float, float, float]:
        min_lon, min_lat, max_lon, max_lat = v
        if not (-180 <= min_lon < max_lon <= 180 and -90 <= min_lat < max_lat <= 90):
            raise ValueError("must be [min_lon, min_lat, max_lon, max_lat] with min < max")
        return v


class Sla(_Model):
    response_workdays: int = Field(ge=1, le=60)
    resolution_workdays: int = Field(ge=1, le=365)


class Opd(_Model):
    code: str = Field(pattern=r"^[A-Z][A-Z0-9_]*$")
    name: str = Field(min_length=1)
    short: str = Field(min_length=1)


class Category(_Model):
    key: str = Field(pattern=KEY_RE.pattern)
    emoji: str = ""
    label_id: str = ""
    label_en: str = ""
    opd: str
    keywords: list[str] = Field(default_factory=list)
    response_workdays: int | None = Field(default=None, ge=1, le=60)
    resolution_workdays: int | None = Field(default=None, ge=1, le=365)

    def label(self, locale: str = "id") -> str:
        return self.label_en if locale == "en" else self.label_id

    def button_label(self, locale: str = "id") -> str:
        """Emoji and label, e.g. "🕳️ Jalan rusak" (fits a WhatsApp list row)."""
        return f"{self.emoji} {self.label(locale)}".strip()


class Kecamatan(_Model):
    code: str = Field(pattern=r"^\d{2}\.\d{2}\.\d{2}$")
    name: str = Field(min_length=1)


class Kelurahan(_Model):
    code: str = Field(pattern=r"^\d{2}\.\d{2}\.\d{2}\.\d{4}$")
    name: str = Field(min_length=1)
    kecamatan: str
    centroid: LatLon  # (lat, lon)


class Landmark(_Model):
    name: str = Field(min_length=1)
    aliases: list[str] = Field(default_factory=list)
    point: LatLon  # (lat, lon)
    kelurahan: str


class Override(_Model):
    """Route `category` to `opd` for reports in the listed kecamatan."""

    category: str
    kecamatan: list[str] = Field(min_length=1)
    opd: str


class SensorMessage(_Model):
    """The warning text for one level, per language; placeholders: {name} {value} {unit}
    {level} {source}."""

    id: str = Field(min_length=1)
    en: str = Field(min_length=1)


class SensorConfig(_Model):
    """A water-level sensor: thresholds in raw units with their source and date."""

    id: str = Field(pattern=KEY_RE.pattern)
    name: str = Field(min_length=1)
    location: LatLon  # (lat, lon)
    unit: str = "m"
    thresholds: dict[str, float]  # waspada / siaga / awas lower bounds
    thresholds_source: str = Field(min_length=1)
    thresholds_date: str = Field(min_length=4)
    margin: float = Field(default=0.05, ge=0)
    hold_minutes: float = Field(default=15.0, ge=0)
    max_jump_per_min: float = Field(default=0.5, gt=0)
    min_value: float = 0.0
    max_value: float = 30.0
    silent_minutes: float = Field(default=30.0, gt=0)
    topic: str | None = None  # MQTT topic (default: lapor/sensors/<id>)
    token_sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    audience_kelurahan: list[str] = Field(min_length=1)
    messages: dict[str, SensorMessage]  # level -> text; "normal" is the all clear


class CityProfile(_Model):
    city: CityInfo
    sla: Sla
    opds: list[Opd] = Field(alias="opd", min_length=1)
    categories: list[Category] = Field(alias="category", min_length=1)
    kecamatan: list[Kecamatan] = Field(min_length=1)
    kelurahan: list[Kelurahan] = Field(min_length=1)
    landmarks: list[Landmark] = Field(alias="landmark", default_factory=list)
    overrides: list[Override] = Field(alias="override", default_factory=list)
    sensors: list[SensorConfig] = Field(alias="sensor", default_factory=list)
    quake_rules: list[dict[str, Any]] = Field(alias="quake_rule", default_factory=list)

    _opd: dict[str, Opd] = PrivateAttr(default_factory=dict)
    _cat: dict[str, Category] = PrivateAttr(default_factory=dict)
    _kec: dict[str, Kecamatan] = PrivateAttr(default_factory=dict)
    _kel: dict[str, Kelurahan] = PrivateAttr(default_factory=dict)

    def model_post_init(self, __context: Any) -> None:
        # first occurrence wins; duplicates are reported by check_city
        for opd in reversed(self.opds):
            self._opd[opd.code] = opd
        for cat in reversed(self.categories):
            self._cat[cat.key] = cat
        for kec in reversed(self.kecamatan):
            self._kec[kec.code] = kec
        for kel in reversed(self.kelurahan):
            self._kel[kel.code] = kel

    # --- lookups ---------------------------------------------------------------------------
    def opd(self, code: str) -> Opd | None:
        return self._opd.get(code)

    def category(self, key: str) -> Category | None:
        return self._cat.get(key)

    def kecamatan_by_code(self, code: str) -> Kecamatan | None:
        return self._kec.get(code)

    def kelurahan_by_code(self, code: str) -> Kelurahan | None:
        return self._kel.get(code)

    def kelurahan_in(self, kecamatan_code: str) -> list[Kelurahan]:
        return [k for k in self.kelurahan if k.kecamatan == kecamatan_code]

    # --- routing and SLA -------------------------------------------------------------------
    def route(self, category_key: str, kecamatan_code: str | None) -> str:
        """OPD code for a report: the first matching override, else the category's OPD.

        An unknown category (e.g. removed from the profile while old reports remain) goes to
        the OPD of "lainnya"; KeyError if the profile has no "lainnya" either.
        """
        if kecamatan_code is not None:
            for rule in self.overrides:
                if rule.category == category_key and kecamatan_code in rule.kecamatan:
                    return rule.opd
        cat = self.category(category_key) or self.category("lainnya")
        if cat is None:
            raise KeyError(f"unknown category {category_key!r} and no 'lainnya' category")
        return cat.opd

    def sla_for(self, category_key: str) -> tuple[int, int]:
        """(response, resolution) working days for a category (profile defaults if unset)."""
        cat = self.category(category_key)
        response = cat.response_workdays if cat and cat.response_workdays else None
        resolution = cat.resolution_workdays if cat and cat.resolution_workdays else None
        return (
            response or self.sla.response_workdays,
            resolution or self.sla.resolution_workdays,
        )

    def in_bbox(self, lat: float, lon: float) -> bool:
        min_lon, min_lat, max_lon, max_lat = self.city.bbox
        return min_lat <= lat <= max_lat and min_lon <= lon <= max_lon


# --- loading -------------------------------------------------------------------------------
def _loc(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def parse_city(text: str, source: str = "<string>") -> CityProfile:
    """Parse profile TOML text; CityProfileError names `source` and the field on failure."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CityProfileError(f"{source}: invalid TOML: {exc}") from None
    try:
        return CityProfile.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise CityProfileError(f"{source}: {_loc(err['loc'])}: {err['msg']}{more}") from None


def _known(folder: Path) -> str:
    names = sorted(p.stem for p in folder.glob("*.toml"))
    return f"there are: {', '.join(names)}" if names else f"there are none in {folder}"


def load_city(key: str, cities_dir: Path | None = None, *, check: bool = True) -> CityProfile:
    """Load `cities/<key>.toml`.  With `check` (default) cross-reference problems also fail."""
    folder = cities_dir or CITIES_DIR
    path = folder / f"{key}.toml"
    if not KEY_RE.match(key):
        raise CityProfileError(
            f"bad city key {key!r} (lower-case letters, digits, _); {_known(folder)}"
        )
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CityProfileError(f"{path}: city profile not found; {_known(folder)}") from None
    profile = parse_city(text, str(path))
    if profile.city.key != key:
        raise CityProfileError(f"{path}: city.key: is {profile.city.key!r}, expected {key!r}")
    if check:
        problems = check_city(profile)
        if problems:
            raise CityProfileError(f"{path}: " + "; ".join(problems))
    return profile


# --- cross-reference checks ----------------------------------------------------------------
def _dupes(values: list[str]) -> list[str]:
    seen: set[str] = set()
    dup: list[str] = []
    for v in values:
        if v in seen and v not in dup:
            dup.append(v)
        seen.add(v)
    return dup


def check_city(profile: CityProfile) -> list[str]:
    """Problems a valid-looking profile may still have, as "field: message" lines."""
    problems: list[str] = []
    add = problems.append
    code = profile.city.code

    for field, values in (
        ("opd.code", [o.code for o in profile.opds]),
        ("category.key", [c.key for c in profile.categories]),
        ("kecamatan.code", [k.code for k in profile.kecamatan]),
        ("kelurahan.code", [k.code for k in profile.kelurahan]),
        ("landmark.name", [lm.name for lm in profile.landmarks]),
    ):
        for d in _dupes(values):
            add(f"{field}: duplicate {d!r}")

    for i, cat in enumerate(profile.categories):
        where = f"category[{i}] ({cat.key})"
        if profile.opd(cat.opd) is None:
            add(f"{where}.opd: unknown OPD {cat.opd!r}")
        for field in ("emoji", "label_id", "label_en"):
            if not getattr(cat, field):
                add(f"{where}.{field}: empty")
        for locale in ("id", "en"):
            label = cat.button_label(locale)
            if len(label) > MAX_BUTTON_LABEL:
                add(f"{where}: label {label!r} is longer than {MAX_BUTTON_LABEL} characters")
        if any(not kw.strip() for kw in cat.keywords):
            add(f"{where}.keywords: empty keyword")
        resp = cat.response_workdays or profile.sla.response_workdays
        reso = cat.resolution_workdays or profile.sla.resolution_workdays
        if reso < resp:
            add(f"{where}: resolution_workdays ({reso}) < response_workdays ({resp})")
    if profile.sla.resolution_workdays < profile.sla.response_workdays:
        add("sla: resolution_workdays < response_workdays")

    for i, kec in enumerate(profile.kecamatan):
        if not kec.code.startswith(code + "."):
            add(f"kecamatan[{i}].code: {kec.code} is not under city code {code}")
        if not profile.kelurahan_in(kec.code):
            add(f"kecamatan[{i}] ({kec.name}): has no kelurahan")
    for i, kel in enumerate(profile.kelurahan):
        where = f"kelurahan[{i}] ({kel.code} {kel.name})"
        if not kel.code.startswith(code + "."):
            add(f"{where}.code: not under city code {code}")
        if profile.kecamatan_by_code(kel.kecamatan) is None:
            add(f"{where}.kecamatan: unknown kecamatan {kel.kecamatan!r}")
        elif not kel.code.startswith(kel.kecamatan + "."):
            add(f"{where}.code: not under its kecamatan {kel.kecamatan}")
        if not profile.in_bbox(*kel.centroid):
            add(f"{where}.centroid: {list(kel.centroid)} is outside city.bbox (lat, lon order?)")

    for i, lm in enumerate(profile.landmarks):
        where = f"landmark[{i}] ({lm.name})"
        if profile.kelurahan_by_code(lm.kelurahan) is None:
            add(f"{where}.kelurahan: unknown kelurahan {lm.kelurahan!r}")
        if not profile.in_bbox(*lm.point):
            add(f"{where}.point: {list(lm.point)} is outside city.bbox (lat, lon order?)")

    for i, rule in enumerate(profile.overrides):
        where = f"override[{i}]"
        if profile.category(rule.category) is None:
            add(f"{where}.category: unknown category {rule.category!r}")
        if profile.opd(rule.opd) is None:
            add(f"{where}.opd: unknown OPD {rule.opd!r}")
        for kec_code in rule.kecamatan:
            if profile.kecamatan_by_code(kec_code) is None:
                add(f"{where}.kecamatan: unknown kecamatan {kec_code!r}")
    for i, sensor in enumerate(profile.sensors):
        where = f"sensor[{i}] ({sensor.id})"
        for code in sensor.audience_kelurahan:
            if profile.kelurahan_by_code(code) is None:
                add(f"{where}.audience_kelurahan: unknown kelurahan {code!r}")
        if not set(sensor.thresholds) <= {"waspada", "siaga", "awas"}:
            add(f"{where}.thresholds: levels are waspada, siaga, awas")
        for level in (*sensor.thresholds, "normal"):
            if level not in sensor.messages:
                add(f"{where}.messages: no text for {level!r}")
    return problems
