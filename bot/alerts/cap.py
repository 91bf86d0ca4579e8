"""CAP 1.2 in and out, and an Atom feed of our warnings.

Parsing untrusted XML only ever goes through defusedxml with DTDs forbidden, after a size
check, so entity bombs and external entities are refused before anything is expanded.
Building uses the stdlib ElementTree (we only serialise our own data).

Coordinates: CAP writes points as ``lat,lon``; `CapArea.polygons` keeps (lat, lon) tuples;
`cap_area_geometry` turns an area into a shapely geometry in lon/lat order.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import ParseError
from defusedxml.ElementTree import fromstring as _defused_fromstring
from shapely.geometry import Polygon as ShapelyPolygon
from shapely.geometry.base import BaseGeometry
from shapely.ops import unary_union

from bot.alerts.audience import geodesic_circle
from bot.alerts.levels import level_rank

CAP_NS = "urn:oasis:names:tc:emergency:cap:1.2"
CAP_NAMESPACES = (CAP_NS, "urn:oasis:names:tc:emergency:cap:1.1")
ATOM_NS = "http://www.w3.org/2005/Atom"
MAX_XML_BYTES = 1_000_000

LatLon = tuple[float, float]


class CapError(ValueError):
    """The document is not an acceptable CAP alert; the message says why."""


class XmlRejected(ValueError):
    """Unsafe, too large or malformed XML."""


def safe_xml(data: bytes | str, max_bytes: int = MAX_XML_BYTES) -> ET.Element:
    """Parse untrusted XML: size limit first, then defusedxml with DTDs/entities forbidden."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    if len(raw) > max_bytes:
        raise XmlRejected(f"document is {len(raw)} bytes, limit {max_bytes}")
    try:
        root: ET.Element = _defused_fromstring(
            raw, forbid_dtd=True, forbid_entities=True, forbid_external=True
        )
    except DefusedXmlException:
        raise XmlRejected("unsafe XML refused: no DTD, entities or external references") from None
    except ParseError as exc:
        raise XmlRejected(f"malformed XML: {exc}") from None
    return root


# --- the parsed model ---------------------------------------------------------------------


@dataclass(frozen=True)
class CapArea:
    area_desc: str
    polygons: tuple[tuple[LatLon, ...], ...] = ()
    circles: tuple[tuple[LatLon, float], ...] = ()  # ((lat, lon), radius_km)
    geocodes: tuple[tuple[str, str], ...] = ()  # (valueName, value)


@dataclass(frozen=True)
class CapInfo:
    language: str
    categories: tuple[str, ...]
    event: str
    urgency: str
    severity: str
    certainty: str
    response_types: tuple[str, ...] = ()
    sender_name: str | None = None
    headline: str | None = None
    description: str | None = None
    instruction: str | None = None
    effective: datetime | None = None
    onset: datetime | None = None
    expires: datetime | None = None
    web: str | None = None
    contact: str | None = None
    event_codes: tuple[tuple[str, str], ...] = ()
    parameters: tuple[tuple[str, str], ...] = ()
    areas: tuple[CapArea, ...] = ()


@dataclass(frozen=True)
class CapReference:
    sender: str
    identifier: str
    sent: datetime

    def to_text(self) -> str:
        return f"{self.sender},{self.identifier},{format_cap_time(self.sent)}"


@dataclass(frozen=True)
class CapAlert:
    identifier: str
    sender: str
    sent: datetime
    status: str
    msg_type: str
    scope: str
    references: tuple[CapReference, ...] = ()
    note: str | None = None
    infos: tuple[CapInfo, ...] = ()

    def info_for(self, language: str = "id") -> CapInfo | None:
        """The info block whose language starts with `language`, else the first."""
        for info in self.infos:
            if info.language.lower().split("-")[0] == language.lower():
                return info
        return self.infos[0] if self.infos else None


# --- parsing ----------------------------------------------------------------------------

STATUSES = {"Actual", "Exercise", "System", "Test", "Draft"}
MSG_TYPES = {"Alert", "Update", "Cancel", "Ack", "Error"}
SCOPES = {"Public", "Restricted", "Private"}


def format_cap_time(ts: datetime) -> str:
    """CAP dateTime: seconds precision, explicit offset, UTC written as ``-00:00``."""
    if ts.tzinfo is None or ts.utcoffset() is None:
        raise ValueError("CAP times need a timezone")
    text = ts.replace(microsecond=0).isoformat()
    return text[:-6] + "-00:00" if text.endswith("+00:00") else text


