"""Inbox: raw updates are stored before they are acknowledged, then handled in order.

Guarantees (see docs/ARCHITECTURE.md):
- nothing lost: an update is acknowledged to the platform only after `accept` committed it;
- nothing twice: (channel, dedupe_key) is unique, and an item is marked processed in the same
  transaction as everything its handling wrote (report, state, outbox rows);
- in order: items are handled oldest first; items of one sender never run concurrently —
  across processes too (several `lapor run` on one PostgreSQL share the inbox: a worker takes
  an item only when no earlier item of its sender is unhandled and no other worker holds it).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, cast

from bot.channels.base import Channel
from bot.runtime import retry_delay
from handlers.core import ItemFailed
from handlers.events import Inbound
from storage.db import Database, is_outage
from storage.inbox import Pending, store_updates
from storage.repo import Repo
from storage.unit import UnitOfWork

log = logging.getLogger(__name__)

Batch = list[tuple[int, list[Inbound]]]  # (inbox item id, its events), one item per sender
Decide = Callable[[UnitOfWork, Batch], None]  # handlers.core.Core.run_batch
Apologise = Callable[[UnitOfWork, Inbound], None]
# Slow I/O an update needs before its transaction (the geocoder): returns the events with
# the answers on them.
Prepare = Callable[[list[Inbound]], Awaitable[list[Inbound]]]

READ_WAIT = 0.05  # a round waits this long for slow reads, then goes without them


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stop.wait(), timeout=seconds)
    except TimeoutError:
        pass


class Inbox:
    """The durable sink adapters write to (implements `InboxSink`)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.wake = asyncio.Event()

    async def accept(
        self, channel: str, key: str, payload: dict[str, Any], sender_key: str | None = None
    ) -> bool:
        return await self.accept_many(channel, [(key, payload, sender_key)]) == 1

    async def accept_many(
        self, channel: str, items: Sequence[tuple[str, dict[str, Any], str | None]]
    ) -> int:
        """One transaction for a batch (long polling delivers up to 100 at once)."""
        new = await asyncio.to_thread(store_updates, self.db, channel, items)
        if new:
            self.wake.set()
        return new


