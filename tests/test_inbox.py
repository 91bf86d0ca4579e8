"""The inbox: durable before acknowledged, deduplicated, in order per sender."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from sqlmodel import select

from bot.inbox import Batch, Inbox, InboxWorker
from handlers.core import ItemFailed
from handlers.events import Inbound, Outgoing, Reply
from storage.db import Database
from storage.models import OutboxItem
from storage.repo import Repo
from storage.unit import UnitOfWork


class EchoChannel:
    name = "telegram"
    transport: Any = None

    async def to_inbound(self, payload: dict[str, Any]) -> list[Inbound]:
        await asyncio.sleep(0.001 * (payload["n"] % 3))  # jitter: lanes finish out of order
        return [
            Inbound(
                channel="telegram",
                external_id=payload["user"],
                chat_id=payload["user"],
                kind="text",
                text=str(payload["n"]),
            )
        ]


def make_worker(
    db: Database, inbox: Inbox, seen: list[tuple[str, int]], fail_on: set[int] | None = None
) -> InboxWorker:
    fail_on = fail_on or set()

    def decide(uow: UnitOfWork, batch: Batch) -> None:
        for item_id, events in batch:
            for ev in events:
                n = int(ev.text or 0)
                if n in fail_on:
                    raise ItemFailed(item_id, RuntimeError("handler bug"))
                seen.append((ev.external_id, n))
                reply = Reply(text=f"ok {n}")
                uow.send([Outgoing(channel="telegram", address=ev.external_id, reply=reply)])

    def apologise(uow: UnitOfWork, ev: Inbound) -> None:
        reply = Reply(text="sorry")
        uow.send([Outgoing(channel="telegram", address=ev.external_id, reply=reply)])

    return InboxWorker(db, inbox, {"telegram": EchoChannel()}, decide, apologise, lambda: None)


async def drain(worker: InboxWorker, db: Database) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    for _ in range(500):
        with db.session() as s:
            if not Repo(s).inbox_pending():
                break
        await asyncio.sleep(0.02)
    stop.set()
    await task


def pending_texts(db: Database) -> list[str]:
    """Texts queued in the outbox, sorted; the inbox must be empty by then."""
    with db.session() as s:
        repo = Repo(s)
        assert repo.inbox_pending() == []
        rows = s.exec(select(OutboxItem).where(OutboxItem.state == "pending")).all()
        return sorted(r.payload["text"] for r in rows)


async def test_replayed_updates_are_dropped_and_order_is_kept_per_sender(db_url: str) -> None:
    db = Database(db_url)
    inbox = Inbox(db)
    n = 0
    items = []
    for _round in range(10):
        for user in ("a", "b", "c"):
            items.append((str(n), {"user": user, "n": n}, user))
            n += 1
    assert await inbox.accept_many("telegram", items) == 30
    assert await inbox.accept_many("telegram", items[:5]) == 0  # a redelivered batch
    late = ("30", {"user": "c", "n": 30}, "c")
    assert await inbox.accept_many("telegram", [*items[:2], late]) == 1  # replays and one new
    assert await inbox.accept("telegram", "3", {"user": "a", "n": 3}, "a") is False
    seen: list[tuple[str, int]] = []
    await drain(make_worker(db, inbox, seen), db)
    assert sorted(x[1] for x in seen) == list(range(31))
    for user in ("a", "b", "c"):
        mine = [x[1] for x in seen if x[0] == user]
        assert mine == sorted(mine)
    with db.session() as s:
        assert Repo(s).outbox_counts() == {"pending": 31}


async def test_a_failing_update_is_retried_then_answered_with_an_apology(sqlite_url: str) -> None:
    db = Database(sqlite_url)
    inbox = Inbox(db)
    await inbox.accept("telegram", "1", {"user": "a", "n": 1}, "a")
    await inbox.accept("telegram", "2", {"user": "a", "n": 2}, "a")
    seen: list[tuple[str, int]] = []
    await drain(make_worker(db, inbox, seen, fail_on={1}), db)
    assert seen == [("a", 2)]  # 2 waited for 1 to give up: order kept
    assert pending_texts(db) == ["ok 2", "sorry"]


async def test_an_item_is_handled_once_even_if_offered_twice(db_url: str) -> None:
    """Two workers (say, two processes) take groups that share an update: the conditional
    take lets only one of them commit it; each group's other update is committed too."""
    db = Database(db_url)
    inbox = Inbox(db)
    for n in (9, 10, 11):
        await inbox.accept("telegram", str(n), {"user": f"u{n}", "n": n}, f"u{n}")
    seen: list[tuple[str, int]] = []
    worker = make_worker(db, inbox, seen)
    with db.session() as s:
        ids = {p["n"]: item_id for item_id, _ch, p, _s in Repo(s).inbox_pending()}
    channel = EchoChannel()

    async def group(*ns: int) -> list[tuple[int, list[Inbound]]]:
        return [(ids[n], await channel.to_inbound({"user": f"u{n}", "n": n})) for n in ns]

    first, second = await group(9, 10), await group(9, 11)
    await asyncio.gather(
        asyncio.to_thread(worker._commit, first),
        asyncio.to_thread(worker._commit, second),
    )
    assert 1 <= seen.count(("u9", 9)) <= 2  # both may run the handler, but only one commits
    with db.session() as s:
        assert Repo(s).outbox_counts() == {"pending": 3}
    assert pending_texts(db) == ["ok 10", "ok 11", "ok 9"]


