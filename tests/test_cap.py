"""CAP 1.2 parsing/building, Atom feed, area geometry (bot/alerts/cap.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from defusedxml.ElementTree import fromstring as safe_fromstring
from geopy.distance import geodesic
from shapely.geometry import Point

from bot.alerts.cap import (
    CAP_NS,
    AtomEntry,
    CapArea,
    CapError,
    CapReference,
    WarningDoc,
    WarningText,
    build_atom,
    build_cap,
    cap_area_geometry,
    kelurahan_geocodes,
    parse_cap,
)

WITA = timezone(timedelta(hours=8))
SENT = datetime(2026, 11, 23, 10, 5, tzinfo=WITA)
N = f"{{{CAP_NS}}}"

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>&lol9;</identifier></alert>"""

XXE = b"""<?xml version="1.0"?>
<!DOCTYPE alert [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">
  <identifier>&xxe;</identifier><sender>x</sender><sent>2026-01-01T00:00:00+07:00</sent>
  <status>Actual</status><msgType>Alert</msgType><scope>Public</scope>
</alert>"""

MINIMAL = """<?xml version="1.0"?>
<alert xmlns="{ns}">
  <identifier>ID-1</identifier><sender>a@b</sender><sent>{sent}</sent>
  <status>{status}</status><msgType>Alert</msgType><scope>Public</scope>{extra}
</alert>"""


def minimal(ns=CAP_NS, sent="2026-01-01T00:00:00+07:00", status="Actual", extra="") -> bytes:
    return MINIMAL.format(ns=ns, sent=sent, status=status, extra=extra).encode()


def benanga_area() -> CapArea:
    ring = ((-0.45, 117.15), (-0.45, 117.16), (-0.46, 117.16), (-0.46, 117.15), (-0.45, 117.15))
    return CapArea(
        area_desc="Samarinda Utara",
        polygons=(ring,),
        circles=(((-0.4547, 117.1563), 2.5),),
        geocodes=kelurahan_geocodes(["64.72.05.1003", "64.72.05.1001"]),
    )


def warning(**overrides) -> WarningDoc:
    fields = dict(
        identifier="LW-SMD-2026-0007",
        sender="lapor-warga@samarinda.go.id",
        sent=SENT,
        level="awas",
        sender_name="BPBD Kota Samarinda",
        texts=(
            WarningText(
                "id-ID", "Banjir", "Awas banjir", "Tinggi air 8,30 m.", "Segera mengungsi."
            ),
            WarningText("en-US", "Flood", "Flood warning", "Water level 8.30 m.", None),
        ),
        areas=(benanga_area(),),
        expires=SENT + timedelta(hours=6),
        web="https://lapor.example/peringatan/7",
    )
    fields.update(overrides)
    return WarningDoc(**fields)


# --- the real BMKG sample ---------------------------------------------------------------


def test_parse_bmkg_sample(shared_data):
    alert = parse_cap((shared_data / "bmkg" / "nowcast_cap_CBT20260216004.sample.xml").read_bytes())
    assert alert.identifier == "2.49.0.1.360.0.2026.02.16.16.36.004"
    assert alert.sender == "cuaca.ekstrem@bmkg.go.id"
    assert alert.sent == datetime(2026, 2, 16, 15, 50, tzinfo=UTC)
    assert (alert.status, alert.msg_type, alert.scope) == ("Actual", "Alert", "Public")
    (info,) = alert.infos
    assert info.language == "id" and info.categories == ("Met",)
    assert info.event == "Hujan Lebat dan Petir"
    assert (info.urgency, info.severity, info.certainty) == ("Immediate", "Moderate", "Observed")
    assert info.event_codes == (("OET", "OET-194"),)
    assert info.effective == datetime(2026, 2, 16, 16, 0, tzinfo=UTC)
    assert info.expires == datetime(2026, 2, 16, 19, 0, tzinfo=UTC)
    assert info.sender_name == "Badan Meteorologi Klimatologi dan Geofisika"
    assert info.headline == "Hujan Lebat disertai Petir di Banten"
    assert info.description and "Bojonegara" in info.description
    assert info.web and info.web.endswith("infografis.jpg")
    (area,) = info.areas
    assert area.area_desc == "Banten"
    assert len(area.polygons) == 2
    assert area.polygons[0][0] == (-5.981, 105.994)  # lat, lon
    assert area.polygons[0][0] == area.polygons[0][-1] and len(area.polygons[1]) == 19
    geom = cap_area_geometry(area)
    assert geom.is_valid and geom.geom_type == "MultiPolygon"
    assert geom.contains(Point(106.02, -6.01))  # lon/lat: inside the first ring
    assert alert.info_for("id") is info and alert.info_for("en") is info


