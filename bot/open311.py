"""Open311 GeoReport v2 on the bot's HTTP server, under `/open311/v2/`.

Routes (each as `.json` or `.xml`, as the spec says):

- `GET services` – the city profile's categories; `GET services/{code}` – its definition;
- `GET requests` – filters `service_request_id`, `service_code`, `start_date`, `end_date`,
  `status` (spec: `open`/`closed`; also our statuses `baru`, `diproses`, `selesai`,
  `ditolak`), extensions `agency_responsible` (OPD code), `kecamatan` (code), `page`,
  `page_size`, `lang`;
- `GET requests/{id}` – one report with its public `notes` history;
- `POST requests` – create a report from another city app (API key needed). It goes through
  the citizen flow's `submit` (same code, routing, events, hooks and pushes);
- `GET media/{sha256}` – a report's photo (the `media_url` of a request);
- `GET openapi.json` – the OpenAPI 3 description of all of this.

Privacy: no names or contacts ever; without a key (or for anonymous reports) the location is
rounded to 3 decimals (~100 m) and the typed address is left out.  Bad input is a 400 with a
clear message (Open311 error format), never a 500.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from xml.etree import ElementTree as ET

from aiohttp import BodyPartReader, web
from defusedxml import ElementTree as SafeET

from bot.media import MediaError, MediaStore
from handlers.core import Ctx, Services
from handlers.events import Inbound, MediaRef, Outgoing
from storage.api_models import ApiKey
from storage.api_repo import ApiRepo, ReportQuery, ReportRow
from storage.db import Database
from storage.models import (
    OPEN_STATUSES,
    STATUS_IN_PROGRESS,
    STATUS_NEW,
    STATUS_REJECTED,
    STATUS_RESOLVED,
    STATUSES,
    ChannelIdentity,
    Person,
    Report,
)
from storage.repo import IdentityView, PersonView, Repo

log = logging.getLogger(__name__)

PREFIX = "/open311/v2"
CHANNEL = "open311"  # Report.channel of reports created through the API
MAX_PAGE = 10_000
MAX_LIST = 100  # items in one comma-separated filter
MAX_PARAM = 2000  # characters in one parameter
MAX_BODY = 12 * 1024 * 1024
DEFAULT_WINDOW = timedelta(days=90)  # the spec's default period without dates
ROUND_DIGITS = 3  # ~110 m at the equator
CODE_RE = re.compile(r"^[A-Za-z0-9-]{1,24}$")
SHA_RE = re.compile(r"^[0-9a-f]{64}$")
SPEC_STATUS = {
    STATUS_NEW: "open",
    STATUS_IN_PROGRESS: "open",
    STATUS_RESOLVED: "closed",
    STATUS_REJECTED: "closed",
}

DeadlineFn = Callable[[Report], datetime | None]


class Open311Error(Exception):
    def __init__(self, status: int, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.description = description


# --- SLA deadline ------------------------------------------------------------------------------
def default_deadline(city: Any) -> DeadlineFn:
    """Resolution deadline: response + resolution working days of the category (3 + 5 by the
    profile's defaults), on Indonesian working days when `bot.sla` is there, else calendar
    days. Used when the officers' module keeps no deadline for a report."""
    try:
        from bot.sla import WorkCalendar, deadlines
    except ImportError:  # pragma: no cover - bot.sla is optional
        cal = None
    else:
        cal = WorkCalendar(city.city.timezone)

    @functools.lru_cache(maxsize=65_536)
    def due(category: str, created_at: datetime) -> datetime:
        response, resolution = city.sla_for(category)
        start = _aware(created_at)
        if cal is None:
            return start + timedelta(days=response + resolution)
        return deadlines(cal, start, response, resolution).resolution_due

    def deadline(report: Report) -> datetime | None:
        return due(report.category, report.created_at)

    return deadline


# --- parsing -----------------------------------------------------------------------------------
def _clean(value: str, name: str) -> str:
    if len(value) > MAX_PARAM:
        raise Open311Error(400, f"{name}: too long (at most {MAX_PARAM} characters)")
    if any(ord(c) < 32 and c not in "\t\r\n" for c in value):
        raise Open311Error(400, f"{name}: control characters are not allowed")
    return value.strip()


def _list(params: Any, name: str) -> list[str]:
    raw = params.get(name)
    if raw is None:
        return []
    items = [i.strip() for i in _clean(str(raw), name).split(",") if i.strip()]
    if len(items) > MAX_LIST:
        raise Open311Error(400, f"{name}: at most {MAX_LIST} values")
    return items


def _int(params: Any, name: str, default: int, lo: int, hi: int) -> int:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    raw = _clean(str(raw), name)
    if not re.fullmatch(r"\d{1,9}", raw):
        raise Open311Error(400, f"{name}: must be a whole number from {lo} to {hi}")
    value = int(raw)
    if not lo <= value <= hi:
        raise Open311Error(400, f"{name}: must be from {lo} to {hi}")
    return value


MIN_DATE = datetime(1970, 1, 1, tzinfo=UTC)
MAX_DATE = datetime(9000, 1, 1, tzinfo=UTC)
_LEAP_SECOND = re.compile(r"(T\d\d:\d\d:)60")


def parse_datetime(raw: str, name: str) -> datetime:
    """W3C / RFC 3339 (`2026-11-01T08:00:00+08:00`, `...Z`, or a date); naive means UTC.

    Moments before 1970 or after 9000 are clamped (nothing is stored there)."""
    raw = _LEAP_SECOND.sub(r"\g<1>59", _clean(raw, name).upper())
    try:
        value = _aware(datetime.fromisoformat(raw))
    except ValueError:
        raise Open311Error(
            400, f"{name}: not a W3C date-time (e.g. 2026-11-01T08:00:00+08:00)"
        ) from None
    try:
        return min(max(value.astimezone(UTC), MIN_DATE), MAX_DATE)
    except OverflowError:  # e.g. year 1 with a positive offset
        return MIN_DATE if value.year < 1970 else MAX_DATE


def _float(raw: Any, name: str, lo: float, hi: float) -> float:
    try:
        value = float(_clean(str(raw), name))
    except ValueError:
        raise Open311Error(400, f"{name}: not a number") from None
    if not math.isfinite(value) or not lo <= value <= hi:
        raise Open311Error(400, f"{name}: must be between {lo} and {hi}")
    return value


def _bool(raw: Any) -> bool:
    return str(raw).strip().lower() in ("1", "true", "yes", "ya", "on")


# --- rendering ---------------------------------------------------------------------------------
def _iso(dt: datetime | None) -> str | None:
    return _aware(dt).isoformat(timespec="seconds") if dt is not None else None


def _aware(dt: datetime) -> datetime:
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=UTC)


