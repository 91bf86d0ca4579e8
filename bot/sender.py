"""The outbox sender: drains `outbox` within each channel's rate limits.

- Order: priority first (warnings 10 < replies 50 < announcements 90), then age.  One chat
  never has two messages in flight, so one person's messages arrive in order — across
  processes too: a row is claimed only when no earlier row of its chat is open
  (`OutboxRepo.outbox_take`, `FOR UPDATE SKIP LOCKED` on PostgreSQL).
- Batched: one transaction claims the next rows of every channel that needs some (a few
  tenths of a second of sending, so a new warning waits behind little) and records the
  results that came back meanwhile; results are also recorded every few milliseconds
  on their own.  No transaction per message.
- Pace: per lane a global interval (1 / rate) and a sliding window, per chat an interval;
  a 429 pauses the whole channel for `retry_after`; 5xx and timeouts back off
  exponentially; "blocked" deactivates the identity and cancels what was queued for it.
- Paid lane (Telegram's paid broadcasts): warnings go on it while the month's budget,
  reserved in the database with the claim, lasts; everything else at the free rate.
- At most once, as far as a crash allows: claimed rows are `sending` (committed, with this
  process's slot) before their request, and `sent` with the platform message id within
  milliseconds after.  Rows still `sending` when their process died are sent again — by the
  same slot on restart, or by another process that finds the slot free (storage/locks.py).
  Only those in flight at the crash can arrive twice (a duplicate is better than a missed
  flood warning).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from bot.channels.base import OutboundMessage, PaidLane, RateLimits, SendResult, Transport
from bot.runtime import retry_delay
from handlers.events import Reply
from storage.db import Database
from storage.locks import ProcessLocks
from storage.repo import DueMessage, Repo

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
SAFETY = 0.97  # stay a little under the platform's ceiling so bursts never trip a 429
WINDOW_MARGIN = 0.005  # seconds added to the dispatch window (clock and network jitter)
JITTER = 0.04  # seconds of requests kept spare in the window (late arrivals bunch up)
MAX_JITTER = 0.2  # ... at most, after 429s
CALM = 20.0  # seconds without a 429 before the spare room shrinks again
HORIZON = 0.25  # seconds of sending claimed ahead per channel (a warning waits behind this)
MIN_DEPTH, UNPACED_DEPTH = 8, 64  # rows claimed ahead at least / for a channel without a limit
FLUSH_DELAY = 0.004  # results wait this long for others to share their transaction
POLL = 1.0  # seconds between claims when nothing woke us (retries coming due, other processes)
SWEEP = 1.0  # seconds between looks at the other processes (how many; rows of dead ones)
LOG_EVERY = 10.0  # seconds between log lines about paid sends


class Pacer:
    """Global and per-chat spacing for one lane (monotonic clock)."""

    def __init__(
        self, limits: RateLimits, safety: float = SAFETY, chats: dict[str, float] | None = None
    ) -> None:
        self.limits = limits
        self.safety = safety
        self.chat_gap = 1.0 / (limits.per_chat_per_s * safety) if limits.per_chat_per_s else 0.0
        self.next_global = 0.0
        self.next_chat: dict[str, float] = {} if chats is None else chats  # shared by lanes
        self.paused_until = 0.0
        self.dispatched: deque[float] = deque()
        self.spare_time = JITTER  # grows after a 429, shrinks back while none come
        self.calm_since = 0.0
        self.share(1.0)

    def share(self, fraction: float) -> None:
        """Pace at `fraction` of the platform's rate: the processes sending with one token
        share its ceiling (each takes 1 / how many hold a sender slot)."""
        self.fraction = fraction
        rate = self.limits.global_per_s * fraction
        self.global_gap = 1.0 / (rate * self.safety) if rate else 0.0
        # A send that starts late (a busy loop, a slow commit) lets the next ones catch up, by
        # one gap at slow rates (30/s: never more than rate·safety + 2 in a second) and by up
        # to 20 ms at fast ones; the dispatch window below still holds the platform's count.
        self.credit = max(self.global_gap, min(0.02, 20 * self.global_gap))
        # Dispatch gate: at most `win_count` requests leave in any `win_span` seconds, stamped
        # right before the request (not when the row was picked), so a slow claim or a busy loop
        # cannot bunch requests past the platform's sliding window (Telegram: 30 in any 1 s).
        # One request under the platform's count per its window (30 per 1 s), so a request that
        # arrives a little late or early still fits: 29 per 1.005 s = 0.96 of the ceiling.
        # Requests reach the platform up to tens of milliseconds late, some later than others,
        # so more can land in one of its windows than left in one of ours: keep room for
        # JITTER seconds of them (30/s: one, as above; 1,000/s: 960 in any 1.005 s).
        spare = max(1, round(rate * self.spare_time))
        self.win_count = max(1, math.floor(rate) - spare) if rate else 0
        self.win_span = max(1, math.floor(rate)) / rate + WINDOW_MARGIN if rate else 0.0

    def rate_limited(self, now: float) -> None:
        """A 429 came though we kept to the window: arrivals bunch more than we allowed for
        here (a busy machine, a slow network). Keep 20 ms more of the window spare."""
        self.spare_time = min(MAX_JITTER, self.spare_time + 0.02)
        self.calm_since = now
        self.share(self.fraction)

    def _calm(self, now: float) -> None:
        """No 429 for CALM seconds: give back 10 ms of the spare room."""
        if self.spare_time > JITTER and now - self.calm_since >= CALM:
            self.spare_time = max(JITTER, self.spare_time - 0.01)
            self.calm_since = now
            self.share(self.fraction)

    def wait_for(self, address: str, now: float) -> float:
        """Seconds until a message to `address` may go (0 = now)."""
        t = max(self.paused_until, self.next_global, self.next_chat.get(address, 0.0))
        return max(0.0, t - now)

    def blocked(self, now: float) -> bool:
        """Nothing may go on this lane now, whatever the chat."""
        return max(self.next_global, self.paused_until) > now

    def take(self, address: str, now: float) -> None:
        self.next_global = max(self.next_global, now - self.credit) + self.global_gap
        if self.chat_gap:
            self.next_chat[address] = now + self.chat_gap
            if len(self.next_chat) > 50_000:  # forget chats whose gap has long passed
                kept = {a: t for a, t in self.next_chat.items() if t > now}
                self.next_chat.clear()
                self.next_chat.update(kept)

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
        self._calm(time.monotonic())
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
    paid_by_channel: dict[str, int] = field(default_factory=dict)  # sent on a paid lane
    # this month's spend on each paid lane, all processes together (as of the last claim)
    paid_spent: dict[str, float] = field(default_factory=dict)


def _outcome(row: DueMessage, res: SendResult) -> str:
    """sent | blocked | retry | failed (a retry past the last attempt fails)."""
    if res.status == "retry":
        return "retry" if row.attempts + 1 < MAX_ATTEMPTS else "failed"
    return res.status if res.status in ("sent", "blocked") else "failed"


def backoff(attempts: int) -> float:
    return min(300.0, 2.0 ** max(0, attempts - 1))


def budget_name(channel: str, now: datetime) -> str:
    """The counter of a paid lane's messages this calendar month (UTC)."""
    return f"paid:{channel}:{now:%Y-%m}"


