"""Scale-out end to end on PostgreSQL: real `lapor run` processes, the fake Bot API in webhook
mode behind a "load balancer" (it delivers updates to the processes in turn), paid broadcasts.

1. Two processes share the inbox and the outbox: citizens' updates reach either process, yet
   each is handled once and every citizen's replies come in order; a sensor warning to every
   subscriber goes out once each, sent by both processes, on the paid lane (Stars counted the
   same by the bot and the fake); exactly one process leads (runs the scheduler).
2. kill -9 in the middle of a fan-out at 1,000 msg/s, restart: nobody missed; duplicates only
   among the rows the dead process had in flight (counted and printed).
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from storage.alert_models import Broadcast
from storage.alert_repo import AlertRepo
from storage.db import Database, upgrade, utcnow
from storage.models import OutboxItem
from storage.repo import Repo
from tests.dbs import fresh_postgres
from tests.e2e import bot_env, wait_until
from tests.fakes.procs import BotProcess
from tests.fakes.telegram_api import FakeBotAPI

pytestmark = pytest.mark.e2e

SEMPAJA_TIMUR = "64.72.05.1013"  # in the Benanga sensor's audience
SECRET = "scale-webhook-secret"
SENSOR_TOKEN = "scale-sensor-token"
LEADER_LINE = "leader: this process runs the scheduler"


@pytest.fixture
def pg_url() -> Iterator[str]:
    with fresh_postgres() as url:
        upgrade(url)
        yield url


def seed_subscribers(url: str, chats: list[str]) -> None:
    db = Database(url)
    with db.session() as s:
        repo, arepo = Repo(s), AlertRepo(s)
        for chat in chats:
            _i, person, _ = repo.get_or_create_identity("telegram", chat, chat, language="id")
            assert person.id is not None
            arepo.subscribe(person.id, SEMPAJA_TIMUR)
    db.dispose()


def process(api: FakeBotAPI, url: str, tmp: Path, name: str, **extra: str) -> BotProcess:
    env = bot_env(api, url, tmp, **extra)
    env.update(
        {
            "CITY": "samarinda",
            "TELEGRAM_WEBHOOK_URL": f"http://127.0.0.1:{env['HTTP_PORT']}/telegram",
            "TELEGRAM_WEBHOOK_SECRET": SECRET,
            "TELEGRAM_RATE_GLOBAL": "30",
            "TELEGRAM_RATE_PER_CHAT": "1",
            "TELEGRAM_PAID_BROADCAST": "true",
            "TELEGRAM_PAID_RATE": "1000",
            "SENSOR_TOKENS": json.dumps({"benanga": SENSOR_TOKEN}),
            **extra,
        }
    )
    return BotProcess(env, log_path=tmp / f"{name}.log")


def webhook(proc: BotProcess) -> str:
    return f"http://127.0.0.1:{proc.env['HTTP_PORT']}/telegram"


def sensor_reading(proc: BotProcess, level: float, ago: float = 0.0) -> int:
    body = {"level_m": level, "ts": (utcnow() - timedelta(seconds=ago)).isoformat()}
    req = urllib.request.Request(
        f"http://127.0.0.1:{proc.env['HTTP_PORT']}/sensors/benanga/readings",
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {SENSOR_TOKEN}"},
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        return int(resp.status)


def metric(text: str, name: str) -> float:
    """A sample's value in Prometheus text (0 when absent)."""
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return 0.0


def warnings_sent(api: FakeBotAPI) -> Counter[str]:
    return Counter(str(m["chat"]["id"]) for m in api.all_sent() if "SIAGA" in (m.get("text") or ""))