async def test_one_failing_update_in_a_batch_is_left_out_alone(db_url: str) -> None:
    """A batch that hits a failing update runs again without it in a new transaction: the
    others are committed exactly once, the failing one is retried and then apologised for."""
    db = Database(db_url)
    inbox = Inbox(db)
    items = [(str(n), {"user": user, "n": n}, user) for n, user in enumerate("abcdef")]
    assert await inbox.accept_many("telegram", items) == 6
    seen: list[tuple[str, int]] = []
    await drain(make_worker(db, inbox, seen, fail_on={2}), db)
    assert pending_texts(db) == ["ok 0", "ok 1", "ok 3", "ok 4", "ok 5", "sorry"]
    with db.session() as s:
        item = Repo(s).inbox_item(3)
    assert item is not None and item.error is not None and "handler bug" in item.error


async def test_many_senders_in_one_round_keep_order(db_url: str) -> None:
    """40 senders share each round (one group commit): every update is handled once and
    each sender's in order."""
    db = Database(db_url)
    inbox = Inbox(db)
    users = [f"u{i}" for i in range(40)]
    items = [
        (f"{step}-{u}", {"user": u, "n": step * 100 + i}, u)
        for step in range(3)
        for i, u in enumerate(users)
    ]
    assert await inbox.accept_many("telegram", items) == 120
    seen: list[tuple[str, int]] = []
    await drain(make_worker(db, inbox, seen), db)
    for u in users:
        mine = [n for who, n in seen if who == u]
        assert mine == sorted(mine) and len(mine) == 3
    with db.session() as s:
        assert Repo(s).outbox_counts() == {"pending": 120}


async def test_a_slow_read_holds_only_its_own_sender(sqlite_url: str) -> None:
    """A photo download or geocoder lookup that takes long (here 1 s) must not hold the other
    senders' updates: they are handled and committed while it is still being read."""
    db = Database(sqlite_url)
    inbox = Inbox(db)
    items = [(str(n), {"user": u, "n": n}, u) for n, u in enumerate(["slow", "a", "b", "c"])]
    items.append(("4", {"user": "a", "n": 4}, "a"))
    await inbox.accept_many("telegram", items)
    handled_at: dict[int, float] = {}
    prepared: list[str] = []

    async def prepare(events: list[Inbound]) -> list[Inbound]:
        prepared.append(events[0].external_id)
        if events[0].external_id == "slow":
            await asyncio.sleep(1.0)
        return events

    seen: list[tuple[str, int]] = []
    worker = make_worker(db, inbox, seen)
    worker.prepare = prepare
    inner = worker.decide
    loop_start = time.monotonic()

    def timed(uow: UnitOfWork, batch: Batch) -> None:
        for _item, events in batch:  # (a worker thread)
            handled_at.update({int(ev.text or 0): time.monotonic() - loop_start for ev in events})
        inner(uow, batch)

    worker.decide = timed
    await drain(worker, db)
    assert sorted(handled_at) == [0, 1, 2, 3, 4]
    assert max(handled_at[n] for n in (1, 2, 3, 4)) < 0.5  # did not wait for "slow"
    assert handled_at[0] >= 1.0
    assert sorted(prepared) == ["a", "a", "b", "c", "slow"]
    assert pending_texts(db) == [f"ok {n}" for n in range(5)]


