"""Warnings end to end: the real `lapor run` process, the rate-enforcing fake Bot API, a real
Mosquitto broker on loopback and the fake BMKG server.

1. sensor via MQTT: Siaga, hovering (no spam), Awas, falling back (all clear); bad readings
   (HTTP and MQTT) are refused; a BMKG quake near warns and a far one does not; CAP in over
   HTTP warns the kelurahan inside its polygon; CAP out and Atom are served; a scheduled
   announcement (CLI) goes out at its time; /siaran by a citizen is refused.
2. kill -9 in the middle of a broadcast, restart: everyone gets it, duplicates only within the
   handful in flight.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.alerts.cap import parse_cap
from storage.alert_repo import AlertRepo
from storage.db import Database, upgrade, utcnow
from storage.models import ROLE_ADMIN
from storage.repo import Repo
from tests.e2e import running_bot, text_of, wait_until
from tests.fakes.bmkg import FakeBmkg
from tests.fakes.procs import REPO
from tests.fakes.telegram_api import FakeBotAPI
from tests.test_sensor import box, cap_xml

pytestmark = pytest.mark.e2e

MQTT_URL = os.environ.get("TEST_MQTT_URL", "mqtt://127.0.0.1:1883")
SEMPAJA_TIMUR = "64.72.05.1013"
SENGKOTEK = "64.72.10.1003"
TOKEN = "sensor-token-123"
CAP_KEY = "cap-key-456"


class ThreadBmkg:
    """FakeBmkg on its own event loop in a thread (the e2e tests are synchronous)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.fake: FakeBmkg = self.call(FakeBmkg().start())

    def call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)

    def publish_quake(self, **fields: Any) -> None:
        self.loop.call_soon_threadsafe(lambda: self.fake.publish_quake(**fields))

    def stop(self) -> None:
        self.call(self.fake.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


@pytest.fixture
def bmkg() -> Iterator[ThreadBmkg]:
    b = ThreadBmkg()
    yield b
    b.stop()


def seed(db_url: str, subscribers: dict[str, list[str]], admin: str | None = None) -> None:
    """Subscribers of warnings for these kelurahan who also said yes to announcements."""
    upgrade(db_url)
    with Database(db_url).session() as s:
        repo, arepo = Repo(s), AlertRepo(s)
        for chat, codes in subscribers.items():
            _i, person, _ = repo.get_or_create_identity("telegram", chat, chat, language="id")
            assert person.id is not None
            for code in codes:
                arepo.subscribe(person.id, code)
            arepo.set_announcements(person.id, True)
        if admin:
            _i, person, _ = repo.get_or_create_identity("telegram", admin, admin, language="id")
            assert person.id is not None
            repo.set_staff(person.id, ROLE_ADMIN, None)


def fast_profile(tmp: Path) -> Path:
    """samarinda.toml with a 2-second hold, so falling back is quick to observe."""
    cities = tmp / "cities"
    cities.mkdir()
    text = (REPO / "cities" / "samarinda.toml").read_text(encoding="utf-8")
    assert "hold_minutes = 15" in text
    (cities / "samarinda.toml").write_text(
        text.replace("hold_minutes = 15", "hold_minutes = 0.03"), encoding="utf-8"
    )
    return cities


def mqtt_publish(payload: bytes) -> None:
    async def pub() -> None:
        import aiomqtt

        from bot.alerts.mqtt import broker

        host, port, _u, _p = broker(MQTT_URL)
        async with aiomqtt.Client(host, port) as client:
            await client.publish("lapor/sensors/benanga", payload, qos=1)

    asyncio.run(pub())


def reading(value: float) -> bytes:
    return json.dumps({"level_m": value, "ts": utcnow().isoformat()}).encode()


def http(method: str, url: str, body: bytes | None = None, **headers: str) -> tuple[int, bytes]:
    req = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return int(resp.status), resp.read()
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read()


def cli(env: dict[str, str], *args: str) -> str:
    res = subprocess.run(
        [sys.executable, "-m", "bot.cli", *args],
        cwd=REPO,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 0, res.stderr
    return res.stdout


def queue_broadcast(db_url: str, text: str) -> None:
    """What `lapor broadcast send --everyone` writes (the CLI is exercised in the other test)."""
    from bot.alerts.audience import Everyone
    from bot.alerts.wiring import build_alerts
    from bot.city import load_city
    from bot.i18n import I18n

    city = load_city("samarinda")
    db = Database(db_url)
    svc = build_alerts(db, city, I18n("id")).broadcasts
    with db.session() as s:
        svc.new_broadcast(AlertRepo(s), source="admin", audience=Everyone(), texts={"*": text})


def texts_to(api: FakeBotAPI, chat: str) -> list[str]:
    return [m.get("text") or m.get("caption") or "" for m in api.sent_to(chat)]


def require_mqtt() -> None:
    import socket

    from bot.alerts.mqtt import broker

    host, port, _u, _p = broker(MQTT_URL)
    try:
        socket.create_connection((host, port), timeout=2).close()
    except OSError:
        if os.environ.get("LAPOR_SKIP_MQTT") == "1":
            pytest.skip("LAPOR_SKIP_MQTT=1")
        pytest.fail(f"no MQTT broker at {MQTT_URL} (start Mosquitto, see .ci/run)")


def test_sensor_bmkg_cap_schedule_and_refusal(tmp_path: Path, bmkg: ThreadBmkg) -> None:
    require_mqtt()
    db_url = f"sqlite:///{tmp_path / 'lapor.db'}"
    near = [str(5000 + i) for i in range(4)]
    far = [str(6000 + i) for i in range(2)]
    seed(db_url, {**{c: [SEMPAJA_TIMUR] for c in near}, **{c: [SENGKOTEK] for c in far}})
    env = {
        "CITY": "samarinda",
        "CITIES_DIR": str(fast_profile(tmp_path)),
        "MQTT_URL": MQTT_URL,
        "SENSOR_TOKENS": json.dumps({"benanga": TOKEN}),
        "CAP_API_KEY": CAP_KEY,
        "BMKG_AUTOGEMPA_URL": bmkg.fake.url("autogempa.json"),
        "BMKG_POLL_SECONDS": "1",
        "TELEGRAM_RATE_GLOBAL": "30",
        "TELEGRAM_RATE_PER_CHAT": "1",
        "DATABASE_URL": db_url,
    }
    # a scheduled announcement, written by the CLI before the bot runs
    at = (utcnow() + timedelta(seconds=12)).replace(microsecond=0)
    out = cli(
        env,
        "broadcast",
        "send",
        "--text",
        "Pengumuman terjadwal: kerja bakti.",
        "--kelurahan",
        SENGKOTEK,
        "--at",
        at.isoformat(),
        "--yes",
    )
    assert "scheduled" in out
    api = FakeBotAPI(rate_global=30, rate_per_chat=1).start_in_thread()
    try:
        with running_bot(db_url, tmp_path, api=api, **env) as bot:
            base = f"http://127.0.0.1:{bot.proc.env['HTTP_PORT']}"
            # a citizen may not broadcast
            assert "hanya administrator" in text_of(bot.say(int(near[0]), "/siaran"))

            # --- sensor: Siaga over MQTT -------------------------------------------------------
            mqtt_publish(reading(7.3))
            mqtt_publish(b"{not json")  # logged and dropped
            mqtt_publish(reading(7.6))
            t0 = time.monotonic()
            mqtt_publish(reading(7.8))
            wait_until(
                lambda: all(any("SIAGA" in t for t in texts_to(api, c)) for c in near),
                20,
                "siaga warning",
            )
            assert time.monotonic() - t0 < 5
            # hovering at the threshold: no new messages
            for v in (7.76, 7.74, 7.76, 7.74):
                mqtt_publish(reading(v))
            # bad readings over HTTP: refused with a reason, never alerted on
            url = f"{base}/sensors/benanga/readings"
            assert http("POST", url, reading(8.4))[0] == 401
            status, body = http(
                "POST", url, b'{"level_m": "banjir"}', Authorization=f"Bearer {TOKEN}"
            )
            assert status == 422 and json.loads(body)["reason"] == "bad_value"
            future = json.dumps(
                {"level_m": 8.4, "ts": (utcnow() + timedelta(hours=1)).isoformat()}
            ).encode()
            status, body = http("POST", url, future, Authorization=f"Bearer {TOKEN}")
            assert json.loads(body)["reason"] == "future"
            # --- Awas over HTTP ---------------------------------------------------------------
            status, body = http("POST", url, reading(8.2), Authorization=f"Bearer {TOKEN}")
            assert status == 202, body
            status, body = http("POST", url, reading(8.3), Authorization=f"Bearer {TOKEN}")
            assert json.loads(body)["change"] == ["siaga", "awas"]
            wait_until(
                lambda: all(any("AWAS" in t for t in texts_to(api, c)) for c in near),
                20,
                "awas warning",
            )
            # --- falling back: below the bands, held → all clear --------------------------------
            mqtt_publish(reading(7.9))
            time.sleep(0.3)
            mqtt_publish(reading(7.5))
            time.sleep(2.2)
            mqtt_publish(reading(7.4))
            wait_until(
                lambda: all(any("membaik" in t for t in texts_to(api, c)) for c in near),
                20,
                "all clear",
            )
            for c in near:
                sensor_msgs = [t for t in texts_to(api, c) if "Benanga" in t]
                assert len(sensor_msgs) == 3, sensor_msgs  # siaga, awas, all clear: no spam
            for c in far:
                assert not any("Benanga" in t for t in texts_to(api, c))

            # --- BMKG: far quake ignored, near quake warned ---------------------------------------
            now = utcnow().replace(microsecond=0)
            bmkg.publish_quake(
                DateTime=now.isoformat(),
                Coordinates="-8.50,115.00",
                Magnitude="5.3",
                Wilayah="Bali",
                Dirasakan="III Denpasar",
            )
            time.sleep(1.5)
            bmkg.publish_quake(
                DateTime=(now + timedelta(seconds=3)).isoformat(),
                Coordinates="-0.55,117.25",
                Magnitude="5.7",
                Kedalaman="10 km",
                Wilayah="15 km Timur SAMARINDA-KALTIM",
                Potensi="Tidak berpotensi tsunami",
            )
            everyone = near + far
            wait_until(
                lambda: all(any("Sumber: BMKG" in t for t in texts_to(api, c)) for c in everyone),
                20,
                "quake warning",
            )
            for c in everyone:
                quakes = [t for t in texts_to(api, c) if "Sumber: BMKG" in t]
                assert len(quakes) == 1 and "“Tidak berpotensi tsunami”" in quakes[0]
                assert "Bali" not in quakes[0]

            # --- CAP in → warning to Sempaja Timur; CAP out + Atom -----------------------------
            from bot.city import load_city

            kel = load_city("samarinda").kelurahan_by_code(SEMPAJA_TIMUR)
            assert kel is not None
            status, body = http(
                "POST",
                f"{base}/cap",
                cap_xml("E2E-1", box(*kel.centroid)),
                **{"X-API-Key": CAP_KEY},
            )
            assert status == 201, body
            wait_until(
                lambda: all(
                    any("BPBD Kalimantan Timur" in t for t in texts_to(api, c)) for c in near
                ),
                20,
                "CAP warning",
            )
            assert not any("BPBD Kalimantan Timur" in t for c in far for t in texts_to(api, c))
            status, atom = http("GET", f"{base}/warnings/feed.atom")
            assert status == 200
            links = [p.split('"')[0] for p in atom.decode().split('href="')[1:]]
            caps = [u for u in links if u.endswith(".xml")]
            assert len(caps) == 5  # siaga, awas, all clear, quake, CAP
            status, doc = http("GET", caps[0])
            assert status == 200 and parse_cap(doc).sender.startswith("lapor-warga@")

            # --- the scheduled announcement went out at its time, to its kelurahan only ---------
            wait_until(
                lambda: all(any("terjadwal" in t for t in texts_to(api, c)) for c in far),
                30,
                "scheduled announcement",
            )
            first = min(
                m["date"]
                for c in far
                for m in api.sent_to(c)
                if "terjadwal" in (m.get("text") or "")
            )
            assert first >= int(at.timestamp()) - 1
            assert not any("terjadwal" in t for c in near for t in texts_to(api, c))
            assert api.stats.n_429 == 0
    finally:
        api.stop()


def test_kill9_mid_broadcast_then_restart_no_misses_few_duplicates(tmp_path: Path) -> None:
    db_url = f"sqlite:///{tmp_path / 'lapor.db'}"
    n = 240
    chats = [str(10_000 + i) for i in range(n)]
    seed(db_url, {c: [SEMPAJA_TIMUR] for c in chats})
    rate = 60
    env = {
        "CITY": "samarinda",
        "DATABASE_URL": db_url,
        "TELEGRAM_RATE_GLOBAL": str(rate),
        "TELEGRAM_RATE_PER_CHAT": "1",
        "BROADCAST_BATCH": "40",
    }
    api = FakeBotAPI(rate_global=rate, rate_per_chat=1).start_in_thread()
    try:
        with running_bot(db_url, tmp_path, api=api, **env) as bot:
            queue_broadcast(db_url, "Uji siaran massal.")
            wait_until(lambda: api.stats.sent_total >= n // 3, 30, "a third sent")
            bot.proc.kill9()
            at_kill = api.stats.sent_total
            assert at_kill < n, "too late: the broadcast had finished"
            bot.proc.start()
            bot.proc.wait_ready(60)
            wait_until(lambda: all(api.sent_to(c) for c in chats), 60, "everyone served")
            time.sleep(1.0)  # anything still coming would be a duplicate
            counts = Counter(
                str(m["chat"]["id"])
                for m in api.all_sent()
                if (m.get("text") or "").endswith("\n\nUji siaran massal.")  # under its header
            )
            assert set(counts) == set(chats)  # nobody skipped
            dupes = sum(c - 1 for c in counts.values())
            assert dupes <= 16, f"{dupes} duplicates (more than the in-flight window)"
            with Database(db_url).session() as s:
                (bc,) = AlertRepo(s).recent_broadcasts()
                left = AlertRepo(s).broadcast_counts(bc.id or 0)
            assert left.get("pending", 0) == 0 and left.get("sending", 0) == 0
            assert left["sent"] == n
    finally:
        api.stop()