def to_xml(root: str, item: str, items: list[dict[str, Any]]) -> bytes:
    """The spec's XML: `<root><item><field>value</field>...</item>...</root>`."""
    top = ET.Element(root)
    for data in items:
        _xml_fill(ET.SubElement(top, item), data)
    return b'<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(top, encoding="utf-8")


_XML_CHILD = {
    "notes": "note",
    "media_urls": "media_url",
    "attributes": "attribute",
    "values": "value",
}


def _xml_fill(el: ET.Element, data: dict[str, Any]) -> None:
    for key, value in data.items():
        child = ET.SubElement(el, key)
        if isinstance(value, list):
            for entry in value:
                sub = ET.SubElement(child, _XML_CHILD.get(key, "item"))
                if isinstance(entry, dict):
                    _xml_fill(sub, entry)
                else:
                    sub.text = _xml_text(entry)
        elif isinstance(value, dict):
            _xml_fill(child, value)
        elif value is not None:
            child.text = _xml_text(value)


def _xml_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def respond(
    fmt: str, root: str, item: str, items: list[dict[str, Any]], status: int = 200
) -> web.Response:
    if fmt == "xml":
        return web.Response(
            body=to_xml(root, item, items), status=status, content_type="application/xml"
        )
    return web.json_response(items, status=status, dumps=_dumps)


