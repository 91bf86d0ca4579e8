"""Plugs warnings into the composition root (`bot.app.App`): services, routes, loops, jobs."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from aiohttp import web

from bot.alerts.audience import kelurahan_map
from bot.alerts.broadcasts import JOB_START_BROADCAST, Broadcasts
from bot.alerts.publishing import CapPublisher
from bot.alerts.sensors import Sensors
from bot.alerts.sources import WarningSources
from bot.city import CityProfile
from bot.config import Settings
from handlers.services import I18nLike
from storage.db import Database
from storage.repo import Repo

SILENT_CHECK_SECONDS = 60


@dataclass(frozen=True)
class AlertParts:
    """The parts of warnings, each built once and given what it needs."""

    publisher: CapPublisher
    broadcasts: Broadcasts
    sensors: Sensors
    sources: WarningSources


def build_alerts(
    db: Database,
    city: CityProfile,
    i18n: I18nLike,
    *,
    polygons: Mapping[str, str] | None = None,
    wake_sender: Callable[[], None] = lambda: None,
    batch: int = 500,
    sensor_tokens: Mapping[str, str] | None = None,
    public_base_url: str | None = None,
) -> AlertParts:
    """`polygons`: imported kelurahan polygons (code → GeoJSON); else kelurahan centroids."""
    kel_map = kelurahan_map(city, polygons)
    publisher = CapPublisher(city, i18n, public_base_url=public_base_url)
    broadcasts = Broadcasts(
        db, city, i18n, publisher,
        kel_map=kel_map, wake_sender=wake_sender, batch=batch,
    )  # fmt: skip
    return AlertParts(
        publisher=publisher,
        broadcasts=broadcasts,
        sensors=Sensors(db, city, i18n, broadcasts, tokens=sensor_tokens),
        sources=WarningSources(db, city, i18n, broadcasts, kel_map=kel_map),
    )


def alerts_from_settings(
    settings: Settings,
    db: Database,
    i18n: I18nLike,
    city: CityProfile,
    wake_sender: Callable[[], None] = lambda: None,
) -> AlertParts:
    with db.session() as s:
        polygons = Repo(s).area_polygons()
    return build_alerts(
        db,
        city,
        i18n,
        polygons=polygons,
        wake_sender=wake_sender,
        batch=settings.broadcast_batch,
        sensor_tokens={k: v.get_secret_value() for k, v in settings.sensor_tokens.items()},
        public_base_url=settings.public_base_url,
    )


def install_alerts(app: Any) -> AlertParts:
    """Wire warnings into `app` (an `App`): call once from its constructor."""
    from handlers import subscription

    settings: Settings = app.settings
    alerts = alerts_from_settings(settings, app.db, app.i18n, app.city, app.sender.wake)
    broadcasts, sensors = alerts.broadcasts, alerts.sensors
    app.services.alerts = broadcasts
    app.services.hooks.on_report_created.append(subscription.offer_after_report)
    if not settings.alerts_enabled:
        return alerts

    def base_url(request: web.Request) -> str:
        if settings.public_base_url:
            return settings.public_base_url.rstrip("/")
        return f"{request.scheme}://{request.host}"

    from bot.alerts.http import alert_routes

    cap_key = settings.cap_api_key.get_secret_value() if settings.cap_api_key else None
    routes = alert_routes(
        app.db, app.city, sensors, alerts.sources, broadcasts.wake,
        cap_api_key=cap_key, base_url=base_url,
    )  # fmt: skip
    app.route_installers.append(routes)
    app.background.append(broadcasts.run_fanout)
    if settings.mqtt_url and sensors.configs:
        from bot.alerts.mqtt import MqttReadings

        app.mqtt = MqttReadings(sensors, broadcasts.wake, settings.mqtt_url)
        app.leader_background.append(app.mqtt.run)  # one subscriber for all processes
    if settings.bmkg_autogempa_url or settings.bmkg_nowcast_rss_url:
        from bot.alerts.feeds import BmkgWatcher

        app.bmkg = BmkgWatcher(
            app.db,
            app.city,
            alerts.sources,
            broadcasts.wake,
            autogempa_url=settings.bmkg_autogempa_url,
            nowcast_rss_url=settings.bmkg_nowcast_rss_url,
            poll_seconds=settings.bmkg_poll_seconds,
            max_age=timedelta(minutes=settings.bmkg_quake_max_age_minutes),
        )
        app.leader_background.append(app.bmkg.run)  # polled once for all processes
    app.scheduler.on(JOB_START_BROADCAST, broadcasts.on_scheduled_job)
    if settings.scheduler_enabled and sensors.configs:
        import asyncio

        async def silent_check() -> None:
            if await asyncio.to_thread(sensors.check_silent_sensors):
                app.sender.wake()

        app.scheduler.every(SILENT_CHECK_SECONDS, silent_check, "sensors.silent")
    return alerts