# --- hostile and broken documents ----------------------------------------------------------


def test_billion_laughs_refused():
    with pytest.raises(CapError, match="unsafe XML"):
        parse_cap(BILLION_LAUGHS)


def test_xxe_refused():
    with pytest.raises(CapError, match="unsafe XML"):
        parse_cap(XXE)


def test_size_limit_checked_before_parsing():
    big = minimal(extra="<note>" + "x" * 1_100_000 + "</note>")
    with pytest.raises(CapError, match="limit"):
        parse_cap(big)
    assert parse_cap(minimal(extra="<note>hi</note>"), max_bytes=10_000).note == "hi"


@pytest.mark.parametrize(
    ("xml", "reason"),
    [
        (b"<rss><channel/></rss>", "not a CAP alert"),
        (minimal(ns="urn:example:other"), "not a CAP alert"),
        (b"<alert><identifier>x</identifier></alert>", "not a CAP alert"),  # no namespace
        (b"<alert", "malformed"),
        (minimal().replace(b"<sender>a@b</sender>", b""), "<sender>"),
        (
            minimal().replace(b"<identifier>ID-1</identifier>", b"<identifier> </identifier>"),
            "identifier",
        ),
        (minimal(status="Maybe"), "status"),
        (minimal(sent="2026-01-01T00:00:00"), "timezone"),
        (minimal(sent="yesterday"), "sent"),
        (minimal(extra="<info><event>x</event></info>"), "<category>"),
        (
            minimal(
                extra="<info><category>Met</category><event>e</event><urgency>Past</urgency>"
                "<severity>Minor</severity><certainty>Observed</certainty>"
                "<area><areaDesc>x</areaDesc><polygon>1,2 3,4</polygon></area></info>"
            ),
            "polygon",
        ),
        (
            minimal(
                extra="<info><category>Met</category><event>e</event><urgency>Past</urgency>"
                "<severity>Minor</severity><certainty>Observed</certainty>"
                "<area><areaDesc>x</areaDesc><circle>-0.45,abc 2</circle></area></info>"
            ),
            "point",
        ),
        (minimal(extra="<references>only-two,parts</references>"), "reference"),
    ],
)
def test_bad_documents_rejected_with_reason(xml, reason):
    with pytest.raises(CapError, match=reason):
        parse_cap(xml)


def test_unclosed_polygon_is_closed_and_cap11_accepted():
    xml = minimal(
        ns="urn:oasis:names:tc:emergency:cap:1.1",
        extra="<info><category>Geo</category><event>e</event><urgency>Past</urgency>"
        "<severity>Minor</severity><certainty>Observed</certainty>"
        "<area><areaDesc>x</areaDesc><polygon>0,0 0,1 1,1</polygon></area></info>",
    )
    ring = parse_cap(xml).infos[0].areas[0].polygons[0]
    assert ring == ((0.0, 0.0), (0.0, 1.0), (1.0, 1.0), (0.0, 0.0))


# --- building and round trip ------------------------------------------------------------


def test_build_structure():
    root = safe_fromstring(build_cap(warning()))
    assert root.tag == f"{N}alert"
    assert root.findtext(f"{N}sent") == "2026-11-23T10:05:00+08:00"
    assert root.findtext(f"{N}status") == "Actual"
    assert root.findtext(f"{N}msgType") == "Alert"
    assert root.findtext(f"{N}scope") == "Public"
    # CAP element order inside <alert>: identifier, sender, sent, status, msgType, scope, info
    tags = [el.tag.removeprefix(N) for el in root]
    assert tags == ["identifier", "sender", "sent", "status", "msgType", "scope", "info", "info"]
    info = root.find(f"{N}info")
    assert info is not None and info.findtext(f"{N}language") == "id-ID"
    area = info.find(f"{N}area")
    assert area is not None
    assert area.findtext(f"{N}circle") == "-0.4547,117.1563 2.5"
    assert area.findtext(f"{N}polygon", "").startswith("-0.45,117.15 -0.45,117.16")
    assert [g.findtext(f"{N}valueName") for g in area.findall(f"{N}geocode")] == ["KEMENDAGRI"] * 2