def parse_cap_time(text: str, what: str) -> datetime:
    raw = text.strip()
    if raw.endswith(("Z", "z")):
        raw = raw[:-1] + "+00:00"
    try:
        ts = datetime.fromisoformat(raw)
    except ValueError:
        raise CapError(f"{what}: not a date-time: {text!r}") from None
    if ts.tzinfo is None:
        raise CapError(f"{what}: date-time without timezone: {text!r}")
    return ts


class _Reader:
    """Namespace-aware child access for one CAP namespace."""

    def __init__(self, ns: str) -> None:
        self.ns = ns

    def q(self, tag: str) -> str:
        return f"{{{self.ns}}}{tag}"

    def all(self, el: ET.Element, tag: str) -> list[ET.Element]:
        return el.findall(self.q(tag))

    def text(self, el: ET.Element, tag: str) -> str | None:
        child = el.find(self.q(tag))
        if child is None or child.text is None:
            return None
        return child.text.strip() or None

    def texts(self, el: ET.Element, tag: str) -> tuple[str, ...]:
        return tuple(c.text.strip() for c in self.all(el, tag) if c.text and c.text.strip())

    def need(self, el: ET.Element, tag: str, where: str) -> str:
        value = self.text(el, tag)
        if value is None:
            raise CapError(f"missing required <{tag}> in <{where}>")
        return value

    def time(self, el: ET.Element, tag: str) -> datetime | None:
        value = self.text(el, tag)
        return parse_cap_time(value, tag) if value is not None else None

    def pairs(self, el: ET.Element, tag: str) -> tuple[tuple[str, str], ...]:
        out = []
        for child in self.all(el, tag):
            name = self.text(child, "valueName")
            value = self.text(child, "value")
            if name is None or value is None:
                raise CapError(f"<{tag}> needs <valueName> and <value>")
            out.append((name, value))
        return tuple(out)


def _point(text: str, what: str) -> LatLon:
    try:
        lat_s, lon_s = text.split(",")
        lat, lon = float(lat_s), float(lon_s)
    except ValueError:
        raise CapError(f"{what}: bad point {text!r} (want 'lat,lon')") from None
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise CapError(f"{what}: point out of range {text!r}")
    return (lat, lon)


def parse_polygon(text: str) -> tuple[LatLon, ...]:
    """``"lat,lon lat,lon ..."`` → closed ring of (lat, lon); at least 4 points once closed."""
    ring = [_point(p, "polygon") for p in text.split()]
    if ring and ring[0] != ring[-1]:
        ring.append(ring[0])
    if len(ring) < 4:
        raise CapError(f"polygon needs at least 3 distinct points, got {len(ring)}")
    return tuple(ring)


def parse_circle(text: str) -> tuple[LatLon, float]:
    """``"lat,lon radius_km"`` → ((lat, lon), radius_km)."""
    parts = text.split()
    if len(parts) != 2:
        raise CapError(f"bad circle {text!r} (want 'lat,lon radius')")
    try:
        radius = float(parts[1])
    except ValueError:
        raise CapError(f"bad circle radius {parts[1]!r}") from None
    if not radius >= 0:
        raise CapError(f"bad circle radius {parts[1]!r}")
    return _point(parts[0], "circle"), radius


def _parse_area(r: _Reader, el: ET.Element) -> CapArea:
    return CapArea(
        area_desc=r.need(el, "areaDesc", "area"),
        polygons=tuple(parse_polygon(t) for t in r.texts(el, "polygon")),
        circles=tuple(parse_circle(t) for t in r.texts(el, "circle")),
        geocodes=r.pairs(el, "geocode"),
    )


def _parse_info(r: _Reader, el: ET.Element) -> CapInfo:
    categories = r.texts(el, "category")
    if not categories:
        raise CapError("missing required <category> in <info>")
    return CapInfo(
        language=r.text(el, "language") or "en-US",
        categories=categories,
        event=r.need(el, "event", "info"),
        urgency=r.need(el, "urgency", "info"),
        severity=r.need(el, "severity", "info"),
        certainty=r.need(el, "certainty", "info"),
        response_types=r.texts(el, "responseType"),
        sender_name=r.text(el, "senderName"),
        headline=r.text(el, "headline"),
        description=r.text(el, "description"),
        instruction=r.text(el, "instruction"),
        effective=r.time(el, "effective"),
        onset=r.time(el, "onset"),
        expires=r.time(el, "expires"),
        web=r.text(el, "web"),
        contact=r.text(el, "contact"),
        event_codes=r.pairs(el, "eventCode"),
        parameters=r.pairs(el, "parameter"),
        areas=tuple(_parse_area(r, a) for a in r.all(el, "area")),
    )


