"""Geocoding through a Nominatim-compatible server (geopy), for "where is it?" fallbacks.

Synchronous on purpose: callers run it in a worker thread (`asyncio.to_thread`).  All calls
(search and reverse together) share one geopy `RateLimiter`: at most one request per second,
never more, across threads.  Results, including "not found", are kept in a small in-memory
LRU cache keyed by the normalised query; errors are not cached.  Errors (timeout, HTTP 5xx,
connection refused, bad JSON) are logged and returned as None: this module never raises to
its caller.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit

from geopy.exc import GeopyError
from geopy.extra.rate_limiter import RateLimiter
from geopy.geocoders import Nominatim

from handlers.citizen.places import geocoder_question
from handlers.events import GeoAnswer, Inbound
from storage.conversations import current_step
from storage.db import Database

log = logging.getLogger(__name__)

MIN_DELAY_SECONDS = 1.0  # Nominatim usage policy: an absolute maximum of 1 request per second
_MISSING = object()


@dataclass(frozen=True)
class GeoResult:
    lat: float
    lon: float
    display_name: str


def normalise_query(query: str) -> str:
    """Cache key: lower-case, single spaces, no punctuation at the ends."""
    return re.sub(r"\s+", " ", query).strip(" \t.,;:!?").lower()


class _Lru:
    def __init__(self, size: int) -> None:
        self.size = size
        self._data: OrderedDict[str, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> Any:
        with self._lock:
            if key not in self._data:
                return _MISSING
            self._data.move_to_end(key)
            return self._data[key]

    def put(self, key: str, value: Any) -> None:
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.size:
                self._data.popitem(last=False)


class Geocoder:
    """`geocode(query)` and `reverse(lat, lon)` against `base_url` (e.g. http://host:8080).

    `viewbox` is (min_lon, min_lat, max_lon, max_lat), normally the city profile's bbox: results
    there are preferred (not required).  `min_delay_seconds` below 1 is raised to 1.
    """

    def __init__(
        self,
        base_url: str,
        user_agent: str,
        country_codes: str | None = "id",
        viewbox: tuple[float, float, float, float] | None = None,
        timeout: float = 5,
        *,
        language: str = "id",
        cache_size: int = 1024,
        min_delay_seconds: float = MIN_DELAY_SECONDS,
        cooldown_seconds: float = 30.0,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"geocoder URL must be http(s)://host[:port], got {base_url!r}")
        if not user_agent.strip():
            raise ValueError("a user agent is required by the Nominatim usage policy")
        self._nominatim = Nominatim(
            domain=parts.netloc + parts.path.rstrip("/"),
            scheme=parts.scheme,
            user_agent=user_agent,
            timeout=timeout,
        )
        self.country_codes = country_codes
        self.viewbox = viewbox
        self.language = language
        self._cache = _Lru(cache_size)
        # After a failure, answer "no result" at once for a while instead of making every
        # citizen wait for the timeout again (a down server, or one that refuses us).
        self.cooldown_seconds = cooldown_seconds
        self._down_until = 0.0
        # one limiter for both kinds of request, so the total stays ≤ 1 request/s
        self._limited = RateLimiter(
            self._request,
            min_delay_seconds=max(MIN_DELAY_SECONDS, min_delay_seconds),
            max_retries=0,
            swallow_exceptions=False,
        )

    def _request(self, kind: str, *args: Any) -> Any:
        if kind == "search":
            (query,) = args
            viewbox = None
            if self.viewbox:
                min_lon, min_lat, max_lon, max_lat = self.viewbox
                viewbox = [(min_lat, min_lon), (max_lat, max_lon)]
            return self._nominatim.geocode(
                query,
                exactly_one=True,
                country_codes=self.country_codes,
                viewbox=viewbox,
                language=self.language,
            )
        lat, lon = args
        return self._nominatim.reverse((lat, lon), exactly_one=True, language=self.language)

    def _call(self, kind: str, *args: Any) -> tuple[bool, Any]:
        """(ok, location); ok is False when the server could not answer (or failed lately)."""
        if time.monotonic() < self._down_until:
            return False, None
        try:
            return True, self._limited(kind, *args)
        except (GeopyError, OSError, ValueError) as exc:
            log.warning(
                "geocoder %s %r failed: %s: %s; not asked again for %.0f s",
                kind,
                args,
                type(exc).__name__,
                exc,
                self.cooldown_seconds,
            )
            self._down_until = time.monotonic() + self.cooldown_seconds
            return False, None

    def geocode(self, query: str) -> GeoResult | None:
        """Best match for a free-text place, or None (not found or server trouble)."""
        key = normalise_query(query)
        if not key:
            return None
        cached = self._cache.get("q:" + key)
        if cached is not _MISSING:
            return cached  # type: ignore[no-any-return]
        ok, location = self._call("search", key)
        if not ok:
            return None
        result = None
        if location is not None:
            result = GeoResult(
                float(location.latitude), float(location.longitude), str(location.address)
            )
        self._cache.put("q:" + key, result)
        return result

    def reverse(self, lat: float, lon: float) -> str | None:
        """A readable address for a point, or None."""
        key = f"r:{lat:.5f},{lon:.5f}"
        cached = self._cache.get(key)
        if cached is not _MISSING:
            return cached  # type: ignore[no-any-return]
        ok, location = self._call("reverse", round(lat, 6), round(lon, 6))
        if not ok:
            return None
        address = str(location.address) if location is not None and location.address else None
        self._cache.put(key, address)
        return address


class GeoLookup:
    """Asks the geocoder, before an update's transaction, what its handling can use.

    The core says which question an event at a step raises (`geocoder_question`); the answer
    rides on the event (`Inbound.geo`). Handlers never reach the geocoder, so a slow or
    rate-limited one (Nominatim allows 1 request/s) holds only this sender, never the
    database.
    """

    def __init__(self, geocoder: Geocoder, services: Any, db: Database) -> None:
        self.geocoder = geocoder
        self.services = services
        self.db = db

    def answer(self, ev: Inbound) -> Inbound:
        """`ev` with the geocoder's answer on it, if its handling can use one."""
        if ev.kind not in ("text", "location"):
            return ev
        step = current_step(self.db, ev.channel, ev.external_id)
        question = geocoder_question(self.services, step, ev)
        if question is None:
            return ev
        if question.kind == "reverse":
            address = self.geocoder.reverse(question.lat, question.lon)
            return replace(ev, geo=GeoAnswer(name=address)) if address else ev
        found = self.geocoder.geocode(question.query)
        if found is None:
            return ev
        return replace(ev, geo=GeoAnswer(name=found.display_name, lat=found.lat, lon=found.lon))

    async def prepare(self, events: list[Inbound]) -> list[Inbound]:
        return [await asyncio.to_thread(self.answer, ev) for ev in events]
