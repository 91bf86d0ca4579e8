"""Open311 GeoReport v2: listing, filters, privacy, XML, POST through the citizen flow, keys.

Runs the real aiohttp routes (bot.open311.routes) in process against SQLite and PostgreSQL.
`seed_reports` is also used by the web and schema tests and by bench/api.py.
"""

from __future__ import annotations

import io
import json
import random
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import pytest
from aiohttp import FormData
from aiohttp.test_utils import TestClient, TestServer
from PIL import Image
from sqlmodel import select
from yarl import URL

from bot.http import build_web_app
from bot.media import MediaStore
from bot.open311 import Open311
from handlers.events import Inbound
from storage.api_repo import ApiRepo, ReportQuery
from storage.db import Database
from storage.models import (
    STATUS_IN_PROGRESS,
    STATUS_NEW,
    STATUS_REJECTED,
    STATUS_RESOLVED,
    ChannelIdentity,
    OutboxItem,
    Person,
    Photo,
    Report,
    ReportEvent,
)
from storage.repo import Repo
from tests.core_harness import CoreHarness

NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)  # Monday 10:00 in Palu (WITA)
SECRET_NAME = "Budi Santoso Rahasia"
SECRET_PHONE = "+6281299990000"


# --- seeding (shared with other tests and the benchmark) --------------------------------------
def seed_reports(
    db: Database,
    city: Any,
    n: int,
    *,
    now: datetime = NOW,
    seed: int = 7,
    days: int = 120,
    photo_sha: str | None = None,
) -> list[str]:
    """Insert `n` reports spread over `days` days before `now`; returns their codes."""
    rng = random.Random(seed)
    cats = list(city.categories)
    kels = list(city.kelurahan)
    statuses = [STATUS_NEW, STATUS_IN_PROGRESS, STATUS_RESOLVED, STATUS_REJECTED]
    codes: list[str] = []
    with db.session() as s:
        person = Person(language="id", display_name=SECRET_NAME, phone=SECRET_PHONE, created_at=now)
        s.add(person)
        s.flush()
        assert person.id is not None
        reports = []
        for i in range(n):
            cat = cats[i % len(cats)]
            kel = kels[rng.randrange(len(kels))]
            created = now - timedelta(minutes=rng.randrange(days * 24 * 60))
            status = statuses[i % 4]
            lat = kel.centroid[0] + rng.uniform(-0.002, 0.002)
            lon = kel.centroid[1] + rng.uniform(-0.002, 0.002)
            first = (
                created + timedelta(hours=rng.randrange(1, 72)) if status != STATUS_NEW else None
            )
            resolved = (
                created + timedelta(hours=rng.randrange(24, 400))
                if status == STATUS_RESOLVED
                else None
            )
            code = f"{city.city.prefix}-{created:%y%m}-{i + 1:05d}"
            r = Report(
                code=code,
                person_id=person.id,
                channel="telegram",
                category=cat.key,
                description=f"Laporan uji {i}: {cat.label_id}",
                lat=round(lat, 6),
                lon=round(lon, 6),
                place_text="Jl. Rumah Pelapor No. 7",
                location_source="gps",
                kode_kel=kel.code,
                kode_kec=kel.kecamatan,
                status=status,
                opd=city.route(cat.key, kel.kecamatan),
                anonymous=(i % 10 == 9),
                created_at=created,
                updated_at=resolved or first or created,
                first_response_at=first,
                resolved_at=resolved,
            )
            reports.append(r)
            codes.append(code)
        s.add_all(reports)
        s.flush()
        events = []
        for r in reports:
            assert r.id is not None
            events.append(
                ReportEvent(
                    report_id=r.id,
                    kind="created",
                    status_to=STATUS_NEW,
                    actor_person_id=person.id,
                    created_at=r.created_at,
                )
            )
            if r.status != STATUS_NEW:
                assert r.first_response_at is not None
                events.append(
                    ReportEvent(
                        report_id=r.id,
                        kind="status",
                        status_from=STATUS_NEW,
                        status_to=STATUS_IN_PROGRESS,
                        actor_role="officer",
                        note="Tim sudah dijadwalkan",
                        created_at=r.first_response_at,
                    )
                )
                events.append(
                    ReportEvent(
                        report_id=r.id,
                        kind="note",
                        actor_role="officer",
                        note="INTERNAL: hubungi pak RT",
                        internal=True,
                        created_at=r.first_response_at,
                    )
                )
            if r.status in (STATUS_RESOLVED, STATUS_REJECTED):
                events.append(
                    ReportEvent(
                        report_id=r.id,
                        kind="status",
                        status_from=STATUS_IN_PROGRESS,
                        status_to=r.status,
                        actor_role="officer",
                        note="Selesai dikerjakan"
                        if r.status == STATUS_RESOLVED
                        else "Bukan wewenang",
                        created_at=r.resolved_at or r.updated_at,
                    )
                )
            if photo_sha and r.id % 5 == 1:
                s.add(
                    Photo(
                        report_id=r.id,
                        sha256=photo_sha,
                        path=f"{photo_sha[:2]}/{photo_sha}.jpg",
                        mime="image/jpeg",
                        size=1000,
                        created_at=r.created_at,
                    )
                )
        s.add_all(events)
    return codes


