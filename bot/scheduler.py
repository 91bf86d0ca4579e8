"""Timed work on APScheduler 3 (AsyncIOScheduler).

Two kinds of jobs:
- periodic jobs (`every`), re-added at each start: they read their state from the database
  (SLA deadlines, due broadcasts...), so a restart loses nothing;
- one-off jobs (`schedule`) that must survive restarts: a row in `scheduled_job` (plain JSON
  arguments, nothing pickled) is the durable record; APScheduler fires it at `run_at`, and at
  start-up every row not yet done is armed again (a job missed while down runs at once).
Handlers run in the event loop and never hold conversation state.

Only the leader process runs it (`App.lead`: a PostgreSQL advisory lock, storage/locks.py), so
with several processes on one database every job fires once.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from storage.db import Database
from storage.repo import Repo

log = logging.getLogger(__name__)

JobHandler = Callable[[dict[str, Any]], Awaitable[None] | None]


class Scheduler:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.aps = AsyncIOScheduler(timezone=UTC)
        self.handlers: dict[str, JobHandler] = {}

    def every(self, seconds: float, fn: Callable[[], Any], name: str) -> None:
        self.aps.add_job(
            fn,
            IntervalTrigger(seconds=seconds),
            id=name,
            replace_existing=True,
            coalesce=True,
            max_instances=1,
            misfire_grace_time=None,
        )

    def on(self, kind: str, handler: JobHandler) -> None:
        """Register what a persisted job of this kind does."""
        self.handlers[kind] = handler

    def schedule(self, kind: str, run_at: datetime, args: dict[str, Any]) -> int:
        """Persist a one-off job (call from a worker thread or the loop); returns its id."""
        with self.db.session() as s:
            job = Repo(s).schedule_job(kind, run_at, args)
            assert job.id is not None
            job_id, when = job.id, job.run_at
        if self.aps.running:
            self._arm(job_id, when)
        return job_id

    def _arm(self, job_id: int, run_at: datetime) -> None:
        if run_at.tzinfo is None:
            run_at = run_at.replace(tzinfo=UTC)
        self.aps.add_job(
            self._run_persisted,
            DateTrigger(run_date=max(run_at, self.db.clock())),
            args=[job_id],
            id=f"job-{job_id}",
            replace_existing=True,
            misfire_grace_time=None,
        )

    async def start(self) -> None:
        """Start (the process became the leader), or resume after `pause`."""
        if self.aps.running:
            self.aps.resume()
        else:
            self.aps.start()
            self.every(15, self._sweep, "scheduler.sweep")
        await self._sweep()

    def pause(self) -> None:
        """Stop firing jobs (leadership lost); `start` resumes."""
        if self.aps.running:
            self.aps.pause()

    async def _sweep(self) -> None:
        """Arm rows written by other processes (CLI) or missed while down."""
        pending = await asyncio.to_thread(self._pending)
        for job_id, run_at in pending:
            if self.aps.get_job(f"job-{job_id}") is None:
                self._arm(job_id, run_at)

    def _pending(self) -> list[tuple[int, datetime]]:
        with self.db.session() as s:
            return [(j.id, j.run_at) for j in Repo(s).pending_jobs() if j.id is not None]

    async def _run_persisted(self, job_id: int) -> None:
        job = await asyncio.to_thread(self._load, job_id)
        if job is None:
            return
        kind, args = job
        handler = self.handlers.get(kind)
        error = None
        if handler is None:
            error = f"no handler for {kind}"
            log.error("scheduler: %s", error)
        else:
            try:
                result = handler(args)
                if inspect.isawaitable(result):
                    await result
            except Exception as exc:
                log.exception("scheduler: job %s (%s) failed", job_id, kind)
                error = repr(exc)
        await asyncio.to_thread(self._finish, job_id, error)

    def _load(self, job_id: int) -> tuple[str, dict[str, Any]] | None:
        with self.db.session() as s:
            job = Repo(s).scheduled_job(job_id)
            if job is None or job.done_at is not None or job.cancelled:
                return None
            return job.kind, dict(job.args)

    def _finish(self, job_id: int, error: str | None) -> None:
        with self.db.session() as s:
            Repo(s).finish_job(job_id, error)

    def cancel(self, job_id: int) -> bool:
        with self.db.session() as s:
            ok = Repo(s).cancel_job(job_id)
        if ok and self.aps.get_job(f"job-{job_id}") is not None:
            self.aps.remove_job(f"job-{job_id}")
        return ok

    async def stop(self) -> None:
        if self.aps.running:
            self.aps.shutdown(wait=False)