def _dumps(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def error_response(fmt: str, status: int, description: str) -> web.Response:
    return respond(fmt, "errors", "error", [{"code": status, "description": description}], status)


@dataclass
class Caller:
    """Who is asking: `key` is set for a valid API key."""

    key: ApiKey | None
    base_url: str
    lang: str


# --- the API -------------------------------------------------------------------------------
class Open311:
    def __init__(
        self,
        db: Database,
        services: Services,
        media: MediaStore,
        *,
        max_page_size: int = 500,
        public_base_url: str | None = None,
        on_outbox: Callable[[], None] = lambda: None,
        deadline: DeadlineFn | None = None,
    ) -> None:
        self.db = db
        self.svc = services
        self.city = services.city
        self.media = media
        self.max_page_size = max_page_size
        self.public_base_url = public_base_url.rstrip("/") if public_base_url else None
        self.on_outbox = on_outbox
        self.deadline = deadline or default_deadline(self.city)

    def install(self, app: web.Application) -> None:
        fmt = "{fmt:(json|xml)}"
        r = app.router
        r.add_get(f"{PREFIX}/openapi.json", self.openapi)
        r.add_get(f"{PREFIX}/services.{fmt}", self._wrap(self.services))
        r.add_get(f"{PREFIX}/services/{{code:[^/]+?}}.{fmt}", self._wrap(self.service))
        r.add_get(f"{PREFIX}/requests.{fmt}", self._wrap(self.requests))
        r.add_post(f"{PREFIX}/requests.{fmt}", self._wrap(self.create))
        r.add_get(f"{PREFIX}/requests/{{id:[^/]+?}}.{fmt}", self._wrap(self.request))
        r.add_get(f"{PREFIX}/media/{{sha:[^/.]+}}", self.photo)

    def _wrap(self, fn: Callable[[web.Request, str], Any]) -> Callable[[web.Request], Any]:
        async def handler(request: web.Request) -> web.StreamResponse:
            fmt = request.match_info.get("fmt", "json")
            try:
                result: web.StreamResponse = await fn(request, fmt)
                return result
            except Open311Error as exc:
                return error_response(fmt, exc.status, exc.description)
            except web.HTTPException:
                raise
            except Exception:
                log.exception("open311: %s %s failed", request.method, request.path)
                return error_response(fmt, 500, "internal error")

        return handler

    # --- common -------------------------------------------------------------------------------
    async def _caller(self, request: web.Request, params: Any | None = None) -> Caller:
        params = params if params is not None else request.query
        raw = request.headers.get("X-Api-Key") or params.get("api_key") or ""
        key: ApiKey | None = None
        if raw:
            key = await asyncio.to_thread(self._check_key, str(raw))
            if key is None:
                raise Open311Error(403, "api_key: unknown or revoked key")
        lang = str(params.get("lang") or self.svc.i18n.default)
        lang = lang if lang in ("id", "en") else self.svc.i18n.default
        jurisdiction = params.get("jurisdiction_id")
        if jurisdiction and str(jurisdiction) != self.city.city.key:
            raise Open311Error(400, f"jurisdiction_id: this endpoint serves {self.city.city.key!r}")
        base = self.public_base_url or f"{request.scheme}://{request.host}"
        return Caller(key=key, base_url=base, lang=lang)

    def _check_key(self, raw: str) -> ApiKey | None:
        with self.db.session() as s:
            return ApiRepo(s).check_key(raw)

    # --- services ------------------------------------------------------------------------------
    def service_dict(self, cat: Any, lang: str) -> dict[str, Any]:
        opd = self.city.opd(cat.opd)
        return {
            "service_code": cat.key,
            "service_name": cat.label(lang),
            "description": f"{cat.emoji} {cat.label(lang)}".strip(),
            "metadata": False,
            "type": "realtime",
            "keywords": ",".join(cat.keywords[:20]),
            "group": opd.short if opd else cat.opd,
        }

    async def services(self, request: web.Request, fmt: str) -> web.Response:
        caller = await self._caller(request)
        items = [self.service_dict(c, caller.lang) for c in self.city.categories]
        return respond(fmt, "services", "service", items)

    async def service(self, request: web.Request, fmt: str) -> web.Response:
        await self._caller(request)
        code = request.match_info["code"]
        if self.city.category(code) is None:
            raise Open311Error(404, f"service_code {code[:40]!r} not found")
        definition = {"service_code": code, "attributes": []}
        if fmt == "xml":
            return web.Response(
                body=to_xml("service_definitions", "service_definition", [definition]),
                content_type="application/xml",
            )
        return web.json_response(definition, dumps=_dumps)

    # --- reading requests ----------------------------------------------------------------------
    def _query(self, params: Any) -> ReportQuery:
        statuses: set[str] = set()
        for s in _list(params, "status"):
            s = s.lower()
            if s == "open":
                statuses.update(OPEN_STATUSES)
            elif s == "closed":
                statuses.update((STATUS_RESOLVED, STATUS_REJECTED))
            elif s in STATUSES:
                statuses.add(s)
            else:
                raise Open311Error(
                    400, "status: use open, closed, baru, diproses, selesai, ditolak"
                )
        codes = _list(params, "service_request_id")
        for c in codes:
            if not CODE_RE.match(c):
                raise Open311Error(400, "service_request_id: codes look like PLU-2611-0042")
        start = (
            parse_datetime(params["start_date"], "start_date") if params.get("start_date") else None
        )
        end = parse_datetime(params["end_date"], "end_date") if params.get("end_date") else None
        if start is None and end is None and not codes:
            start = self.svc.clock() - DEFAULT_WINDOW
        elif start is None and end is not None:
            start = end - DEFAULT_WINDOW
        return ReportQuery(
            codes=codes,
            categories=_list(params, "service_code"),
            statuses=sorted(statuses),
            opds=[o.upper() for o in _list(params, "agency_responsible")],
            kecamatan=_list(params, "kecamatan"),
            start=start,
            end=end,
            page=_int(params, "page", 1, 1, MAX_PAGE),
            page_size=_int(
                params, "page_size", min(100, self.max_page_size), 1, self.max_page_size
            ),
        )

    async def requests(self, request: web.Request, fmt: str) -> web.Response:
        caller = await self._caller(request)
        query = self._query(request.query)
        rows: list[ReportRow] = []
        deadlines: dict[int, datetime] = {}
        if query.start and query.end and query.end < query.start:
            pass  # an empty period
        else:
            rows, deadlines = await asyncio.to_thread(self._find, query)
        items = [self.request_dict(r, caller, deadlines.get(r.report.id or 0)) for r in rows]
        resp = respond(fmt, "service_requests", "request", items)
        resp.headers["X-Page"] = str(query.page)
        resp.headers["X-Page-Size"] = str(query.page_size)
        return resp

    def _find(self, query: ReportQuery) -> tuple[list[ReportRow], dict[int, datetime]]:
        with self.db.session() as s:
            repo = ApiRepo(s)
            rows = repo.find_reports(query)
            ids = [r.report.id for r in rows if r.report.id is not None]
            tracked = repo.tracked_deadlines(ids)
        return rows, tracked

    async def request(self, request: web.Request, fmt: str) -> web.Response:
        caller = await self._caller(request)
        code = request.match_info["id"]
        if not CODE_RE.match(code):
            raise Open311Error(400, "service_request_id: codes look like PLU-2611-0042")
        rows, deadlines = await asyncio.to_thread(
            self._find, ReportQuery(codes=[code], page_size=1)
        )
        if not rows:
            raise Open311Error(404, f"service request {code!r} not found")
        row = rows[0]
        return respond(
            fmt,
            "service_requests",
            "request",
            [self.request_dict(row, caller, deadlines.get(row.report.id or 0))],
        )

    def request_dict(
        self, row: ReportRow, caller: Caller, tracked_due: datetime | None = None
    ) -> dict[str, Any]:
        r = row.report
        cat = self.city.category(r.category)
        opd = self.city.opd(r.opd)
        kel = self.city.kelurahan_by_code(r.kode_kel) if r.kode_kel else None
        kec = self.city.kecamatan_by_code(r.kode_kec) if r.kode_kec else None
        exact = caller.key is not None and not r.anonymous
        lat, lon = r.lat, r.lon
        if lat is not None and lon is not None and not exact:
            lat, lon = round(lat, ROUND_DIGITS), round(lon, ROUND_DIGITS)
        notes = [
            {
                "datetime": _iso(ev.created_at),
                "type": ev.kind,
                "status": SPEC_STATUS.get(ev.status_to or "", None),
                "extended_status": ev.status_to,
                "description": ev.note,
            }
            for ev in row.events
        ]
        last_note = next((n["description"] for n in reversed(notes) if n["description"]), None)
        media = [f"{caller.base_url}{PREFIX}/media/{p.sha256}" for p in row.photos]
        expected = None
        if r.status in OPEN_STATUSES:
            expected = tracked_due or self.deadline(r)
        address = None
        if kel is not None:
            address = f"Kel. {kel.name}, Kec. {kec.name if kec else '-'}"
        elif kec is not None:
            address = f"Kec. {kec.name}"
        data: dict[str, Any] = {
            "service_request_id": r.code,
            "status": SPEC_STATUS.get(r.status, "open"),
            "extended_status": r.status,
            "status_notes": last_note,
            "service_name": cat.label(caller.lang) if cat else r.category,
            "service_code": r.category,
            "description": r.description,
            "agency_responsible": opd.name if opd else r.opd,
            "agency_code": r.opd,
            "service_notice": None,
            "requested_datetime": _iso(r.created_at),
            "updated_datetime": _iso(r.updated_at),
            "expected_datetime": _iso(expected),
            "address": address,
            "address_id": r.kode_kel,
            "zipcode": None,
            "lat": lat,
            "long": lon,
            "media_url": media[0] if media else None,
            "media_urls": media,
            "kelurahan": r.kode_kel,
            "kecamatan": r.kode_kec,
            "supporters": r.supporters,
            "notes": notes,
        }
        if caller.key is not None:
            data.update(
                {
                    "anonymous": r.anonymous,
                    "channel": r.channel,
                    "place_text": None if r.anonymous else r.place_text,
                    "first_response_datetime": _iso(r.first_response_at),
                    "resolved_datetime": _iso(r.resolved_at),
                }
            )
        return data

    # --- photos -----------------------------------------------------------------------------------
    async def photo(self, request: web.Request) -> web.StreamResponse:
        sha = request.match_info["sha"]
        if not SHA_RE.match(sha):
            raise web.HTTPNotFound()

        def find() -> Any:
            with self.db.session() as s:
                return ApiRepo(s).photo_by_sha(sha)

        photo = await asyncio.to_thread(find)
        if photo is None:
            raise web.HTTPNotFound()
        path = self.media.root / photo.path
        if not path.is_file():
            raise web.HTTPNotFound()
        return web.FileResponse(
            path, headers={"Content-Type": photo.mime, "Cache-Control": "public, max-age=86400"}
        )

    # --- creating requests -----------------------------------------------------------------------
    async def _body(self, request: web.Request) -> tuple[dict[str, str], bytes | None]:
        """Form (urlencoded or multipart with a `media` file), JSON or XML body → fields."""
        if request.content_length and request.content_length > MAX_BODY:
            raise Open311Error(413, "request body too large")
        ctype = request.content_type
        fields: dict[str, str] = {}
        media: bytes | None = None
        try:
            if ctype == "multipart/form-data":
                reader = await request.multipart()
                while True:
                    part = await reader.next()
                    if part is None:
                        break
                    if not isinstance(part, BodyPartReader) or not part.name:
                        continue
                    if part.name == "media" and part.filename:
                        media = await part.read(decode=False)
                        if len(media) > self.media.max_bytes:
                            raise Open311Error(400, "media: photo too large")
                    else:
                        fields[part.name] = (await part.read(decode=True)).decode("utf-8")
            elif ctype in ("application/json", "text/json"):
                data = json.loads(await request.read() or b"null")
                if not isinstance(data, dict):
                    raise Open311Error(400, "body: a JSON object is expected")
                fields = {str(k): _scalar(v, str(k)) for k, v in data.items()}
            elif ctype in ("application/xml", "text/xml"):
                root = SafeET.fromstring(await request.read())
                fields = {child.tag: (child.text or "") for child in root}
            else:
                form = await request.post()
                fields = {k: v for k, v in form.items() if isinstance(v, str)}
        except Open311Error:
            raise
        except (ValueError, UnicodeDecodeError, ET.ParseError) as exc:
            raise Open311Error(400, f"body: could not be read ({type(exc).__name__})") from None
        except Exception as exc:  # defusedxml refusals, broken multipart
            raise Open311Error(400, f"body: could not be read ({type(exc).__name__})") from None
        return fields, media

    async def create(self, request: web.Request, fmt: str) -> web.Response:
        fields, media = await self._body(request)
        params: dict[str, str] = dict(request.query)
        params.update(fields)
        caller = await self._caller(request, params)
        if caller.key is None:
            raise Open311Error(403, "api_key: a key is needed to create requests")
        draft = self._draft(params)
        ref: MediaRef | None = None
        if media:
            try:
                ref = await asyncio.to_thread(self.media.store_image, media)
            except MediaError as exc:
                raise Open311Error(400, f"media: not a usable photo ({exc.code})") from None
        account = str(params.get("account_id") or "")[:100]
        report, outs = await asyncio.to_thread(self._create, caller.key.name, account, draft, ref)
        if outs:
            self.on_outbox()
        return respond(
            fmt,
            "service_requests",
            "request",
            [
                {
                    "service_request_id": report.code,
                    "service_notice": None,
                    "account_id": account or None,
                }
            ],
        )

    def _draft(self, p: dict[str, str]) -> dict[str, Any]:
        code = _clean(str(p.get("service_code") or ""), "service_code")
        if self.city.category(code) is None:
            raise Open311Error(400, "service_code: unknown (see services.json)")
        desc = _clean(str(p.get("description") or ""), "description")
        if len(desc) < 5:
            raise Open311Error(400, "description: at least 5 characters are needed")
        data: dict[str, Any] = {
            "category": code,
            "description": desc[:2000],
            "photos": [],
            "photos_done": True,
            "anonymous": _bool(p.get("anonymous", "")),
        }
        areas = self.svc.areas
        if p.get("lat") not in (None, "") or p.get("long") not in (None, ""):
            if p.get("lat") in (None, "") or p.get("long") in (None, ""):
                raise Open311Error(400, "lat and long: give both")
            lat = _float(p["lat"], "lat", -90, 90)
            lon = _float(p["long"], "long", -180, 180)
            hit = areas.locate(lat, lon)
            if hit is None:
                raise Open311Error(400, f"lat/long: outside {self.city.city.name}")
            source = "gps"
        elif p.get("address_id"):
            kel = self.city.kelurahan_by_code(_clean(str(p["address_id"]), "address_id"))
            if kel is None:
                raise Open311Error(400, "address_id: not a kelurahan code of this city")
            lat, lon = kel.centroid
            hit = areas.locate(lat, lon)
            source = "typed"
        elif p.get("address_string"):
            text = _clean(str(p["address_string"]), "address_string")[:300]
            matches = areas.match_place(text) if len(text) >= 3 else []
            if not matches:
                raise Open311Error(400, "address_string: place not recognised; send lat/long")
            lat, lon = matches[0].point
            hit = areas.locate(lat, lon)
            data["place_text"] = matches[0].name
            source = "typed"
        else:
            raise Open311Error(400, "location: give lat and long, address_id or address_string")
        data.update(
            lat=round(lat, 6),
            lon=round(lon, 6),
            kode_kel=hit.kode_kel if hit else None,
            nama_kel=hit.nama_kel if hit else None,
            kode_kec=hit.kode_kec if hit else None,
            nama_kec=hit.nama_kec if hit else None,
            location_source=source,
        )
        return data

    def _create(
        self, key_name: str, account: str, draft: dict[str, Any], photo: MediaRef | None
    ) -> tuple[Report, list[Outgoing]]:
        from bot.inbox import write_outgoing
        from handlers.citizen import submit

        if photo is not None:
            draft["photos"] = [
                {"sha256": photo.sha256, "mime": photo.mime, "size": photo.size, "path": photo.path}
            ]
        with self.db.session() as s:
            repo = Repo(s)
            ident, person = self._api_identity(repo, key_name, account)
            event = Inbound(channel=CHANNEL, external_id=ident.external_id, kind="text")
            ctx = Ctx(
                repo=repo,
                svc=self.svc,
                event=event,
                identity=IdentityView.of(ident),
                person=PersonView.of(person),
            )
            report = submit(ctx, draft)
            # The confirmation goes to the reporter's chats (if linked), not to the API.
            confirmation = [o for o in ctx.out if o.channel == CHANNEL]
            outs = [o for o in ctx.out if o.channel != CHANNEL]
            assert person.id is not None
            for ident_row in repo.identities_of(person.id):
                if ident_row.channel == CHANNEL:
                    continue
                for o in confirmation:
                    outs.append(
                        Outgoing(
                            channel=ident_row.channel,
                            address=ident_row.address,
                            identity_id=ident_row.id,
                            reply=o.reply,
                            priority=o.priority,
                            kind="status",
                            meta={**o.meta, "report_id": report.id},
                        )
                    )
            write_outgoing(repo, outs)
        return report, outs

    def _api_identity(
        self, repo: Repo, key_name: str, account: str
    ) -> tuple[ChannelIdentity, Person]:
        """The (inactive) identity of an API account; its person is the chat user that
        `account_id` names (`telegram:123`, `whatsapp:62812...`, `web:...`) if there is one."""
        external = f"{key_name}:{account or '-'}"[:128]
        ident = repo.identity(CHANNEL, external)
        if ident is not None:
            person = repo.person(ident.person_id)
            assert person is not None
            return ident, person
        linked = None
        channel, _, ext = account.partition(":")
        if ext and channel != CHANNEL:
            linked = repo.identity(channel, ext)
        now = self.svc.clock()
        if linked is not None:
            person = repo.person(linked.person_id)
            assert person is not None
        else:
            person = Person(language=self.svc.i18n.default, created_at=now)
            repo.s.add(person)
            repo.s.flush()
        assert person.id is not None
        ident = ChannelIdentity(
            person_id=person.id,
            channel=CHANNEL,
            external_id=external,
            address=external,
            active=False,  # nothing is ever sent to the API "chat"
            created_at=now,
        )
        repo.s.add(ident)
        repo.s.flush()
        return ident, person

    # --- OpenAPI ----------------------------------------------------------------------------------
    async def openapi(self, request: web.Request) -> web.Response:
        return web.json_response(openapi_document(self.city, self.max_page_size), dumps=_dumps)


def _scalar(value: Any, name: str) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, str)):
        return str(value)
    raise Open311Error(400, f"{name}: must be a string or number")


