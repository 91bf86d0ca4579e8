"""The bot's own HTTP server (aiohttp): health, webhooks, and routes added by features."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from storage.db import Database
from storage.repo import Repo

log = logging.getLogger(__name__)

RouteInstaller = Callable[[web.Application], None]


def _db_health(db: Database) -> dict[str, Any]:
    from storage.api_repo import ApiRepo

    with db.session() as s:  # any query proves the database answers
        backlog = Repo(s).outbox_pending_count()
        by_channel = ApiRepo(s).outbox_backlog_by_channel()
        inbox_pending = ApiRepo(s).inbox_pending_count()
    return {
        "database": "ok",
        "outbox_backlog": backlog,
        "outbox_backlog_by_channel": by_channel,
        "inbox_pending": inbox_pending,
    }


def build_web_app(
    db: Database,
    installers: list[RouteInstaller],
    channel_status: Callable[[], dict[str, str]],
    delivery_health: Callable[[], dict[str, Any]] | None = None,
) -> web.Application:
    """`delivery_health`: more figures for /healthz, read from the database (in a thread)."""
    app = web.Application(client_max_size=2 * 1024 * 1024)

    async def healthz(_request: web.Request) -> web.Response:
        try:
            body = await asyncio.to_thread(_db_health, db)
            if delivery_health is not None:
                body.update(await asyncio.to_thread(delivery_health))
        except Exception as exc:
            log.warning("healthz: database check failed: %s", exc)
            return web.json_response({"ok": False, "database": "down"}, status=503)
        body["channels"] = channel_status()
        body["channels_up"] = all(v == "up" for v in body["channels"].values())
        body["ok"] = True
        return web.json_response(body)

    app.router.add_get("/healthz", healthz)
    for install in installers:
        install(app)
    return app


class HttpServer:
    def __init__(self, app: web.Application, host: str, port: int) -> None:
        self.app = app
        self.host = host
        self.port = port
        self._runner: web.AppRunner | None = None

    async def start(self) -> int:
        self._runner = web.AppRunner(self.app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        sockets = getattr(site._server, "sockets", None)  # noqa: SLF001 (aiohttp has no API)
        if sockets:
            self.port = sockets[0].getsockname()[1]
        log.info("HTTP server listening on http://%s:%d", self.host, self.port)
        return self.port

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


Startable = Callable[[], Awaitable[None]]
