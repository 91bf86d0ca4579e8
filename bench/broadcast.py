"""Broadcast throughput against the rate-enforcing fake Bot API, ours vs aiogram-broadcaster.

    .venv/bin/python bench/broadcast.py            # 10,000 recipients (n / rate seconds a run)
    .venv/bin/python bench/broadcast.py --n 600    # a short run
    .venv/bin/python bench/broadcast.py --n 600 --no-baseline

The fake enforces Telegram's limits (default 30 msg/s overall, 1 msg/s per chat) and answers
429 with `retry_after` like Telegram.  "Ours" is the real path: a broadcast row → the fan-out
(batches into the outbox, SQLite) → `Sender` → `TelegramTransport` (aiogram) → the fake.  The
baseline sends the same message to the same chats with aiogram-broadcaster (one mailer, its
interval set to the same rate, its retry-after handler on).  Printed per run: msg/s, ratio to
the limit (goal ≥ 0.95), 429s (goal ≤ 1 % of requests), duplicates and misses (goal 0).

Then: the time from a sensor reading over the threshold (HTTP POST to the bot's route) to the
first warning the fake receives (goal < 1 s), median of a few trials.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiohttp
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from sqlalchemy import delete, insert

from bot.alerts.audience import Everyone
from bot.alerts.http import alert_routes
from bot.alerts.wiring import build_alerts
from bot.channels.base import RateLimits
from bot.channels.telegram import JsonSession, TelegramTransport
from bot.city import load_city
from bot.http import HttpServer, build_web_app
from bot.i18n import I18n
from bot.media import MediaStore
from bot.runtime import tune_process
from bot.sender import Sender
from storage.alert_models import SensorStateRow, Subscriber, Subscription
from storage.alert_repo import AlertRepo
from storage.db import Database, upgrade, utcnow
from storage.models import ChannelIdentity, Person

TEXT = "Uji siaran Lapor Warga."
ROOT = Path(__file__).resolve().parent.parent


class FakeProc:
    """The fake Bot API in its own process (like the real Telegram: not sharing our GIL)."""

    token = "123456:TEST-token"

    def __init__(self, rate: float, per_chat: float) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.fakes.telegram_api", "--port", "0",
             "--rate-global", str(rate), "--rate-per-chat", str(per_chat)],
            cwd=ROOT, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert self.proc.stdout is not None
        self.base_url = self.proc.stdout.readline().strip()
        if not self.base_url.startswith("http"):
            raise RuntimeError("the fake Bot API did not start")

    def _get(self, path: str) -> Any:
        with urllib.request.urlopen(self.base_url + path, timeout=60) as resp:
            return json.loads(resp.read())

    def stats(self) -> dict[str, Any]:
        return dict(self._get("/_fake/stats"))

    def all_sent(self) -> list[dict[str, Any]]:
        return list(self._get("/_fake/sent"))

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


FIRST_CHAT = 1_000_000
KEL = "64.72.05.1013"


def seed(db: Database, n: int, first_chat: int = FIRST_CHAT) -> list[int]:
    """n subscribers with one Telegram identity each (bulk insert)."""
    now = utcnow()
    chats = list(range(first_chat, first_chat + n))
    with db.session() as s:
        start = int(s.execute(insert(Person).values(language="id", created_at=now)).lastrowid)
        s.execute(
            insert(Person),
            [{"language": "id", "created_at": now, "share_contact": False}] * (n - 1),
        )
        ids = list(range(start, start + n))
        s.execute(
            insert(ChannelIdentity),
            [
                {"person_id": pid, "channel": "telegram", "external_id": str(c),
                 "address": str(c), "active": True, "created_at": now}
                for pid, c in zip(ids, chats, strict=True)
            ],
        )  # fmt: skip
        s.execute(
            insert(Subscription),
            [{"person_id": p, "kode_kel": KEL, "source": "pick", "created_at": now} for p in ids],
        )
        s.execute(  # each of them also said yes to the city's announcements
            insert(Subscriber),
            [{"person_id": p, "announcements_at": now, "updated_at": now} for p in ids],
        )
    return chats


def report(name: str, api: FakeProc, chats: list[int], limit: float) -> dict[str, Any]:
    sent = [m for m in api.all_sent() if (m.get("text") or "").endswith(TEXT)]  # after a header
    counts = Counter(int(m["chat"]["id"]) for m in sent)
    stats = api.stats()
    times = sorted(t for ts in stats["send_times"].values() for t in ts)
    span = (times[-1] - times[0]) if len(times) > 1 else float("nan")
    rate = (len(times) - 1) / span if span and span > 0 else float("nan")
    n_429 = int(stats["n_429"])
    requests = int(stats["sent_total"]) + n_429
    return {
        "name": name,
        "sent": len(sent),
        "msg/s": rate,
        "ratio": rate / limit,
        "429": n_429,
        "429 %": 100.0 * n_429 / max(1, requests),
        "duplicates": sum(c - 1 for c in counts.values() if c > 1),
        "misses": sum(1 for c in chats if counts.get(c, 0) == 0),
        "seconds": span,
    }


async def run_ours(n: int, rate: float, per_chat: float, tmp: Path) -> dict[str, Any]:
    url = f"sqlite:///{tmp / 'ours.db'}"
    upgrade(url)
    db = Database(url)
    chats = seed(db, n)
    city = load_city("samarinda")
    api = FakeProc(rate, per_chat)
    bot = Bot(api.token, session=JsonSession(api=TelegramAPIServer.from_base(api.base_url)))
    tune_process()  # as `lapor run` does after start-up
    try:
        transport = TelegramTransport(
            bot, MediaStore(tmp / "media", 10_000_000), RateLimits(rate, per_chat)
        )
        sender = Sender(db, {"telegram": transport}, concurrency=16)
        svc = build_alerts(db, city, I18n("id"), wake_sender=sender.wake).broadcasts
        with db.session() as s:
            svc.new_broadcast(AlertRepo(s), source="admin", audience=Everyone(), texts={"*": TEXT})
        stop = asyncio.Event()
        tasks = [asyncio.create_task(sender.run(stop)), asyncio.create_task(svc.run_fanout(stop))]
        svc.wake()
        deadline = time.monotonic() + n / rate * 3 + 60
        while time.monotonic() < deadline:
            with db.session() as s:
                left = AlertRepo(s).broadcast_counts(1)
            if left.get("sent", 0) + left.get("failed", 0) >= n:
                break
            await asyncio.sleep(0.5)
        stop.set()
        await asyncio.gather(*tasks)
        return report("ours (outbox + Sender)", api, chats, rate)
    finally:
        await bot.session.close()
        api.stop()


async def run_baseline(n: int, rate: float, per_chat: float) -> dict[str, Any]:
    from aiogram_broadcaster import Broadcaster
    from aiogram_broadcaster.contents import TextContent
    from aiogram_broadcaster.intervals import SimpleInterval
    from aiogram_broadcaster.utils.retry_after_handler import setup_retry_after_handler

    chats = list(range(FIRST_CHAT, FIRST_CHAT + n))
    api = FakeProc(rate, per_chat)
    bot = Bot(api.token, session=AiohttpSession(api=TelegramAPIServer.from_base(api.base_url)))
    try:
        broadcaster = Broadcaster(bot)
        setup_retry_after_handler(broadcaster.event)
        mailer = await broadcaster.create_mailer(
            chats=chats, content=TextContent(text=TEXT), interval=SimpleInterval(interval=1 / rate)
        )
        await mailer.start()
        return report("aiogram-broadcaster", api, chats, rate)
    finally:
        await bot.session.close()
        api.stop()


async def sensor_latency(tmp: Path, trials: int = 5) -> list[float]:
    """POST a reading over Siaga's threshold → first warning at the fake, in seconds."""
    url = f"sqlite:///{tmp / 'latency.db'}"
    upgrade(url)
    db = Database(url)
    chats = seed(db, 20, first_chat=2_000_000)
    city = load_city("samarinda")
    api = FakeProc(30, 1)
    bot = Bot(api.token, session=JsonSession(api=TelegramAPIServer.from_base(api.base_url)))
    out = []
    try:
        transport = TelegramTransport(bot, MediaStore(tmp / "media", 10_000_000), RateLimits(30, 1))
        sender = Sender(db, {"telegram": transport})
        alerts = build_alerts(
            db, city, I18n("id"), wake_sender=sender.wake, sensor_tokens={"benanga": "t"}
        )
        svc = alerts.broadcasts
        routes = alert_routes(
            db,
            city,
            alerts.sensors,
            alerts.sources,
            svc.wake,
            cap_api_key=None,
            base_url=lambda r: "",
        )
        http = HttpServer(build_web_app(db, [routes], dict), "127.0.0.1", 0)
        port = await http.start()
        stop = asyncio.Event()
        tasks = [asyncio.create_task(sender.run(stop)), asyncio.create_task(svc.run_fanout(stop))]
        await asyncio.sleep(0.5)
        post = f"http://127.0.0.1:{port}/sensors/benanga/readings"
        async with aiohttp.ClientSession(headers={"Authorization": "Bearer t"}) as client:
            for trial in range(trials):
                with db.session() as s:
                    s.execute(delete(SensorStateRow))
                base = utcnow() - timedelta(seconds=30)
                body = {"level_m": 7.5, "ts": base.isoformat()}
                async with client.post(post, json=body) as r:
                    assert r.status == 202
                before = api.stats()["sent_total"]
                t0 = time.monotonic()
                body = {"level_m": 7.9, "ts": utcnow().isoformat()}
                async with client.post(post, json=body) as r:
                    assert r.status == 202, await r.text()
                while await asyncio.to_thread(lambda: api.stats()["sent_total"]) == before:
                    if time.monotonic() - t0 > 30:
                        raise RuntimeError("no warning reached the fake Bot API in 30 s")
                    await asyncio.sleep(0.002)
                out.append(time.monotonic() - t0)
                # let this warning drain (per-chat pacing) before the next trial
                await asyncio.sleep(len(chats) / 30 + 1.2 if trial < trials - 1 else 0)
        stop.set()
        await asyncio.gather(*tasks)
        await http.stop()
        return out
    finally:
        await bot.session.close()
        api.stop()


