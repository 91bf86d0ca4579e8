"""The web channel: a demo chat in the browser at `/demo`, on the same core as the others.

In: the page POSTs what the person typed / pressed / shared (`/demo/api/send`, photos as
multipart to `/demo/api/photo`, stored through `MediaStore` first).  Each message goes into
the inbox with the page's message id as dedupe key, exactly like a platform update, and the
worker runs it through `handlers.core.handle`.  Out: the outbox sender calls
`WebTransport.send`, which stores the reply in `web_message`; the page polls
`/demo/api/messages` for them.

The map picker asks `/demo/api/place?lat=&lon=` which kelurahan a pin is in (the app's area
index, the same answer the core will give), and draws the kelurahan outlines from
`/demo/api/areas.json` when boundaries were imported (without tiles they are the base map).

Personas: one browser session (`sid`) has separate web identities for the citizen, an officer
of each OPD and an admin (external id `<sid>.<persona>`).  Officer and admin personas get a
`staff` row when chosen — only while demo mode is on (`Settings.demo_active`), which is the
only time this channel exists.
"""

from __future__ import annotations

import asyncio
import html
import json
import logging
import math
import re
import secrets
from dataclasses import asdict
from typing import Any

from aiohttp import BodyPartReader, web

from bot.channels.base import InboxSink, OutboundMessage, RateLimits, SendResult
from bot.i18n import N_
from bot.media import MediaError, MediaStore
from bot.web.data import city_center
from bot.web.pages import Pages, json_script
from handlers.events import MAX_TEXT, Inbound, MediaRef, Reply
from handlers.services import AreasLike
from storage.api_repo import ApiRepo
from storage.db import Database
from storage.models import ROLE_ADMIN, ROLE_OFFICER
from storage.repo import Repo

log = logging.getLogger(__name__)

CHANNEL = "web"
SID_RE = re.compile(r"^[0-9a-f]{16,32}$")
MSG_ID_RE = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
MAX_JSON = 64 * 1024
OUTLINE_TOLERANCE = 0.0002  # degrees (~20 m): outlines to see, not to decide (locate decides)

DEMO_MSGIDS = [  # the words demo.js shows (the template's own are translated in it)
    N_("Could not send. Please try again."),
    N_("Finding your location…"),
    N_("Location access was refused. Allow it in the browser, or tap the map."),
    N_("Your location is not available here. Tap the map instead."),
    N_("Looking up the place…"),
    N_("Could not look up the place. Please try again."),
    N_("Kel. {kelurahan}, {kecamatan} — is that right?"),
    N_("Kel. {kelurahan}, {kecamatan}"),
    N_("This point is outside {city}. Move the pin into the city."),
    N_("Tap the map or drag the pin to the right place."),
    N_("Please type the latitude and the longitude as numbers, e.g. {example}."),
]


def external_id(sid: str, persona: str) -> str:
    return f"{sid}.{persona}"


def parse_point(lat: Any, lon: Any) -> tuple[float, float]:
    """(lat, lon) as finite numbers on the globe; ValueError for anything else."""
    if isinstance(lat, bool) or isinstance(lon, bool):
        raise ValueError("lat/lon: numbers expected")
    try:
        la, lo = float(lat), float(lon)
    except (TypeError, ValueError):
        raise ValueError("lat/lon: numbers expected") from None
    if not (math.isfinite(la) and math.isfinite(lo) and abs(la) <= 90 and abs(lo) <= 180):
        raise ValueError("lat/lon: a point on Earth expected (|lat| ≤ 90, |lon| ≤ 180)")
    return la, lo


def kelurahan_outlines(polygons: dict[str, str], city: Any) -> dict[str, Any]:
    """Imported kelurahan polygons (code → GeoJSON text) as a light FeatureCollection."""
    import shapely

    features = []
    for code in sorted(polygons):
        kel = city.kelurahan_by_code(code)
        geom = shapely.from_geojson(polygons[code])
        geom = shapely.set_precision(
            shapely.simplify(geom, OUTLINE_TOLERANCE, preserve_topology=True), 1e-5
        )
        features.append(
            {
                "type": "Feature",
                "properties": {"name": kel.name if kel else code},
                "geometry": json.loads(shapely.to_geojson(geom)),
            }
        )
    return {"type": "FeatureCollection", "features": features}


