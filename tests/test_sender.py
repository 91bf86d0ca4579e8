"""The outbox sender: order, pacing, retries, blocked recipients, crash recovery."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC

import pytest
from sqlmodel import select

from bot.channels.base import OutboundMessage, PaidLane, RateLimits, SendResult
from bot.sender import Pacer, Sender, budget_name
from handlers.events import PRIORITY_ANNOUNCEMENT, PRIORITY_WARNING, Outgoing, Reply
from storage.db import Database, upgrade, utcnow
from storage.locks import ProcessLocks
from storage.models import ChannelIdentity, OutboxItem
from storage.repo import Repo
from tests.dbs import fresh_postgres


@dataclass
class FakeTransport:
    limits: RateLimits = field(default_factory=lambda: RateLimits(0, 0))
    channel: str = "telegram"
    script: dict[str, list[SendResult]] = field(default_factory=dict)  # address -> results
    sent: list[tuple[float, str, str]] = field(default_factory=list)
    delay: float = 0.0

    async def send(self, msg: OutboundMessage) -> SendResult:
        if self.delay:
            await asyncio.sleep(self.delay)
        queue = self.script.get(msg.address)
        if queue:
            res = queue.pop(0)
            if res.status != "sent":
                return res
        self.sent.append((time.monotonic(), msg.address, msg.reply.text))
        return SendResult(status="sent", message_id=str(len(self.sent)))


def enqueue(
    db: Database, address: str, text: str, priority: int = 50, identity_id: int | None = None
) -> int:
    """One message through the outbox writer (a unit of work); its row id."""
    out = Outgoing(
        channel="telegram",
        address=address,
        reply=Reply(text=text),
        priority=priority,
        identity_id=identity_id,
    )
    with db.unit() as uow:
        uow.send([out])
    with db.session() as s:
        newest = s.exec(select(OutboxItem).order_by(OutboxItem.id.desc())).first()  # type: ignore[union-attr]
        assert newest is not None and newest.id is not None
        return newest.id


async def run_until(sender: Sender, cond, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    stop = asyncio.Event()
    task = asyncio.create_task(sender.run(stop))
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            stop.set()
            await task
            raise AssertionError("timed out")
        await asyncio.sleep(0.02)
    stop.set()
    await task


def states(db: Database) -> dict[str, int]:
    with db.session() as s:
        return Repo(s).outbox_counts()


async def test_sends_everything_once_with_message_ids(db_url: str) -> None:
    db = Database(db_url)
    for i in range(30):
        enqueue(db, f"chat{i % 7}", f"m{i}")
    t = FakeTransport()
    sender = Sender(db, {"telegram": t}, concurrency=8)
    await run_until(sender, lambda: len(t.sent) == 30)
    await asyncio.sleep(0)
    assert sorted(x[2] for x in t.sent) == sorted(f"m{i}" for i in range(30))
    assert states(db) == {"sent": 30}
    # Per chat the order is kept.
    for c in range(7):
        mine = [int(x[2][1:]) for x in t.sent if x[1] == f"chat{c}"]
        assert mine == sorted(mine)
    # Each row keeps the message id the platform gave *that* message (results are recorded
    # in batches: a mix-up between rows would show here).
    given = {text: str(n) for n, (_t, _a, text) in enumerate(t.sent, start=1)}
    with db.session() as s:
        rows = s.exec(select(OutboxItem)).all()
    assert len(rows) == 30
    for row in rows:
        assert row.platform_message_id == given[row.payload["text"]]
        assert row.attempts == 1 and row.sent_at is not None and row.error is None


async def test_warnings_jump_the_queue(sqlite_url: str) -> None:
    db = Database(sqlite_url)
    for i in range(20):
        enqueue(db, f"a{i}", "announcement", PRIORITY_ANNOUNCEMENT)
    enqueue(db, "w", "WARNING", PRIORITY_WARNING)
    t = FakeTransport(limits=RateLimits(50, 0))
    sender = Sender(db, {"telegram": t}, concurrency=1)
    await run_until(sender, lambda: len(t.sent) == 21)
    assert t.sent[0][2] == "WARNING"


async def test_global_and_per_chat_pacing(sqlite_url: str) -> None:
    db = Database(sqlite_url)
    for i in range(20):
        enqueue(db, f"c{i}", "x")
    for _ in range(3):
        enqueue(db, "same", "y")
    t = FakeTransport(limits=RateLimits(20, 4))
    sender = Sender(db, {"telegram": t}, concurrency=8)
    await run_until(sender, lambda: len(t.sent) == 23)
    times = [x[0] for x in t.sent]
    # Never more than 20 in any 1-second window.
    for i, start in enumerate(times):
        assert sum(1 for u in times[i:] if u - start < 1.0) <= 20
    same = [x[0] for x in t.sent if x[1] == "same"]
    assert all(b - a >= 0.24 for a, b in itertools.pairwise(same))
    assert times[-1] - times[0] >= 22 / 20 * 0.95


def test_pacer_pause_applies_to_every_chat() -> None:
    p = Pacer(RateLimits(0, 0))
    p.pause(5, now=100.0)
    assert p.wait_for("a", 101.0) == 4.0
    assert p.wait_for("b", 106.0) == 0.0


async def test_retry_after_pauses_the_channel_then_delivers(sqlite_url: str) -> None:
    db = Database(sqlite_url)
    enqueue(db, "x", "hello")
    t = FakeTransport(
        script={"x": [SendResult(status="retry", retry_after=1, pause_channel=True, error="429")]}
    )
    sender = Sender(db, {"telegram": t})
    start = time.monotonic()
    await run_until(sender, lambda: len(t.sent) == 1)
    assert t.sent[0][0] - start >= 0.9
    assert sender.stats.rate_limited == 1


async def test_blocked_recipient_is_deactivated_and_its_queue_cancelled(db_url: str) -> None:
    db = Database(db_url)
    with db.session() as s:
        ident, _p, _ = Repo(s).get_or_create_identity("telegram", "77", "77", language="id")
        ident_id = ident.id
    enqueue(db, "77", "one", identity_id=ident_id)
    enqueue(db, "77", "two", identity_id=ident_id)
    t = FakeTransport(script={"77": [SendResult(status="blocked", error="403")]})
    sender = Sender(db, {"telegram": t})
    await run_until(sender, lambda: states(db).get("cancelled") == 1)
    with db.session() as s:
        ident = Repo(s).identity_by_id(ident_id)
        assert ident is not None and ident.active is False
    assert t.sent == []
    assert states(db) == {"failed": 1, "cancelled": 1}


async def test_server_errors_back_off_and_permanent_errors_fail(sqlite_url: str) -> None:
    db = Database(sqlite_url)
    enqueue(db, "a", "flaky")
    enqueue(db, "b", "bad")
    t = FakeTransport(
        script={
            "a": [SendResult(status="retry", error="502")],
            "b": [SendResult(status="failed", error="400 Bad Request")],
        }
    )
    sender = Sender(db, {"telegram": t})
    await run_until(sender, lambda: len(t.sent) == 1 and states(db).get("failed") == 1)
    assert t.sent[0][2] == "flaky"
    with db.session() as s:
        rows = {r.address: r for r in s.exec(select(OutboxItem))}
    assert rows["a"].attempts == 2 and rows["a"].state == "sent"
    assert rows["b"].state == "failed" and "400" in (rows["b"].error or "")


async def test_rows_in_flight_at_a_crash_are_sent_again(sqlite_url: str) -> None:
    db = Database(sqlite_url)
    for i in range(3):
        enqueue(db, f"c{i}", f"m{i}")
    with db.session() as s:  # the process (slot 0) died after claiming two
        assert len(Repo(s).outbox_take(utcnow(), channels=["telegram"], limit=2, slot=0)) == 2
    t = FakeTransport()
    sender = Sender(db, {"telegram": t})
    await run_until(sender, lambda: len(t.sent) == 3)
    assert sorted(x[2] for x in t.sent) == ["m0", "m1", "m2"]


async def test_a_transport_exception_does_not_stop_the_sender(sqlite_url: str) -> None:
    db = Database(sqlite_url)
    enqueue(db, "boom", "x")
    enqueue(db, "ok", "y")

    class Exploding(FakeTransport):
        async def send(self, msg: OutboundMessage) -> SendResult:
            if msg.address == "boom" and not getattr(self, "exploded", False):
                self.exploded = True
                raise RuntimeError("bug")
            return await super().send(msg)

    t = Exploding()
    sender = Sender(db, {"telegram": t})
    await run_until(sender, lambda: len(t.sent) == 2, timeout=15)
    assert {x[1] for x in t.sent} == {"boom", "ok"}


async def test_the_sender_survives_connections_killed_by_the_server() -> None:
    """No pre-ping: after PostgreSQL drops every connection the sender's next cycle fails
    once; it keeps running and sends what was queued, once."""
    from storage.db import upgrade
    from tests.dbs import fresh_postgres, kill_connections

    with fresh_postgres() as url:
        upgrade(url)
        db = Database(url)
        try:
            t = FakeTransport()
            sender = Sender(db, {"telegram": t}, concurrency=4)
            stop = asyncio.Event()
            task = asyncio.create_task(sender.run(stop))
            try:
                enqueue(db, "chat1", "before")
                sender.wake()
                for _ in range(200):
                    if t.sent:
                        break
                    await asyncio.sleep(0.02)
                assert kill_connections(url) >= 1
                sender.wake()  # the sender looks first and meets a dead connection
                await asyncio.sleep(0.3)
                enqueue(db, "chat2", "after")
                sender.wake()
                for _ in range(300):
                    if len(t.sent) >= 2:
                        break
                    await asyncio.sleep(0.02)
                assert not task.done(), "the sender must survive a failed cycle"
            finally:
                stop.set()
                await task
            assert sorted(x[2] for x in t.sent) == ["after", "before"]
            assert states(db) == {"sent": 2}
        finally:
            db.dispose()


# --- paid lane (Telegram paid broadcasts) ------------------------------------------------------
@dataclass
class PaidTransport(FakeTransport):
    """A transport with a paid lane; records which sends went on it."""

    paid_lane: PaidLane | None = None
    paid_sent: list[str] = field(default_factory=list)

    async def send(self, msg: OutboundMessage) -> SendResult:
        res = await super().send(msg)
        if res.status == "sent" and msg.paid:
            self.paid_sent.append(msg.address)
        return res


def enqueue_kind(db: Database, address: str, text: str, kind: str, priority: int) -> None:
    out = Outgoing(
        channel="telegram", address=address, reply=Reply(text=text), priority=priority, kind=kind
    )
    with db.unit() as uow:
        uow.send([out])


async def test_warnings_go_on_the_paid_lane_while_the_budget_lasts(
    db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    db = Database(db_url)
    for i in range(8):
        enqueue_kind(db, f"w{i}", "banjir", "warning", PRIORITY_WARNING)
    for i in range(2):
        enqueue_kind(db, f"r{i}", "balasan", "reply", 50)
    lane = PaidLane(limits=RateLimits(0, 0), price=0.1, budget=0.5)  # 5 messages
    t = PaidTransport(paid_lane=lane)
    sender = Sender(db, {"telegram": t}, concurrency=4)
    with caplog.at_level("WARNING"):
        await run_until(sender, lambda: len(t.sent) == 10)
    assert len(t.paid_sent) == 5 and all(a.startswith("w") for a in t.paid_sent)
    assert sender.stats.paid_by_channel == {"telegram": 5}
    assert sender.stats.paid_spent["telegram"] == pytest.approx(0.5)
    assert "budget of 0.5 Stars" in caplog.text  # said once, clearly
    with db.session() as s:
        repo = Repo(s)
        assert repo.budget_used(budget_name("telegram", utcnow())) == 5  # shared, durable
        paid_rows = s.exec(select(OutboxItem).where(OutboxItem.paid == True)).all()  # noqa: E712
    assert sorted(r.address for r in paid_rows) == sorted(t.paid_sent)


async def test_a_paid_send_that_did_not_go_gives_its_reservation_back(sqlite_url: str) -> None:
    db = Database(sqlite_url)
    enqueue_kind(db, "w", "banjir", "warning", PRIORITY_WARNING)
    lane = PaidLane(limits=RateLimits(0, 0), price=0.1, budget=10)
    t = PaidTransport(paid_lane=lane, script={"w": [SendResult(status="retry", retry_after=0.2)]})
    sender = Sender(db, {"telegram": t})
    await run_until(sender, lambda: t.paid_sent == ["w"])
    await asyncio.sleep(0.05)
    with db.session() as s:
        assert Repo(s).budget_used(budget_name("telegram", utcnow())) == 1  # not 2


async def test_the_24h_window_comes_with_the_claimed_row(sqlite_url: str) -> None:
    """WhatsApp's window needs the identity's last message: read with the claim, carried
    to the transport, no transaction of its own."""
    db = Database(sqlite_url)
    with db.session() as s:
        ident, _p, _ = Repo(s).get_or_create_identity("telegram", "9", "9", language="id")
        ident_id = ident.id
    seen: list[OutboundMessage] = []

    class Keeping(FakeTransport):
        async def send(self, msg: OutboundMessage) -> SendResult:
            seen.append(msg)
            return await super().send(msg)

    enqueue(db, "9", "hai", identity_id=ident_id)
    with db.session() as s:
        row = s.get(ChannelIdentity, ident_id)
        assert row is not None
        expected = row.last_inbound_at
    t = Keeping()
    await run_until(Sender(db, {"telegram": t}), lambda: len(seen) == 1)
    assert expected is not None and seen[0].last_inbound_at == expected.replace(tzinfo=UTC)


# --- several processes on one PostgreSQL ----------------------------------------------------------
async def test_two_senders_share_the_outbox_without_duplicates_or_reordering() -> None:
    """Two senders (two engines, two slots) on one PostgreSQL: every message once, each chat's
    messages in order, never two at a time and a chat's gap apart, the token's rate shared,
    both doing part of the work."""
    with fresh_postgres() as url:
        upgrade(url)
        seed_db = Database(url)
        out = [
            Outgoing(channel="telegram", address=f"chat{i % 150}", reply=Reply(text=f"m{i}"))
            for i in range(450)
        ]
        with seed_db.unit() as uow:  # 150 chats, 3 messages each: more than one claim holds
            uow.send(out)
        chat_busy: dict[str, int] = {}
        overlaps: list[str] = []

        class Slow(FakeTransport):
            async def send(self, msg: OutboundMessage) -> SendResult:
                chat_busy[msg.address] = chat_busy.get(msg.address, 0) + 1
                if chat_busy[msg.address] > 1:
                    overlaps.append(msg.address)
                await asyncio.sleep(0.003)
                chat_busy[msg.address] -= 1
                return await super().send(msg)

        t = Slow(limits=RateLimits(150, 10))  # one token: both share 150/s, 10/s per chat
        dbs = [Database(url), Database(url)]
        senders = [Sender(d, {"telegram": t}, concurrency=8) for d in dbs]
        stop = asyncio.Event()
        tasks = [asyncio.create_task(s.run(stop)) for s in senders]
        try:
            deadline = time.monotonic() + 30
            while len(t.sent) < 450 and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
        finally:
            stop.set()
            await asyncio.gather(*tasks)
        assert sorted(x[2] for x in t.sent) == sorted(f"m{i}" for i in range(450))  # each once
        assert overlaps == []
        for c in range(150):
            mine = [int(x[2][1:]) for x in t.sent if x[1] == f"chat{c}"]
            assert mine == sorted(mine)
            at = [x[0] for x in t.sent if x[1] == f"chat{c}"]
            assert all(b - a >= 0.09 for a, b in itertools.pairwise(at))  # the chat's gap
        times = [x[0] for x in t.sent]
        for i, start in enumerate(times):  # together never past the token's rate
            assert sum(1 for u in times[i:] if u - start < 1.0) <= 150
        assert {s.slot for s in senders} == {0, 1}
        assert {s.processes for s in senders} == {2}
        with seed_db.session() as s:
            rows = s.exec(select(OutboxItem)).all()
        by_slot = Counter(r.claimed_by for r in rows)
        assert {r.state for r in rows} == {"sent"} and set(by_slot) == {0, 1}, by_slot
        for d in [*dbs, seed_db]:
            d.dispose()


async def test_rows_of_a_process_that_died_are_sent_by_another() -> None:
    """A process claimed rows (slot held by an advisory lock) and died: its lock is gone
    with its connection, so a live sender's sweep finds the slot free and sends them."""
    with fresh_postgres() as url:
        upgrade(url)
        db = Database(url)
        for i in range(3):
            enqueue(db, f"c{i}", f"m{i}")
        dead = ProcessLocks(Database(url))
        slot = dead.take_slot()
        with db.session() as s:
            assert len(Repo(s).outbox_take(utcnow(), channels=["telegram"], limit=3, slot=slot))
        live_locks = ProcessLocks(db)
        t = FakeTransport()
        sender = Sender(db, {"telegram": t}, locks=live_locks)
        stop = asyncio.Event()
        task = asyncio.create_task(sender.run(stop))
        try:
            await asyncio.sleep(0.5)
            assert t.sent == []  # the owner is alive: its rows are left alone
            dead.close()  # the process dies: PostgreSQL drops its locks
            deadline = time.monotonic() + 15
            while len(t.sent) < 3 and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
        finally:
            stop.set()
            await task
        assert sorted(x[2] for x in t.sent) == ["m0", "m1", "m2"]
        assert sender.slot != slot
        live_locks.close()
        db.dispose()


def test_one_leader_among_processes() -> None:
    with fresh_postgres() as url:
        upgrade(url)
        a, b = ProcessLocks(Database(url)), ProcessLocks(Database(url))
        assert a.try_lead() is True
        assert b.try_lead() is False
        assert {a.take_slot(), b.take_slot()} == {0, 1}
        a.close()  # the leader dies
        assert b.try_lead() is True
        b.close()
