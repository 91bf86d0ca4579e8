"""Open311 input: query values, form fields and request bodies, parsed and checked.

Every refusal is an `Open311Error` (status and a clear description), never a 500.
"""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl
from xml.etree import ElementTree as ET

from aiohttp import BodyPartReader, web
from defusedxml import DefusedXmlException
from defusedxml import ElementTree as SafeET

from bot.http import parse_int, read_body
from storage.api_repo import ReportQuery
from storage.models import (
    OPEN_STATUSES,
    STATUS_REJECTED,
    STATUS_RESOLVED,
    STATUSES,
)

MAX_PAGE = 10_000
MAX_LIST = 100  # items in one comma-separated filter
MAX_PARAM = 2000  # characters in one parameter
MAX_FORM = 2 * 1024 * 1024  # a form, JSON or XML body; a multipart photo may add MAX_PHOTO_BYTES
DEFAULT_WINDOW = timedelta(days=90)  # the spec's default period without dates
CODE_RE = re.compile(r"^[A-Za-z0-9-]{1,24}$")
SHA_RE = re.compile(r"^[0-9a-f]{64}$")


class Open311Error(Exception):
    def __init__(self, status: int, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.description = description


def aware(dt: datetime) -> datetime:
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=UTC)


# --- single values -----------------------------------------------------------------------------
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
    value = parse_int(_clean(str(raw), name), lo, hi)
    if value is None:
        raise Open311Error(400, f"{name}: must be a whole number from {lo} to {hi}")
    return value


MIN_DATE = datetime(1970, 1, 1, tzinfo=UTC)
MAX_DATE = datetime(9000, 1, 1, tzinfo=UTC)
_LEAP_SECOND = re.compile(r"(T\d\d:\d\d:)60")


def parse_datetime(raw: str, name: str) -> datetime:
    """W3C / RFC 3339 (`2026-11-01T08:00:00+08:00`, `...Z`, or a date); naive means UTC.

    Moments before 1970 or after 9000 are clamped (nothing is stored there)."""
    raw = _LEAP_SECOND.sub(r"\g<1>59", _clean(raw, name).upper())
    try:
        value = aware(datetime.fromisoformat(raw))
    except ValueError:
        raise Open311Error(
            400, f"{name}: not a W3C date-time (e.g. 2026-11-01T08:00:00+08:00)"
        ) from None
    try:
        return min(max(value.astimezone(UTC), MIN_DATE), MAX_DATE)
    except OverflowError:  # e.g. year 1 with a positive offset
        return MIN_DATE if value.year < 1970 else MAX_DATE


def _float(raw: Any, name: str, lo: float, hi: float) -> float:
    text = _clean(str(raw), name)
    try:
        if not text.isascii() or "_" in text:  # float() also takes "١٢" and "1_0"
            raise ValueError(text)
        value = float(text)
    except ValueError:
        raise Open311Error(400, f"{name}: not a number") from None
    if not math.isfinite(value) or not lo <= value <= hi:
        raise Open311Error(400, f"{name}: must be between {lo} and {hi}")
    return value


def _bool(raw: Any) -> bool:
    return str(raw).strip().lower() in ("1", "true", "yes", "ya", "on")


def _scalar(value: Any, name: str) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, str)):
        return str(value)
    raise Open311Error(400, f"{name}: must be a string or number")


# --- GET requests: the filters -----------------------------------------------------------------
def report_query(params: Any, now: datetime, max_page_size: int) -> ReportQuery:
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
            raise Open311Error(400, "status: use open, closed, baru, diproses, selesai, ditolak")
    codes = _list(params, "service_request_id")
    for c in codes:
        if not CODE_RE.match(c):
            raise Open311Error(400, "service_request_id: codes look like PLU-2611-0042")
    start = parse_datetime(params["start_date"], "start_date") if params.get("start_date") else None
    end = parse_datetime(params["end_date"], "end_date") if params.get("end_date") else None
    if start is None and end is None and not codes:
        start = now - DEFAULT_WINDOW
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
        page_size=_int(params, "page_size", min(100, max_page_size), 1, max_page_size),
    )


