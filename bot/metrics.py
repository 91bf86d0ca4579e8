"""Prometheus metrics at `/metrics` (text format), one registry per app (no globals).

Counted in process: inbound events per channel (`observe_inbound`).  Read at scrape time:
outbox rows per channel and state, messages sent / rate-limited (429) / retried / failed by
the sender, reports by status, open reports past their SLA deadline, channels up.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from storage.api_repo import ApiRepo
from storage.db import Database
from storage.models import Report

log = logging.getLogger(__name__)

DeadlineFn = Callable[[Report], datetime | None]


class Metrics:
    def __init__(
        self,
        db: Database,
        *,
        sender_stats: Callable[[], Any] = lambda: None,
        channel_status: Callable[[], dict[str, str]] = dict,
        deadline: DeadlineFn | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.inbound = Counter(
            "lapor_inbound_events",
            "Inbound events handled by the core, per channel",
            ["channel"],
            registry=self.registry,
        )
        self.registry.register(_StateCollector(db, sender_stats, channel_status, deadline, clock))

    def observe_inbound(self, channel: str) -> None:
        self.inbound.labels(channel=channel).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def install(self, app: web.Application) -> None:
        app.router.add_get("/metrics", self._handler)

    async def _handler(self, _request: web.Request) -> web.Response:
        body = await asyncio.to_thread(self.render)
        resp = web.Response(body=body)
        resp.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return resp


class _StateCollector(Collector):
    """Figures read from the database and the sender when Prometheus scrapes."""

    def __init__(
        self,
        db: Database,
        sender_stats: Callable[[], Any],
        channel_status: Callable[[], dict[str, str]],
        deadline: DeadlineFn | None,
        clock: Callable[[], datetime] | None,
    ) -> None:
        self.db = db
        self.sender_stats = sender_stats
        self.channel_status = channel_status
        self.deadline = deadline
        self.clock = clock
        self._due: dict[int, datetime | None] = {}  # computed deadlines of open reports

    def collect(self) -> Iterator[Metric]:
        yield from self._channels()
        yield from self._sender()
        try:
            yield from self._database()
        except Exception:
            log.warning("metrics: database figures unavailable", exc_info=True)
            up = GaugeMetricFamily("lapor_database_up", "1 when the database answers")
            up.add_metric([], 0)
            yield up

    def _channels(self) -> Iterator[Metric]:
        g = GaugeMetricFamily("lapor_channel_up", "1 when the channel is up", labels=["channel"])
        for name, status in self.channel_status().items():
            g.add_metric([name], 1 if status == "up" else 0)
        yield g

    def _sender(self) -> Iterator[Metric]:
        stats = self.sender_stats()
        if stats is None:
            return
        sent = CounterMetricFamily(
            "lapor_outbox_sent", "Messages delivered to a platform", labels=["channel"]
        )
        for ch, n in sorted(stats.by_channel.items()):
            sent.add_metric([ch], n)
        yield sent
        paid = CounterMetricFamily(
            "lapor_outbox_paid_sent",
            "Messages this process sent on a paid lane (Telegram paid broadcasts)",
            labels=["channel"],
        )
        for ch, n in sorted(getattr(stats, "paid_by_channel", {}).items()):
            paid.add_metric([ch], n)
        yield paid
        spent = GaugeMetricFamily(
            "lapor_outbox_paid_spent",
            "Spent on paid lanes this calendar month by all processes (Telegram: Stars)",
            labels=["channel"],
        )
        for ch, amount in sorted(getattr(stats, "paid_spent", {}).items()):
            spent.add_metric([ch], amount)
        yield spent
        for name, attr, text in (
            ("lapor_outbox_rate_limited", "rate_limited", "429 answers (channel paused)"),
            ("lapor_outbox_retried", "retried", "Sends to retry later (5xx, network, 429)"),
            ("lapor_outbox_failed", "failed", "Sends given up"),
            ("lapor_outbox_blocked", "blocked", "Recipients who blocked the bot"),
        ):
            c = CounterMetricFamily(name, text)
            c.add_metric([], getattr(stats, attr, 0))
            yield c

    def _database(self) -> Iterator[Metric]:
        with self.db.session() as s:
            repo = ApiRepo(s)
            outbox = repo.outbox_by_channel_state()
            by_status = repo.reports_by_status()
            inbox_pending = repo.inbox_pending_count()
            open_rows = repo.open_report_times() if self.deadline is not None else []
            tracked = repo.tracked_deadlines([r[0] for r in open_rows]) if open_rows else {}
        up = GaugeMetricFamily("lapor_database_up", "1 when the database answers")
        up.add_metric([], 1)
        yield up
        rows = GaugeMetricFamily(
            "lapor_outbox_messages", "Outbox rows by channel and state", labels=["channel", "state"]
        )
        depth: dict[str, int] = {}
        for ch, state, n in outbox:
            rows.add_metric([ch, state], n)
            if state in ("pending", "sending"):
                depth[ch] = depth.get(ch, 0) + n
        yield rows
        d = GaugeMetricFamily(
            "lapor_outbox_depth", "Messages waiting to be sent", labels=["channel"]
        )
        for ch, n in sorted(depth.items()):
            d.add_metric([ch], n)
        yield d
        ip = GaugeMetricFamily("lapor_inbox_pending", "Stored updates not handled yet")
        ip.add_metric([], inbox_pending)
        yield ip
        reports = GaugeMetricFamily("lapor_reports", "Reports by status", labels=["status"])
        for status, n in sorted(by_status.items()):
            reports.add_metric([status], n)
        yield reports
        if self.deadline is not None:
            breaches = GaugeMetricFamily(
                "lapor_sla_breaches", "Open reports past their resolution deadline"
            )
            breaches.add_metric([], self._breaches(open_rows, tracked))
            yield breaches

    def _breaches(
        self, open_rows: list[tuple[int, str, datetime]], tracked: dict[int, datetime]
    ) -> int:
        assert self.deadline is not None
        now = self.clock() if self.clock else datetime.now().astimezone()
        due_cache: dict[int, datetime | None] = {}
        n = 0
        for rid, category, created in open_rows:
            due = tracked.get(rid)
            if due is None:
                if rid in self._due:
                    due = self._due[rid]
                else:
                    due = self.deadline(Report(category=category, created_at=created))  # type: ignore[call-arg]
                due_cache[rid] = due
            if due is not None and due < now:
                n += 1
        self._due = due_cache  # forget reports no longer open
        return n
