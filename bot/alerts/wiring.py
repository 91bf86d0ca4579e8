"""Plugs warnings into the composition root (`bot.app.App`): services, routes, loops, jobs."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from aiohttp import web

from bot.alerts.service import JOB_START_BROADCAST, AlertService, kelurahan_map, sent_rate
from bot.city import CityProfile
from bot.config import Settings
from storage.db import Database
from storage.repo import Repo

SILENT_CHECK_SECONDS = 60


def build_alert_service(
    settings: Settings,
    db: Database,
    i18n: Any,
    city: CityProfile,
    wake_sender: Any = lambda: None,
) -> AlertService:
    with db.session() as s:
        polygons = Repo(s).area_polygons()
    return AlertService(
        db,
        city,
        i18n,
        kel_map=kelurahan_map(city, polygons),
        wake_sender=wake_sender,
        batch=settings.broadcast_batch,
        sensor_tokens={k: v.get_secret_value() for k, v in settings.sensor_tokens.items()},
        public_base_url=settings.public_base_url,
    )


def install_alerts(app: Any) -> AlertService:
    """Wire warnings into `app` (an `App`): call once from its constructor."""
    from handlers import subscription

    settings: Settings = app.settings
    service = build_alert_service(settings, app.db, app.i18n, app.city, app.sender.wake)
    service.sent_rate = sent_rate  # type: ignore[attr-defined]  # MERGE-FIXME: a method
    app.services.alerts = service
    app.services.hooks.on_report_created.append(subscription.offer_after_report)
    if not settings.alerts_enabled:
        return service

    def base_url(request: web.Request) -> str:
        if settings.public_base_url:
            return settings.public_base_url.rstrip("/")
        return f"{request.scheme}://{request.host}"

    from bot.alerts.http import alert_routes

    cap_key = settings.cap_api_key.get_secret_value() if settings.cap_api_key else None
    app.route_installers.append(alert_routes(service, cap_key, base_url))
    app.background.append(service.run_fanout)
    if settings.mqtt_url and service.sensors:
        from bot.alerts.mqtt import MqttReadings

        app.mqtt = MqttReadings(service, settings.mqtt_url)
        app.background.append(app.mqtt.run)
    if settings.bmkg_autogempa_url or settings.bmkg_nowcast_rss_url:
        from bot.alerts.feeds import BmkgWatcher

        app.bmkg = BmkgWatcher(
            service,
            autogempa_url=settings.bmkg_autogempa_url,
            nowcast_rss_url=settings.bmkg_nowcast_rss_url,
            poll_seconds=settings.bmkg_poll_seconds,
            max_age=timedelta(minutes=settings.bmkg_quake_max_age_minutes),
        )
        app.background.append(app.bmkg.run)
    app.scheduler.on(JOB_START_BROADCAST, service.on_scheduled_job)
    if settings.scheduler_enabled and service.sensors:
        import asyncio

        async def silent_check() -> None:
            if await asyncio.to_thread(service.check_silent_sensors):
                app.sender.wake()

        app.scheduler.every(SILENT_CHECK_SECONDS, silent_check, "sensors.silent")
    return service
