"""HTTP routes of warnings on the bot's server.

- ``POST /sensors/{id}/readings``: one JSON reading, per-sensor token in
  ``Authorization: Bearer …`` (or ``X-Sensor-Token``);
- ``POST /cap``: a CAP 1.2 alert from a trusted sender (``X-API-Key``), parsed with defusedxml;
- ``GET /warnings/feed.atom`` and ``GET /warnings/{id}.xml``: our warnings as Atom and CAP.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
from collections.abc import Callable

from aiohttp import web

from bot.alerts.cap import AtomEntry, CapError, build_atom, parse_cap
from bot.alerts.sensors import Sensors
from bot.alerts.sources import WarningSources
from bot.city import CityProfile
from bot.http import parse_int, read_body
from storage.alert_repo import AlertRepo
from storage.db import Database

log = logging.getLogger(__name__)

MAX_READING_BYTES = 16_384
MAX_CAP_BYTES = 1_000_000


def _token(request: web.Request) -> str:
    auth = request.headers.get("Authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    return request.headers.get("X-Sensor-Token", "").strip()


async def _body(request: web.Request, limit: int) -> bytes | None:
    """The whole body, or None past `limit` bytes (answered 413 in this API's JSON)."""
    try:
        return await read_body(request, limit)
    except web.HTTPRequestEntityTooLarge:
        return None


def alert_routes(
    db: Database,
    city: CityProfile,
    sensors: Sensors,
    sources: WarningSources,
    wake: Callable[[], None],
    *,
    cap_api_key: str | None,
    base_url: Callable[[web.Request], str],
) -> Callable[[web.Application], None]:
    """A route installer for `App.route_installers`; `wake` starts the fan-out of a new warning."""

    async def reading(request: web.Request) -> web.Response:
        sensor_id = request.match_info["sensor_id"]
        if sensor_id not in sensors.configs:
            return web.json_response({"error": "unknown sensor"}, status=404)
        if not sensors.check_token(sensor_id, _token(request)):
            return web.json_response({"error": "bad or missing sensor token"}, status=401)
        body = await _body(request, MAX_READING_BYTES)
        if body is None:
            return web.json_response({"error": "too large"}, status=413)
        try:
            payload: object = json.loads(body)
        except ValueError:
            payload = None  # rejected as bad_payload (and logged) by the validation
        result = await asyncio.to_thread(sensors.ingest_reading, sensor_id, payload)
        if result.broadcast_id is not None:
            wake()
        if not result.accepted:
            return web.json_response(
                {"accepted": False, "reason": result.reason, "level": result.level}, status=422
            )
        change = result.change
        return web.json_response(
            {
                "accepted": True,
                "level": result.level,
                "change": [change.old, change.new] if change else None,
                "broadcast_id": result.broadcast_id,
            },
            status=202,
        )

    async def cap_in(request: web.Request) -> web.Response:
        given = request.headers.get("X-API-Key", "")
        if not cap_api_key or not hmac.compare_digest(given.encode(), cap_api_key.encode()):
            return web.json_response({"error": "bad or missing API key"}, status=401)
        body = await _body(request, MAX_CAP_BYTES)
        if body is None:
            return web.json_response({"error": "too large"}, status=413)
        try:
            alert = parse_cap(body)
        except CapError as exc:
            log.warning("CAP in: refused: %s", exc)
            return web.json_response({"error": str(exc)}, status=400)
        bid, note = await asyncio.to_thread(sources.ingest_cap, alert, "cap")
        if bid is not None:
            wake()
        log.info("CAP in: %s from %s: %s", alert.identifier, alert.sender, note)
        return web.json_response(
            {"identifier": alert.identifier, "broadcast_id": bid, "note": note},
            status=201 if bid is not None else 200,
        )

    def _entries(base: str, limit: int) -> list[AtomEntry]:
        with db.unit() as uow:
            return [
                AtomEntry(
                    id=f"{base}/warnings/{w.id}.xml",
                    title=w.headline,
                    updated=w.sent_at,
                    cap_url=f"{base}/warnings/{w.id}.xml",
                    summary=w.summary,
                )
                for w in AlertRepo(uow).published_warnings(limit)
            ]

    async def feed(request: web.Request) -> web.Response:
        base = base_url(request)
        entries = await asyncio.to_thread(_entries, base, 50)
        body = build_atom(
            f"Lapor Warga {city.city.name}",
            f"{base}/warnings/feed.atom",
            entries,
            updated=None if entries else db.clock(),
        )
        return web.Response(body=body, content_type="application/atom+xml", charset="utf-8")

    def _cap(warning_id: int) -> str | None:
        with db.unit() as uow:
            row = AlertRepo(uow).published_warning(warning_id)
            return row.cap_xml if row else None

    async def cap_out(request: web.Request) -> web.Response:
        warning_id = parse_int(request.match_info["warning_id"])
        if warning_id is None:
            raise web.HTTPNotFound()
        xml = await asyncio.to_thread(_cap, warning_id)
        if xml is None:
            raise web.HTTPNotFound()
        return web.Response(text=xml, content_type="application/cap+xml", charset="utf-8")

    def install(app: web.Application) -> None:
        app.router.add_post("/sensors/{sensor_id}/readings", reading)
        app.router.add_post("/cap", cap_in)
        app.router.add_get("/warnings/feed.atom", feed)
        app.router.add_get(r"/warnings/{warning_id}.xml", cap_out)

    return install