def test_round_trip():
    doc = warning(
        references=(
            CapReference(
                "lapor-warga@samarinda.go.id", "LW-SMD-2026-0006", SENT - timedelta(hours=1)
            ),
        )
    )
    alert = parse_cap(build_cap(doc))
    assert (alert.identifier, alert.sender, alert.sent) == (doc.identifier, doc.sender, doc.sent)
    assert (alert.status, alert.msg_type, alert.scope) == ("Actual", "Update", "Public")
    assert alert.references == doc.references
    id_info, en_info = alert.infos
    for info, text in zip(alert.infos, doc.texts, strict=True):
        assert info.language == text.language
        assert (info.event, info.headline, info.description, info.instruction) == (
            text.event,
            text.headline,
            text.description,
            text.instruction,
        )
        assert (info.urgency, info.severity, info.certainty) == ("Immediate", "Extreme", "Observed")
        assert info.categories == ("Met",) and info.sender_name == doc.sender_name
        assert info.expires == doc.expires and info.web == doc.web
        assert info.areas == doc.areas
    assert alert.info_for("en") is en_info and alert.info_for("id") is id_info


@pytest.mark.parametrize(
    ("level", "expected"),
    [
        ("awas", ("Alert", "Immediate", "Extreme")),
        ("siaga", ("Alert", "Expected", "Severe")),
        ("waspada", ("Alert", "Future", "Moderate")),
        ("normal", ("Update", "Past", "Minor")),
    ],
)
def test_level_mapping(level, expected):
    alert = parse_cap(build_cap(warning(level=level)))
    info = alert.infos[0]
    assert (alert.msg_type, info.urgency, info.severity) == expected
    assert (info.response_types == ("AllClear",)) == (level == "normal")


def test_cancel_needs_reference_and_utc_written_as_minus_zero():
    with pytest.raises(ValueError):
        build_cap(warning(cancel=True))
    ref = CapReference("s", "LW-1", datetime(2026, 11, 23, 1, 0, tzinfo=UTC))
    xml = build_cap(
        warning(cancel=True, references=(ref,), level="normal", sent=SENT.astimezone(UTC))
    )
    assert b"<msgType>Cancel</msgType>" in xml
    assert b"<sent>2026-11-23T02:05:00-00:00</sent>" in xml
    assert b"s,LW-1,2026-11-23T01:00:00-00:00" in xml
    assert parse_cap(xml).references == (ref,)


def test_build_rejects_naive_time_and_unknown_level():
    with pytest.raises(ValueError):
        build_cap(warning(sent=datetime(2026, 11, 23, 10, 0)))
    with pytest.raises(ValueError):
        build_cap(warning(level="bahaya"))


def test_text_is_escaped():
    text = WarningText("id-ID", "Banjir", 'A <b> & "c"', "x ]]> y")
    alert = parse_cap(build_cap(warning(texts=(text,))))
    assert alert.infos[0].headline == 'A <b> & "c"' and alert.infos[0].description == "x ]]> y"


# --- geometry ---------------------------------------------------------------------------


def test_circle_geometry_radius_in_metres():
    area = CapArea("c", circles=(((-0.4547, 117.1563), 2.0),))
    geom = cap_area_geometry(area)
    edge = geodesic(kilometers=1.95).destination((-0.4547, 117.1563), bearing=45)
    outside = geodesic(kilometers=2.05).destination((-0.4547, 117.1563), bearing=45)
    assert geom.contains(Point(edge.longitude, edge.latitude))
    assert not geom.contains(Point(outside.longitude, outside.latitude))
    assert cap_area_geometry(CapArea("only codes", geocodes=(("KEMENDAGRI", "x"),))).is_empty


# --- Atom -------------------------------------------------------------------------------


def test_atom_feed_well_formed_and_links_cap():
    A = "{http://www.w3.org/2005/Atom}"
    entries = [
        AtomEntry(
            "urn:lapor-warga:warning:6",
            "Siaga banjir",
            SENT - timedelta(hours=2),
            "https://x/cap/6.xml",
        ),
        AtomEntry(
            "urn:lapor-warga:warning:7",
            "Awas banjir & longsor",
            SENT,
            "https://x/cap/7.xml",
            summary="Tinggi air 8,30 m",
        ),
    ]
    root = safe_fromstring(build_atom("Peringatan Samarinda", "https://x/feed.atom", entries))
    assert root.tag == f"{A}feed"
    assert root.findtext(f"{A}updated") == "2026-11-23T02:05:00Z"
    got = root.findall(f"{A}entry")
    assert [e.findtext(f"{A}id") for e in got] == [
        "urn:lapor-warga:warning:7",
        "urn:lapor-warga:warning:6",
    ]
    assert got[0].findtext(f"{A}title") == "Awas banjir & longsor"
    link = got[0].find(f"{A}link")
    assert link is not None
    assert link.attrib == {
        "href": "https://x/cap/7.xml",
        "rel": "alternate",
        "type": "application/cap+xml",
    }
    with pytest.raises(ValueError):
        build_atom("t", "https://x/feed.atom", [])
    empty = safe_fromstring(build_atom("t", "https://x/feed.atom", [], updated=SENT))
    assert empty.findall(f"{A}entry") == []
