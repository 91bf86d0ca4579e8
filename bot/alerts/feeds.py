"""Polling BMKG: the latest earthquake (autogempa.json) and the weather-nowcast RSS → CAP.

One `RateLimiter` is shared by every request to BMKG, so the bot never exceeds 60 requests a
minute whatever the poll settings.  Quakes and nowcast alerts already handled are remembered
in `processed_event`, so a restart does not warn twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import timedelta

import aiohttp

from bot.alerts.bmkg import (
    BmkgPoller,
    RateLimiter,
    parse_nowcast_rss,
    quake_relevance,
    rules_from_config,
)
from bot.alerts.cap import CapError, parse_cap
from bot.alerts.sources import WarningSources
from bot.alerts.texts import city_short_name
from bot.city import CityProfile
from bot.http import read_capped
from storage.alert_repo import AlertRepo
from storage.db import Database

log = logging.getLogger(__name__)

MAX_BODY = 1_000_000


class BmkgWatcher:
    def __init__(
        self,
        db: Database,
        city: CityProfile,
        sources: WarningSources,
        wake: Callable[[], None],
        *,
        autogempa_url: str | None,
        nowcast_rss_url: str | None,
        poll_seconds: float = 60.0,
        max_age: timedelta = timedelta(hours=1),
        max_per_minute: float = 60.0,
    ) -> None:
        self.db = db
        self.city = city
        self.sources = sources
        self.wake = wake
        self.autogempa_url = autogempa_url
        self.nowcast_rss_url = nowcast_rss_url
        self.poll_seconds = max(poll_seconds, 1.0)
        self.limiter = RateLimiter(max_per_minute)
        self.rules = rules_from_config(city.quake_rules)
        self.max_age = max_age
        self.poller: BmkgPoller | None = None
        self.nowcast_failures = 0

    def _seen(self) -> list[str]:
        with self.db.unit() as uow:
            return AlertRepo(uow).processed_keys("bmkg_quake")

    async def _get(self, http: aiohttp.ClientSession, url: str) -> bytes:
        await self.limiter.wait()
        async with http.get(url, timeout=aiohttp.ClientTimeout(total=20)) as resp:
            resp.raise_for_status()
            return await read_capped(resp.content, MAX_BODY)

    async def poll_quakes(self, http: aiohttp.ClientSession) -> list[int]:
        """One poll of autogempa; returns the broadcasts started."""
        assert self.autogempa_url
        if self.poller is None:
            seen = await asyncio.to_thread(self._seen)
            self.poller = BmkgPoller(max_age=self.max_age, seen=seen)
        try:
            body = await self._get(http, self.autogempa_url)
        except Exception as exc:
            self.poller.fetch_failed(str(exc))
            log.warning("bmkg: autogempa fetch failed: %s", exc)
            return []
        started = []
        city = self.city.city
        center = ((city.bbox[1] + city.bbox[3]) / 2, (city.bbox[0] + city.bbox[2]) / 2)
        for quake in self.poller.feed(body, now=self.db.clock()):
            rel = quake_relevance(quake, center, self.rules, [city_short_name(self.city)])
            if rel is None:
                log.info("bmkg: quake %s M%.1f not relevant here", quake.event_id, quake.magnitude)
                await asyncio.to_thread(self._remember, quake.event_id)
                continue
            bid = await asyncio.to_thread(self.sources.quake_warning, quake, rel)
            if bid is not None:
                log.warning("bmkg: quake %s → warning broadcast %s", quake.event_id, bid)
                started.append(bid)
        if started:
            self.wake()
        return started

    def _remember(self, event_id: str) -> None:
        with self.db.unit() as uow:
            AlertRepo(uow).mark_processed("bmkg_quake", event_id)

    async def poll_nowcast(self, http: aiohttp.ClientSession) -> list[int]:
        """One poll of the nowcast RSS; new alerts for our province are fetched as CAP."""
        assert self.nowcast_rss_url
        try:
            items = parse_nowcast_rss(await self._get(http, self.nowcast_rss_url))
            self.nowcast_failures = 0
        except Exception as exc:
            self.nowcast_failures += 1
            log.warning("bmkg: nowcast RSS failed: %s", exc)
            return []
        province = self.city.city.province.lower()
        started = []
        for item in items:
            key = item.identifier or item.link or item.title
            if not item.cap_url or (item.province and item.province.lower() != province):
                continue
            if await asyncio.to_thread(self._processed, key):
                continue
            try:
                alert = parse_cap(await self._get(http, item.cap_url))
            except (CapError, aiohttp.ClientError, TimeoutError, ValueError) as exc:
                log.warning("bmkg: nowcast CAP %s failed: %s", item.cap_url, exc)
                continue
            bid, note = await asyncio.to_thread(self.sources.ingest_cap, alert, "bmkg_cap")
            await asyncio.to_thread(self._mark_rss, key)
            log.info("bmkg: nowcast %s: %s", key, note)
            if bid is not None:
                started.append(bid)
        if started:
            self.wake()
        return started

    def _processed(self, key: str) -> bool:
        with self.db.unit() as uow:
            return AlertRepo(uow).is_processed("bmkg_rss", key[:160])

    def _mark_rss(self, key: str) -> None:
        with self.db.unit() as uow:
            AlertRepo(uow).mark_processed("bmkg_rss", key[:160])

    async def run(self, stop: asyncio.Event) -> None:
        if not (self.autogempa_url or self.nowcast_rss_url):
            return
        async with aiohttp.ClientSession(headers={"User-Agent": "lapor-warga/0.1"}) as http:
            while not stop.is_set():
                try:
                    if self.autogempa_url:
                        await self.poll_quakes(http)
                    if self.nowcast_rss_url:
                        await self.poll_nowcast(http)
                except Exception:
                    log.exception("bmkg: poll failed")
                delay = self.poller.next_delay(self.poll_seconds) if self.poller else 60.0
                if not self.autogempa_url:
                    delay = self.poll_seconds * 2 ** min(self.nowcast_failures, 4)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=delay)