def make_key(db: Database, name: str = "e-kelurahan") -> str:
    with db.session() as s:
        _row, raw = ApiRepo(s).create_key(name)
    return raw


def jpeg_bytes(color: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), color).save(buf, "JPEG")
    return buf.getvalue()


# --- fixtures -----------------------------------------------------------------------------
@pytest.fixture
def harness(db_url: str) -> CoreHarness:
    return CoreHarness(db_url)


@pytest.fixture
async def client(harness: CoreHarness, tmp_path: Path) -> AsyncIterator[TestClient[Any, Any]]:
    media = MediaStore(tmp_path / "media", 2_000_000)
    api = Open311(harness.db, harness.svc, media, max_page_size=200)
    app = build_web_app(harness.db, [api.install], lambda: {})
    async with TestClient(TestServer(app)) as c:
        yield c
    harness.db.dispose()


async def get_json(c: TestClient[Any, Any], path: str, expect: int = 200, **params: Any) -> Any:
    resp = await c.get(path, params=params)
    body = await resp.text()
    assert resp.status == expect, body[:500]
    return json.loads(body)


# --- services -------------------------------------------------------------------------------
async def test_services_json_and_xml_list_the_city_categories(
    client: TestClient[Any, Any], harness: CoreHarness
) -> None:
    data = await get_json(client, "/open311/v2/services.json")
    assert [s["service_code"] for s in data] == [c.key for c in harness.city.categories]
    assert all(s["metadata"] is False and s["type"] == "realtime" for s in data)
    english = await get_json(client, "/open311/v2/services.json", lang="en")
    cat = harness.city.categories[0]
    assert english[0]["service_name"] == cat.label_en

    resp = await client.get("/open311/v2/services.xml")
    assert resp.status == 200 and resp.content_type == "application/xml"
    root = ET.fromstring(await resp.read())
    assert root.tag == "services"
    assert [e.findtext("service_code") for e in root.findall("service")] == [
        c.key for c in harness.city.categories
    ]
    one = await get_json(client, f"/open311/v2/services/{cat.key}.json")
    assert one == {"service_code": cat.key, "attributes": []}
    err = await get_json(client, "/open311/v2/services/nope.json", expect=404)
    assert err[0]["code"] == 404


