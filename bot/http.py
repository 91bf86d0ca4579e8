"""The bot's own HTTP server (aiohttp): health, webhooks, and routes added by features."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import StreamReader, web
from aiohttp.http_exceptions import HttpProcessingError

from storage.db import Database
from storage.repo import Repo

log = logging.getLogger(__name__)

RouteInstaller = Callable[[web.Application], None]

MAX_ID = 2**31 - 1  # the largest row id: ids are INTEGER columns, 32 bits on PostgreSQL


# --- reading bodies (requests and answers) --------------------------------------------------
class TooLarge(ValueError):
    """A body is longer than its cap."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"larger than {limit} bytes")
        self.limit = limit


async def read_capped(stream: StreamReader, limit: int) -> bytes:
    """Everything up to the end of `stream` (a request's or an answer's body), in however
    many pieces it arrives; `TooLarge` as soon as it passes `limit` bytes."""
    buf = bytearray()
    async for piece in stream.iter_any():
        buf += piece
        if len(buf) > limit:
            raise TooLarge(limit)
    return bytes(buf)


async def read_body(request: web.Request, limit: int) -> bytes:
    """A request's whole body; 413 (`web.HTTPRequestEntityTooLarge`) past `limit` bytes, from
    its Content-Length before reading, else as soon as it arrives."""
    size = request.content_length
    if size is None or size <= limit:
        try:
            return await read_capped(request.content, limit)
        except TooLarge:
            size = None
    raise web.HTTPRequestEntityTooLarge(
        max_size=limit, actual_size=size or limit + 1, text=f"body larger than {limit} bytes"
    )


# --- path and query values ----------------------------------------------------------------
def parse_int(raw: str | None, lo: int = 0, hi: int = MAX_ID) -> int | None:
    """A whole number from `lo` to `hi` written in ASCII digits, else None. (`int()` also
    takes "١٢", " 7", "1_000" and numbers of any size; `str.isdigit()` also says yes to "²".)"""
    if not raw or len(raw) > 19 or not raw.isascii() or not raw.isdigit():
        return None
    value = int(raw)
    return value if lo <= value <= hi else None


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


class _ServerLog(logging.LoggerAdapter):  # type: ignore[type-arg]
    """aiohttp's server log: a request that is not valid HTTP (a scanner, a broken client;
    aiohttp answers 400) is one WARNING line; an error in a handler keeps its traceback."""

    def exception(self, msg: object, *args: object, exc_info: Any = True, **kw: Any) -> None:
        if isinstance(exc_info, HttpProcessingError):
            what = " ".join(str(exc_info.message).split())[:200]  # one line, whatever was sent
            self.logger.warning("bad HTTP request from %s: %s", args[0] if args else "?", what)
            return
        self.logger.error(msg, *args, exc_info=exc_info, **kw)


class HttpServer:
    def __init__(self, app: web.Application, host: str, port: int) -> None:
        self.app = app
        self.host = host
        self.port = port
        self._runner: web.AppRunner | None = None

    async def start(self) -> int:
        self._runner = web.AppRunner(
            self.app,
            access_log=None,
            handle_signals=False,
            logger=_ServerLog(logging.getLogger("aiohttp.server")),
        )
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