# --- POST requests: the body and the new report's fields ---------------------------------------
JSON_TYPES = ("application/json", "text/json")
XML_TYPES = ("application/xml", "text/xml")
FORM_TYPES = ("application/x-www-form-urlencoded", "application/octet-stream")  # no type: a form


def _mb(size: int) -> str:
    return f"{size / 2**20:.3g} MB"


async def read_fields(request: web.Request, max_media: int) -> tuple[dict[str, str], bytes | None]:
    """Form (urlencoded or multipart with a `media` file), JSON or XML body → fields, read
    whole: 413 past `MAX_FORM` (plus `max_media` for a multipart photo)."""
    ctype = request.content_type
    if ctype == "multipart/form-data":
        return await _multipart(request, max_media)
    try:
        body = await read_body(request, MAX_FORM)
    except web.HTTPRequestEntityTooLarge:
        raise Open311Error(413, f"request body too large (at most {_mb(MAX_FORM)})") from None
    if ctype in JSON_TYPES:
        try:
            data = json.loads(body or b"null")
        except ValueError:
            raise Open311Error(400, "body: not valid JSON") from None
        if not isinstance(data, dict):
            raise Open311Error(400, "body: a JSON object is expected")
        return {str(k): _scalar(v, str(k)) for k, v in data.items()}, None
    if ctype in XML_TYPES:
        try:
            root = SafeET.fromstring(body)
        except DefusedXmlException:
            raise Open311Error(400, "body: XML with a DTD or entities is not accepted") from None
        except ET.ParseError:
            raise Open311Error(400, "body: not well-formed XML") from None
        return {child.tag: (child.text or "") for child in root}, None
    if ctype in FORM_TYPES:
        try:
            text = body.decode(request.charset or "utf-8")
            pairs = parse_qsl(text, keep_blank_values=True, errors="strict")
        except (UnicodeDecodeError, LookupError):
            raise Open311Error(400, "body: the form is not UTF-8 text") from None
        return dict(pairs), None
    raise Open311Error(400, "body: send a form, JSON or XML (see openapi.json)")


async def _multipart(request: web.Request, max_media: int) -> tuple[dict[str, str], bytes | None]:
    cap = MAX_FORM + max_media
    if request.content_length is not None and request.content_length > cap:
        raise Open311Error(413, f"request body too large (at most {_mb(cap)})")
    fields: dict[str, str] = {}
    media: bytes | None = None
    budget = MAX_FORM  # for all the fields together
    try:
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader) or not part.name:
                continue
            if part.name == "media" and part.filename:
                media = await _part(
                    part, max_media, f"media: photo too large (at most {_mb(max_media)})"
                )
                continue
            raw = part.decode(
                await _part(part, budget, f"request body too large (at most {_mb(cap)})")
            )
            budget -= len(raw)
            fields[part.name] = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise Open311Error(400, "body: form fields must be UTF-8 text") from None
    except (ValueError, AssertionError, RuntimeError):  # what aiohttp raises for broken parts
        raise Open311Error(400, "body: not a well-formed multipart form") from None
    return fields, media


async def _part(part: BodyPartReader, limit: int, too_large: str) -> bytes:
    data = bytearray()
    while chunk := await part.read_chunk():
        data += chunk
        if len(data) > limit:
            raise Open311Error(413, too_large)
    return bytes(data)


def draft(p: dict[str, str], city: Any, areas: Any) -> dict[str, Any]:
    """The citizen flow's draft of a new report from the POSTed fields."""
    code = _clean(str(p.get("service_code") or ""), "service_code")
    if city.category(code) is None:
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
    if p.get("lat") not in (None, "") or p.get("long") not in (None, ""):
        if p.get("lat") in (None, "") or p.get("long") in (None, ""):
            raise Open311Error(400, "lat and long: give both")
        lat = _float(p["lat"], "lat", -90, 90)
        lon = _float(p["long"], "long", -180, 180)
        hit = areas.locate(lat, lon)
        if hit is None:
            raise Open311Error(400, f"lat/long: outside {city.city.name}")
        source = "gps"
    elif p.get("address_id"):
        kel = city.kelurahan_by_code(_clean(str(p["address_id"]), "address_id"))
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