# --- listing and filters ----------------------------------------------------------------------
async def test_requests_filters_paging_and_default_window(
    client: TestClient[Any, Any], harness: CoreHarness
) -> None:
    codes = seed_reports(harness.db, harness.city, 60, days=120)
    with harness.db.session() as s:
        all_reports = list(s.exec(select(Report)))
    window = [r for r in all_reports if r.created_at >= NOW - timedelta(days=90)]

    page1 = await get_json(client, "/open311/v2/requests.json", page_size=200)
    assert {r["service_request_id"] for r in page1} == {r.code for r in window}
    stamps = [r["requested_datetime"] for r in page1]
    assert stamps == sorted(stamps, reverse=True)  # newest first

    everything = await get_json(
        client, "/open311/v2/requests.json", start_date="2000-01-01T00:00:00Z", page_size=200
    )
    assert len(everything) == 60

    closed = await get_json(
        client, "/open311/v2/requests.json", status="closed", start_date="2000-01-01", page_size=200
    )
    assert {r["service_request_id"] for r in closed} == {
        r.code for r in all_reports if r.status in (STATUS_RESOLVED, STATUS_REJECTED)
    }
    assert {r["status"] for r in closed} == {"closed"}
    diproses = await get_json(
        client, "/open311/v2/requests.json", status="diproses", start_date="2000-01-01"
    )
    assert {r["extended_status"] for r in diproses} == {STATUS_IN_PROGRESS}
    assert {r["status"] for r in diproses} == {"open"}

    cat = harness.city.categories[1].key
    by_cat = await get_json(
        client, "/open311/v2/requests.json", service_code=cat, start_date="2000-01-01"
    )
    assert by_cat and {r["service_code"] for r in by_cat} == {cat}
    assert len(by_cat) == sum(1 for r in all_reports if r.category == cat)

    some = codes[:3]
    picked = await get_json(client, "/open311/v2/requests.json", service_request_id=",".join(some))
    assert {r["service_request_id"] for r in picked} == set(some)  # ids ignore the 90-day window

    start, end = NOW - timedelta(days=30), NOW - timedelta(days=10)
    ranged = await get_json(
        client,
        "/open311/v2/requests.json",
        start_date=start.isoformat(),
        end_date=end.isoformat(),
        page_size=200,
    )
    assert {r["service_request_id"] for r in ranged} == {
        r.code for r in all_reports if start <= r.created_at <= end
    }

    opd = all_reports[0].opd
    by_opd = await get_json(
        client,
        "/open311/v2/requests.json",
        agency_responsible=opd,
        start_date="2000-01-01",
        page_size=200,
    )
    assert {r["agency_code"] for r in by_opd} == {opd}
    assert len(by_opd) == sum(1 for r in all_reports if r.opd == opd)

    p1 = await get_json(
        client, "/open311/v2/requests.json", start_date="2000-01-01", page_size=25, page=1
    )
    p3 = await get_json(
        client, "/open311/v2/requests.json", start_date="2000-01-01", page_size=25, page=3
    )
    assert len(p1) == 25 and len(p3) == 10
    assert not {r["service_request_id"] for r in p1} & {r["service_request_id"] for r in p3}


async def test_one_request_has_public_notes_sla_and_no_personal_data(
    client: TestClient[Any, Any], harness: CoreHarness
) -> None:
    seed_reports(harness.db, harness.city, 8, photo_sha="ab" * 32)
    with harness.db.session() as s:
        rows = list(s.exec(select(Report).order_by(Report.id)))
    in_progress = next(r for r in rows if r.status == STATUS_IN_PROGRESS)
    resp = await client.get(f"/open311/v2/requests/{in_progress.code}.json")
    body = await resp.text()
    assert resp.status == 200
    # no names, contacts, typed home address or internal notes in a public answer
    for secret in (SECRET_NAME, SECRET_PHONE, "Jl. Rumah Pelapor", "INTERNAL"):
        assert secret not in body
    (r,) = json.loads(body)
    assert [n["type"] for n in r["notes"]] == ["created", "status"]
    assert [n["label"] for n in r["notes"]] == ["laporan diterima", "Diproses"]  # in words
    assert r["notes"][1]["extended_status"] == STATUS_IN_PROGRESS
    assert r["status_notes"] == "Tim sudah dijadwalkan"
    resp = await client.get(f"/open311/v2/requests/{in_progress.code}.json?lang=en")
    (en,) = json.loads(await resp.text())
    assert [n["label"] for n in en["notes"]] == ["report received", "In progress"]
    opd = harness.city.opd(in_progress.opd)
    assert r["agency_responsible"] == opd.name and r["agency_code"] == in_progress.opd
    # rounded to ~100 m without a key
    assert r["lat"] == round(in_progress.lat, 3) and r["long"] == round(in_progress.lon, 3)
    assert r["lat"] != in_progress.lat
    # SLA deadline: response + resolution working days after creation
    from handlers.workdays import WorkCalendar, deadlines

    resp_days, res_days = harness.city.sla_for(in_progress.category)
    due = deadlines(
        WorkCalendar(harness.city.city.timezone), in_progress.created_at, resp_days, res_days
    )
    assert r["expected_datetime"] == due.resolution_due.isoformat(timespec="seconds")
    assert datetime.fromisoformat(r["expected_datetime"]) > in_progress.created_at + timedelta(
        days=resp_days + res_days
    )  # weekends do not count

    with_photo = next(x for x in rows if x.id is not None and x.id % 5 == 1)
    (p,) = await get_json(client, f"/open311/v2/requests/{with_photo.code}.json")
    assert p["media_url"].endswith("/open311/v2/media/" + "ab" * 32)

    closed = next(x for x in rows if x.status == STATUS_RESOLVED)
    (c,) = await get_json(client, f"/open311/v2/requests/{closed.code}.json")
    assert c["status"] == "closed" and c["expected_datetime"] is None

    missing = await get_json(client, "/open311/v2/requests/PLU-0000-0000.json", expect=404)
    assert missing[0]["code"] == 404


