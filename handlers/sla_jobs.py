"""The periodic SLA sweep (run by the scheduler every few minutes; all state is in the DB).

- a report close to its deadline → a reminder in the OPD's queue (once per report, cycle, stage);
- an overdue report → escalated to the OPD head(s) and the admins (once per cycle and stage);
- a resolved report whose citizen did not answer "is it solved?" in 10 working days → closed;
- on working days after `digest_hour` (city time) → the daily summary to each OPD head (once).

`sweep()` returns the messages; the caller writes them in the same transaction as the
`notice_log` rows that make each notice happen once, so a crash or restart neither loses nor
repeats one.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from functools import partial

from handlers import workflow as wf
from handlers.cards import overdue_stage
from handlers.events import Outgoing, Reply
from handlers.labels import local_time, opd_label
from handlers.notify import Notifier
from handlers.services import Services
from handlers.text import Gettext
from handlers.workdays import reminder_at
from storage.models import ROLE_HEAD, Report
from storage.repo import Repo
from storage.work_models import STAGE_RESOLUTION, STAGE_RESPONSE, ReportTrack


def sweep(repo: Repo, svc: Services) -> list[Outgoing]:
    n = Notifier(repo, svc)
    deadlines(n)
    close_unanswered(n)
    daily_digest(n)
    return n.out


def _stage(report: Report, track: ReportTrack) -> tuple[str, datetime, datetime]:
    if report.first_response_at is None:
        return STAGE_RESPONSE, track.cycle_started_at, track.response_due_at
    start = max(track.cycle_started_at, report.first_response_at)
    return STAGE_RESOLUTION, start, track.resolution_due_at


def deadlines(n: Notifier) -> None:
    now = n.svc.clock()
    cal = wf.config(n.svc).calendar
    for report, track in n.work.open_tracked():
        stage, start, due = _stage(report, track)
        assert report.id is not None
        key = f"sla:{report.id}:{track.cycle}:{stage}"
        when = local_time(n.svc, due, n.svc.i18n.default)
        if now > due:
            if n.work.claim_notice(key + ":escalate", now):
                n.to_heads_and_admins(
                    report.opd,
                    partial(_overdue, svc=n.svc, report=report, stage=stage, when=when),
                    report_id=report.id,
                )
        elif now >= reminder_at(cal, start, due):
            if n.work.claim_notice(key + ":remind", now):
                n.to_opd_queue(
                    report.opd,
                    partial(_due_soon, report=report, stage=stage, when=when),
                    report_id=report.id,
                )


def _stage_label(_: Gettext, stage: str) -> str:
    return _("first response") if stage == STAGE_RESPONSE else _("resolution")


def _due_soon(_: Gettext, lang: str, *, report: Report, stage: str, when: str) -> Reply:
    return Reply(
        text=_("⏳ Report {code}: the deadline for {stage} is {when}. Please act on it.").format(
            code=report.code, stage=_stage_label(_, stage), when=when
        )
        + "\n"
        + _("See it with /lihat {code}").format(code=report.code)
    )


def _overdue(
    _: Gettext, lang: str, *, svc: Services, report: Report, stage: str, when: str
) -> Reply:
    return Reply(
        text=_(
            "🚨 Overdue: report {code} ({opd}) missed the deadline for {stage} ({when})."
        ).format(
            code=report.code,
            opd=opd_label(svc.city, report.opd),
            stage=_stage_label(_, stage),
            when=when,
        )
        + "\n"
        + _("See it with /lihat {code}").format(code=report.code)
    )


def close_unanswered(n: Notifier) -> None:
    now = n.svc.clock()
    cfg = wf.config(n.svc)
    for report, track in n.work.awaiting_feedback():
        assert track.feedback_asked_at is not None
        if now >= cfg.calendar.add_workdays(track.feedback_asked_at, cfg.feedback_close_days):
            wf.close_unanswered(n, report, track)


def daily_digest(n: Notifier) -> None:
    now = n.svc.clock()
    cfg = wf.config(n.svc)
    local = cfg.calendar.local(now)
    if local.hour < cfg.digest_hour or not cfg.calendar.is_workday(local.date()):
        return
    heads: dict[str, list[int]] = defaultdict(list)
    for staff, person in n.work.staff_people(None, (ROLE_HEAD,)):
        if staff.opd and person.id is not None:
            heads[staff.opd].append(person.id)
    if not heads:
        return
    overdue: dict[str, int] = defaultdict(int)
    for report, track in n.work.open_tracked():
        if overdue_stage(report, track, now):
            overdue[report.opd] += 1
    day_ago = now - timedelta(days=1)
    for opd, people in sorted(heads.items()):
        if not n.work.claim_notice(f"digest:{opd}:{local.date().isoformat()}", now):
            continue
        counts = {
            "new": n.work.created_between(opd, day_ago, now),
            "open": n.work.count_open(opd),
            "overdue": overdue[opd],
            "resolved": n.work.resolved_between(opd, day_ago, now),
        }
        label = opd_label(n.svc.city, opd)
        n.to_people(people, partial(_digest, opd=label, counts=counts), kind="officer")


def _digest(_: Gettext, lang: str, *, opd: str, counts: dict[str, int]) -> Reply:
    return Reply(
        text=_(
            "📋 Daily summary for {opd}\n"
            "New in the last 24 hours: {new}\n"
            "Open: {open}\n"
            "Overdue: {overdue}\n"
            "Resolved in the last 24 hours: {resolved}\n\n"
            "See the queue with /antrian"
        ).format(opd=opd, **counts)
    )
