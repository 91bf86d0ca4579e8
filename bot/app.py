"""The composition root: the one place where the parts are built and wired together.

Nothing else creates engines, bots, schedulers or services; everything is passed in.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from bot.channels.base import Channel
from bot.city import CityProfile, load_city
from bot.config import Settings
from bot.geo import AreaIndex
from bot.geocode import Geocoder, GeoLookup
from bot.http import HttpServer, RouteInstaller, build_web_app
from bot.i18n import I18n
from bot.inbox import Inbox, InboxWorker
from bot.media import MediaStore
from bot.runtime import retry_delay
from bot.scheduler import Scheduler
from bot.sender import Sender
from handlers import officer, sla_jobs
from handlers.core import Core, Registry
from handlers.events import Inbound
from handlers.registry import build_registry
from handlers.services import Services, WorkConfig
from handlers.workdays import WorkCalendar
from storage.db import Clock, Database, upgrade, utcnow
from storage.locks import ProcessLocks
from storage.repo import Repo
from storage.work_repo import WorkRepo

log = logging.getLogger(__name__)

INBOX_KEEP_DAYS = 14  # WhatsApp redelivers for up to 7 days; keep the keys longer
SLA_SWEEP_SECONDS = 300  # deadlines are in working days: a 5-minute sweep is plenty
LEADER_POLL = 5.0  # seconds between a follower's tries for the lead (and the leader's checks)


def build_services(
    settings: Settings, db: Database, i18n: I18n, city: CityProfile, clock: Clock
) -> Services:
    with db.session() as s:
        polygons = Repo(s).area_polygons()
    from bot.triage import Triage

    return Services(
        city=city,
        areas=AreaIndex(city, polygons or None),
        i18n=i18n,
        clock=clock,
        work=WorkConfig(
            calendar=WorkCalendar(city.city.timezone),
            duplicate_radius_m=settings.duplicate_radius_m,
        ),
        triage=Triage(city.categories),
    )


def build_geocoder(settings: Settings, city: CityProfile) -> Geocoder | None:
    """The geocoder, or None without `GEOCODER_URL`. It is asked before an update's
    transaction (`GeoLookup`), never by a handler."""
    if not settings.geocoder_url:
        return None
    return Geocoder(settings.geocoder_url, settings.geocoder_user_agent, viewbox=city.city.bbox)


class App:
    """Builds everything from settings; `run()` runs until `stop` is set."""

    def __init__(self, settings: Settings, *, migrate: bool = True) -> None:
        self.settings = settings
        self.city = load_city(settings.city, settings.cities_dir)  # a bad CITY migrates nothing
        self.clock: Clock = utcnow  # the one clock: storage, core, sender, alerts
        if migrate:
            upgrade(settings.database_url)
        self.db = Database(settings.database_url, clock=self.clock)
        self.i18n = I18n(settings.default_locale)
        self.media = MediaStore(settings.media_dir, settings.max_photo_bytes)
        self.services = build_services(settings, self.db, self.i18n, self.city, self.clock)
        geocoder = build_geocoder(settings, self.city)
        lookup = GeoLookup(geocoder, self.services, self.db) if geocoder else None
        self.registry: Registry = build_registry()
        officer.install(self.services)
        self.inbox = Inbox(self.db)
        from bot.channels.wa_render import template_names
        from bot.delivery import Delivery

        self.delivery = Delivery(self.db, lambda: self.sender.wake(), template_names(settings))
        self.channels: dict[str, Channel] = {}
        if settings.telegram_enabled:
            from bot.channels.telegram import TelegramChannel

            self.channels["telegram"] = TelegramChannel(
                settings,
                self.media,
                self.i18n,
                self.registry.known_commands(),
                on_chat_moved=self.delivery.chat_moved,
                card_lookup=self.card_message_id,
            )
        if settings.whatsapp_enabled:
            from bot.channels.whatsapp import WhatsAppChannel

            wa = WhatsAppChannel(
                settings,
                self.i18n,
                self.delivery.whatsapp_status,
                self.registry.known_commands(),
                media=self.media,
                clock=self.clock,
            )
            wa.check_settings()  # no silent "signature checks off": refuse to start instead
            self.channels["whatsapp"] = wa
        # the web demo chat, a third adapter on the same core (demo mode only)
        from bot.web.pages import Pages

        self.pages = Pages(self.i18n)
        if settings.demo_active:
            from bot.channels.web import WebChannel

            self.channels["web"] = WebChannel(
                self.db,
                self.media,
                self.pages,
                self.city,
                self.services.areas,
                default_locale=settings.default_locale,
                tile_url=settings.map_tile_url,
                tile_attribution=settings.map_tile_attribution,
                leaflet_url=settings.leaflet_url,
                staff_personas=not self.channels,  # only the demo runs: no real people to reach
            )
        # This process's sender slot and the scheduler's leadership (storage/locks.py).
        self.locks = ProcessLocks(self.db)
        self.sender = Sender(
            self.db,
            {name: ch.transport for name, ch in self.channels.items()},
            concurrency=settings.sender_concurrency,
            locks=self.locks,
        )
        self.core: Core[int] = Core(self.services, self.registry, on_event=self._observe)
        self.worker = InboxWorker(
            self.db,
            self.inbox,
            self.channels,
            self.core.run_batch,
            self.core.apology,
            self.sender.wake,
            prepare=lookup.prepare if lookup is not None else None,
        )
        self.scheduler = Scheduler(self.db)
        self.route_installers: list[RouteInstaller] = [
            ch.register_routes for ch in self.channels.values()
        ]
        self.background: list[Callable[[asyncio.Event], Any]] = []
        # Loops only the leader runs (outside sources polled once for all processes).
        self.leader_background: list[Callable[[asyncio.Event], Any]] = []
        self._install_open_side()
        self.http: HttpServer | None = None
        self.started = asyncio.Event()
        # subscriptions, warnings, announcements (bot/alerts/wiring.py)
        from bot.alerts.wiring import install_alerts

        self.alerts = install_alerts(self)

    # --- the core's side of the inbox -------------------------------------------------------
    def _observe(self, ev: Inbound) -> None:
        self.metrics.observe_inbound(ev.channel)

    # --- callbacks for channel adapters -----------------------------------------------------
    async def card_message_id(self, channel: str, address: str, report_id: int) -> str | None:
        """Where a report's queue card is in a chat (its platform message id): for edits."""

        def read() -> str | None:
            with self.db.session() as s:
                return WorkRepo(Repo(s)).card_message_id(channel, address, report_id)

        return await asyncio.to_thread(read)

    def channel_status(self) -> dict[str, str]:
        out = {}
        for name, ch in self.channels.items():
            status = getattr(ch, "status", None)
            out[name] = str(status()) if callable(status) else "up"
        return out

    def _install_open_side(self) -> None:
        """Open311 API, public map and dashboard, Prometheus metrics."""
        from bot.metrics import Metrics
        from bot.open311 import Open311, default_deadline
        from bot.web import PublicWeb
        from bot.web.warnings import table_provider

        settings = self.settings
        deadline = default_deadline(self.city)
        from_tables = table_provider(self.db, self.services.clock)
        self.open311 = Open311(
            self.db,
            self.services,
            self.media,
            max_page_size=settings.open311_max_page_size,
            public_base_url=settings.public_base_url,
            on_outbox=self.sender.wake,
            deadline=deadline,
        )
        self.public_web = PublicWeb(
            self.db,
            self.services,
            self.pages,
            deadline=deadline,
            warnings=from_tables,
            tile_url=settings.map_tile_url,
            tile_attribution=settings.map_tile_attribution,
            leaflet_url=settings.leaflet_url,
            demo="web" in self.channels,
        )
        self.metrics = Metrics(
            self.db,
            sender_stats=lambda: self.sender.stats,
            channel_status=self.channel_status,
            deadline=deadline,
            clock=self.services.clock,
        )
        self.route_installers += [
            self.open311.install,
            self.public_web.install,
            self.metrics.install,
        ]

    def demo_url(self) -> str | None:
        """Where the demo chat is, once the HTTP server listens (None without the demo)."""
        if "web" not in self.channels or self.http is None:
            return None
        host = self.settings.http_host
        shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
        return f"http://{shown}:{self.http.port}/demo"

    # --- housekeeping -------------------------------------------------------------------------
    async def purge_inbox(self) -> None:
        def purge() -> int:
            with self.db.session() as s:
                return Repo(s).inbox_purge(self.clock() - timedelta(days=INBOX_KEEP_DAYS))

        n = await asyncio.to_thread(purge)
        if n:
            log.info("inbox: forgot %d old updates", n)

    async def sla_sweep(self) -> None:
        """Deadline reminders, escalations, auto-close and daily summaries (state in the DB)."""

        def sweep() -> int:
            with self.db.unit() as uow:
                outs = sla_jobs.sweep(Repo(uow), self.services)
                uow.send(outs)
                return len(outs)

        if await asyncio.to_thread(sweep):
            self.sender.wake()

    # --- leadership ---------------------------------------------------------------------------
    async def lead(self, stop: asyncio.Event) -> None:
        """Become the leader when nobody is (an advisory lock, storage/locks.py): the leader runs
        the scheduler and the leader-only loops; losing the lock (the database restarted under
        us) stops them until it is taken again. On SQLite the one process leads at once."""
        failures = 0
        while not stop.is_set():
            try:
                leading = await asyncio.to_thread(self.locks.try_lead)
                failures = 0
            except Exception:
                failures += 1
                log.warning("leader: the lock could not be asked for", exc_info=True)
                leading = False
            if leading:
                log.info("leader: this process runs the scheduler")
                await self._while_leading(stop)
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    stop.wait(), timeout=retry_delay(failures) if failures else LEADER_POLL
                )

    async def _while_leading(self, stop: asyncio.Event) -> None:
        lost = asyncio.Event()
        if self.settings.scheduler_enabled:
            await self.scheduler.start()  # or resume, after a lost lead
        loops = [asyncio.create_task(fn(lost)) for fn in self.leader_background]
        try:
            while not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=LEADER_POLL)
                if not stop.is_set() and not await asyncio.to_thread(self.locks.check):
                    log.error("leader: lock lost; the scheduler stops until it is taken again")
                    break
        finally:
            lost.set()
            if loops:
                await asyncio.wait(loops, timeout=10)
            if stop.is_set():
                await self.scheduler.stop()
            else:
                self.scheduler.pause()

    # --- running ----------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        web_app = build_web_app(
            self.db, self.route_installers, self.channel_status, self.delivery.health
        )
        self.http = HttpServer(web_app, self.settings.http_host, self.settings.http_port)
        await self.http.start()
        tasks = [
            asyncio.create_task(self.worker.run(stop), name="inbox-worker"),
            asyncio.create_task(self.sender.run(stop), name="outbox-sender"),
        ]
        tasks += [asyncio.create_task(fn(stop)) for fn in self.background]
        if self.settings.scheduler_enabled:
            self.scheduler.every(3600, self.purge_inbox, "inbox.purge")
            self.scheduler.every(SLA_SWEEP_SECONDS, self.sla_sweep, "sla.sweep")
        tasks.append(asyncio.create_task(self.lead(stop), name="leader"))
        for ch in self.channels.values():
            await ch.start(self.inbox)
        self.started.set()
        log.info("lapor: running (%s) for %s", ", ".join(self.channels) or "-", self.city.city.name)
        await stop.wait()
        log.info("lapor: shutting down")
        for ch in self.channels.values():
            with contextlib.suppress(Exception):
                await ch.stop()
        done, pending = await asyncio.wait(tasks, timeout=15)
        for t in pending:
            t.cancel()
        for t in done:
            if t.exception() is not None:
                log.error("task %s ended with %r", t.get_name(), t.exception())
        await self.http.stop()
        await asyncio.to_thread(self.locks.close)
        self.db.dispose()