async def test_api_key_shows_exact_location_but_never_for_anonymous_reports(
    client: TestClient[Any, Any], harness: CoreHarness
) -> None:
    seed_reports(harness.db, harness.city, 10)
    key = make_key(harness.db)
    with harness.db.session() as s:
        rows = list(s.exec(select(Report).order_by(Report.id)))
    named = next(r for r in rows if not r.anonymous)
    anon = next(r for r in rows if r.anonymous)
    (a,) = await get_json(client, f"/open311/v2/requests/{named.code}.json", api_key=key)
    assert (a["lat"], a["long"]) == (named.lat, named.lon)
    assert a["place_text"] == named.place_text and a["channel"] == "telegram"
    resp = await client.get(f"/open311/v2/requests/{anon.code}.json", headers={"X-Api-Key": key})
    (b,) = await resp.json()
    assert (b["lat"], b["long"]) == (round(anon.lat, 3), round(anon.lon, 3))
    assert b["anonymous"] is True and b["place_text"] is None
    assert SECRET_NAME not in json.dumps(b)

    bad = await get_json(client, f"/open311/v2/requests/{named.code}.json", 403, api_key="lw_nope")
    assert "api_key" in bad[0]["description"]


async def test_xml_listing_follows_the_spec_shape(
    client: TestClient[Any, Any], harness: CoreHarness
) -> None:
    seed_reports(harness.db, harness.city, 4)
    resp = await client.get("/open311/v2/requests.xml", params={"start_date": "2000-01-01"})
    assert resp.status == 200 and resp.content_type == "application/xml"
    root = ET.fromstring(await resp.read())
    assert root.tag == "service_requests"
    reqs = root.findall("request")
    assert len(reqs) == 4
    first = reqs[0]
    assert first.findtext("status") in ("open", "closed")
    assert first.find("notes/note/datetime") is not None
    err = await client.get("/open311/v2/requests.xml", params={"page_size": "99999"})
    assert err.status == 400
    eroot = ET.fromstring(await err.read())
    assert eroot.tag == "errors" and eroot.findtext("error/code") == "400"


@pytest.mark.parametrize(
    "params",
    [
        {"page_size": "100000"},
        {"page_size": "0"},
        {"page": "-1"},
        {"page": "1e9"},
        {"start_date": "yesterday"},
        {"end_date": "2026-13-45T99:00"},
        {"status": "solved"},
        {"service_request_id": "1' OR '1'='1"},
        {"service_request_id": "PLU-2611-0001; DROP TABLE report"},
        {"service_code": "jalan\x00rusak"},
        {"jurisdiction_id": "jakarta"},
        {"service_code": ",".join(["x"] * 500)},
    ],
)
async def test_bad_query_is_400_with_a_clear_error(
    client: TestClient[Any, Any], params: dict[str, str]
) -> None:
    resp = await client.get("/open311/v2/requests.json", params=params)
    assert resp.status == 400, await resp.text()
    data = await resp.json()
    assert data[0]["code"] == 400 and len(data[0]["description"]) > 5


async def test_sql_like_service_code_just_matches_nothing(client: TestClient[Any, Any]) -> None:
    data = await get_json(client, "/open311/v2/requests.json", service_code="x' OR 1=1 --")
    assert data == []


