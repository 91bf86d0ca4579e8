"""Disaster-scale warnings: real `lapor run` processes against the rate-enforcing fake Bot API.

    .venv/bin/python bench/broadcast.py --n 100000 --rate 1000          # the issue-14 run
    .venv/bin/python bench/broadcast.py --n 3000 --rate 1000 --trials 1  # a short one
    .venv/bin/python bench/broadcast.py --n 600 --rate 30 --procs 1 --free-n 0 --baseline-n 0

Each trial: a fresh database (PostgreSQL by default) with `n` subscribers of Sempaja Timur;
the fake Bot API in its own process (free lane `--free-rate` msg/s, paid lane `--rate` msg/s
for messages sent with `allow_paid_broadcast`, 1 msg/s per chat, 429 with `retry_after` like
Telegram); `procs` real `lapor run` processes in webhook mode on that database, with paid
broadcasts on (`--rate` ≤ 1000: the paid lane; at 30 the free lane, paid broadcasts off).
Then the Benanga dam sensor's reading crosses Siaga, POSTed to the first process's HTTP
route: the warning is fanned out and sent by the processes together, the production path
end to end.  Printed per run: the sensor reading → first and last warning at the fake,
msg/s over the send span and its ratio to the ceiling (goal ≥ 0.9), 429s (goal ≤ 1 % of
requests), duplicates and misses (goal 0), Stars spent, and each process's share.  Medians
over the trials.

Also measured in the same run, as references: the same warning at Telegram's free 30 msg/s
(`--free-n` recipients, one process, paid broadcasts off): its ratio to 30 msg/s; and
aiogram-broadcaster sending `--baseline-n` messages at `--rate` from one process to a fake
whose free lane is `--rate` (its mailer, interval 1 / rate, retry-after handler on).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from sqlalchemy import func, insert, select
from sqlalchemy.engine import make_url

from storage.alert_models import Subscription
from storage.db import Database, upgrade, utcnow
from storage.models import ChannelIdentity, OutboxItem, Person
from tests.fakes.procs import BotProcess, free_port

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "123456:TEST-token"
SECRET = "bench-webhook-secret"
SENSOR_TOKEN = "bench-sensor-token"
FIRST_CHAT = 1_000_000
KEL = "64.72.05.1013"  # Sempaja Timur: in the Benanga sensor's audience
PG_DEFAULT = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/lapor")


class FakeProc:
    """The fake Bot API in its own process (like the real Telegram: not sharing our GIL)."""

    def __init__(self, rate: float, per_chat: float, paid_rate: float) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.fakes.telegram_api", "--port", "0",
             "--rate-global", str(rate), "--rate-per-chat", str(per_chat),
             "--rate-paid", str(paid_rate)],
            cwd=ROOT, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert self.proc.stdout is not None
        self.base_url = self.proc.stdout.readline().strip()
        if not self.base_url.startswith("http"):
            raise RuntimeError("the fake Bot API did not start")

    def _get(self, path: str) -> Any:
        with urllib.request.urlopen(self.base_url + path, timeout=120) as resp:
            return json.loads(resp.read())

    def counters(self) -> dict[str, Any]:
        return dict(self._get("/_fake/stats?light=1"))

    def stats(self) -> dict[str, Any]:
        return dict(self._get("/_fake/stats"))

    def all_sent(self) -> list[dict[str, Any]]:
        return list(self._get("/_fake/sent"))

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


# --- databases ------------------------------------------------------------------------------
@contextmanager
def database(kind: str, tmp: Path, pg_base: str) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{tmp / f'bench-{uuid.uuid4().hex[:6]}.db'}"
        return
    name = f"lapor_bench_{uuid.uuid4().hex[:8]}"
    admin = make_url(pg_base).set(drivername="postgresql", database="postgres")
    admin_dsn = admin.render_as_string(hide_password=False)
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(pg_base).set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin_dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def seed(url: str, n: int) -> list[int]:
    """n subscribers of Sempaja Timur with one Telegram identity each (bulk inserts)."""
    upgrade(url)
    db = Database(url)
    now = utcnow()
    chats = list(range(FIRST_CHAT, FIRST_CHAT + n))
    with db.session() as s:
        person = {"language": "id", "created_at": now, "share_contact": False}
        s.execute(insert(Person), [person] * n)
        ids = list(s.execute(select(Person.id).order_by(Person.id)).scalars())
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
    db.dispose()
    return chats


def shares(url: str) -> dict[int, int]:
    """Warnings sent per sender slot (= per process)."""
    db = Database(url)
    with db.session() as s:
        rows = s.execute(
            select(OutboxItem.claimed_by, func.count())
            .where(OutboxItem.state == "sent")
            .group_by(OutboxItem.claimed_by)
        ).all()
    db.dispose()
    return {int(slot or 0): int(n) for slot, n in rows}


# --- one run: the real processes --------------------------------------------------------------
def post(url: str, body: dict[str, Any]) -> int:
    req = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {SENSOR_TOKEN}"},
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        return int(resp.status)


def run_processes(
    url: str, tmp: Path, n: int, rate: float, procs: int, concurrency: int
) -> dict[str, Any]:
    chats = seed(url, n)
    paid = rate > 30
    api = FakeProc(30 if paid else rate, 1, rate)
    bots: list[BotProcess] = []
    try:
        for i in range(procs):
            port = free_port()
            env = {
                "DATABASE_URL": url,
                "HTTP_HOST": "127.0.0.1",
                "HTTP_PORT": str(port),
                "MEDIA_DIR": str(tmp / "media"),
                "CITY": "samarinda",
                "LOG_LEVEL": os.environ.get("BENCH_LOG_LEVEL", "WARNING"),
                "TELEGRAM_BOT_TOKEN": TOKEN,
                "TELEGRAM_API_BASE": api.base_url,
                "TELEGRAM_WEBHOOK_URL": f"http://127.0.0.1:{port}/telegram",
                "TELEGRAM_WEBHOOK_SECRET": SECRET,
                "TELEGRAM_RATE_GLOBAL": "30" if paid else str(rate),
                "TELEGRAM_RATE_PER_CHAT": "1",
                "TELEGRAM_PAID_BROADCAST": "true" if paid else "false",
                "TELEGRAM_PAID_RATE": str(rate),
                "TELEGRAM_PAID_STARS_BUDGET": str(n),  # 10 × what the warning costs
                "SENDER_CONCURRENCY": str(concurrency),
                "SENSOR_TOKENS": json.dumps({"benanga": SENSOR_TOKEN}),
                "DEMO_ENABLED": "false",
                "WHATSAPP_TOKEN": "",
                "WHATSAPP_PHONE_ID": "",
            }
            bots.append(BotProcess(env, log_path=tmp / f"bot{i}.log").start())
        for b in bots:
            b.wait_ready(120)
        time.sleep(1.0)  # every process has claimed once: all are waiting for work
        sensor = f"http://127.0.0.1:{bots[0].env['HTTP_PORT']}/sensors/benanga/readings"
        assert post(sensor, {"level_m": 7.5, "ts": (utcnow() - timedelta(seconds=30)).isoformat()})
        t0 = time.time()
        assert post(sensor, {"level_m": 7.9, "ts": utcnow().isoformat()}) == 202
        deadline = time.monotonic() + n / rate * 3 + 120
        while time.monotonic() < deadline:
            if api.counters()["sent_total"] >= n:
                break
            time.sleep(0.5)
        time.sleep(2.0)  # anything still coming would be a duplicate
        out = report(api, chats, rate, t0)
        out["shares"] = shares(url)
        return out
    except Exception:
        for b in bots:
            print(b.logs()[-3000:], file=sys.stderr)
        raise
    finally:
        for b in bots:
            b.cleanup()
            if os.environ.get("BENCH_KEEP_LOGS"):
                keep = Path(os.environ["BENCH_KEEP_LOGS"]) / b.log_path.name
                keep.write_text(b.logs())
        api.stop()


def report(api: FakeProc, chats: list[int], limit: float, t0: float) -> dict[str, Any]:
    sent = api.all_sent()
    counts = Counter(int(m["chat"]["id"]) for m in sent)
    stats = api.stats()
    times = sorted(t for ts in stats["send_times"].values() for t in ts)
    span = (times[-1] - times[0]) if len(times) > 1 else float("nan")
    rate = (len(times) - 1) / span if span and span > 0 else float("nan")
    n_429 = int(stats["n_429"])
    requests = int(stats["sent_total"]) + n_429
    return {
        "sent": len(sent),
        "seconds": span,
        "msg/s": rate,
        "ratio": rate / limit,
        "429": n_429,
        "429 %": 100.0 * n_429 / max(1, requests),
        "duplicates": sum(c - 1 for c in counts.values() if c > 1),
        "misses": sum(1 for c in chats if counts.get(c, 0) == 0),
        "first s": times[0] - t0 if times else float("nan"),
        "last s": times[-1] - t0 if times else float("nan"),
        "stars": float(stats["stars_spent"]),
    }


# --- the reference: aiogram-broadcaster ---------------------------------------------------------
async def run_baseline(n: int, rate: float) -> dict[str, Any]:
    from aiogram_broadcaster import Broadcaster
    from aiogram_broadcaster.contents import TextContent
    from aiogram_broadcaster.intervals import SimpleInterval
    from aiogram_broadcaster.utils.retry_after_handler import setup_retry_after_handler

    chats = list(range(FIRST_CHAT, FIRST_CHAT + n))
    api = FakeProc(rate, 1, rate)
    bot = Bot(TOKEN, session=AiohttpSession(api=TelegramAPIServer.from_base(api.base_url)))
    try:
        broadcaster = Broadcaster(bot)
        setup_retry_after_handler(broadcaster.event)
        mailer = await broadcaster.create_mailer(
            chats=chats,
            content=TextContent(text="Uji siaran."),
            interval=SimpleInterval(interval=1 / rate),
        )
        t0 = time.time()
        await mailer.start()
        return report(api, chats, rate, t0)
    finally:
        await bot.session.close()
        api.stop()


# --- printing ---------------------------------------------------------------------------------
COLS = ["sent", "seconds", "msg/s", "ratio", "429 %", "duplicates", "misses", "first s", "last s"]


def table(rows: list[tuple[str, dict[str, Any]]]) -> str:
    lines = [" | ".join([f"{'run':>34}", *(f"{c:>10}" for c in COLS)])]
    for name, r in rows:
        cells = [f"{name:>34}"]
        for c in COLS:
            v = r[c]
            digits = 3 if c in ("ratio", "first s") else 2
            cells.append(f"{v:>10.{digits}f}" if isinstance(v, float) else f"{v:>10}")
        lines.append(" | ".join(cells))
    return "\n".join(lines)


def median_row(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        c: statistics.median([r[c] for r in runs])
        if isinstance(runs[0][c], float)
        else max(r[c] for r in runs)
        for c in runs[0]
        if c != "shares"
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=100_000, help="subscribers warned (default 100,000)")
    p.add_argument("--rate", type=float, default=1000.0, help="ceiling msg/s (paid lane if > 30)")
    p.add_argument("--procs", default="1,2", help="process counts to run (default 1,2)")
    p.add_argument("--trials", type=int, default=3, help="runs per process count (median)")
    p.add_argument("--db", choices=["postgres", "sqlite"], default="postgres")
    p.add_argument("--pg", default=PG_DEFAULT, help="PostgreSQL server URL (a database is made)")
    p.add_argument("--free-n", type=int, default=1500, help="recipients at 30 msg/s (0: skip)")
    p.add_argument("--baseline-n", type=int, default=None, help="aiogram-broadcaster (0: skip)")
    p.add_argument("--concurrency", type=int, default=64, help="SENDER_CONCURRENCY")
    args = p.parse_args()
    counts = [int(x) for x in args.procs.split(",") if x]
    if args.db == "sqlite" and any(c > 1 for c in counts):
        p.error("SQLite runs one process: --procs 1")
    rows: list[tuple[str, dict[str, Any]]] = []
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        print(f"warning to {args.n} subscribers, ceiling {args.rate:g} msg/s, 1 msg/s per chat, "
              f"{args.db}, {args.trials} trial(s) each")  # fmt: skip
        medians: dict[int, dict[str, Any]] = {}
        for procs in counts:
            runs = []
            for trial in range(args.trials):
                with database(args.db, tmp, args.pg) as url:
                    r = run_processes(url, tmp, args.n, args.rate, procs, args.concurrency)
                runs.append(r)
                label = f"{procs} process{'es' if procs > 1 else ''}, trial {trial + 1}"
                rows.append((label, r))
                shares_text = ", ".join(f"slot {k}: {v}" for k, v in sorted(r["shares"].items()))
                print(f"  {label}: ratio {r['ratio']:.3f}, 429 {r['429 %']:.2f} %, "
                      f"{r['duplicates']} duplicates, {r['misses']} misses, first "
                      f"{r['first s']:.3f} s, last {r['last s']:.1f} s, {r['stars']:g} Stars, "
                      f"{shares_text}", flush=True)  # fmt: skip
            medians[procs] = median_row(runs)
            rows.append((f"{procs} process(es), median", medians[procs]))
        free: dict[str, Any] | None = None
        if args.free_n and args.rate > 30:
            with database(args.db, tmp, args.pg) as url:
                free = run_processes(url, tmp, args.free_n, 30, 1, args.concurrency)
            rows.append((f"free 30 msg/s, n={args.free_n}", free))
            print(f"  free 30 msg/s: ratio {free['ratio']:.3f}, first {free['first s']:.3f} s",
                  flush=True)  # fmt: skip
        base_n = args.n if args.baseline_n is None else args.baseline_n
        base: dict[str, Any] | None = None
        if base_n:
            base = asyncio.run(run_baseline(base_n, args.rate))
            rows.append((f"aiogram-broadcaster, n={base_n}", base))
            print(f"  aiogram-broadcaster: ratio {base['ratio']:.3f}, 429 {base['429 %']:.2f} %",
                  flush=True)  # fmt: skip
        print(table(rows))
        for procs, m in medians.items():
            ok = m["ratio"] >= 0.9 and m["429 %"] <= 1.0 and not m["duplicates"]
            ok = ok and not m["misses"] and m["first s"] < 1.0
            line = (
                f"{procs} process(es): median ratio {m['ratio']:.3f} of {args.rate:g} msg/s, "
                f"sensor → first warning {m['first s']:.3f} s, → last {m['last s']:.1f} s"
            )
            if free is not None:
                line += f"; ratio / free-lane ratio = {m['ratio'] / free['ratio']:.3f}"
            if base is not None:
                line += f"; msg/s vs aiogram-broadcaster = {m['msg/s'] / base['msg/s']:.3f}"
            print(line)
            print(
                "  goals (ratio ≥ 0.9, 429 ≤ 1 %, 0 duplicates, 0 misses, first < 1 s): "
                + ("met" if ok else "MISSED")
            )


if __name__ == "__main__":
    main()
