"""The outbox sender: drains `outbox` within each channel's rate limits.

- Order: priority first (warnings 10 < replies 50 < announcements 90), then age.  One chat
  never has two messages in flight, so one person's messages arrive in order.
- Pace: per channel a global interval (1 / rate) and a per-chat interval; a 429 pauses the
  whole channel for `retry_after`; 5xx and timeouts back off exponentially; "blocked"
  deactivates the identity and cancels what was queued for it.
- At most once, as far as a crash allows: rows are marked `sending` (committed) before the
  request and `sent` with the platform message id right after.  After a crash, rows still
  `sending` are the few that were in flight; they are sent again (a duplicate is better than
  a missed flood warning).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import timedelta

from bot.channels.base import OutboundMessage, RateLimits, SendResult, Transport
from bot.runtime import retry_delay
from handlers.events import Reply
from storage.db import Database
from storage.repo import DueMessage, Repo

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
LOAD_BATCH = 300  # due rows held in memory; a full reload (every second) costs ~0.07 ms a row
SAFETY = 0.97  # stay a little under the platform's ceiling so bursts never trip a 429
WINDOW_MARGIN = 0.005  # seconds added to the dispatch window (clock and network jitter)
# The flush loop lets the dispatch loop record results first: there they share the
# transaction that claims each chat's next message.
FLUSH_DELAY = 0.005
COALESCE = 0.002  # seconds the dispatch loop waits for more results before its next claim


class Pacer:
    """Global and per-chat spacing for one channel (monotonic clock)."""

    def __init__(self, limits: RateLimits, safety: float = SAFETY) -> None:
        self.global_gap = 1.0 / (limits.global_per_s * safety) if limits.global_per_s else 0.0
        self.chat_gap = 1.0 / (limits.per_chat_per_s * safety) if limits.per_chat_per_s else 0.0
        self.next_global = 0.0
        self.next_chat: dict[str, float] = {}
        self.paused_until = 0.0
        # Dispatch gate: at most `win_count` requests leave in any `win_span` seconds, stamped
        # right before the request (not when the row was picked), so a slow claim or a busy loop
        # cannot bunch requests past the platform's sliding window (Telegram: 30 in any 1 s).
        # One request under the platform's count per its window (30 per 1 s), so a request that
        # arrives a little late or early still fits: 29 per 1.005 s = 0.96 of the ceiling.
        rate = limits.global_per_s
        self.win_count = max(1, math.floor(rate) - 1) if rate else 0
        self.win_span = max(1, math.floor(rate)) / rate + WINDOW_MARGIN if rate else 0.0
        self.dispatched: deque[float] = deque()

    def wait_for(self, address: str, now: float) -> float:
        """Seconds until a message to `address` may go (0 = now)."""
        t = max(self.paused_until, self.next_global, self.next_chat.get(address, 0.0))
        return max(0.0, t - now)

    def take(self, address: str, now: float) -> None:
        # A send that starts late (a busy loop, a slow commit) lets the next one catch up, up to
        # one gap of credit: in any second at most rate·safety + 2 messages, 79 of WhatsApp's 80.
        self.next_global = max(self.next_global, now - self.global_gap) + self.global_gap
        if self.chat_gap:
            self.next_chat[address] = now + self.chat_gap
            if len(self.next_chat) > 50_000:  # forget chats whose gap has long passed
                self.next_chat = {a: t for a, t in self.next_chat.items() if t > now}

    def pause(self, seconds: float, now: float) -> None:
        self.paused_until = max(self.paused_until, now + seconds)

    def gate_wait(self, now: float) -> float:
        """Seconds until one more request may leave (0 = now)."""
        wait = self.paused_until - now
        if self.win_count:
            while self.dispatched and now - self.dispatched[0] >= self.win_span:
                self.dispatched.popleft()
            if len(self.dispatched) >= self.win_count:
                wait = max(wait, self.dispatched[0] + self.win_span - now)
        return max(0.0, wait)

    async def gate(self, address: str) -> None:
        """Wait for the dispatch window, then record the request (and the chat's next slot)."""
        while True:
            now = time.monotonic()
            wait = self.gate_wait(now)
            if wait <= 0:
                break
            await asyncio.sleep(wait)
        if self.win_count:
            self.dispatched.append(now)
        if self.chat_gap:
            self.next_chat[address] = max(self.next_chat.get(address, 0.0), now + self.chat_gap)


@dataclass
class SenderStats:
    sent: int = 0
    retried: int = 0
    failed: int = 0
    blocked: int = 0
    rate_limited: int = 0
    by_channel: dict[str, int] = field(default_factory=dict)


def _outcome(row: DueMessage, res: SendResult) -> str:
    """sent | blocked | retry | failed (a retry past the last attempt fails)."""
    if res.status == "retry":
        return "retry" if row.attempts + 1 < MAX_ATTEMPTS else "failed"
    return res.status if res.status in ("sent", "blocked") else "failed"


def backoff(attempts: int) -> float:
    return min(300.0, 2.0 ** max(0, attempts - 1))


class Sender:
    def __init__(
        self, db: Database, transports: dict[str, Transport], *, concurrency: int = 16
    ) -> None:
        self.db = db
        self.transports = transports
        self.pacers = {name: Pacer(t.limits) for name, t in transports.items()}
        self.concurrency = concurrency
        self.stats = SenderStats()
        self._wake = asyncio.Event()  # something changed: sleep no longer
        self._dirty = True  # new rows committed: reload the due list from the database
        self._inflight_addr: set[tuple[str, str]] = set()
        self._inflight = 0
        self._slots = asyncio.Semaphore(concurrency)
        self._results: list[tuple[DueMessage, SendResult]] = []
        self._results_ready = asyncio.Event()
        self._cache: list[DueMessage] = []
        self._cache_at = 0.0
        self._max_seen = 0
        self._tasks: set[asyncio.Task[None]] = set()

    def wake(self) -> None:
        """New rows were committed (called from the event loop)."""
        self._dirty = True
        self._wake.set()

    # --- main loop ------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        recovered = await asyncio.to_thread(self._recover)
        if recovered:
            log.warning("outbox: %d messages were in flight at the last stop; resending", recovered)
        flusher = asyncio.create_task(self._flush_loop(stop))
        failures = 0
        try:
            while not stop.is_set():
                try:
                    delay = await self._tick()
                    failures = 0
                except Exception:
                    # The database is away: unsent rows stay pending; reload once it is back.
                    failures += 1
                    delay = retry_delay(failures)
                    log.exception("outbox: a send cycle failed; retrying in %.1fs", delay)
                    self._cache, self._cache_at = [], 0.0
                if delay > 0:
                    self._wake.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), timeout=delay)
                    if self._inflight and self._results:
                        # A send came back while others are still out: let a few more come
                        # back so one transaction records them and claims what follows.
                        await asyncio.sleep(COALESCE)
        finally:
            if self._tasks:
                await asyncio.wait(self._tasks, timeout=10)
            stop.set()
            await flusher
            await self._flush()

    def _recover(self) -> int:
        with self.db.session() as s:
            return Repo(s).outbox_recover_inflight()

    def _load_due(self, after_id: int | None = None) -> list[DueMessage]:
        with self.db.session() as s:
            return Repo(s).outbox_due(
                self.db.clock(), channels=list(self.transports), limit=LOAD_BATCH, after_id=after_id
            )

    async def _tick(self) -> float:
        """Start every send that may go now; return how long to sleep."""
        now = time.monotonic()
        if not self._cache or now - self._cache_at > 1.0:
            # Full reload: picks up retries that became due and drops cancelled rows.
            self._dirty = False
            self._cache = await asyncio.to_thread(self._load_due)
            self._cache_at = time.monotonic()
            self._max_seen = max((r.id for r in self._cache), default=self._max_seen)
            now = self._cache_at
        elif self._dirty:
            # New rows were committed: load only those and merge them in priority order.
            self._dirty = False
            fresh = await asyncio.to_thread(self._load_due, self._max_seen)
            if fresh:
                self._max_seen = max(r.id for r in fresh)
                self._cache = sorted([*self._cache, *fresh], key=lambda r: (r.priority, r.id))
            now = time.monotonic()
        if not self._cache:
            return 1.0
        # Chats whose last message came back sent: their result is recorded in the claim's
        # transaction below, so their next message may be claimed in that same transaction.
        freed = {(r.channel, r.address) for r, res in self._results if _outcome(r, res) == "sent"}
        chosen: list[DueMessage] = []
        skip: set[tuple[str, str]] = set()
        wait = 1.0
        room = self.concurrency - self._inflight
        held: set[str] = set()  # channels whose global pace or pause lets nothing go now
        for row in self._cache:
            if row.channel in held:
                continue
            key = (row.channel, row.address)
            if key in skip or (key in self._inflight_addr and key not in freed):
                skip.add(key)
                continue
            skip.add(key)  # later rows for this chat wait for this one
            pacer = self.pacers[row.channel]
            w = pacer.wait_for(row.address, now)
            if w > 0:
                wait = min(wait, w)
                if max(pacer.next_global, pacer.paused_until) > now:
                    held.add(row.channel)
                    if len(held) == len(self.pacers):
                        break  # don't walk the whole queue once per message
                continue
            if room <= 0:
                wait = min(wait, 0.005)
                break
            pacer.take(row.address, now)
            chosen.append(row)
            room -= 1
        if not chosen:
            return max(wait, 0.001)
        ids = [r.id for r in chosen]
        chosen_ids = set(ids)
        self._cache = [r for r in self._cache if r.id not in chosen_ids]
        # Results that came back meanwhile are recorded in the same transaction as the claim
        # (all of them: `freed` above was computed from exactly these, nothing awaited since).
        batch, self._results = self._results, []
        try:
            claimed = set(await asyncio.to_thread(self._claim_and_record, ids, batch))
        except Exception:
            self._results = batch + self._results
            raise
        self._recorded(batch)
        for row in chosen:
            if row.id in claimed:  # cancelled meanwhile (e.g. recipient blocked): skip
                self._start(row)
        return 0.0

    def _claim_and_record(
        self, ids: list[int], batch: list[tuple[DueMessage, SendResult]]
    ) -> list[int]:
        with self.db.session() as s:
            repo = Repo(s)
            self._record_in(repo, batch)
            return repo.outbox_claim(ids)

    def _start(self, row: DueMessage) -> None:
        key = (row.channel, row.address)
        self._inflight_addr.add(key)
        self._inflight += 1
        task = asyncio.create_task(self._send(row))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send(self, row: DueMessage) -> None:
        transport = self.transports[row.channel]
        msg = OutboundMessage(
            outbox_id=row.id,
            channel=row.channel,
            address=row.address,
            reply=Reply.from_payload(row.payload),
            kind=row.kind,
            identity_id=row.identity_id,
            meta=dict(row.meta or {}),
        )
        try:
            await self.pacers[row.channel].gate(row.address)
            result = await asyncio.wait_for(transport.send(msg), timeout=60)
        except Exception as exc:  # a transport bug or timeout: retry later
            result = SendResult(status="retry", error=f"{type(exc).__name__}: {exc}"[:300])
        if result.status == "retry" and result.pause_channel and result.retry_after:
            self.pacers[row.channel].pause(result.retry_after, time.monotonic())
            self.stats.rate_limited += 1
        self._inflight -= 1
        # The chat stays "in flight" until the result is recorded, so a retry or a block
        # is known before the next message to that chat is picked.
        self._results.append((row, result))
        self._results_ready.set()
        self._wake.set()

    # --- recording results ------------------------------------------------------------------
    async def _flush_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set() or self._results:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._results_ready.wait(), timeout=0.5)
            self._results_ready.clear()
            # Record soon: a crash between a send and its record means a duplicate, so the
            # window stays as short as one commit plus FLUSH_DELAY (results that finish
            # meanwhile share it, and most are taken by the next claim's transaction).
            await asyncio.sleep(FLUSH_DELAY)
            await self._flush()

    async def _flush(self) -> None:
        if not self._results:
            return
        batch, self._results = self._results, []
        try:
            await asyncio.to_thread(self._record, batch)
        except Exception:
            log.exception("outbox: could not record %d results; retrying", len(batch))
            self._results = batch + self._results
            await asyncio.sleep(0.5)
            return
        self._recorded(batch)

    def _recorded(self, batch: list[tuple[DueMessage, SendResult]]) -> None:
        """After the results' commit: count them; their chats may take the next message."""
        if not batch:
            return
        for row, res in batch:
            self._inflight_addr.discard((row.channel, row.address))
            outcome = _outcome(row, res)
            if outcome == "sent":
                self.stats.sent += 1
                self.stats.by_channel[row.channel] = self.stats.by_channel.get(row.channel, 0) + 1
            elif outcome == "blocked":
                self.stats.blocked += 1
            elif outcome == "retry":
                self.stats.retried += 1
            else:
                self.stats.failed += 1
                log.warning("outbox %s to %s failed: %s", row.id, row.channel, res.error)
        if any(res.status != "sent" for _row, res in batch):
            self._cache_at = 0.0  # retries and cancellations changed the queue: full reload
        self._wake.set()

    def _record(self, batch: list[tuple[DueMessage, SendResult]]) -> None:
        with self.db.session() as s:
            self._record_in(Repo(s), batch)

    def _record_in(self, repo: Repo, batch: list[tuple[DueMessage, SendResult]]) -> None:
        """Write the results (caller's transaction); `_recorded` counts them after the commit."""
        if not batch:
            return
        now = self.db.clock()
        sent = [(row.id, res.message_id) for row, res in batch if res.status == "sent"]
        repo.outbox_record(sent, now)  # one statement for the common case
        for row, res in batch:
            outcome = _outcome(row, res)
            if outcome == "sent":
                continue
            if outcome == "blocked":
                repo.outbox_mark_failed(row.id, res.error or "blocked", state="failed")
                if row.identity_id is not None:
                    repo.deactivate_identity(row.identity_id)
                    repo.outbox_cancel_for_identity(row.identity_id, "recipient blocked the bot")
            elif outcome == "retry":
                delay = res.retry_after if res.retry_after else backoff(row.attempts + 1)
                repo.outbox_mark_retry(row.id, now + timedelta(seconds=delay), res.error)
            else:
                repo.outbox_mark_failed(row.id, res.error or res.status)