async def test_odd_but_valid_dates(client: TestClient[Any, Any], harness: CoreHarness) -> None:
    seed_reports(harness.db, harness.city, 6)
    empty = await get_json(
        client, "/open311/v2/requests.json", start_date="2026-11-10", end_date="2026-11-01"
    )
    assert empty == []  # an empty period, not an error
    for start in ("0001-01-01T00:00:00+23:59", "2000-01-01t00:00:00z", "1999-12-31T23:59:60Z"):
        data = await get_json(client, "/open311/v2/requests.json", start_date=start)
        assert len(data) == 6


# --- creating requests -------------------------------------------------------------------------
async def test_post_needs_a_live_key(client: TestClient[Any, Any], harness: CoreHarness) -> None:
    form = {"service_code": harness.city.categories[0].key, "description": "Jalan berlubang besar"}
    resp = await client.post("/open311/v2/requests.json", data=form)
    assert resp.status == 403
    key = make_key(harness.db, "e-warga")
    with harness.db.session() as s:
        assert ApiRepo(s).revoke("e-warga") == 1
    resp = await client.post("/open311/v2/requests.json", data={**form, "api_key": key})
    assert resp.status == 403
    with harness.db.session() as s:
        assert ApiRepo(s).count_reports(ReportQuery()) == 0


async def test_post_creates_a_report_through_the_citizen_flow_and_pushes_to_the_chat(
    client: TestClient[Any, Any], harness: CoreHarness
) -> None:
    # The reporter already talks to the bot on Telegram.
    harness.send(
        Inbound(
            channel="telegram", external_id="555", chat_id="555", kind="command", command="start"
        )
    )
    key = make_key(harness.db)
    kel = harness.city.kelurahan[0]
    cat = harness.city.categories[0]
    resp = await client.post(
        "/open311/v2/requests.json",
        data={
            "api_key": key,
            "service_code": cat.key,
            "description": "Lampu jalan mati sejak seminggu",
            "lat": str(kel.centroid[0]),
            "long": str(kel.centroid[1]),
            "account_id": "telegram:555",
            "first_name": SECRET_NAME,
        },
    )
    body = await resp.text()
    assert resp.status == 200, body
    (created,) = json.loads(body)
    code = created["service_request_id"]
    assert code.startswith(f"{harness.city.city.prefix}-2611-")
    with harness.db.session() as s:
        repo = Repo(s)
        report = repo.report_by_code(code)
        assert report is not None
        assert report.channel == "open311"
        assert report.opd == harness.city.route(cat.key, report.kode_kec)
        assert report.kode_kel == kel.code
        ident = repo.identity("telegram", "555")
        assert ident is not None and report.person_id == ident.person_id
        assert [e.kind for e in repo.events(report.id or 0)] == ["created"]
        person = repo.person(report.person_id)
        assert person is not None and person.display_name != SECRET_NAME  # not stored
        pushes = list(
            s.exec(
                select(OutboxItem).where(
                    OutboxItem.channel == "telegram", OutboxItem.address == "555"
                )
            )
        )
        assert any(code in p.payload["text"] for p in pushes)
        assert not list(s.exec(select(OutboxItem).where(OutboxItem.channel == "open311")))
    (shown,) = await get_json(client, f"/open311/v2/requests/{code}.json")
    assert shown["service_code"] == cat.key and shown["status"] == "open"


async def test_a_whatsapp_number_as_account_is_one_person_told_by_template(
    client: TestClient[Any, Any], harness: CoreHarness
) -> None:
    """`account_id=whatsapp:<phone>` for a number that never wrote: one WhatsApp identity
    for that number (no `last_inbound_at`, so the transport sends templates), the
    confirmation queued to it, and the same person for a second report in another format."""
    key = make_key(harness.db)
    kel = harness.city.kelurahan[0]
    cat = harness.city.categories[0].key
    codes = []
    for account in ("whatsapp:+62 812-3456-7890", "whatsapp:6281234567890"):
        resp = await client.post(
            "/open311/v2/requests.json",
            data={"api_key": key, "service_code": cat, "description": "Lampu jalan mati",
                  "address_id": kel.code, "account_id": account},
        )  # fmt: skip
        body = await resp.text()
        assert resp.status == 200, body
        codes.append(json.loads(body)[0]["service_request_id"])
    with harness.db.session() as s:
        repo = Repo(s)
        [ident] = [i for i in s.exec(select(ChannelIdentity)) if i.channel == "whatsapp"]
        assert (ident.external_id, ident.last_inbound_at) == ("6281234567890", None)
        reports = [repo.report_by_code(c) for c in codes]
        assert {r.person_id for r in reports if r} == {ident.person_id}
        pushes = list(s.exec(select(OutboxItem).where(OutboxItem.channel == "whatsapp")))
        assert [p.kind for p in pushes] == ["status", "status"]
        assert all(p.address == "6281234567890" for p in pushes)
    resp = await client.post(
        "/open311/v2/requests.json",
        data={"api_key": key, "service_code": cat, "description": "Lampu jalan mati",
              "address_id": kel.code, "account_id": "whatsapp:0812345"},
    )  # fmt: skip
    assert resp.status == 400 and "account_id" in await resp.text()