def _parse_references(text: str | None) -> tuple[CapReference, ...]:
    refs = []
    for item in (text or "").split():
        parts = item.split(",")
        if len(parts) != 3:
            raise CapError(f"bad reference {item!r} (want 'sender,identifier,sent')")
        refs.append(CapReference(parts[0], parts[1], parse_cap_time(parts[2], "references")))
    return tuple(refs)


def parse_cap(xml: bytes | str, max_bytes: int = MAX_XML_BYTES) -> CapAlert:
    """Parse a CAP 1.2 (or 1.1) alert; `CapError` says what is wrong."""
    try:
        root = safe_xml(xml, max_bytes)
    except XmlRejected as exc:
        raise CapError(str(exc)) from None
    ns, _, local = root.tag[1:].partition("}") if root.tag.startswith("{") else ("", "", root.tag)
    if local != "alert" or ns not in CAP_NAMESPACES:
        raise CapError(f"not a CAP alert: root element is {root.tag!r}")
    r = _Reader(ns)
    status = r.need(root, "status", "alert")
    msg_type = r.need(root, "msgType", "alert")
    scope = r.need(root, "scope", "alert")
    if status not in STATUSES:
        raise CapError(f"unknown status {status!r}")
    if msg_type not in MSG_TYPES:
        raise CapError(f"unknown msgType {msg_type!r}")
    if scope not in SCOPES:
        raise CapError(f"unknown scope {scope!r}")
    return CapAlert(
        identifier=r.need(root, "identifier", "alert"),
        sender=r.need(root, "sender", "alert"),
        sent=parse_cap_time(r.need(root, "sent", "alert"), "sent"),
        status=status,
        msg_type=msg_type,
        scope=scope,
        references=_parse_references(r.text(root, "references")),
        note=r.text(root, "note"),
        infos=tuple(_parse_info(r, i) for i in r.all(root, "info")),
    )


# --- building our own CAP -------------------------------------------------------------------

# level → (urgency, severity, certainty)
LEVEL_CAP: dict[str, tuple[str, str, str]] = {
    "awas": ("Immediate", "Extreme", "Observed"),
    "siaga": ("Expected", "Severe", "Likely"),
    "waspada": ("Future", "Moderate", "Possible"),
    "normal": ("Past", "Minor", "Observed"),
}


@dataclass(frozen=True)
class WarningText:
    """The human text of a warning in one language (already translated by the caller)."""

    language: str  # "id-ID" or "en-US"
    event: str
    headline: str
    description: str
    instruction: str | None = None


@dataclass(frozen=True)
class WarningDoc:
    """Everything our outgoing CAP document says.

    msgType: ``Cancel`` when `cancel` (needs `references`); else ``Update`` for an all clear
    (level ``normal``) or when `references` are given; else ``Alert``.
    """

    identifier: str
    sender: str  # e.g. "lapor-warga@samarinda.go.id"
    sent: datetime
    level: str
    sender_name: str
    texts: tuple[WarningText, ...]  # id-ID first; en-US optional
    areas: tuple[CapArea, ...]
    category: str = "Met"
    references: tuple[CapReference, ...] = ()
    cancel: bool = False
    certainty: str | None = None  # overrides the level's default
    effective: datetime | None = None
    expires: datetime | None = None
    web: str | None = None
    contact: str | None = None
    status: str = "Actual"

    @property
    def msg_type(self) -> str:
        if self.cancel:
            return "Cancel"
        if self.level == "normal" or self.references:
            return "Update"
        return "Alert"


def _sub(parent: ET.Element, tag: str, text: str | None) -> None:
    if text is not None:
        ET.SubElement(parent, f"{{{CAP_NS}}}{tag}").text = text


def _coord(x: float) -> str:
    return f"{round(x, 6):.6f}".rstrip("0").rstrip(".")


