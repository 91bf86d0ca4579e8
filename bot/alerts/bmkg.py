"""BMKG open data: earthquakes (autogempa / gempaterkini / gempadirasakan JSON) and weather
nowcasts (RSS index + CAP 1.2 per alert, see `bot.alerts.cap.parse_cap`).

BMKG's terms require naming "BMKG" as the source wherever its data is shown; every parsed
object carries ``source = "BMKG"`` so the message builder can cite it.

Everything here is pure: the caller fetches, this module parses, decides relevance and
dedupes.  Malformed input raises `BmkgFormatError`; `BmkgPoller.feed` catches it and counts
the failure, so a bad payload never stops the polling loop.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import re
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from typing import Any

from geopy.distance import geodesic

from bot.alerts.cap import XmlRejected, safe_xml

log = logging.getLogger(__name__)

SOURCE = "BMKG"
SHAKEMAP_BASE = "https://data.bmkg.go.id/DataMKG/TEWS/"
_MONTHS = {
    "jan": 1, "feb": 2, "peb": 2, "mar": 3, "apr": 4, "mei": 5, "may": 5, "jun": 6, "jul": 7,
    "agu": 8, "agt": 8, "ags": 8, "aug": 8, "sep": 9, "okt": 10, "oct": 10, "nov": 11,
    "des": 12, "dec": 12,
}  # fmt: skip
_ZONES = {"WIB": 7, "WITA": 8, "WIT": 9, "UTC": 0, "GMT": 0}
_NUM = r"[-+]?\d+(?:[.,]\d+)?"


class BmkgFormatError(ValueError):
    """The payload is not what BMKG publishes (or is broken); the message says why."""


@dataclass(frozen=True)
class Quake:
    event_id: str  # stable dedupe key (autogempa has no id): time + coordinates + magnitude
    time: datetime  # aware, UTC
    lat: float
    lon: float
    magnitude: float
    depth_km: float | None
    region: str  # "Wilayah"
    potensi: str | None  # tsunami line, e.g. "Tidak berpotensi tsunami"
    dirasakan: str | None  # felt reports (MMI), e.g. "III Palu, II Donggala"
    shakemap_url: str | None
    source: str = SOURCE

    @property
    def tsunami_potential(self) -> bool:
        """True only when BMKG says the quake *may* cause a tsunami."""
        text = (self.potensi or "").lower()
        return "berpotensi tsunami" in text and "tidak berpotensi" not in text


# --- field parsing ----------------------------------------------------------------------


def _num(raw: Any, what: str) -> float:
    if isinstance(raw, bool):
        raise BmkgFormatError(f"{what}: not a number: {raw!r}")
    if isinstance(raw, int | float):
        value = float(raw)
    else:
        m = re.search(_NUM, str(raw or ""))
        if not m:
            raise BmkgFormatError(f"{what}: not a number: {raw!r}")
        value = float(m.group(0).replace(",", "."))
    if not math.isfinite(value):
        raise BmkgFormatError(f"{what}: not a finite number: {raw!r}")
    return value


def _hemisphere(raw: Any, positive: tuple[str, ...], negative: tuple[str, ...], what: str) -> float:
    """``"0.59 LS"`` → -0.59; ``"119.84 BT"`` → 119.84 (also N/S/E/W, ``°``, ``-`` signs)."""
    text = str(raw or "").strip().upper().replace("°", " ")
    m = re.fullmatch(rf"({_NUM})\s*([A-Z]*)\.?", text)
    if not m:
        raise BmkgFormatError(f"{what}: cannot read {raw!r}")
    value = float(m.group(1).replace(",", "."))
    suffix = m.group(2)
    if suffix in negative:
        value = -abs(value)
    elif suffix and suffix not in positive:
        raise BmkgFormatError(f"{what}: unknown hemisphere {suffix!r}")
    return value


def _coords(g: Mapping[str, Any]) -> tuple[float, float]:
    raw = g.get("Coordinates")
    if raw:
        parts = [p for p in re.split(r"[,\s]+", str(raw).strip()) if p]
        if len(parts) == 2:
            lat, lon = _num(parts[0], "Coordinates"), _num(parts[1], "Coordinates")
        else:
            raise BmkgFormatError(f"Coordinates: cannot read {raw!r}")
    elif g.get("Lintang") is not None and g.get("Bujur") is not None:
        lat = _hemisphere(g["Lintang"], ("LU", "N", "U"), ("LS", "S"), "Lintang")
        lon = _hemisphere(g["Bujur"], ("BT", "E", "T"), ("BB", "W", "B"), "Bujur")
    else:
        raise BmkgFormatError("no Coordinates and no Lintang/Bujur")
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise BmkgFormatError(f"coordinates out of range: {lat}, {lon}")
    return lat, lon


def _time(g: Mapping[str, Any]) -> datetime:
    raw = g.get("DateTime")
    if raw:
        text = str(raw).strip().replace(" ", "T", 1)
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            ts = datetime.fromisoformat(text)
        except ValueError:
            ts = None
        if ts is not None:
            # BMKG's DateTime is UTC; older payloads omit the offset
            return (ts if ts.tzinfo else ts.replace(tzinfo=UTC)).astimezone(UTC)
    return _time_from_local(g.get("Tanggal"), g.get("Jam"))


def _time_from_local(tanggal: Any, jam: Any) -> datetime:
    """``"05 Okt 2021"`` + ``"18:00:27 WIB"`` → aware UTC datetime."""
    dm = re.fullmatch(r"(\d{1,2})[-\s]+([A-Za-z]+)[-\s]+(\d{4})", str(tanggal or "").strip())
    tm = re.fullmatch(r"(\d{1,2})[:.](\d{2})(?:[:.](\d{2}))?\s*([A-Za-z]*)", str(jam or "").strip())
    if not dm or not tm:
        raise BmkgFormatError(f"no usable time: DateTime missing, Tanggal={tanggal!r} Jam={jam!r}")
    month = _MONTHS.get(dm.group(2)[:3].lower())
    zone = (tm.group(4) or "WIB").upper()
    if month is None or zone not in _ZONES:
        raise BmkgFormatError(f"cannot read Tanggal={tanggal!r} Jam={jam!r}")
    try:
        local = datetime(
            int(dm.group(3)), month, int(dm.group(1)),
            int(tm.group(1)), int(tm.group(2)), int(tm.group(3) or 0),
            tzinfo=timezone(timedelta(hours=_ZONES[zone])),
        )  # fmt: skip
    except ValueError as exc:
        raise BmkgFormatError(f"bad date: {exc}") from None
    return local.astimezone(UTC)


def _text(g: Mapping[str, Any], *keys: str) -> str | None:
    for key in keys:
        value = g.get(key)
        if value is not None and str(value).strip() not in ("", "-"):
            return " ".join(str(value).split())
    return None


def make_event_id(ts: datetime, lat: float, lon: float, magnitude: float) -> str:
    return f"{ts.astimezone(UTC):%Y%m%dT%H%M%SZ}_{lat:.2f}_{lon:.2f}_M{magnitude:.1f}"


def parse_quake(g: Any, shakemap_base: str = SHAKEMAP_BASE) -> Quake:
    """One entry of ``Infogempa.gempa``."""
    if not isinstance(g, Mapping):
        raise BmkgFormatError(f"quake entry is {type(g).__name__}, not an object")
    ts = _time(g)
    lat, lon = _coords(g)
    magnitude = _num(g.get("Magnitude", g.get("magnitude")), "Magnitude")
    depth_raw = g.get("Kedalaman")
    depth = _num(depth_raw, "Kedalaman") if depth_raw not in (None, "", "-") else None
    shakemap = _text(g, "Shakemap")
    if shakemap and not shakemap.startswith(("http://", "https://")):
        shakemap = shakemap_base + shakemap
    return Quake(
        event_id=make_event_id(ts, lat, lon, magnitude),
        time=ts,
        lat=lat,
        lon=lon,
        magnitude=magnitude,
        depth_km=depth,
        region=_text(g, "Wilayah") or "",
        potensi=_text(g, "Potensi"),
        dirasakan=_text(g, "Dirasakan"),
        shakemap_url=shakemap,
    )


def _decode(data: bytes | str | Mapping[str, Any]) -> Any:
    if isinstance(data, bytes | str):
        try:
            return json.loads(data)
        except (ValueError, UnicodeDecodeError) as exc:
            raise BmkgFormatError(f"not JSON: {exc}") from None
    return data


def _gempa(data: bytes | str | Mapping[str, Any]) -> Any:
    doc = _decode(data)
    info = doc.get("Infogempa") if isinstance(doc, Mapping) else None
    if not isinstance(info, Mapping) or "gempa" not in info:
        raise BmkgFormatError("expected {'Infogempa': {'gempa': ...}}")
    return info["gempa"]


def parse_autogempa(
    data: bytes | str | Mapping[str, Any], shakemap_base: str = SHAKEMAP_BASE
) -> Quake:
    """``autogempa.json``: the latest quake (a single object)."""
    gempa = _gempa(data)
    if isinstance(gempa, list):
        if len(gempa) != 1:
            raise BmkgFormatError("autogempa: expected one quake")
        gempa = gempa[0]
    return parse_quake(gempa, shakemap_base)


def parse_gempa_list(
    data: bytes | str | Mapping[str, Any], shakemap_base: str = SHAKEMAP_BASE
) -> list[Quake]:
    """``gempaterkini.json`` / ``gempadirasakan.json``: a list (a single object is accepted).

    A broken entry is skipped (and logged) as long as the document itself is sound; if every
    entry is broken the whole payload is rejected.
    """
    gempa = _gempa(data)
    entries = gempa if isinstance(gempa, list) else [gempa]
    quakes, errors = [], []
    for entry in entries:
        try:
            quakes.append(parse_quake(entry, shakemap_base))
        except BmkgFormatError as exc:
            errors.append(str(exc))
    if errors:
        if not quakes:
            raise BmkgFormatError(f"no usable quake: {errors[0]}")
        log.warning("bmkg: skipped %d broken quake entries: %s", len(errors), errors[0])
    return quakes


def parse_quakes(data: bytes | str | Mapping[str, Any]) -> list[Quake]:
    """Either feed shape: autogempa (one) or a list."""
    gempa = _gempa(data)
    if isinstance(gempa, list):
        return parse_gempa_list(data)
    return [parse_quake(gempa)]


# --- relevance ----------------------------------------------------------------------------


@dataclass(frozen=True)
class QuakeRule:
    """From the city profile, e.g. ``[[quake_rule]] max_distance_km = 150, min_magnitude = 5.0``
    or a felt rule ``[[quake_rule]] felt = true, min_magnitude = 3.0, names = ["Palu"]``."""

    min_magnitude: float = 0.0
    max_distance_km: float | None = None
    felt: bool = False
    names: tuple[str, ...] = ()  # place names for felt rules (default: the city's names)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> QuakeRule:
        unknown = set(data) - {"min_magnitude", "max_distance_km", "felt", "names"}
        if unknown:
            raise ValueError(f"unknown quake_rule keys: {sorted(unknown)}")
        dist = data.get("max_distance_km")
        rule = cls(
            min_magnitude=float(data.get("min_magnitude", 0.0)),
            max_distance_km=float(dist) if dist is not None else None,
            felt=bool(data.get("felt", False)),
            names=tuple(str(n) for n in data.get("names", ())),
        )
        if rule.max_distance_km is None and not rule.felt:
            raise ValueError("a quake_rule needs max_distance_km or felt = true")
        return rule


def rules_from_config(items: Iterable[Mapping[str, Any]]) -> list[QuakeRule]:
    return [QuakeRule.from_dict(i) for i in items]


@dataclass(frozen=True)
class Relevance:
    rule: QuakeRule
    distance_km: float
    felt: bool  # the Dirasakan text names the city
    tsunami: bool


def felt_in(dirasakan: str | None, names: Sequence[str]) -> bool:
    """Does the felt report name one of `names` (whole words, any case)?"""
    if not dirasakan:
        return False
    return any(
        re.search(rf"(?<![\w]){re.escape(n.strip())}(?![\w])", dirasakan, re.IGNORECASE)
        for n in names
        if n.strip()
    )


def quake_relevance(
    quake: Quake,
    city_center: tuple[float, float],
    rules: Sequence[QuakeRule],
    city_names: Sequence[str] = (),
) -> Relevance | None:
    """The first rule the quake satisfies, with why (distance, felt), or None."""
    distance = float(geodesic(city_center, (quake.lat, quake.lon)).km)
    for rule in rules:
        if quake.magnitude < rule.min_magnitude:
            continue
        if rule.max_distance_km is not None and distance > rule.max_distance_km:
            continue
        felt = felt_in(quake.dirasakan, rule.names or city_names)
        if rule.felt and not felt:
            continue
        return Relevance(rule, distance, felt, quake.tsunami_potential)
    return None


# --- polling --------------------------------------------------------------------------------


class RateLimiter:
    """At most `max_per_minute` requests in any 60 s: consecutive slots are ≥ 60/max s apart.

    `reserve()` books the next slot and says how long to wait for it, so concurrent callers
    queue up instead of bursting.
    """

    def __init__(
        self, max_per_minute: float = 60.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if max_per_minute <= 0:
            raise ValueError("max_per_minute must be positive")
        self.interval = 60.0 / max_per_minute
        self._clock = clock
        self._next: float | None = None

    def reserve(self) -> float:
        now = self._clock()
        slot = now if self._next is None else max(now, self._next)
        self._next = slot + self.interval
        return slot - now

    async def wait(self) -> None:
        delay = self.reserve()
        if delay > 0:
            await asyncio.sleep(delay)


class BmkgPoller:
    """Turns fetched payloads (in order) into new quakes, each emitted once.

    Dedupe is by `Quake.event_id`, remembering the last `max_remembered` ids (give `seen` to
    restore them after a restart).  With `max_age`, quakes older than that at `now` are
    remembered but not emitted (no alert for last night's quake after a restart).
    """

    def __init__(
        self,
        *,
        max_remembered: int = 1000,
        max_age: timedelta | None = None,
        seen: Iterable[str] = (),
    ) -> None:
        if max_remembered < 1:
            raise ValueError("max_remembered must be ≥ 1")
        self.max_remembered = max_remembered
        self.max_age = max_age
        self._seen: OrderedDict[str, None] = OrderedDict()
        for event_id in seen:
            self._remember(event_id)
        self.failures = 0  # consecutive bad payloads / fetch errors
        self.last_error: str | None = None

    @property
    def seen_ids(self) -> list[str]:
        return list(self._seen)

    def _remember(self, event_id: str) -> None:
        self._seen[event_id] = None
        self._seen.move_to_end(event_id)
        while len(self._seen) > self.max_remembered:
            self._seen.popitem(last=False)

    def fetch_failed(self, error: str) -> None:
        """Record a fetch error (HTTP 5xx, timeout) for the backoff."""
        self.failures += 1
        self.last_error = error

    def feed(
        self, payload: bytes | str | Mapping[str, Any], now: datetime | None = None
    ) -> list[Quake]:
        """New quakes in `payload`, oldest first.  A malformed payload gives [] (and counts)."""
        try:
            quakes = parse_quakes(payload)
        except BmkgFormatError as exc:
            self.fetch_failed(str(exc))
            log.warning("bmkg: bad payload: %s", exc)
            return []
        self.failures, self.last_error = 0, None
        new = []
        for quake in sorted(quakes, key=lambda q: q.time):
            if quake.event_id in self._seen:
                continue
            self._remember(quake.event_id)
            if self.max_age is not None and now is not None and now - quake.time > self.max_age:
                continue
            new.append(quake)
        return new

    def next_delay(self, base_seconds: float, max_seconds: float = 900.0) -> float:
        """Poll interval: `base_seconds`, doubled per consecutive failure, capped."""
        return float(
            min(base_seconds * 2 ** min(self.failures, 16), max(max_seconds, base_seconds))
        )


# --- weather nowcast RSS ------------------------------------------------------------------


@dataclass(frozen=True)
class NowcastItem:
    title: str
    link: str | None
    identifier: str | None  # the CAP identifier (RSS guid)
    cap_url: str | None  # the CAP document, when the link points at one
    published: datetime | None
    province: str | None  # from the title "... di Banten"
    description: str | None
    source: str = SOURCE


def _rss_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        ts = parsedate_to_datetime(text.strip())
    except (TypeError, ValueError):
        return None
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def parse_nowcast_rss(xml: bytes | str) -> list[NowcastItem]:
    """BMKG's nowcast RSS index (``/alerts/nowcast/id/rss.xml``)."""
    try:
        root = safe_xml(xml)
    except XmlRejected as exc:
        raise BmkgFormatError(str(exc)) from None
    channel = root.find("channel")
    if root.tag != "rss" or channel is None:
        raise BmkgFormatError(f"not an RSS document (root {root.tag!r})")
    items = []
    for item in channel.findall("item"):

        def text(tag: str, item: Any = item) -> str | None:
            value = item.findtext(tag)
            return " ".join(value.split()) if value and value.strip() else None

        title = text("title")
        link = text("link")
        guid = text("guid")
        if not title or not (link or guid):
            continue
        province = None
        if " di " in title:
            province = title.rsplit(" di ", 1)[1].strip() or None
        cap_url = link if link and link.lower().split("?")[0].endswith(".xml") else None
        description = item.findtext("description")
        items.append(
            NowcastItem(
                title=title,
                link=link,
                identifier=guid,
                cap_url=cap_url,
                published=_rss_time(text("pubDate")),
                province=province,
                description=description.strip() if description else None,
            )
        )
    return items
