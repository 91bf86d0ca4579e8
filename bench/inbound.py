"""Inbound throughput: `lapor run` handling full report conversations vs a bare aiogram echo bot.

Both run as real processes against the same fake Bot API (tests/fakes/telegram_api.py, no rate
limits) on 127.0.0.1. Each simulated citizen sends the 6 updates of a full report (/lapor,
category button, description, GPS location, "skip photo", "send"), each from its own point in
Palu (so no report is a duplicate of another), and gets 7 replies (the last two: the ticket and
the offer to subscribe to warnings) plus 3 callback answers; the run checks every conversation
ended with its ticket. The echo bot gets the same number of plain text updates and sends one
reply each. Figure: updates/s from pushing the batch until every reply was sent (median of
RUNS), on SQLite and on PostgreSQL, and the ratio to the echo bot (goal ≥ 0.5).

Run: .venv/bin/python bench/inbound.py [--users 100] [--runs 3] [--no-postgres | --no-sqlite]
The bot's outbox pacing is switched off (TELEGRAM_RATE_*=0) as the fake has no limits: this
measures inbound handling + the reply path, not Telegram's 30 msg/s ceiling.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.echo_bot import run_echo_baseline  # noqa: E402
from tests.dbs import fresh_postgres  # noqa: E402
from tests.e2e import bot_env  # noqa: E402
from tests.fakes.procs import BotProcess  # noqa: E402
from tests.fakes.telegram_api import FakeBotAPI  # noqa: E402

STEPS = 6
CENTRE = (-0.8892, 119.8658)  # Besusu Barat, Palu
SPACING_DEG = 0.0012  # ~130 m: more than twice the duplicate radius (50 m)


def city_points(count: int) -> list[tuple[float, float]]:
    """Distinct points inside Palu, far enough apart that no report is a duplicate of another
    (same category within 50 m would end in "support the existing report?", not a ticket)."""
    from bot.city import load_city
    from bot.geo import AreaIndex

    areas = AreaIndex(load_city("palu"))
    points: list[tuple[float, float]] = []
    ring = 0
    while len(points) < count:
        for i in range(-ring, ring + 1):
            for j in range(-ring, ring + 1):
                if max(abs(i), abs(j)) != ring:
                    continue
                lat, lon = CENTRE[0] + i * SPACING_DEG, CENTRE[1] + j * SPACING_DEG
                if areas.locate(lat, lon) is not None:
                    points.append((lat, lon))
        ring += 1
    return points[:count]


def conversation(api: FakeBotAPI, uid: int, run: int, point: tuple[float, float]) -> list[dict]:
    return [
        api.text_update(uid, "/lapor"),
        api.callback_update(uid, "cat:jalan_rusak", message_id=0),
        api.text_update(uid, f"Jalan berlubang di depan rumah nomor {run}-{uid}, bahaya"),
        api.location_update(uid, *point),
        api.callback_update(uid, "ph:done", message_id=0),
        api.callback_update(uid, "rv:send", message_id=0),
    ]


def ticket_text() -> str:
    """The confirmation's "Ticket number:" line as the bot sends it (Indonesian catalog)."""
    from bot.i18n import I18n

    msgid = (
        "✅ Thank you! Your report has been received.\n\n"
        "Ticket number: {code}\n"
        "Sent to: {opd}\n\n"
        "You will get a message every time its status changes. "
        "Check it any time with /status {code}"
    )
    translated = I18n("id").gettext("id", msgid)
    assert translated != msgid, "the confirmation is not in the Indonesian catalog"
    return translated.split("{code}")[0].splitlines()[-1]


def run_lapor(db_url: str, users: int, runs: int) -> dict:
    api = FakeBotAPI().start_in_thread()
    tmp = Path(tempfile.mkdtemp(prefix="bench-inbound-"))
    proc = BotProcess(bot_env(api, db_url, tmp, LOG_LEVEL="WARNING"), log_path=tmp / "bot.log")
    durations = []
    points = iter(city_points(users * runs + 1))
    try:
        proc.start()
        proc.wait_ready(timeout=90)
        api.wait_for_sync(lambda: api.in_flight("getUpdates") > 0, timeout=60)
        # Warm-up: one conversation (imports, first queries, connection pool).
        api.push_updates(conversation(api, 1, -1, next(points)))
        api.wait_for_sync(lambda: api.stats.sent_total >= STEPS, timeout=60)
        time.sleep(1.0)
        # Replies per conversation, as the warm-up showed (a first report also gets the offer
        # to subscribe to warnings after its ticket).
        per_conv = api.stats.sent_total
        for run in range(runs):
            base = api.stats.sent_total
            uids = [100_000 * (run + 1) + u for u in range(users)]
            per_user = [conversation(api, uid, run, next(points)) for uid in uids]
            # Interleave users as a real burst would: step 1 of everyone, then step 2...
            batch = [per_user[u][s] for s in range(STEPS) for u in range(users)]
            started = time.perf_counter()
            api.push_updates(batch)
            api.wait_for_sync(lambda b=base: api.stats.sent_total >= b + users * per_conv, 300)
            durations.append(time.perf_counter() - started)
            # Every conversation must have ended with a ticket (not a hint or a duplicate prompt).
            ticket = ticket_text()
            for uid in uids:
                texts = [m.get("text") or "" for m in api.sent_to(uid)]
                assert len(texts) == per_conv, texts
                assert any(ticket in t and "PLU-" in t for t in texts), texts
    finally:
        proc.cleanup()
        api.stop()
    median = statistics.median(durations)
    return {
        "updates": users * STEPS,
        "runs_s": [round(d, 3) for d in durations],
        "updates_per_s": round(users * STEPS / median, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description="inbound updates/s vs an aiogram echo bot")
    ap.add_argument("--users", type=int, default=100)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--no-postgres", action="store_true")
    ap.add_argument("--no-sqlite", action="store_true", help="PostgreSQL only (profiling)")
    args = ap.parse_args()

    echo = run_echo_baseline(n_users=args.users, n_msgs_each=STEPS, runs=args.runs)
    rows = [("aiogram echo bot (baseline)", echo["updates_per_s"], echo["runs_s"])]
    if not args.no_sqlite:
        with tempfile.TemporaryDirectory() as d:
            sq = run_lapor(f"sqlite:///{d}/bench.db", args.users, args.runs)
        rows.append(("lapor run, SQLite", sq["updates_per_s"], sq["runs_s"]))
    if not args.no_postgres:
        import pytest

        try:
            with fresh_postgres() as url:
                pg = run_lapor(url, args.users, args.runs)
            rows.append(("lapor run, PostgreSQL", pg["updates_per_s"], pg["runs_s"]))
        except (pytest.fail.Exception, pytest.skip.Exception) as exc:
            print(f"PostgreSQL skipped: {exc}")
    base = echo["updates_per_s"]
    print(f"\ninbound throughput, {args.users * STEPS} updates per run, median of {args.runs}")
    print(f"{'':32} {'updates/s':>10} {'ratio':>7}   runs (s)")
    for name, ups, runs in rows:
        print(f"{name:32} {ups:>10.1f} {ups / base:>7.2f}   {runs}")
    print("goal: ratio >= 0.50 for lapor run")


if __name__ == "__main__":
    main()
