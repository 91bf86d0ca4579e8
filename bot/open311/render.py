"""Open311 answers: services and requests as the spec's JSON or XML, and error answers.

Privacy: no names or contacts ever; without a key (or for anonymous reports) the location is
rounded to 3 decimals (~100 m) and the typed address is left out.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from xml.etree import ElementTree as ET

from aiohttp import web

from bot.open311.params import aware
from handlers.history import event_label, event_note
from handlers.text import Gettext
from handlers.workdays import WorkCalendar, deadlines
from storage.api_models import ApiKey
from storage.api_repo import ReportRow
from storage.models import (
    OPEN_STATUSES,
    STATUS_IN_PROGRESS,
    STATUS_NEW,
    STATUS_REJECTED,
    STATUS_RESOLVED,
    Report,
)

PREFIX = "/open311/v2"
ROUND_DIGITS = 3  # ~110 m at the equator
SPEC_STATUS = {
    STATUS_NEW: "open",
    STATUS_IN_PROGRESS: "open",
    STATUS_RESOLVED: "closed",
    STATUS_REJECTED: "closed",
}

DeadlineFn = Callable[[Report], datetime | None]


@dataclass
class Caller:
    """Who is asking: `key` is set for a valid API key."""

    key: ApiKey | None
    base_url: str
    lang: str


# --- SLA deadline ------------------------------------------------------------------------------
def default_deadline(city: Any) -> DeadlineFn:
    """Resolution deadline: response + resolution working days of the category (3 + 5 by the
    profile's defaults) on Indonesian working days. Used for a report whose deadline the
    officers' module does not track."""
    cal = WorkCalendar(city.city.timezone)

    @functools.lru_cache(maxsize=65_536)
    def due(category: str, created_at: datetime) -> datetime:
        response, resolution = city.sla_for(category)
        return deadlines(cal, aware(created_at), response, resolution).resolution_due

    def deadline(report: Report) -> datetime | None:
        return due(report.category, report.created_at)

    return deadline


# --- fields ------------------------------------------------------------------------------------
def iso(dt: datetime | None) -> str | None:
    return aware(dt).isoformat(timespec="seconds") if dt is not None else None


def service_dict(city: Any, cat: Any, lang: str) -> dict[str, Any]:
    opd = city.opd(cat.opd)
    return {
        "service_code": cat.key,
        "service_name": cat.label(lang),
        "description": f"{cat.emoji} {cat.label(lang)}".strip(),
        "metadata": False,
        "type": "realtime",
        "keywords": ",".join(cat.keywords[:20]),
        "group": opd.short if opd else cat.opd,
    }


def request_dict(
    city: Any,
    row: ReportRow,
    caller: Caller,
    deadline: DeadlineFn,
    _: Gettext,
    tracked_due: datetime | None = None,
) -> dict[str, Any]:
    """One request as the spec has it; `notes` carry `label`, what happened in words in the
    caller's language (`_`), besides the spec's `type`."""
    r = row.report
    cat = city.category(r.category)
    opd = city.opd(r.opd)
    kel = city.kelurahan_by_code(r.kode_kel) if r.kode_kel else None
    kec = city.kecamatan_by_code(r.kode_kec) if r.kode_kec else None
    exact = caller.key is not None and not r.anonymous
    lat, lon = r.lat, r.lon
    if lat is not None and lon is not None and not exact:
        lat, lon = round(lat, ROUND_DIGITS), round(lon, ROUND_DIGITS)
    notes = [
        {
            "datetime": iso(ev.created_at),
            "type": ev.kind,
            "label": event_label(_, ev.kind, ev.status_to, "public"),
            "status": SPEC_STATUS.get(ev.status_to or "", None),
            "extended_status": ev.status_to,
            "description": event_note(ev.kind, ev.note),
        }
        for ev in row.events
    ]
    last_note = next((n["description"] for n in reversed(notes) if n["description"]), None)
    media = [f"{caller.base_url}{PREFIX}/media/{p.sha256}" for p in row.photos]
    expected = None
    if r.status in OPEN_STATUSES:
        expected = tracked_due or deadline(r)
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
        "requested_datetime": iso(r.created_at),
        "updated_datetime": iso(r.updated_at),
        "expected_datetime": iso(expected),
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
                "first_response_datetime": iso(r.first_response_at),
                "resolved_datetime": iso(r.resolved_at),
            }
        )
    return data


# --- JSON and XML ------------------------------------------------------------------------------
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
    return web.json_response(items, status=status, dumps=dumps)


def dumps(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def error_response(fmt: str, status: int, description: str) -> web.Response:
    return respond(fmt, "errors", "error", [{"code": status, "description": description}], status)
