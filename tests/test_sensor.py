"""Sensor warnings, BMKG quakes and CAP in/out, wired to storage (in-process).

The real process end to end is in tests/test_e2e_warnings.py.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest
from sqlmodel import select

from bot.alerts.cap import (
    CapArea,
    WarningDoc,
    WarningText,
    build_cap,
    parse_cap,
)
from bot.alerts.feeds import BmkgWatcher
from bot.alerts.http import alert_routes
from bot.alerts.mqtt import MqttReadings, broker
from bot.alerts.sensors import Sensors
from bot.alerts.wiring import AlertParts, build_alerts
from bot.city import load_city
from bot.http import HttpServer, build_web_app
from bot.i18n import I18n
from storage.alert_models import KIND_WARNING, Broadcast
from storage.alert_repo import AlertRepo
from storage.db import Database, utcnow
from storage.models import ROLE_ADMIN, OutboxItem
from storage.repo import Repo
from tests.fakes.bmkg import FakeBmkg

SENSOR = "benanga"
AUDIENCE = {"64.72.05.1013", "64.72.08.1003", "64.72.08.1001"}
T0 = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)


@pytest.fixture
def alerts(sqlite_url: str) -> AlertParts:
    return build_alerts(
        Database(sqlite_url), load_city("samarinda"), I18n("id"), sensor_tokens={SENSOR: "s3cret"}
    )


@pytest.fixture
def svc(alerts: AlertParts) -> Sensors:
    return alerts.sensors


def feed(svc: Sensors, values: list[float], start: datetime, step_min: float = 1.0) -> list:
    """Readings one per `step_min` minutes; returns the IngestResults."""
    out = []
    for i, v in enumerate(values):
        ts = start + timedelta(minutes=i * step_min)
        out.append(svc.ingest_reading(SENSOR, {"level_m": v, "ts": ts.isoformat()}, now=ts))
    return out


def warnings(svc: Sensors) -> list[Broadcast]:
    with svc.db.session() as s:
        return [b for b in reversed(AlertRepo(s).recent_broadcasts(100)) if b.kind == KIND_WARNING]


def changes(svc: Sensors) -> list[tuple[str, str]]:
    with svc.db.session() as s:
        return [(c.old_level, c.new_level) for c in AlertRepo(s).level_changes(SENSOR)]


# --- levels → warnings ---------------------------------------------------------------------------
def test_siaga_then_awas_then_falling_back_to_normal(svc: Sensors) -> None:
    rising = [7.0, 7.4, 7.7, 7.80, 8.0, 8.26]
    results = feed(svc, rising, T0)
    assert [r.level for r in results] == ["normal"] * 3 + ["siaga", "siaga", "awas"]
    (siaga, awas) = warnings(svc)
    assert (siaga.level, awas.level) == ("siaga", "awas")
    assert siaga.audience == {"type": "kelurahan", "codes": sorted(AUDIENCE)}
    assert "SIAGA" in siaga.texts["id"] and "7.80 m" in siaga.texts["id"]
    assert "BPBD Kota Samarinda, 2022" in siaga.texts["id"]
    assert "Awas" in awas.texts["en"]
    # falling: below 8.20 (awas − margin) for 15 min → siaga (stored, not broadcast)
    t = T0 + timedelta(minutes=len(rising))
    feed(svc, [8.1] * 17, t)
    assert changes(svc)[-1] == ("awas", "siaga")
    assert len(warnings(svc)) == 2
    # below 7.70 for 15 min → normal: the all clear
    t += timedelta(minutes=17)
    feed(svc, [7.6, 7.4] + [7.3] * 16, t)
    assert changes(svc) == [
        ("normal", "siaga"),
        ("siaga", "awas"),
        ("awas", "siaga"),
        ("siaga", "normal"),
    ]
    clear = warnings(svc)[-1]
    assert clear.level == "normal" and "membaik" in clear.texts["id"]
    with svc.db.session() as s:
        caps = AlertRepo(s).published_warnings()
    assert [w.level for w in reversed(caps)] == ["siaga", "awas", "normal"]


def test_hovering_at_a_threshold_does_not_spam(svc: Sensors) -> None:
    values = [7.74, 7.76] * 30  # an hour right at Siaga's threshold
    feed(svc, values, T0)
    assert changes(svc) == [("normal", "siaga")]
    assert len(warnings(svc)) == 1


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ({"level_m": "tinggi", "ts": T0.isoformat()}, "bad_value"),
        ({"level_m": float("nan"), "ts": T0.isoformat()}, "bad_value"),
        ({"level_m": 99.0, "ts": T0.isoformat()}, "out_of_range"),
        ({"level_m": 8.5, "ts": (T0 + timedelta(hours=2)).isoformat()}, "future"),
        ({"level_m": 8.5, "ts": (T0 - timedelta(hours=3)).isoformat()}, "too_old"),
        ({"level_m": 8.5, "ts": "2026-11-23 10:00:00"}, "naive_ts"),
        ({"level_m": 8.5}, "bad_ts"),
        (["level_m", 8.5], "bad_payload"),
        (None, "bad_payload"),
    ],
)
def test_bad_readings_are_rejected_and_never_alerted_on(
    svc: Sensors, payload: object, reason: str
) -> None:
    result = svc.ingest_reading(SENSOR, payload, now=T0)
    assert (result.accepted, result.reason) == (False, reason)
    assert warnings(svc) == [] and changes(svc) == []
    with svc.db.session() as s:
        row = AlertRepo(s).sensor_state(SENSOR)
    assert row is not None and row.rejected == 1


def test_an_absurd_jump_is_rejected(svc: Sensors) -> None:
    feed(svc, [7.0], T0)
    jump = svc.ingest_reading(
        SENSOR, {"level_m": 9.5, "ts": (T0 + timedelta(seconds=30)).isoformat()}, now=T0
    )
    assert (jump.accepted, jump.reason) == (False, "jump")
    assert warnings(svc) == []


def test_a_silent_sensor_alerts_admins_only_once(svc: Sensors) -> None:
    with svc.db.session() as s:
        repo = Repo(s)
        _i, admin, _ = repo.get_or_create_identity("telegram", "900", "900", language="id")
        assert admin.id is not None
        repo.set_staff(admin.id, ROLE_ADMIN, None)
        _i, citizen, _ = repo.get_or_create_identity("telegram", "901", "901", language="id")
        assert citizen.id is not None
        AlertRepo(s).subscribe(citizen.id, "64.72.05.1013")
    feed(svc, [7.0], T0)
    assert svc.check_silent_sensors(T0 + timedelta(minutes=10)) == []
    assert svc.check_silent_sensors(T0 + timedelta(minutes=31)) == [SENSOR]
    assert svc.check_silent_sensors(T0 + timedelta(minutes=45)) == []  # once
    feed(svc, [7.1], T0 + timedelta(minutes=46))  # back
    with svc.db.session() as s:
        rows = list(s.exec(select(OutboxItem)))
    assert [r.address for r in rows] == ["900", "900"]
    assert "tidak mengirim data" in rows[0].payload["text"]
    assert "kembali mengirim" in rows[1].payload["text"]
    assert warnings(svc) == []


# --- HTTP: readings, CAP in, CAP out -----------------------------------------------------------
@pytest.fixture
async def server(alerts: AlertParts, svc: Sensors) -> AsyncIterator[str]:
    routes = alert_routes(
        svc.db, svc.city, svc, alerts.sources, alerts.broadcasts.wake,
        cap_api_key="cap-key", base_url=lambda r: f"http://{r.host}",
    )  # fmt: skip
    web_app = build_web_app(svc.db, [routes], lambda: {})
    http = HttpServer(web_app, "127.0.0.1", 0)
    port = await http.start()
    yield f"http://127.0.0.1:{port}"
    await http.stop()


async def test_http_reading_needs_the_sensor_token(svc: Sensors, server: str) -> None:
    now = utcnow()
    body = {"level_m": 7.9, "ts": now.isoformat()}
    url = f"{server}/sensors/{SENSOR}/readings"
    async with aiohttp.ClientSession() as http:
        async with http.post(url, json=body) as r:
            assert r.status == 401
        async with http.post(url, json=body, headers={"Authorization": "Bearer wrong"}) as r:
            assert r.status == 401
        async with http.post(f"{server}/sensors/nope/readings", json=body) as r:
            assert r.status == 404
        async with http.post(url, data=b"{garbage", headers={"X-Sensor-Token": "s3cret"}) as r:
            assert r.status == 422 and (await r.json())["reason"] == "bad_payload"
        async with http.post(url, json=body, headers={"Authorization": "Bearer s3cret"}) as r:
            assert r.status == 202
            answer = await r.json()
    assert answer["change"] == ["normal", "siaga"] and answer["broadcast_id"]
    assert [w.level for w in warnings(svc)] == ["siaga"]


def cap_xml(identifier: str, ring: list[tuple[float, float]], status: str = "Actual") -> bytes:
    doc = WarningDoc(
        identifier=identifier,
        sender="bpbd@kaltimprov.go.id",
        sent=utcnow(),
        level="siaga",
        sender_name="BPBD Kalimantan Timur",
        texts=(
            WarningText("id-ID", "Banjir", "Banjir di Samarinda Utara", "Air naik cepat."),
            WarningText("en-US", "Flood", "Flooding in Samarinda Utara", "Water rising fast."),
        ),
        areas=(CapArea("Samarinda Utara", polygons=(tuple(ring),)),),
        status=status,
    )
    return build_cap(doc)


def box(lat: float, lon: float, d: float = 0.004) -> list[tuple[float, float]]:
    return [(lat - d, lon - d), (lat - d, lon + d), (lat + d, lon + d), (lat + d, lon - d)]


async def test_cap_in_warns_the_kelurahan_inside_and_cap_out_publishes_it(
    svc: Sensors, server: str
) -> None:
    kel = svc.city.kelurahan_by_code("64.72.05.1013")
    assert kel is not None
    xml = cap_xml("BPBD-1", box(*kel.centroid))
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{server}/cap", data=xml) as r:
            assert r.status == 401
        headers = {"X-API-Key": "cap-key"}
        async with http.post(f"{server}/cap", data=xml, headers=headers) as r:
            assert r.status == 201, await r.text()
            bid = (await r.json())["broadcast_id"]
        async with http.post(f"{server}/cap", data=xml, headers=headers) as r:
            assert (await r.json())["note"] == "duplicate"
        evil = (
            b'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]><a>&x;</a>'
        )
        async with http.post(f"{server}/cap", data=evil, headers=headers) as r:
            assert r.status == 400
            assert (await r.json())["error"] == (
                "unsafe XML refused: no DTD, entities or external references"
            )  # in plain words, not a Python class name
        far = cap_xml("BPBD-2", box(-6.2, 106.8))  # Jakarta: not our city
        async with http.post(f"{server}/cap", data=far, headers=headers) as r:
            assert r.status == 200 and (await r.json())["broadcast_id"] is None
        exercise = cap_xml("BPBD-3", box(*kel.centroid), status="Exercise")
        async with http.post(f"{server}/cap", data=exercise, headers=headers) as r:
            assert (await r.json())["broadcast_id"] is None
        async with http.get(f"{server}/warnings/feed.atom") as r:
            assert r.status == 200 and "atom" in r.content_type
            atom = await r.text()
        with svc.db.session() as s:
            (pub,) = AlertRepo(s).published_warnings()
        async with http.get(f"{server}/warnings/{pub.id}.xml") as r:
            assert r.content_type == "application/cap+xml"
            ours = parse_cap(await r.read())
        async with http.get(f"{server}/warnings/9999.xml") as r:
            assert r.status == 404
    (bc,) = warnings(svc)
    assert bc.id == bid and "64.72.05.1013" in bc.audience["codes"]
    assert "Sumber: BPBD Kalimantan Timur" in bc.texts["id"]
    assert f"/warnings/{pub.id}.xml" in atom
    assert ours.identifier == pub.identifier and ours.msg_type == "Alert"
    info = ours.info_for("id")
    assert info is not None and info.severity == "Severe"
    assert ("KEMENDAGRI", "64.72.05.1013") in info.areas[0].geocodes


# --- BMKG ---------------------------------------------------------------------------------------
async def test_bmkg_quake_near_warns_once_and_far_does_not(
    alerts: AlertParts, svc: Sensors
) -> None:
    async with FakeBmkg() as bmkg:
        watcher = BmkgWatcher(
            svc.db,
            svc.city,
            alerts.sources,
            alerts.broadcasts.wake,
            autogempa_url=bmkg.url("autogempa.json"),
            nowcast_rss_url=None,
            poll_seconds=1,
        )
        async with aiohttp.ClientSession() as http:
            assert await watcher.poll_quakes(http) == []  # the 2021 sample: too old
            now = utcnow().replace(microsecond=0)
            bmkg.publish_quake(
                DateTime=now.isoformat(),
                Coordinates="-8.50,115.00",
                Magnitude="5.2",
                Wilayah="Bali",
                Dirasakan="III Denpasar",
            )
            assert await watcher.poll_quakes(http) == []  # far from Samarinda
            bmkg.publish_quake(
                DateTime=(now + timedelta(seconds=5)).isoformat(),
                Coordinates="-0.60,117.30",
                Magnitude="5.6",
                Kedalaman="10 km",
                Wilayah="22 km Tenggara SAMARINDA-KALTIM",
                Potensi="Tidak berpotensi tsunami",
                Dirasakan="IV Samarinda",
            )
            (bid,) = await watcher.poll_quakes(http)
            assert await watcher.poll_quakes(http) == []  # deduped
        # a restarted process remembers it too
        again = BmkgWatcher(
            svc.db,
            svc.city,
            alerts.sources,
            alerts.broadcasts.wake,
            autogempa_url=bmkg.url("autogempa.json"),
            nowcast_rss_url=None,
            poll_seconds=1,
        )
        async with aiohttp.ClientSession() as http:
            assert await again.poll_quakes(http) == []
    (bc,) = warnings(svc)
    assert bc.id == bid and bc.source == "bmkg" and bc.audience == {"type": "everyone"}
    assert "Tsunami: “Tidak berpotensi tsunami”" in bc.texts["id"]
    assert bc.texts["id"].rstrip().endswith("Sumber: BMKG")
    assert "Source: BMKG" in bc.texts["en"] and "M5.6" in bc.texts["en"]


async def test_a_bmkg_answer_in_two_pieces_is_read_whole(alerts: AlertParts, svc: Sensors) -> None:
    async with FakeBmkg() as bmkg:
        watcher = BmkgWatcher(
            svc.db,
            svc.city,
            alerts.sources,
            alerts.broadcasts.wake,
            autogempa_url=bmkg.url("autogempa.json"),
            nowcast_rss_url=None,
            poll_seconds=1,
        )
        bmkg.publish_quake(
            DateTime=utcnow().replace(microsecond=0).isoformat(),
            Coordinates="-0.60,117.30",
            Magnitude="5.6",
            Wilayah="22 km Tenggara SAMARINDA-KALTIM",
            Dirasakan="IV Samarinda",
        )
        bmkg.fail_next(1, "split")  # the answer arrives in two TCP pieces, 0.3 s apart
        async with aiohttp.ClientSession() as http:
            (bid,) = await watcher.poll_quakes(http)
    assert bmkg.count("autogempa.json") == 1
    (bc,) = warnings(svc)
    assert bc.id == bid and "M5.6" in bc.texts["en"]


# --- MQTT ---------------------------------------------------------------------------------------
MQTT_URL = os.environ.get("TEST_MQTT_URL", "mqtt://127.0.0.1:1883")


async def _mqtt_reachable() -> bool:
    host, port, _u, _p = broker(MQTT_URL)
    try:
        _r, w = await asyncio.wait_for(asyncio.open_connection(host, port), 2)
    except (OSError, TimeoutError):
        return False
    w.close()
    return True


async def test_mqtt_readings_reach_the_levels(alerts: AlertParts, svc: Sensors) -> None:
    if not await _mqtt_reachable():
        if os.environ.get("LAPOR_SKIP_MQTT") == "1":
            pytest.skip("LAPOR_SKIP_MQTT=1")
        pytest.fail(f"no MQTT broker at {MQTT_URL} (start Mosquitto, see .ci/run)")
    import aiomqtt

    topic = f"lapor/test/{os.getpid()}/benanga"
    object.__setattr__(svc.configs[SENSOR], "topic", topic)
    reader = MqttReadings(svc, alerts.broadcasts.wake, MQTT_URL)
    stop = asyncio.Event()
    task = asyncio.create_task(reader.run(stop))
    try:
        await asyncio.wait_for(reader.connected.wait(), 10)
        host, port, _u, _p = broker(MQTT_URL)
        async with aiomqtt.Client(host, port) as pub:
            now = utcnow()
            await pub.publish(topic, b"not json", qos=1)
            await pub.publish(
                topic, json.dumps({"level_m": 8.3, "ts": now.isoformat()}).encode(), qos=1
            )
        for _ in range(200):
            if warnings(svc):
                break
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
    assert [w.level for w in warnings(svc)] == ["awas"]
    with svc.db.session() as s:
        row = AlertRepo(s).sensor_state(SENSOR)
    assert row is not None and row.rejected == 1  # the garbage, logged and dropped