async def test_connections_killed_by_the_server_cost_a_retry_not_an_update() -> None:
    """The pool does not ping before each transaction: when PostgreSQL drops every connection
    (a restart, a failover), the next transaction on the pool fails once and SQLAlchemy
    discards the dead connections. The running worker survives that failure and handles every
    update once; nothing lost, nothing twice."""
    from storage.db import upgrade
    from tests.dbs import fresh_postgres, kill_connections

    with fresh_postgres() as url:
        upgrade(url)
        db = Database(url)
        inbox = Inbox(db)
        seen: list[tuple[str, int]] = []
        worker = make_worker(db, inbox, seen)
        stop = asyncio.Event()
        task = asyncio.create_task(worker.run(stop))
        try:
            await inbox.accept_many("telegram", [("1", {"user": "a", "n": 1}, "a")])
            for _ in range(200):  # handled: the pool now holds open connections
                if seen:
                    break
                await asyncio.sleep(0.02)
            assert kill_connections(url) >= 1
            inbox.wake.set()  # the worker looks first and meets a dead connection
            await asyncio.sleep(0.3)
            items = [(str(n), {"user": u, "n": n}, u) for n, u in ((2, "a"), (3, "b"), (4, "c"))]
            stored = False
            for _attempt in range(2):  # as a platform redelivers what was not confirmed
                try:
                    await inbox.accept_many("telegram", items)
                    stored = True
                    break
                except Exception:
                    await asyncio.sleep(0.1)
            assert stored
            for _ in range(300):
                if len(seen) >= 4:
                    break
                await asyncio.sleep(0.02)
            assert not task.done(), "the worker must survive a failed cycle"
        finally:
            stop.set()
            await task
        try:
            assert sorted(n for _u, n in seen) == [1, 2, 3, 4]
            assert pending_texts(db) == ["ok 1", "ok 2", "ok 3", "ok 4"]
        finally:
            db.dispose()


async def test_two_processes_share_the_inbox_in_order_per_sender() -> None:
    """Two workers (two processes: engines of their own) on one PostgreSQL drain one inbox at
    once: each update is committed once, and each sender's updates one after another, in
    order (a worker that finds a sender held by the other leaves it to that one)."""
    from storage.db import upgrade
    from tests.dbs import fresh_postgres

    with fresh_postgres() as url:
        upgrade(url)
        dbs = [Database(url), Database(url)]
        inbox = Inbox(dbs[0])
        items = [(str(n), {"user": f"u{n % 8}", "n": n}, f"u{n % 8}") for n in range(120)]
        assert await inbox.accept_many("telegram", items) == 120
        seen: list[tuple[str, int]] = []
        running: dict[str, int] = {}
        overlaps: list[str] = []
        workers = []
        handled_by: list[list[int]] = [[], []]
        for k, db in enumerate(dbs):
            base = make_worker(db, Inbox(db), seen)
            real = base.decide

            def decide(uow: UnitOfWork, batch: Batch, real=real, k=k) -> None:  # type: ignore[no-untyped-def]
                for _item, events in batch:
                    for ev in events:
                        running[ev.external_id] = running.get(ev.external_id, 0) + 1
                        if running[ev.external_id] > 1:
                            overlaps.append(ev.external_id)
                        handled_by[k].append(int(ev.text or 0))
                time.sleep(0.002)  # hold the round open: the other worker runs meanwhile
                real(uow, batch)
                for _item, events in batch:
                    for ev in events:
                        running[ev.external_id] -= 1

            base.decide = decide
            workers.append(base)
        stop = asyncio.Event()
        tasks = [asyncio.create_task(w.run(stop)) for w in workers]
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with dbs[0].session() as s:
                if not Repo(s).inbox_pending():
                    break
            await asyncio.sleep(0.05)
        stop.set()
        await asyncio.gather(*tasks)
        texts = pending_texts(dbs[0])
        assert sorted(texts) == sorted(f"ok {n}" for n in range(120))  # each committed once
        assert overlaps == []  # one sender never in two rounds at once
        for user in range(8):
            mine = [n for u, n in seen if u == f"u{user}"]
            assert sorted(set(mine)) == mine  # in order (a round re-run repeats, never reorders)
        assert len(handled_by[0]) + len(handled_by[1]) >= 120
        for db in dbs:
            db.dispose()