class WebTransport:
    """Delivers a reply by storing it for the page to fetch."""

    channel = CHANNEL
    limits = RateLimits(global_per_s=0, per_chat_per_s=0)

    def __init__(self, db: Database) -> None:
        self.db = db

    def _store(self, msg: OutboundMessage) -> int:
        with self.db.session() as s:
            row = ApiRepo(s).add_web_message(msg.address, msg.reply.to_payload(), msg.outbox_id)
            assert row.id is not None
            return row.id

    async def send(self, msg: OutboundMessage) -> SendResult:
        try:
            message_id = await asyncio.to_thread(self._store, msg)
        except Exception as exc:
            return SendResult(status="retry", error=f"{type(exc).__name__}: {exc}"[:300])
        return SendResult(status="sent", message_id=str(message_id))


class WebChannel:
    name = CHANNEL

    def __init__(
        self,
        db: Database,
        media: MediaStore,
        pages: Pages,
        city: Any,
        areas: AreasLike,
        *,
        default_locale: str = "id",
        tile_url: str | None = None,
        tile_attribution: str = "",
        leaflet_url: str | None = None,
    ) -> None:
        self.db = db
        self.media = media
        self.pages = pages
        self.city = city
        self.areas = areas
        self._outlines: dict[str, Any] | None = None
        self.default_locale = default_locale
        self.tile_url = tile_url
        self.tile_attribution = tile_attribution
        self.leaflet_url = (leaflet_url or "/static/leaflet").rstrip("/")
        self._transport = WebTransport(db)
        self._inbox: InboxSink | None = None

    @property
    def transport(self) -> WebTransport:
        return self._transport

    # --- lifecycle ---------------------------------------------------------------------------
    async def start(self, inbox: InboxSink) -> None:
        self._inbox = inbox

    async def stop(self) -> None:
        self._inbox = None

    def status(self) -> str:
        return "up" if self._inbox is not None else "down"

    def register_routes(self, app: web.Application) -> None:
        r = app.router
        r.add_get("/demo", self.page)
        r.add_post("/demo/api/session", self.new_session)
        r.add_post("/demo/api/persona", self.set_persona)
        r.add_post("/demo/api/send", self.send)
        r.add_post("/demo/api/photo", self.photo)
        r.add_get("/demo/api/messages", self.messages)
        r.add_get("/demo/api/place", self.place)
        r.add_get("/demo/api/areas.json", self.outlines)

    # --- personas ----------------------------------------------------------------------------
    def personas(self, lang: str) -> list[tuple[str, str]]:
        _ = self.pages.i18n.for_lang(lang).gettext
        out = [("citizen", _("Citizen"))]
        out += [
            (f"officer-{o.code}", _("Officer: {opd}").format(opd=o.short)) for o in self.city.opds
        ]
        out.append(("admin", _("Admin")))
        return out

    def _persona(self, value: Any) -> str:
        persona = str(value or "citizen")
        if persona in ("citizen", "admin"):
            return persona
        if persona.startswith("officer-") and self.city.opd(persona[8:]) is not None:
            return persona
        raise web.HTTPBadRequest(text="unknown persona")

    def _ensure_identity(self, sid: str, persona: str, lang: str) -> None:
        ext = external_id(sid, persona)
        with self.db.session() as s:
            repo = Repo(s)
            ident, _person, _new = repo.get_or_create_identity(CHANNEL, ext, ext, language=lang)
            if persona == "admin":
                repo.set_staff(ident.person_id, ROLE_ADMIN, None)
            elif persona.startswith("officer-"):
                repo.set_staff(ident.person_id, ROLE_OFFICER, persona[8:])

    # --- HTTP --------------------------------------------------------------------------------
    async def page(self, request: web.Request) -> web.Response:
        lang = self.pages.lang(request.query.get("lang"))
        min_lon, min_lat, max_lon, max_lat = self.city.city.bbox
        config = {
            "lang": lang,
            "tz": self.city.city.timezone,
            "t": self.pages.catalog(lang, DEMO_MSGIDS),
            "city": self.city.city.name,
            "center": city_center(self.city),
            "personas": self.personas(lang),
            "tileUrl": self.tile_url,
            "tileAttribution": self.tile_attribution,
            "bbox": [[min_lat, min_lon], [max_lat, max_lon]],
            "kelurahan": [[k.name, k.centroid[0], k.centroid[1]] for k in self.city.kelurahan],
        }
        other = "en" if lang == "id" else "id"
        body = self.pages.render(
            "demo.html",
            lang,
            {
                "lang": lang,
                "other_lang": other,
                "other_lang_label": "English" if other == "en" else "Bahasa Indonesia",
                "city": html.escape(self.city.city.name),
                "config": json_script(config),
                "leaflet": html.escape(self.leaflet_url),
            },
        )
        return web.Response(text=body, content_type="text/html", charset="utf-8")

    async def _json(self, request: web.Request) -> dict[str, Any]:
        if request.content_length is not None and request.content_length > MAX_JSON:
            raise web.HTTPRequestEntityTooLarge(
                max_size=MAX_JSON, actual_size=request.content_length
            )
        try:
            data = json.loads(await request.content.read(MAX_JSON + 1) or b"{}")
        except ValueError:
            raise web.HTTPBadRequest(text="body: JSON expected") from None
        if not isinstance(data, dict):
            raise web.HTTPBadRequest(text="body: a JSON object expected")
        return data

    @staticmethod
    def _sid(value: Any) -> str:
        sid = str(value or "")
        if not SID_RE.match(sid):
            raise web.HTTPBadRequest(text="sid: unknown session")
        return sid

    async def new_session(self, request: web.Request) -> web.Response:
        return web.json_response({"sid": secrets.token_hex(12)})

    async def set_persona(self, request: web.Request) -> web.Response:
        data = await self._json(request)
        sid = self._sid(data.get("sid"))
        persona = self._persona(data.get("persona"))
        lang = self.pages.lang(str(data.get("lang") or self.default_locale))
        await asyncio.to_thread(self._ensure_identity, sid, persona, lang)
        return web.json_response({"ok": True, "persona": persona})

    async def _accept(self, msg_id: Any, sid: str, persona: str, payload: dict[str, Any]) -> bool:
        if not MSG_ID_RE.match(str(msg_id or "")):
            raise web.HTTPBadRequest(text="id: a message id of 8-64 letters/digits is needed")
        if self._inbox is None:
            raise web.HTTPServiceUnavailable(text="the demo is not running")
        ext = external_id(sid, persona)
        payload = {**payload, "sid": sid, "persona": persona}
        return await self._inbox.accept(CHANNEL, f"{ext}:{msg_id}", payload, ext)

    async def send(self, request: web.Request) -> web.Response:
        data = await self._json(request)
        sid = self._sid(data.get("sid"))
        persona = self._persona(data.get("persona"))
        kind = data.get("kind")
        payload: dict[str, Any] = {"kind": kind}
        if kind == "text":
            payload["text"] = str(data.get("text") or "")[:MAX_TEXT]
        elif kind == "choice":
            payload["choice"] = str(data.get("choice") or "")[:64]
        elif kind == "location":
            try:
                payload["lat"], payload["lon"] = parse_point(data.get("lat"), data.get("lon"))
            except ValueError as exc:
                raise web.HTTPBadRequest(text=str(exc)) from None
        else:
            raise web.HTTPBadRequest(text="kind: text, choice or location")
        new = await self._accept(data.get("id"), sid, persona, payload)
        return web.json_response({"ok": True, "new": new})

    async def photo(self, request: web.Request) -> web.Response:
        if request.content_type != "multipart/form-data":
            raise web.HTTPBadRequest(text="multipart/form-data expected")
        fields: dict[str, str] = {}
        data: bytes | None = None
        too_large = False
        reader = await request.multipart()
        while True:
            part = await reader.next()
            if part is None:
                break
            if not isinstance(part, BodyPartReader):
                continue
            if part.name == "photo":
                buf = bytearray()
                while chunk := await part.read_chunk():
                    buf += chunk
                    if len(buf) > self.media.max_bytes:
                        too_large = True
                        break
                data = bytes(buf)
            elif part.name in ("sid", "persona", "id", "caption"):
                fields[part.name] = (await part.text())[:MAX_TEXT]
        sid = self._sid(fields.get("sid"))
        persona = self._persona(fields.get("persona"))
        payload: dict[str, Any] = {"kind": "photo", "text": fields.get("caption") or None}
        if too_large:
            payload["photo_error"] = "too_large"
        elif not data:
            raise web.HTTPBadRequest(text="photo: a file is needed")
        else:
            try:
                ref = await asyncio.to_thread(self.media.store_image, data, None)
                payload["photo"] = asdict(ref)
            except MediaError as exc:
                payload["photo_error"] = exc.code
        new = await self._accept(fields.get("id"), sid, persona, payload)
        return web.json_response({"ok": True, "new": new, "error": payload.get("photo_error")})

    async def messages(self, request: web.Request) -> web.Response:
        sid = self._sid(request.query.get("sid"))
        persona = self._persona(request.query.get("persona"))
        try:
            after = int(request.query.get("after") or 0)
        except ValueError:
            raise web.HTTPBadRequest(text="after: a number") from None
        ext = external_id(sid, persona)

        def load() -> list[dict[str, Any]]:
            with self.db.session() as s:
                rows = ApiRepo(s).web_messages(ext, after=after)
            return [render(r.id or 0, Reply.from_payload(r.payload)) for r in rows]

        return web.json_response({"messages": await asyncio.to_thread(load)})

    async def place(self, request: web.Request) -> web.Response:
        """Which kelurahan a point is in: {"inside": true, "kelurahan", "kecamatan"}, or
        {"inside": false} outside the city; 400 (JSON) for anything but a point."""
        try:
            lat, lon = parse_point(request.query.get("lat"), request.query.get("lon"))
        except ValueError as exc:
            return web.json_response({"error": str(exc)}, status=400)
        hit = self.areas.locate(lat, lon)
        if hit is None:
            return web.json_response({"inside": False})
        return web.json_response(
            {
                "inside": True,
                "kode_kel": hit.kode_kel,
                "kelurahan": hit.nama_kel,
                "kecamatan": hit.nama_kec,
            }
        )

    async def outlines(self, _request: web.Request) -> web.Response:
        if self._outlines is None:

            def load() -> dict[str, Any]:
                with self.db.session() as s:
                    polygons = Repo(s).area_polygons()
                return kelurahan_outlines(polygons, self.city)

            self._outlines = await asyncio.to_thread(load)
        return web.json_response(self._outlines, headers={"Cache-Control": "public, max-age=3600"})

    # --- mapping in --------------------------------------------------------------------------
    async def to_inbound(self, payload: dict[str, Any]) -> list[Inbound]:
        ext = external_id(str(payload.get("sid")), str(payload.get("persona")))
        base: dict[str, Any] = {"channel": CHANNEL, "external_id": ext, "chat_id": ext}
        kind = payload.get("kind")
        if kind == "choice":
            return [Inbound(kind="choice", choice=str(payload.get("choice") or ""), **base)]
        if kind == "location":
            return [
                Inbound(kind="location", lat=payload.get("lat"), lon=payload.get("lon"), **base)
            ]
        if kind == "photo":
            ref = payload.get("photo")
            return [
                Inbound(
                    kind="photo",
                    photo=MediaRef(**ref) if isinstance(ref, dict) else None,
                    photo_error=payload.get("photo_error") or (None if ref else "download_failed"),
                    text=payload.get("text"),
                    **base,
                )
            ]
        text = str(payload.get("text") or "")[:MAX_TEXT]
        if text.startswith("/"):
            head, _, args = text[1:].partition(" ")
            return [
                Inbound(
                    kind="command", command=head.lower()[:32], args=args.strip(), text=text, **base
                )
            ]
        return [Inbound(kind="text", text=text, **base)]


def render(message_id: int, reply: Reply) -> dict[str, Any]:
    """A reply as the demo page draws it."""
    return {
        "id": message_id,
        "text": reply.text,
        "choices": [{"id": c.id, "label": c.label} for c in reply.choices],
        "ask_location": reply.ask_location,
        "location_label": reply.location_label,
        "photo_url": f"/open311/v2/media/{reply.photo.sha256}" if reply.photo else None,
    }


__all__ = ["WebChannel", "WebTransport", "external_id", "render"]