def test_two_processes_share_inbox_and_outbox(pg_url: str, tmp_path: Path) -> None:
    subscribers = [str(20_000 + i) for i in range(1500)]  # 1.5 s at 1,000/s: both send
    seed_subscribers(pg_url, subscribers)
    api = FakeBotAPI(rate_global=30, rate_per_chat=1, rate_paid=1000).start_in_thread()
    procs = [process(api, pg_url, tmp_path, f"bot{i}") for i in range(2)]
    try:
        for p in procs:
            p.start()
        for p in procs:
            p.wait_ready(60)
        api.deliver_to([webhook(p) for p in procs])

        # --- citizens: each update handled once, each citizen's replies in order --------------
        citizens = list(range(500, 506))
        codes = {c: [f"X{c}-{k}" for k in range(4)] for c in citizens}
        for k in range(4):
            for c in citizens:
                api.push_update(api.text_update(c, f"/status {codes[c][k]}"))
        wait_until(lambda: all(len(api.sent_to(c)) >= 4 for c in citizens), 60, "all replies")
        for c in citizens:
            texts = [m["text"] for m in api.sent_to(c)]
            assert len(texts) == 4, texts  # nothing handled twice
            assert [next(code for code in codes[c] if code in t) for t in texts] == codes[c]
        targets = Counter(url for url, _u in api.delivered)
        assert set(targets) == {webhook(p) for p in procs}  # both processes got updates

        # --- a warning to everyone: once each, sent by both, on the paid lane -------------------
        assert sensor_reading(procs[0], 7.5, ago=30) == 202
        assert sensor_reading(procs[0], 7.9) == 202
        wait_until(lambda: len(warnings_sent(api)) == len(subscribers), 60, "every warning")
        time.sleep(1.0)  # anything still coming would be a duplicate
        counts = warnings_sent(api)
        assert set(counts) == set(subscribers) and set(counts.values()) == {1}
        refused = [
            (c.chat_id, c.params.get("allow_paid_broadcast"))
            for c in api.calls()
            if c.status == 429
        ]
        assert refused == []
        db = Database(pg_url)
        with db.session() as s:
            by_slot = dict(
                s.execute(
                    select(OutboxItem.claimed_by, func.count())
                    .where(OutboxItem.broadcast_id.is_not(None), OutboxItem.paid.is_(True))
                    .group_by(OutboxItem.claimed_by)
                ).all()
            )
            used = Repo(s).budget_used(f"paid:telegram:{utcnow():%Y-%m}")
        db.dispose()
        assert set(by_slot) == {0, 1}, by_slot  # both processes sent part of it
        assert sum(by_slot.values()) == len(subscribers)
        assert used == api.stats.paid_total == len(subscribers)  # the bot's count = the fake's
        assert api.stats.stars_spent == pytest.approx(0.1 * len(subscribers))

        # --- what the paid lane cost, in /metrics ----------------------------------------------
        paid = spent = 0.0
        for p in procs:
            port = p.env["HTTP_PORT"]
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
                text = r.read().decode()
            paid += metric(text, 'lapor_outbox_paid_sent_total{channel="telegram"}')
            spent = max(spent, metric(text, 'lapor_outbox_paid_spent{channel="telegram"}'))
        assert paid == len(subscribers)
        assert spent == pytest.approx(0.1 * len(subscribers))  # the month so far, all processes

        # --- exactly one leader --------------------------------------------------------------
        assert sum(p.logs().count(LEADER_LINE) for p in procs) == 1
    except Exception:
        for p in procs:
            print(p.logs()[-4000:])
        raise
    finally:
        for p in procs:
            p.cleanup()
        api.stop()


def test_kill9_mid_fanout_at_1000_per_second(pg_url: str, tmp_path: Path) -> None:
    n = 3000
    subscribers = [str(30_000 + i) for i in range(n)]
    seed_subscribers(pg_url, subscribers)
    api = FakeBotAPI(rate_global=30, rate_per_chat=1, rate_paid=1000).start_in_thread()
    # small fan-out batches, so the kill lands while the fan-out is still writing
    proc = process(api, pg_url, tmp_path, "bot", BROADCAST_BATCH="10", SENDER_CONCURRENCY="32")
    db = Database(pg_url)
    try:
        proc.start()
        proc.wait_ready(60)
        assert sensor_reading(proc, 7.5, ago=30) == 202
        assert sensor_reading(proc, 7.9) == 202
        wait_until(lambda: api.stats.sent_total >= 400, 30, "sending under way")
        proc.kill9()
        at_kill = api.stats.sent_total
        with db.session() as s:
            (bc,) = s.execute(select(Broadcast)).scalars().all()
            in_flight = Counter(s.execute(select(OutboxItem.state)).scalars())["sending"]
        assert bc.state == "fanning" and bc.messages < n, "the fan-out had finished"
        assert at_kill < n
        proc.start()
        proc.wait_ready(60)
        wait_until(lambda: len(warnings_sent(api)) == n, 60, "everyone warned")
        time.sleep(1.0)
        counts = warnings_sent(api)
        dupes = sum(c - 1 for c in counts.values())
        print(f"kill -9 at {at_kill} of {n} sent, {in_flight} rows in flight: {dupes} duplicates")
        assert set(counts) == set(subscribers)  # nobody missed
        assert dupes <= in_flight  # only rows the dead process had in flight went twice
        assert dupes <= 64  # a handful: requests out plus results not yet recorded
        with db.session() as s:
            left = AlertRepo(s).broadcast_counts(bc.id or 0)
        assert left == {"sent": n}
    except Exception:
        print(proc.logs()[-4000:])
        raise
    finally:
        db.dispose()
        proc.cleanup()
        api.stop()
