"""BMKG parsing, relevance, polling logic and the fake server (bot/alerts/bmkg.py)."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest

from bot.alerts.bmkg import (
    BmkgFormatError,
    BmkgPoller,
    QuakeRule,
    RateLimiter,
    felt_in,
    parse_autogempa,
    parse_gempa_list,
    parse_nowcast_rss,
    quake_relevance,
    rules_from_config,
)
from bot.alerts.cap import parse_cap
from tests.fakes.bmkg import FakeBmkg

PALU = (-0.8917, 119.8707)
SAMARINDA = (-0.5022, 117.1536)
PALU_RULES = rules_from_config(
    [
        {"max_distance_km": 150, "min_magnitude": 5.0},
        {"felt": True, "min_magnitude": 3.0, "names": ["Palu", "Donggala", "Sigi"]},
    ]
)


def quake_doc(**fields) -> dict:
    base = {
        "Tanggal": "05 Okt 2021",
        "Jam": "18:00:27 WIB",
        "DateTime": "2021-10-05T11:00:27+00:00",
        "Coordinates": "-8.15,118.10",
        "Lintang": "8.15 LS",
        "Bujur": "118.10 BT",
        "Magnitude": "4.5",
        "Kedalaman": "20 km",
        "Wilayah": "Pusat gempa berada di darat 58 km Barat Laut Dompu",
    }
    base.update(fields)
    return {"Infogempa": {"gempa": {k: v for k, v in base.items() if v is not None}}}


# --- parsing the real samples ---------------------------------------------------------------


def test_autogempa_sample(shared_data):
    q = parse_autogempa((shared_data / "bmkg" / "autogempa.sample.json").read_bytes())
    assert q.time == datetime(2021, 10, 5, 11, 0, 27, tzinfo=UTC)
    assert (q.lat, q.lon) == (-8.15, 118.10)
    assert q.magnitude == 4.5 and q.depth_km == 20.0
    assert q.region == "Pusat gempa berada di darat 58 km Barat Laut Dompu"
    assert q.potensi == "Gempa ini dirasakan untuk diteruskan pada masyarakat"
    assert q.dirasakan == "II Dompu"
    assert q.shakemap_url == "https://data.bmkg.go.id/DataMKG/TEWS/20211005180027.mmi.jpg"
    assert q.source == "BMKG"
    assert not q.tsunami_potential
    assert q.event_id == "20211005T110027Z_-8.15_118.10_M4.5"


def test_gempaterkini_sample(shared_data):
    quakes = parse_gempa_list((shared_data / "bmkg" / "gempaterkini.sample.json").read_bytes())
    assert len(quakes) == 15
    assert all(q.magnitude >= 5.0 for q in quakes)
    first = quakes[0]
    assert first.time == datetime(2023, 7, 12, 8, 39, 35, tzinfo=UTC)
    assert (first.lat, first.lon, first.depth_km) == (-10.01, 118.81, 10.0)
    assert first.potensi == "Tidak berpotensi tsunami" and first.dirasakan is None
    assert quakes[1].lat == 3.65  # LU → north, positive
    assert len({q.event_id for q in quakes}) == 15
    assert any("TANIBAR" in q.region for q in quakes)  # BMKG's own spelling kept


def test_gempadirasakan_sample(shared_data):
    quakes = parse_gempa_list((shared_data / "bmkg" / "gempadirasakan.sample.json").read_bytes())
    assert len(quakes) == 15
    assert quakes[0].dirasakan == "II-III Bengkulu Utara, II-III Bengkulu Selatan"
    # date in WIB is the next day: DateTime (UTC) wins
    q = next(q for q in quakes if q.region.endswith("Morowali"))
    assert q.time == datetime(2025, 12, 20, 22, 59, 21, tzinfo=UTC)


# --- odd spellings and broken input ---------------------------------------------------------


def test_lintang_bujur_when_no_coordinates():
    q = parse_autogempa(quake_doc(Coordinates=None, Lintang="0.59 LS", Bujur="119.84 BT"))
    assert (q.lat, q.lon) == (-0.59, 119.84)
    q = parse_autogempa(quake_doc(Coordinates=None, Lintang="1,47 LU", Bujur="126.34 BT"))
    assert (q.lat, q.lon) == (1.47, 126.34)


def test_time_from_tanggal_jam_when_no_datetime():
    q = parse_autogempa(quake_doc(DateTime=None, Tanggal="28 Sep 2018", Jam="18:02:44 WITA"))
    assert q.time == datetime(2018, 9, 28, 10, 2, 44, tzinfo=UTC)
    q = parse_autogempa(quake_doc(DateTime=None, Tanggal="05 Okt 2021", Jam="18:00:27 WIB"))
    assert q.time == datetime(2021, 10, 5, 11, 0, 27, tzinfo=UTC)


def test_odd_number_spellings():
    q = parse_autogempa(quake_doc(Magnitude="M 7,4", Kedalaman="11 Km", Potensi="-", Dirasakan=""))
    assert q.magnitude == 7.4 and q.depth_km == 11.0
    assert q.potensi is None and q.dirasakan is None
    assert parse_autogempa(quake_doc(Magnitude=5, Kedalaman=None)).depth_km is None


def test_tsunami_potential():
    assert parse_autogempa(quake_doc(Potensi="Berpotensi TSUNAMI")).tsunami_potential
    assert not parse_autogempa(quake_doc(Potensi="Tidak berpotensi tsunami")).tsunami_potential


@pytest.mark.parametrize(
    "payload",
    [
        b"<html>502 Bad Gateway</html>",
        b"",
        b"[]",
        b'{"Infogempa": {}}',
        json.dumps({"Infogempa": {"gempa": "x"}}).encode(),
        json.dumps(quake_doc(Magnitude="besar")).encode(),
        json.dumps(quake_doc(Magnitude=float("nan"))).encode(),
        json.dumps(quake_doc(Coordinates="-8.15", Lintang=None)).encode(),
        json.dumps(quake_doc(Coordinates=None, Lintang="8.15 XX")).encode(),
        json.dumps(quake_doc(Coordinates="-98.0,118.0")).encode(),
        json.dumps(quake_doc(DateTime=None, Tanggal="31 Feb 2021")).encode(),
        json.dumps(quake_doc(DateTime="kemarin", Jam=None)).encode(),
        b"\xff\xfe\x00",
    ],
)
def test_malformed_raises_format_error(payload):
    with pytest.raises(BmkgFormatError):
        parse_autogempa(payload)


def test_list_skips_broken_entries_but_not_all(shared_data):
    doc = json.loads((shared_data / "bmkg" / "gempaterkini.sample.json").read_bytes())
    doc["Infogempa"]["gempa"][3]["Magnitude"] = "?"
    doc["Infogempa"]["gempa"].append("junk")
    assert len(parse_gempa_list(doc)) == 14
    with pytest.raises(BmkgFormatError):
        parse_gempa_list({"Infogempa": {"gempa": ["junk", {"Magnitude": "5"}]}})


# --- relevance --------------------------------------------------------------------------


def test_near_strong_quake_is_relevant_for_palu_not_samarinda():
    # 2018 Palu quake: M7.4, epicentre ≈ 0.18 LS 119.85 BT, ≈ 80 km north of Palu
    q = parse_autogempa(quake_doc(Coordinates="-0.18,119.85", Magnitude="7.4"))
    rel = quake_relevance(q, PALU, PALU_RULES, city_names=["Palu"])
    assert rel is not None and rel.rule == PALU_RULES[0]
    assert 75 < rel.distance_km < 85 and not rel.felt
    assert quake_relevance(q, SAMARINDA, PALU_RULES) is None  # ≈ 300 km away


def test_far_or_weak_quake_not_relevant():
    far = parse_autogempa(quake_doc(Coordinates="-2.30,119.85", Magnitude="5.5"))  # ≈ 157 km
    assert quake_relevance(far, PALU, PALU_RULES[:1]) is None
    weak = parse_autogempa(quake_doc(Coordinates="-0.9,119.9", Magnitude="4.9"))
    assert quake_relevance(weak, PALU, PALU_RULES[:1]) is None


def test_felt_rule():
    felt = parse_autogempa(
        quake_doc(Coordinates="-2.56,121.63", Magnitude="4.2", Dirasakan="III Palu, II Sigi")
    )
    rel = quake_relevance(felt, PALU, PALU_RULES)
    assert rel is not None and rel.felt and rel.rule.felt and rel.distance_km > 200
    too_weak = parse_autogempa(quake_doc(Magnitude="2.9", Dirasakan="II Palu"))
    assert quake_relevance(too_weak, PALU, PALU_RULES) is None
    # the rule's names default to the city names passed in
    rule = [QuakeRule(felt=True, min_magnitude=3.0)]
    q = parse_autogempa(quake_doc(Magnitude="3.5", Dirasakan="II-III Kota Samarinda"))
    assert quake_relevance(q, SAMARINDA, rule, city_names=["Samarinda"]) is not None
    assert quake_relevance(q, SAMARINDA, rule) is None


def test_felt_in_matches_whole_words():
    assert felt_in("III Palu, II Donggala", ["palu"])
    assert not felt_in("III Paluh Raya", ["Palu"])
    assert not felt_in(None, ["Palu"])


def test_bad_rules_rejected():
    with pytest.raises(ValueError):
        QuakeRule.from_dict({"min_magnitude": 5})
    with pytest.raises(ValueError):
        QuakeRule.from_dict({"max_distance_km": 100, "radius": 3})


# --- poller -----------------------------------------------------------------------------


def test_poller_emits_each_quake_once(shared_data):
    poller = BmkgPoller()
    auto = (shared_data / "bmkg" / "autogempa.sample.json").read_bytes()
    first = poller.feed(auto)
    assert len(first) == 1
    assert poller.feed(auto) == [] and poller.feed(json.loads(auto)) == []
    new = poller.feed(quake_doc(DateTime="2021-10-06T01:00:00+00:00", Magnitude="5.0"))
    assert [q.magnitude for q in new] == [5.0]


def test_poller_list_oldest_first_and_overlap(shared_data):
    poller = BmkgPoller()
    doc = json.loads((shared_data / "bmkg" / "gempaterkini.sample.json").read_bytes())
    older = {"Infogempa": {"gempa": doc["Infogempa"]["gempa"][5:]}}
    got = poller.feed(older)
    assert len(got) == 10
    assert [q.time for q in got] == sorted(q.time for q in got)
    assert len(poller.feed(doc)) == 5  # only the five newer ones


def test_poller_bad_payload_counts_and_recovers(shared_data):
    poller = BmkgPoller()
    assert poller.feed(b"<html>oops") == []
    assert poller.feed(b"{}") == []
    assert poller.failures == 2 and poller.last_error
    assert poller.next_delay(60) == 240 and poller.next_delay(60, max_seconds=100) == 100
    assert len(poller.feed((shared_data / "bmkg" / "autogempa.sample.json").read_bytes())) == 1
    assert poller.failures == 0 and poller.next_delay(60) == 60


def test_poller_memory_is_bounded_and_restorable():
    poller = BmkgPoller(max_remembered=3)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for i in range(5):
        poller.feed(quake_doc(DateTime=(start + timedelta(minutes=i)).isoformat()))
    assert len(poller.seen_ids) == 3
    restored = BmkgPoller(seen=poller.seen_ids)
    assert restored.feed(quake_doc(DateTime=(start + timedelta(minutes=4)).isoformat())) == []


def test_poller_max_age_skips_stale_quakes():
    poller = BmkgPoller(max_age=timedelta(hours=1))
    now = datetime(2021, 10, 5, 15, 0, tzinfo=UTC)
    assert poller.feed(quake_doc(), now=now) == []  # 4 h old
    fresh = quake_doc(DateTime="2021-10-05T14:30:00+00:00")
    assert len(poller.feed(fresh, now=now)) == 1


def test_rate_limiter_never_exceeds_60_per_minute():
    clock = [0.0]
    limiter = RateLimiter(60, clock=lambda: clock[0])
    times = []
    for i in range(300):  # eager callers, sometimes several at once
        clock[0] = max(clock[0], i * 0.3)
        clock[0] += limiter.reserve()
        times.append(clock[0])
    assert all(b - a >= 1.0 - 1e-9 for a, b in itertools.pairwise(times))
    for i, t in enumerate(times):
        assert sum(1 for u in times[i:] if u < t + 60) <= 60
    # a caller after a quiet spell does not wait
    clock[0] = times[-1] + 10
    assert limiter.reserve() == 0.0


# --- nowcast ----------------------------------------------------------------------------


def test_nowcast_rss_sample(shared_data):
    items = parse_nowcast_rss((shared_data / "bmkg" / "nowcast_rss_id.sample.xml").read_bytes())
    assert [i.province for i in items] == ["Banten", "Jawa Tengah", "Sumatera Utara"]
    first = items[0]
    assert first.title == "Hujan Lebat disertai Petir di Banten"
    assert first.identifier == "2.49.0.1.360.0.2026.02.16.16.36.004"
    assert first.cap_url == "https://www.bmkg.go.id/alerts/nowcast/id/CBT20260216004_alert.xml"
    assert first.published == datetime(2026, 2, 16, 15, 50, tzinfo=UTC)
    assert first.description and first.description.startswith("Hujan lebat disertai petir")
    assert first.source == "BMKG"


@pytest.mark.parametrize(
    "xml",
    [
        b"not xml",
        b"<feed/>",
        b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aa">]><rss><channel/></rss>',
    ],
)
def test_nowcast_rss_rejects_bad_documents(xml):
    with pytest.raises(BmkgFormatError):
        parse_nowcast_rss(xml)


# --- against the fake server --------------------------------------------------------------


async def test_fake_server_end_to_end():
    timeout = aiohttp.ClientTimeout(total=1.0)
    async with FakeBmkg(slow_seconds=3.0) as bmkg, aiohttp.ClientSession(timeout=timeout) as http:
        poller = BmkgPoller()

        async def poll() -> list:
            try:
                async with http.get(bmkg.url("autogempa.json")) as resp:
                    if resp.status != 200:
                        poller.fetch_failed(f"HTTP {resp.status}")
                        return []
                    return poller.feed(await resp.read())
            except TimeoutError:
                poller.fetch_failed("timeout")
                return []

        assert [q.region for q in await poll()] == [
            "Pusat gempa berada di darat 58 km Barat Laut Dompu"
        ]
        assert await poll() == []
        bmkg.publish_quake(
            DateTime="2026-11-23T02:00:00+00:00", Coordinates="-0.70,119.80", Magnitude="6.1"
        )
        new = await poll()
        assert [(q.lat, q.magnitude) for q in new] == [(-0.70, 6.1)]
        assert quake_relevance(new[0], PALU, PALU_RULES) is not None

        bmkg.fail_next(1, "500")
        bmkg.fail_next(1, "garbage")
        bmkg.fail_next(1, "slow")
        assert await poll() == [] and await poll() == [] and await poll() == []
        assert poller.failures == 3
        assert await poll() == [] and poller.failures == 0  # healthy again, nothing new
        assert bmkg.count("autogempa.json") == 7

        # nowcast: the RSS points at the fake server, and the CAP behind it parses
        async with http.get(bmkg.url("rss.xml")) as resp:
            items = parse_nowcast_rss(await resp.read())
        cap_url = items[0].cap_url
        assert cap_url == bmkg.url("CBT20260216004_alert.xml")
        async with http.get(cap_url) as resp:
            alert = parse_cap(await resp.read())
        assert alert.identifier == items[0].identifier
        async with http.get(items[1].cap_url) as resp:
            assert resp.status == 404


async def test_polling_through_limiter_respects_the_rate():
    """Callers that all want to poll at once are spaced by the limiter (600/min here)."""
    async with FakeBmkg() as bmkg, aiohttp.ClientSession() as http:
        limiter = RateLimiter(max_per_minute=600)

        started: list[float] = []

        async def one() -> None:
            await limiter.wait()
            started.append(time.monotonic())
            async with http.get(bmkg.url("autogempa.json")) as resp:
                await resp.read()

        await asyncio.gather(*(one() for _ in range(8)))
        assert bmkg.count("autogempa.json") == 8
        gaps = [b - a for a, b in itertools.pairwise(sorted(started))]
        assert min(gaps) >= 0.1 - 0.005  # 60/600 s apart (event-loop clock resolution)
        served = sorted(t for t, _ in bmkg.requests)
        assert served[-1] - served[0] >= 0.6  # the server saw them spread out, not a burst