# --- OpenAPI document -------------------------------------------------------------------------
def openapi_document(city: Any, max_page_size: int = 500) -> dict[str, Any]:
    """OpenAPI 3.0 description of the routes above (served at /open311/v2/openapi.json)."""
    nullable_str = {"type": "string", "nullable": True}
    error = {
        "type": "array",
        "items": {
            "type": "object",
            "required": ["code", "description"],
            "properties": {"code": {"type": "integer"}, "description": {"type": "string"}},
        },
    }
    service = {
        "type": "object",
        "required": ["service_code", "service_name", "metadata", "type"],
        "properties": {
            "service_code": {"type": "string"},
            "service_name": {"type": "string"},
            "description": {"type": "string"},
            "metadata": {"type": "boolean"},
            "type": {"type": "string", "enum": ["realtime", "batch", "blackbox"]},
            "keywords": {"type": "string"},
            "group": {"type": "string"},
        },
    }
    note = {
        "type": "object",
        "properties": {
            "datetime": {"type": "string", "format": "date-time"},
            "type": {"type": "string"},
            "status": {"type": "string", "nullable": True, "enum": ["open", "closed", None]},
            "extended_status": nullable_str,
            "description": nullable_str,
        },
    }
    request_schema = {
        "type": "object",
        "required": ["service_request_id", "status", "service_code", "requested_datetime"],
        "properties": {
            "service_request_id": {"type": "string"},
            "status": {"type": "string", "enum": ["open", "closed"]},
            "extended_status": {"type": "string", "enum": list(STATUSES)},
            "status_notes": nullable_str,
            "service_name": {"type": "string"},
            "service_code": {"type": "string"},
            "description": {"type": "string"},
            "agency_responsible": {"type": "string"},
            "agency_code": {"type": "string"},
            "service_notice": nullable_str,
            "requested_datetime": {"type": "string", "format": "date-time"},
            "updated_datetime": {"type": "string", "format": "date-time"},
            "expected_datetime": {"type": "string", "format": "date-time", "nullable": True},
            "address": nullable_str,
            "address_id": nullable_str,
            "zipcode": nullable_str,
            "lat": {"type": "number", "nullable": True},
            "long": {"type": "number", "nullable": True},
            "media_url": nullable_str,
            "media_urls": {"type": "array", "items": {"type": "string"}},
            "kelurahan": nullable_str,
            "kecamatan": nullable_str,
            "supporters": {"type": "integer"},
            "notes": {"type": "array", "items": note},
            "anonymous": {"type": "boolean"},
            "channel": {"type": "string"},
            "place_text": nullable_str,
            "first_response_datetime": {"type": "string", "nullable": True},
            "resolved_datetime": {"type": "string", "nullable": True},
        },
    }
    created = {
        "type": "array",
        "items": {
            "type": "object",
            "required": ["service_request_id"],
            "properties": {
                "service_request_id": {"type": "string"},
                "service_notice": nullable_str,
                "account_id": nullable_str,
            },
        },
    }

    def q(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
        return {
            "name": name,
            "in": "query",
            "required": False,
            "schema": schema,
            "description": description,
        }

    token = "[^\\x00-\\x1f,]{0,24}"
    listed = {"type": "string", "pattern": f"^{token}(,{token}){{0,49}}$"}
    status_word = "(open|closed|baru|diproses|selesai|ditolak)"
    code_re = "[A-Za-z0-9-]{1,24}"
    common = [
        q("jurisdiction_id", {"type": "string", "enum": [city.city.key]}, "optional"),
        q("lang", {"type": "string", "enum": ["id", "en"]}, "language of service names"),
    ]
    list_params = [
        q(
            "service_request_id",
            {"type": "string", "pattern": f"^{code_re}(,{code_re}){{0,49}}$"},
            "comma-separated report codes",
        ),
        q("service_code", listed, "comma-separated category codes"),
        q("start_date", {"type": "string", "format": "date-time"}, "W3C date-time"),
        q("end_date", {"type": "string", "format": "date-time"}, "W3C date-time"),
        q(
            "status",
            {"type": "string", "pattern": f"^{status_word}(,{status_word}){{0,5}}$"},
            "open, closed, or baru/diproses/selesai/ditolak (comma-separated)",
        ),
        q("agency_responsible", listed, "extension: comma-separated OPD codes"),
        q("kecamatan", listed, "extension: comma-separated kecamatan codes"),
        q("page", {"type": "integer", "minimum": 1, "maximum": MAX_PAGE}, "extension"),
        q("page_size", {"type": "integer", "minimum": 1, "maximum": max_page_size}, "extension"),
        q("api_key", {"type": "string"}, "optional: shows non-public fields"),
    ]
    errors = {
        str(code): {
            "description": text,
            "content": {"application/json": {"schema": error}},
        }
        for code, text in (
            ("400", "bad input"),
            ("403", "bad or missing API key"),
            ("404", "not found"),
            ("413", "body too large"),
        )
    }

    def ok(schema: dict[str, Any]) -> dict[str, Any]:
        return {"description": "OK", "content": {"application/json": {"schema": schema}}}

    form_props = {
        "api_key": {"type": "string"},
        "service_code": {"type": "string", "enum": [c.key for c in city.categories]},
        "description": {"type": "string", "minLength": 5, "maxLength": 2000},
        "lat": {"type": "number", "minimum": -90, "maximum": 90},
        "long": {"type": "number", "minimum": -180, "maximum": 180},
        "address_string": {"type": "string"},
        "address_id": {"type": "string"},
        "account_id": {"type": "string"},
        "anonymous": {"type": "boolean"},
        "media_url": {"type": "string"},
    }
    paths: dict[str, Any] = {
        f"{PREFIX}/services.json": {
            "get": {
                "summary": "Service list (the city's report categories)",
                "parameters": common,
                "responses": {"200": ok({"type": "array", "items": service}), **errors},
            }
        },
        f"{PREFIX}/services/{{service_code}}.json": {
            "get": {
                "summary": "Service definition",
                "parameters": [
                    {
                        "name": "service_code",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string", "pattern": "^[a-z][a-z0-9_]{0,39}$"},
                    },
                    *common,
                ],
                "responses": {
                    "200": ok(
                        {
                            "type": "object",
                            "properties": {
                                "service_code": {"type": "string"},
                                "attributes": {"type": "array", "items": {"type": "object"}},
                            },
                        }
                    ),
                    **errors,
                },
            }
        },
        f"{PREFIX}/requests.json": {
            "get": {
                "summary": "Service requests (reports), newest first",
                "parameters": common + list_params,
                "responses": {"200": ok({"type": "array", "items": request_schema}), **errors},
            },
            "post": {
                "summary": "Create a service request (API key needed)",
                "parameters": common,
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/x-www-form-urlencoded": {
                            "schema": {
                                "type": "object",
                                "required": ["service_code", "description"],
                                "properties": form_props,
                            }
                        },
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["service_code", "description"],
                                "properties": form_props,
                            }
                        },
                    },
                },
                "responses": {"200": ok(created), **errors},
            },
        },
        f"{PREFIX}/requests/{{service_request_id}}.json": {
            "get": {
                "summary": "One service request with its notes",
                "parameters": [
                    {
                        "name": "service_request_id",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string", "pattern": f"^{code_re}$"},
                    },
                    *common,
                    q("api_key", {"type": "string"}, "optional: shows non-public fields"),
                ],
                "responses": {"200": ok({"type": "array", "items": request_schema}), **errors},
            }
        },
    }
    return {
        "openapi": "3.0.3",
        "info": {
            "title": f"Lapor Warga {city.city.name} – Open311 GeoReport v2",
            "version": "2.0",
            "description": "Every path also answers as .xml (the spec's XML form). "
            "POST and non-public fields need an API key (query api_key or X-Api-Key).",
        },
        "paths": paths,
        "components": {
            "securitySchemes": {
                "api_key": {"type": "apiKey", "in": "query", "name": "api_key"},
                "api_key_header": {"type": "apiKey", "in": "header", "name": "X-Api-Key"},
            }
        },
    }


__all__ = ["Open311", "Open311Error", "default_deadline", "openapi_document", "parse_datetime"]