class InboxWorker:
    """Takes stored updates oldest first and runs each through the core.

    Different senders share a round (one transaction, up to `group` of them); one sender's
    updates run strictly one after another, in the order they arrived.
    """

    def __init__(
        self,
        db: Database,
        inbox: Inbox,
        channels: dict[str, Channel],
        decide: Decide,
        apologise: Apologise,
        on_outbox: Callable[[], None],
        *,
        max_attempts: int = 3,
        group: int = 50,
        prepare: Prepare | None = None,
    ) -> None:
        self.db = db
        self.inbox = inbox
        self.channels = channels
        self.decide = decide
        self.apologise = apologise
        self.on_outbox = on_outbox
        self.max_attempts = max_attempts
        self.group = group  # items per round (one transaction)
        self.prepare = prepare
        self.handled = 0

    async def run(self, stop: asyncio.Event) -> None:
        failures = 0
        while not stop.is_set():
            try:
                await self._cycle(stop)
                failures = 0
            except Exception:
                # The database is away (restart, failover, full disk): what was not committed
                # is still pending in the inbox; try again, more slowly each time.
                failures += 1
                wait = retry_delay(failures)
                log.exception("inbox worker: a cycle failed; retrying in %.1fs", wait)
                await _sleep_or_stop(stop, wait)

    async def _cycle(self, stop: asyncio.Event) -> None:
        self.inbox.wake.clear()
        items = await asyncio.to_thread(self._pending)
        if not items:
            waiter = asyncio.ensure_future(self.inbox.wake.wait())
            stopper = asyncio.ensure_future(stop.wait())
            await asyncio.wait({waiter, stopper}, timeout=1.0, return_when="FIRST_COMPLETED")
            waiter.cancel()
            stopper.cancel()
            return
        await self._run_batch(items)

    def _pending(self) -> list[Pending]:
        with self.db.session() as s:
            return Repo(s).inbox_pending(limit=200)

    async def _run_batch(self, items: list[Pending]) -> None:
        """Handle a batch in rounds: each round takes the oldest item of every sender.

        A round is one transaction with one unit of work (`_commit`); one sender's updates
        never share a round, so they stay in order.
        """
        lanes: dict[str, list[Pending]] = {}
        known: set[int] = set()  # items taken into this batch
        held: set[str] = set()  # lanes stopped by a failure: their later items wait too

        def add(new: list[Pending]) -> None:
            for item in new:
                lane = f"{item.channel}:{item.sender_key}" if item.sender_key else f"item:{item.id}"
                if item.id in known or lane in held:
                    continue
                known.add(item.id)
                lanes.setdefault(lane, []).append(item)

        add(items)
        # Each lane's head is read (and prepared) as a task; a round takes the heads that are
        # ready, so one slow photo download or geocoder lookup holds only its own sender.
        # While every head is still reading, updates that arrive meanwhile join the batch.
        reading: dict[int, asyncio.Task[list[Inbound] | None]] = {}
        while lanes:
            for queue in lanes.values():
                item = queue[0]
                if item.id not in reading:
                    reading[item.id] = asyncio.create_task(self._read_prepared(item))
            head_tasks = [reading[queue[0].id] for queue in lanes.values()]
            if not all(t.done() for t in head_tasks):
                await asyncio.wait(head_tasks, timeout=READ_WAIT)
            if not any(t.done() for t in head_tasks):
                # Wait for a read or a new update; a wake that came while the reads were
                # waited for above counts too (it is cleared only once acted on).
                if not self.inbox.wake.is_set():
                    arrived = asyncio.ensure_future(self.inbox.wake.wait())
                    await asyncio.wait([*head_tasks, arrived], return_when=asyncio.FIRST_COMPLETED)
                    arrived.cancel()
                if self.inbox.wake.is_set():
                    self.inbox.wake.clear()
                    add(await asyncio.to_thread(self._pending))
                continue
            heads = [
                (lane, queue[0]) for lane, queue in lanes.items() if reading[queue[0].id].done()
            ][: self.group]
            read = [reading.pop(item.id).result() for _lane, item in heads]
            batch = [
                (item.id, events)
                for (_lane, item), events in zip(heads, read, strict=True)
                if events is not None
            ]
            failed, skipped = await asyncio.to_thread(self._commit, batch) if batch else ({}, set())
            wrote = False
            for (lane, item), events in zip(heads, read, strict=True):
                item_id = item.id
                if item_id in skipped:
                    # Another worker has this sender now (or handled the item): leave the
                    # sender to it; what is still pending comes back in a later batch.
                    del lanes[lane]
                    held.add(lane)
                    continue
                if events is None or item_id in failed:
                    error = failed.get(item_id, "could not read the update")
                    done = await asyncio.to_thread(
                        self._record_failure, item_id, error, events or []
                    )
                    wrote = True
                    if not done:
                        del lanes[lane]  # keep this sender's order: retry from here next time
                        held.add(lane)
                        continue
                else:
                    self.handled += 1
                    wrote = wrote or bool(events)
                lanes[lane].pop(0)
                if not lanes[lane]:
                    del lanes[lane]
            if wrote:
                self.on_outbox()

    async def _read_prepared(self, item: Pending) -> list[Inbound] | None:
        events = await self._read(item)
        if events and self.prepare is not None:
            try:
                events = await self.prepare(events)
            except Exception:  # the handler then goes on without the geocoder's answer
                log.warning("preparing inbox item %s failed", item.id, exc_info=True)
        return events

    async def _read(self, item: Pending) -> list[Inbound] | None:
        """The adapter's events for a stored update (media fetched); None if that failed."""
        adapter = self.channels.get(item.channel)
        if adapter is None:
            await asyncio.to_thread(self._finish_without_channel, item.id, item.channel)
            return []
        try:
            return await adapter.to_inbound(item.payload)
        except Exception:  # an adapter bug must not stop the worker
            log.exception("could not read inbox item %s", item.id)
            return None

    def _commit(self, batch: Batch) -> tuple[dict[int, str], set[int]]:
        """One transaction and one unit of work for the batch (a single update is a batch of
        one); returns {item_id: error} for the items left out, and the items not taken
        (another worker has them or their sender: `InboxRepo.inbox_take`).

        The core decides every item into the unit of work, which is flushed in one step
        before the commit. An item that raises is taken out and the batch runs again without
        it in a new transaction: nothing is rolled back around live objects. If the flush
        itself fails, each item runs alone, so only the one at fault is left out. A failing
        database is nobody's fault: it stops the cycle (the worker retries later).
        """
        failed: dict[int, str] = {}
        skipped: set[int] = set()
        todo = list(batch)
        while todo:
            try:
                with self.db.session() as s:
                    uow = UnitOfWork(s)
                    taken = Repo(uow).inbox_take([item_id for item_id, _events in todo])
                    self.decide(uow, [(i, events) for i, events in todo if i in taken])
                    uow.flush()
                return failed, skipped | {i for i, _events in todo if i not in taken}
            except ItemFailed as exc:
                if is_outage(exc.cause):
                    raise exc.cause from exc
                key = cast(int, exc.key)
                log.error("handling inbox item %s failed", key, exc_info=exc.cause)
                failed[key] = repr(exc.cause)
                todo = [(item_id, events) for item_id, events in todo if item_id != key]
            except Exception as exc:
                if is_outage(exc):
                    raise
                if len(todo) == 1:
                    ((item_id, _events),) = todo
                    log.exception("writing inbox item %s failed", item_id)
                    failed[item_id] = repr(exc)
                    return failed, skipped
                log.info("a batch of %d failed at its flush; one by one", len(todo))
                for one in todo:
                    one_failed, one_skipped = self._commit([one])
                    failed.update(one_failed)
                    skipped |= one_skipped
                return failed, skipped
        return failed, skipped

    def _record_failure(self, item_id: int, error: str, events: list[Inbound]) -> bool:
        """Count a failed attempt; after the last one give up and apologise (True)."""
        with self.db.session() as s:
            repo = Repo(s)
            attempts = repo.inbox_record_failure(item_id, error)
            if attempts < self.max_attempts:
                return False
            repo.inbox_mark_processed(item_id, error=error)
            uow = repo.uow
            for ev in events:
                self.apologise(uow, ev)
            uow.flush()
            return True

    def _finish_without_channel(self, item_id: int, channel: str) -> None:
        with self.db.session() as s:
            Repo(s).inbox_mark_processed(item_id, error=f"channel {channel} not configured")
