"""Durable one-off jobs (a reminder, a scheduled broadcast), armed by bot/scheduler.py."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import col, select

from storage.base import Store
from storage.models import ScheduledJob


class JobRepo(Store):
    def schedule_job(self, kind: str, run_at: datetime, args: dict[str, Any]) -> ScheduledJob:
        job = ScheduledJob(kind=kind, args=args, run_at=run_at, created_at=self.now())
        self._s.add(job)
        self._s.flush()
        return job

    def due_jobs(self, now: datetime, limit: int = 50) -> list[ScheduledJob]:
        q = (
            select(ScheduledJob)
            .where(
                ScheduledJob.done_at == None,  # noqa: E711
                ScheduledJob.cancelled == False,  # noqa: E712
                col(ScheduledJob.run_at) <= now,
            )
            .order_by(col(ScheduledJob.run_at), col(ScheduledJob.id))
            .limit(limit)
        )
        return list(self._s.exec(q))

    def pending_jobs(self) -> list[ScheduledJob]:
        q = select(ScheduledJob).where(
            ScheduledJob.done_at == None,  # noqa: E711
            ScheduledJob.cancelled == False,  # noqa: E712
        )
        return list(self._s.exec(q.order_by(col(ScheduledJob.run_at))))

    def scheduled_job(self, job_id: int) -> ScheduledJob | None:
        return self._s.get(ScheduledJob, job_id)

    def finish_job(self, job_id: int, error: str | None = None) -> None:
        job = self._s.get(ScheduledJob, job_id)
        if job is not None:
            job.done_at = self.now()
            job.error = error[:500] if error else None
            self._s.add(job)

    def cancel_job(self, job_id: int) -> bool:
        job = self._s.get(ScheduledJob, job_id)
        if job is None or job.done_at is not None:
            return False
        job.cancelled = True
        self._s.add(job)
        return True