class _Channel:
    """One channel's transport, lanes and claimed rows."""

    def __init__(self, name: str, transport: Transport) -> None:
        self.name = name
        self.transport = transport
        self.free = Pacer(transport.limits)
        lane: PaidLane | None = getattr(transport, "paid_lane", None)
        self.paid_lane = lane if lane is not None and lane.max_messages > 0 else None
        self.paid = (
            Pacer(self.paid_lane.limits, chats=self.free.next_chat) if self.paid_lane else None
        )
        fastest = max(transport.limits.global_per_s, lane.limits.global_per_s if lane else 0)
        unpaced = not transport.limits.global_per_s
        self.depth = UNPACED_DEPTH if unpaced else max(MIN_DEPTH, math.ceil(fastest * HORIZON))
        self.queue: list[DueMessage] = []  # claimed, not yet started, by (priority, id)
        self.more = True  # the last claim was full: the database may hold more
        self.fresh = True  # rows were written (or a chat's next one freed) since the last claim
        self.exhausted_month: str | None = None  # the paid budget ran out (logged once)

    def pacer(self, row: DueMessage) -> Pacer:
        return self.paid if row.paid and self.paid is not None else self.free

    def wants(self) -> int:
        return self.depth - len(self.queue)

    def claim_now(self, periodic: bool) -> bool:
        """Claim more rows now: there is room, and rows are new, or were left last time
        and the queue runs low, or the periodic look (retries coming due) is due."""
        if self.wants() <= 0:
            return False
        return self.fresh or periodic or (self.more and len(self.queue) < self.depth // 2)


class Sender:
    def __init__(
        self,
        db: Database,
        transports: dict[str, Transport],
        *,
        concurrency: int = 16,
        locks: ProcessLocks | None = None,
    ) -> None:
        self.db = db
        self.transports = transports
        self.channels = {name: _Channel(name, t) for name, t in transports.items()}
        self.concurrency = concurrency
        self._own_locks = locks is None  # made here: closed when `run` ends
        self.locks = locks or ProcessLocks(db)
        self.stats = SenderStats()
        self.slot: int | None = None
        self._wake = asyncio.Event()  # the dispatcher: something may go now
        self._sync_wake = asyncio.Event()  # the syncer: results to record or rows to claim
        self._results: list[tuple[DueMessage, SendResult]] = []
        self._inflight = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._last_claim = 0.0
        self._last_sweep = 0.0
        self.processes = 1  # processes sharing each platform's rate (live sender slots)
        self._paid_log: dict[str, tuple[float, int]] = {}  # channel → (last log, sent since)

    @property
    def pacers(self) -> dict[str, Pacer]:
        """Each channel's free-lane pacer."""
        return {name: ch.free for name, ch in self.channels.items()}

    def wake(self) -> None:
        """New rows were committed (called from the event loop)."""
        for ch in self.channels.values():
            ch.fresh = True
        self._sync_wake.set()

    # --- main loop ------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        await self._start_slot(stop)
        syncer = asyncio.create_task(self._sync_loop(stop))
        try:
            while not stop.is_set():
                delay = self._dispatch()
                if delay > 0:
                    self._wake.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), timeout=delay)
        finally:
            if self._tasks:
                await asyncio.wait(self._tasks, timeout=10)
            stop.set()
            self._sync_wake.set()
            await syncer
            await self._shutdown_sync()
            if self._own_locks:
                await asyncio.to_thread(self.locks.close)

    async def _start_slot(self, stop: asyncio.Event) -> None:
        failures = 0
        while not stop.is_set():
            try:
                self.slot, recovered = await asyncio.to_thread(self._take_slot)
                if recovered:
                    log.warning(
                        "outbox: %d messages were in flight at the last stop; resending",
                        recovered,
                    )
                return
            except Exception:
                failures += 1
                delay = retry_delay(failures)
                log.exception("outbox: no sender slot yet; retrying in %.1fs", delay)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=delay)

    def _take_slot(self) -> tuple[int, int]:
        slot = self.locks.take_slot()
        self._share(self.locks.live_slots())
        with self.db.session() as s:
            return slot, Repo(s).outbox_recover_inflight(slot)

    def _share(self, processes: int) -> None:
        """Each of `processes` senders paces at its share of every platform's rate."""
        if processes == self.processes:
            return
        log.info("outbox: %d processes send; each at 1/%d of every rate", processes, processes)
        self.processes = processes
        for ch in self.channels.values():
            for pacer in (ch.free, ch.paid):
                if pacer is not None:
                    pacer.share(1.0 / processes)

    # --- dispatching ------------------------------------------------------------------------
    def _dispatch(self) -> float:
        """Start every send that may go now; return how long to sleep."""
        now = time.monotonic()
        wait = 1.0
        room = self.concurrency - self._inflight
        for ch in self.channels.values():
            if not ch.queue:
                continue
            chosen: list[DueMessage] = []
            held: set[int] = set()  # lanes (by id) whose pace or pause lets nothing go now
            lanes = 1 + (ch.paid is not None)
            for row in ch.queue:
                pacer = ch.pacer(row)
                if id(pacer) in held:
                    continue
                w = pacer.wait_for(row.address, now)
                if w > 0:
                    wait = min(wait, w)
                    if pacer.blocked(now):
                        held.add(id(pacer))
                        if len(held) == lanes:
                            break  # don't walk the whole queue once per message
                    continue
                if room <= 0:
                    wait = min(wait, 0.005)
                    break
                pacer.take(row.address, now)
                chosen.append(row)
                room -= 1
            if chosen:
                taken = {r.id for r in chosen}
                ch.queue = [r for r in ch.queue if r.id not in taken]
                for row in chosen:
                    self._start(ch, row)
                wait = 0.0
            if len(ch.queue) < ch.depth // 2:
                self._sync_wake.set()
        return wait if wait == 0.0 else max(wait, 0.0005)

    def _start(self, ch: _Channel, row: DueMessage) -> None:
        self._inflight += 1
        task = asyncio.create_task(self._send(ch, row))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send(self, ch: _Channel, row: DueMessage) -> None:
        msg = OutboundMessage(
            outbox_id=row.id,
            channel=row.channel,
            address=row.address,
            reply=Reply.from_payload(row.payload),
            kind=row.kind,
            identity_id=row.identity_id,
            meta=dict(row.meta or {}),
            last_inbound_at=row.last_inbound_at,
            paid=row.paid,
        )
        try:
            await ch.pacer(row).gate(row.address)
            result = await asyncio.wait_for(ch.transport.send(msg), timeout=60)
        except Exception as exc:  # a transport bug or timeout: retry later
            result = SendResult(status="retry", error=f"{type(exc).__name__}: {exc}"[:300])
        if result.status == "retry" and result.pause_channel and result.retry_after:
            now = time.monotonic()
            for pacer in (ch.free, ch.paid):
                if pacer is not None:
                    pacer.pause(result.retry_after, now)
            if now >= ch.pacer(row).calm_since + 0.5:  # one burst of 429s counts once
                ch.pacer(row).rate_limited(now)
            self.stats.rate_limited += 1
        self._inflight -= 1
        self._results.append((row, result))
        self._sync_wake.set()
        self._wake.set()

    # --- the database: claims and results, batched ------------------------------------------
    async def _sync_loop(self, stop: asyncio.Event) -> None:
        failures = 0
        while not stop.is_set():
            self._sync_wake.clear()
            now = time.monotonic()
            due = self._last_claim + POLL - now
            if not self._results and not self._claim_wanted(now):
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._sync_wake.wait(), timeout=max(0.001, due))
                continue
            # Record soon: a crash between a send and its record means a duplicate, so the
            # window stays as short as one commit plus FLUSH_DELAY (results that finish
            # meanwhile share the transaction, and so does the next claim). A chat whose next
            # message waits goes at once: a reply's second message follows the first.
            if not any(r.more and res.status == "sent" for r, res in self._results):
                await asyncio.sleep(FLUSH_DELAY)
            try:
                await self._sync()
                failures = 0
            except Exception:
                # The database is away: results stay in memory, claimed rows stay ours.
                failures += 1
                delay = retry_delay(failures)
                log.exception("outbox: a send cycle failed; retrying in %.1fs", delay)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=delay)

    def _claim_wanted(self, now: float) -> bool:
        if self.slot is None:
            return False
        periodic = now - self._last_claim >= POLL
        return any(ch.claim_now(periodic) for ch in self.channels.values())

    async def _sync(self) -> None:
        now = time.monotonic()
        batch, self._results = self._results, []
        for row, res in batch:
            if res.status == "sent" and row.more:
                # recorded first in the transaction below, so the chat's next row may be
                # claimed right there (if its gap allows)
                self.channels[row.channel].fresh = True
        periodic = now - self._last_claim >= POLL
        wants = {name: ch.wants() for name, ch in self.channels.items() if ch.claim_now(periodic)}
        for name in wants:
            self.channels[name].fresh = False
        sweep = now - self._last_sweep >= SWEEP
        try:
            claimed, spent = await asyncio.to_thread(self._transaction, batch, wants)
        except Exception:
            self._results = batch + self._results
            for name in wants:
                self.channels[name].fresh = True
            raise
        if wants:
            self._last_claim = time.monotonic()
        self._recorded(batch)
        for name, rows in claimed.items():
            ch = self.channels[name]
            ch.more = len(rows) >= wants[name]
            if rows:
                ch.queue = sorted([*ch.queue, *rows], key=lambda r: (r.priority, r.id))
        self._note_paid(spent)
        if any(claimed.values()):
            self._wake.set()
        if sweep:
            self._last_sweep = time.monotonic()
            await asyncio.to_thread(self._sweep)

    def _transaction(
        self, batch: list[tuple[DueMessage, SendResult]], wants: dict[str, int]
    ) -> tuple[dict[str, list[DueMessage]], dict[str, tuple[str, int, bool]]]:
        """One transaction: record `batch`, then claim up to `wants[channel]` rows each and
        reserve the paid lane's budget for the warnings among them."""
        assert self.slot is not None
        claimed: dict[str, list[DueMessage]] = {}
        spent: dict[str, tuple[str, int, bool]] = {}
        with self.db.session() as s:
            repo = Repo(s)
            self._record_in(repo, batch)
            now = self.db.clock()
            for name, n in wants.items():
                ch = self.channels[name]
                rows = repo.outbox_take(
                    now, channels=[name], limit=n, slot=self.slot, chat_gap=ch.free.chat_gap
                )
                claimed[name] = rows
                lane = ch.paid_lane
                if lane is None:
                    continue
                paid = [r for r in rows if r.kind in lane.kinds]
                if not paid:
                    continue
                counter = budget_name(name, now)
                granted = repo.budget_reserve(counter, len(paid), lane.max_messages)
                for r in paid[:granted]:
                    r.paid = True
                repo.outbox_mark_paid([r.id for r in paid[:granted]])
                used = repo.budget_used(counter)
                spent[name] = (counter, used, granted < len(paid))
        return claimed, spent

    def _note_paid(self, spent: dict[str, tuple[str, int, bool]]) -> None:
        """Keep the month's spend for /metrics; say when the budget ran out."""
        for name, (counter, used, short) in spent.items():
            ch = self.channels[name]
            lane = ch.paid_lane
            assert lane is not None
            self.stats.paid_spent[name] = used * lane.price
            if short and ch.exhausted_month != counter:
                ch.exhausted_month = counter
                log.warning(
                    "%s paid broadcast: the budget of %g %s for %s is spent; warnings go on at "
                    "the free rate",
                    name, lane.budget, lane.currency, counter.rsplit(":", 1)[-1],
                )  # fmt: skip

    def _sweep(self) -> None:
        """Our locks still held?  Rows of processes that died: send them again."""
        if not self.locks.check():
            slot = self.locks.take_slot()
            log.warning("outbox: lock connection lost; now sender slot %d", slot)
            self.slot = slot
        self._share(self.locks.live_slots())
        with self.db.session() as s:
            slots = Repo(s).outbox_inflight_slots()
        for other in slots:
            if other == self.slot or not self.locks.holding_dead_slot(other):
                continue
            try:
                with self.db.session() as s:
                    n = Repo(s).outbox_recover_inflight(other)
                if n:
                    log.warning(
                        "outbox: %d messages of a stopped process (slot %d) resent", n, other
                    )
                    self.wake()
            finally:
                self.locks.release_slot(other)

    async def _shutdown_sync(self) -> None:
        """At a clean stop: record what came back; hand claimed rows not sent back."""
        batch, self._results = self._results, []
        unsent = [r.id for ch in self.channels.values() for r in ch.queue]
        for ch in self.channels.values():
            ch.queue = []
        if not batch and not unsent:
            return

        def finish() -> None:
            with self.db.session() as s:
                repo = Repo(s)
                self._record_in(repo, batch)
                repo.outbox_release(unsent, self.db.clock())

        try:
            await asyncio.to_thread(finish)
            self._recorded(batch)
        except Exception:
            log.exception("outbox: could not record %d results at stop", len(batch))

    # --- recording results ------------------------------------------------------------------
    def _recorded(self, batch: list[tuple[DueMessage, SendResult]]) -> None:
        """After the results' commit: count them; a chat with more waiting is claimed again."""
        if not batch:
            return
        now = time.monotonic()
        for row, res in batch:
            outcome = _outcome(row, res)
            ch = self.channels[row.channel]
            if outcome == "sent":
                self.stats.sent += 1
                self.stats.by_channel[row.channel] = self.stats.by_channel.get(row.channel, 0) + 1
                if row.paid:
                    paid = self.stats.paid_by_channel
                    paid[row.channel] = paid.get(row.channel, 0) + 1
                    last, since = self._paid_log.get(row.channel, (now, 0))
                    self._paid_log[row.channel] = (last, since + 1)
                if row.more and ch.free.chat_gap:  # the chat's next one: after its gap
                    loop = asyncio.get_running_loop()
                    loop.call_later(ch.free.chat_gap, self._freshen, ch)
            else:
                ch.fresh = True  # a retry or a cancellation changed the queue
                if outcome == "blocked":
                    self.stats.blocked += 1
                elif outcome == "retry":
                    self.stats.retried += 1
                else:
                    self.stats.failed += 1
                    log.warning("outbox %s to %s failed: %s", row.id, row.channel, res.error)
        self._log_paid(now)
        self._sync_wake.set()

    def _freshen(self, ch: _Channel) -> None:
        """Rows of `ch` may have become claimable: claim soon."""
        ch.fresh = True
        self._sync_wake.set()

    def _log_paid(self, now: float) -> None:
        for name, (last, since) in list(self._paid_log.items()):
            if since and now - last >= LOG_EVERY:
                lane = self.channels[name].paid_lane
                assert lane is not None
                log.info(
                    "%s paid broadcast: %d messages in %.0f s (%g %s); this month %g of %g %s",
                    name, since, now - last, since * lane.price, lane.currency,
                    self.stats.paid_spent.get(name, 0.0), lane.budget, lane.currency,
                )  # fmt: skip
                self._paid_log[name] = (now, 0)
            elif not since:
                self._paid_log[name] = (now, 0)

    def _record_in(self, repo: Repo, batch: list[tuple[DueMessage, SendResult]]) -> None:
        """Write the results (caller's transaction); `_recorded` counts them after the commit."""
        if not batch:
            return
        now = self.db.clock()
        sent = [(row.id, res.message_id) for row, res in batch if res.status == "sent"]
        repo.outbox_record(sent, now)  # one statement for the common case

        unpaid: dict[str, int] = {}  # paid sends that did not go: their reservation back
        for row, res in batch:
            outcome = _outcome(row, res)
            if outcome == "sent":
                continue
            if row.paid:
                counter = budget_name(row.channel, now)
                unpaid[counter] = unpaid.get(counter, 0) + 1
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
        for counter, n in unpaid.items():
            repo.budget_release(counter, n)