def table(rows: list[dict[str, Any]]) -> str:
    cols = ["name", "sent", "seconds", "msg/s", "ratio", "429", "429 %", "duplicates", "misses"]
    lines = [" | ".join(f"{c:>22}" if c == "name" else f"{c:>10}" for c in cols)]
    for r in rows:
        cells = []
        for c in cols:
            v = r[c]
            digits = 3 if c == "ratio" else 2  # a ratio just under the goal must not round up to it
            if c == "name":
                cells.append(f"{v:>22}")
            elif isinstance(v, float):
                cells.append(f"{v:>10.{digits}f}")
            else:
                cells.append(f"{v:>10}")
        lines.append(" | ".join(cells))
    return "\n".join(lines)


async def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=10_000, help="recipients (default 10,000)")
    p.add_argument("--rate", type=float, default=30.0, help="global limit msg/s (fake and bot)")
    p.add_argument("--per-chat", type=float, default=1.0, help="per-chat limit msg/s")
    p.add_argument("--no-baseline", action="store_true", help="skip aiogram-broadcaster")
    p.add_argument("--trials", type=int, default=5, help="sensor latency trials")
    args = p.parse_args()
    import logging

    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("aiogram_broadcaster").setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        print(f"broadcast of {args.n} messages, limit {args.rate:g}/s global, "
              f"{args.per_chat:g}/s per chat (~{args.n / args.rate:.0f} s per run)")  # fmt: skip
        rows = [await run_ours(args.n, args.rate, args.per_chat, tmp)]
        if not args.no_baseline:
            rows.append(await run_baseline(args.n, args.rate, args.per_chat))
        print(table(rows))
        ours = rows[0]
        ok = ours["ratio"] >= 0.95 and ours["429 %"] <= 1.0 and not ours["duplicates"]
        ok = ok and not ours["misses"]
        print(
            f"goals (ratio ≥ 0.95, 429 ≤ 1 %, 0 duplicates, 0 misses): {'met' if ok else 'MISSED'}"
        )
        lat = await sensor_latency(tmp, args.trials)
        med = statistics.median(lat)
        print(
            f"sensor reading over threshold → first warning sent: median {med:.3f} s, "
            f"max {max(lat):.3f} s over {len(lat)} trials (goal < 1 s)"
        )


if __name__ == "__main__":
    asyncio.run(main())