def build_cap(warning: WarningDoc) -> bytes:
    """Our CAP 1.2 document (UTF-8, with XML declaration)."""
    level_rank(warning.level)
    if not warning.texts:
        raise ValueError("a warning needs at least one text")
    if not warning.areas:
        raise ValueError("a warning needs at least one area")
    if warning.cancel and not warning.references:
        raise ValueError("a Cancel must reference the alert it cancels")
    urgency, severity, certainty = LEVEL_CAP[warning.level]
    root = ET.Element(f"{{{CAP_NS}}}alert")
    _sub(root, "identifier", warning.identifier)
    _sub(root, "sender", warning.sender)
    _sub(root, "sent", format_cap_time(warning.sent))
    _sub(root, "status", warning.status)
    _sub(root, "msgType", warning.msg_type)
    _sub(root, "scope", "Public")
    if warning.references:
        _sub(root, "references", " ".join(r.to_text() for r in warning.references))
    for text in warning.texts:
        info = ET.SubElement(root, f"{{{CAP_NS}}}info")
        _sub(info, "language", text.language)
        _sub(info, "category", warning.category)
        _sub(info, "event", text.event)
        if warning.level == "normal":
            _sub(info, "responseType", "AllClear")
        _sub(info, "urgency", urgency)
        _sub(info, "severity", severity)
        _sub(info, "certainty", warning.certainty or certainty)
        if warning.effective:
            _sub(info, "effective", format_cap_time(warning.effective))
        if warning.expires:
            _sub(info, "expires", format_cap_time(warning.expires))
        _sub(info, "senderName", warning.sender_name)
        _sub(info, "headline", text.headline)
        _sub(info, "description", text.description)
        _sub(info, "instruction", text.instruction)
        _sub(info, "web", warning.web)
        _sub(info, "contact", warning.contact)
        for area in warning.areas:
            el = ET.SubElement(info, f"{{{CAP_NS}}}area")
            _sub(el, "areaDesc", area.area_desc)
            for ring in area.polygons:
                _sub(el, "polygon", " ".join(f"{_coord(la)},{_coord(lo)}" for la, lo in ring))
            for (la, lo), radius in area.circles:
                _sub(el, "circle", f"{_coord(la)},{_coord(lo)} {_coord(radius)}")
            for name, value in area.geocodes:
                gc = ET.SubElement(el, f"{{{CAP_NS}}}geocode")
                _sub(gc, "valueName", name)
                _sub(gc, "value", value)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True, default_namespace=CAP_NS)


def kelurahan_geocodes(codes: Sequence[str]) -> tuple[tuple[str, str], ...]:
    """CAP geocodes for Kemendagri kelurahan codes."""
    return tuple(("KEMENDAGRI", c) for c in sorted(codes))


# --- geometry ---------------------------------------------------------------------------


def cap_area_geometry(area: CapArea) -> BaseGeometry:
    """The area's polygons and circles as one shapely geometry (lon/lat order).

    Circles become geodesic polygons (radius in km measured on the WGS84 ellipsoid).  An area
    with only geocodes gives an empty geometry.
    """
    parts: list[BaseGeometry] = [
        ShapelyPolygon([(lon, lat) for lat, lon in r]) for r in area.polygons
    ]
    for (lat, lon), radius in area.circles:
        if radius > 0:
            parts.append(geodesic_circle(lat, lon, radius))
    fixed = [p if p.is_valid else p.buffer(0) for p in parts]
    return unary_union(fixed) if fixed else ShapelyPolygon()


# --- Atom feed --------------------------------------------------------------------------


@dataclass(frozen=True)
class AtomEntry:
    id: str  # a stable URI, e.g. the CAP document URL or "urn:lapor-warga:warning:42"
    title: str
    updated: datetime
    cap_url: str
    summary: str | None = None
    html_url: str | None = None


def _atom_time(ts: datetime) -> str:
    return ts.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def build_atom(
    feed_title: str,
    feed_url: str,
    entries: Sequence[AtomEntry],
    updated: datetime | None = None,
    author: str = "Lapor Warga",
) -> bytes:
    """Atom 1.0 feed; each entry links its CAP document (``application/cap+xml``).

    `updated` defaults to the newest entry; with no entries it is required.
    """
    if updated is None:
        if not entries:
            raise ValueError("an empty feed needs `updated`")
        updated = max(e.updated for e in entries)

    def sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
        el = ET.SubElement(parent, tag, attrs)
        if text is not None:
            el.text = text
        return el

    feed = ET.Element("feed", {"xmlns": ATOM_NS})  # plain tags under a default namespace
    sub(feed, "id", feed_url)
    sub(feed, "title", feed_title)
    sub(feed, "updated", _atom_time(updated))
    sub(feed, "link", href=feed_url, rel="self", type="application/atom+xml")
    sub(sub(feed, "author"), "name", author)
    for e in sorted(entries, key=lambda e: e.updated, reverse=True):
        entry = sub(feed, "entry")
        sub(entry, "id", e.id)
        sub(entry, "title", e.title)
        sub(entry, "updated", _atom_time(e.updated))
        sub(entry, "link", href=e.cap_url, rel="alternate", type="application/cap+xml")
        if e.html_url:
            sub(entry, "link", href=e.html_url, rel="related", type="text/html")
        if e.summary:
            sub(entry, "summary", e.summary)
    return ET.tostring(feed, encoding="utf-8", xml_declaration=True)