async def test_post_json_xml_and_multipart_photo(
    client: TestClient[Any, Any], harness: CoreHarness
) -> None:
    key = make_key(harness.db)
    kel = harness.city.kelurahan[3]
    cat = harness.city.categories[2].key
    resp = await client.post(
        "/open311/v2/requests.json",
        json={"service_code": cat, "description": "Sampah menumpuk", "address_id": kel.code},
        headers={"X-Api-Key": key},
    )
    assert resp.status == 200, await resp.text()
    xml = (
        f"<request><service_code>{cat}</service_code><description>Got mampet parah</description>"
        f"<address_string>{kel.name}</address_string><anonymous>true</anonymous></request>"
    )
    resp = await client.post(
        "/open311/v2/requests.xml",
        data=xml.encode(),
        headers={"X-Api-Key": key, "Content-Type": "application/xml"},
    )
    text = await resp.text()
    assert resp.status == 200, text
    code_xml = ET.fromstring(text).findtext("request/service_request_id")
    form = FormData()
    form.add_field("api_key", key)
    form.add_field("service_code", cat)
    form.add_field("description", "Pohon tumbang menutup jalan")
    form.add_field("lat", str(kel.centroid[0]))
    form.add_field("long", str(kel.centroid[1]))
    form.add_field("media", jpeg_bytes(), filename="foto.jpg", content_type="image/jpeg")
    resp = await client.post("/open311/v2/requests.json", data=form)
    assert resp.status == 200, await resp.text()
    (created,) = await resp.json()
    (shown,) = await get_json(client, f"/open311/v2/requests/{created['service_request_id']}.json")
    assert shown["media_url"]
    photo = await client.get(URL(shown["media_url"]).path)
    assert photo.status == 200 and photo.content_type == "image/jpeg"
    assert (await photo.read())[:2] == b"\xff\xd8"
    with harness.db.session() as s:
        anon = Repo(s).report_by_code(code_xml or "")
        assert anon is not None and anon.anonymous and anon.kode_kel == kel.code


@pytest.mark.parametrize(
    ("body", "ctype", "says"),
    [
        (b"{not json", "application/json", "body: not valid JSON"),
        (b"\xff\xfe{}", "application/json", "body: not valid JSON"),
        (b"[1, 2]", "application/json", "body: a JSON object is expected"),
        (b'{"service_code": {"a": 1}}', "application/json", "service_code: must be a string"),
        (b"<request><unclosed></request>", "application/xml", "body: not well-formed XML"),
        (
            b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaaaaaaaa">'
            b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;">]>'
            b"<request><description>&b;</description></request>",
            "application/xml",
            "body: XML with a DTD or entities is not accepted",
        ),
        (b"service_code=%FF%FE", "application/x-www-form-urlencoded", "not UTF-8"),
        (b"--nope\r\n\r\n", "multipart/form-data; boundary=xyz", "multipart form"),
        (b"\x00\x01", "image/png", "body: send a form, JSON or XML"),
    ],
)
async def test_post_bad_bodies_are_400_in_plain_words(
    client: TestClient[Any, Any], harness: CoreHarness, body: bytes, ctype: str, says: str
) -> None:
    key = make_key(harness.db)
    resp = await client.post(
        "/open311/v2/requests.json", data=body, headers={"X-Api-Key": key, "Content-Type": ctype}
    )
    assert resp.status == 400, await resp.text()
    (error,) = await resp.json()
    assert error["code"] == 400 and says in error["description"]
    assert not re.search(r"[a-z][A-Z]|Error|Forbidden|Exception", error["description"]), error


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    for i in range(0, len(data), 65536):
        yield data[i : i + 65536]


