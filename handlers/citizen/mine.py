"""The citizen's own reports: `/laporanku` and `/status CODE`."""

from __future__ import annotations

from handlers.core import Ctx
from handlers.labels import (
    EVENT_LABELS,
    category_label,
    local_time,
    main_menu,
    opd_label,
    status_label,
)
from storage.models import Report


def cmd_my_reports(ctx: Ctx) -> None:
    _ = ctx.gettext
    assert ctx.person.id is not None
    reports = ctx.repo.reports_of(ctx.person.id, limit=10)
    if not reports:
        ctx.reply(_("You have not made any reports yet. Type /lapor to make one."), main_menu(_))
        return
    lines = [_("Your latest reports:")]
    for r in reports:
        lines.append(
            f"• {r.code} · {category_label(ctx.svc.city, r.category, ctx.lang)} · "
            f"{status_label(_, r.status)} · {local_time(ctx, r.created_at, ctx.lang)}"
        )
    lines.append("")
    lines.append(_("Details: /status CODE"))
    ctx.reply("\n".join(lines))


def cmd_status(ctx: Ctx) -> None:
    _ = ctx.gettext
    code = (ctx.event.args or "").strip().split(" ")[0].upper()[:24]
    if not code:
        ctx.reply(_("Please write the ticket number, for example: /status PLU-2611-0042"))
        return
    report = ctx.repo.report_by_code(code)
    if report is None or not can_see_report(ctx, report):
        ctx.reply(_("I could not find report {code} among your reports.").format(code=code))
        return
    ctx.reply(status_card(ctx, report))


def can_see_report(ctx: Ctx, report: Report) -> bool:
    if report.person_id == ctx.person.id:
        return True
    return any(check(ctx, report) for check in ctx.svc.hooks.can_see_report)


def status_card(ctx: Ctx, report: Report) -> str:
    _ = ctx.gettext
    assert report.id is not None
    lines = [
        _("Report {code}").format(code=report.code),
        _("Category: {category}").format(
            category=category_label(ctx.svc.city, report.category, ctx.lang)
        ),
        _("Status: {status}").format(status=status_label(_, report.status)),
        _("Handled by: {opd}").format(opd=opd_label(ctx.svc.city, report.opd)),
        "",
        _("History:"),
    ]
    for ev in ctx.repo.events(report.id):
        line = f"• {local_time(ctx, ev.created_at, ctx.lang)} – "
        if ev.kind == "created":
            line += _("report received")
        elif ev.kind in EVENT_LABELS:
            line += _(EVENT_LABELS[ev.kind])
        elif ev.status_to:
            line += status_label(_, ev.status_to)
        else:
            line += ev.kind
        if ev.note:
            line += f": {ev.note}"
        lines.append(line)
    return "\n".join(lines)