async def test_post_past_2_mb_is_413_as_documented(
    client: TestClient[Any, Any], harness: CoreHarness
) -> None:
    key = make_key(harness.db)
    doc = await get_json(client, "/open311/v2/openapi.json")
    post = doc["paths"]["/open311/v2/requests.json"]["post"]
    assert "2 MB" in post["responses"]["413"]["description"]
    fields = {"service_code": harness.city.categories[0].key, "description": "x" * 2_100_000}
    big_json = json.dumps(fields).encode()
    headers = {"X-Api-Key": key, "Content-Type": "application/json"}
    for data in (big_json, _chunks(big_json)):  # with a Content-Length, and chunked without
        resp = await client.post("/open311/v2/requests.json", data=data, headers=headers)
        assert resp.status == 413, await resp.text()
        (error,) = await resp.json()
        assert error == {"code": 413, "description": "request body too large (at most 2 MB)"}
    resp = await client.post(
        "/open311/v2/requests.xml", data=fields, headers={"X-Api-Key": key}
    )  # a form, answered in XML
    assert resp.status == 413
    assert ET.fromstring(await resp.text()).findtext("error/code") == "413"
    form = FormData()
    form.add_field("api_key", key)
    form.add_field("media", b"\xff" * 2_100_000, filename="big.jpg", content_type="image/jpeg")
    resp = await client.post("/open311/v2/requests.json", data=form)  # the store takes 2 MB
    assert resp.status == 413
    assert "media: photo too large" in (await resp.json())[0]["description"]


@pytest.mark.parametrize(
    ("fields", "word"),
    [
        ({"service_code": "unknown"}, "service_code"),
        ({"description": "abc"}, "description"),
        ({"lat": "1.0", "long": "100.0"}, "outside"),
        ({"lat": "nan", "long": "119.8"}, "lat"),
        ({"lat": "-\u0660.\u0668\u0668\u0669", "long": "119.8658"}, "lat"),  # Arabic-Indic digits
        ({"long": None}, "both"),
        ({"lat": "", "long": "", "address_string": "zzzzqqqq"}, "address_string"),
        ({"lat": "", "long": "", "address_id": "99.99.99.9999"}, "address_id"),
    ],
)
async def test_post_bad_fields_are_400(
    client: TestClient[Any, Any], harness: CoreHarness, fields: dict[str, str | None], word: str
) -> None:
    key = make_key(harness.db)
    kel = harness.city.kelurahan[0]
    form: dict[str, str | None] = {
        "api_key": key,
        "service_code": harness.city.categories[0].key,
        "description": "Jalan rusak parah",
        "lat": str(kel.centroid[0]),
        "long": str(kel.centroid[1]),
        **fields,
    }
    form = {k: v for k, v in form.items() if v is not None}
    resp = await client.post("/open311/v2/requests.json", data=form)
    assert resp.status == 400, await resp.text()
    assert word in (await resp.json())[0]["description"]


async def test_openapi_document_lists_the_operations(client: TestClient[Any, Any]) -> None:
    doc = await get_json(client, "/open311/v2/openapi.json")
    assert doc["openapi"].startswith("3.0")
    assert set(doc["paths"]) >= {
        "/open311/v2/services.json",
        "/open311/v2/requests.json",
        "/open311/v2/requests/{service_request_id}.json",
    }
    assert "post" in doc["paths"]["/open311/v2/requests.json"]


def test_api_key_is_stored_hashed_and_revocable(sqlite_url: str) -> None:
    db = Database(sqlite_url)
    raw = make_key(db, "e-kelurahan")
    with db.session() as s:
        repo = ApiRepo(s)
        (row,) = repo.keys()
        assert raw not in (row.key_hash, row.prefix) and row.key_hash != raw
        assert raw.startswith(row.prefix)
        assert repo.check_key(raw) is not None
        assert repo.check_key(raw + "x") is None
        assert repo.revoke(row.prefix) == 1
        assert repo.check_key(raw) is None
    db.dispose()
