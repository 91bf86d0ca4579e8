"""The citizen's own reports: `/laporanku` and `/status CODE`."""

from __future__ import annotations

from handlers.cards import place_line
from handlers.core import Ctx
from handlers.history import history_lines
from handlers.labels import (
    category_label,
    example_code,
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
        ctx.reply(
            _("Please write the ticket number, for example: /status {code}").format(
                code=example_code(ctx.svc)
            )
        )
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
    """What, where, who handles it, and every public step with its local time."""
    _ = ctx.gettext
    assert report.id is not None
    lines = [
        _("Report {code}").format(code=report.code),
        _("Category: {category}").format(
            category=category_label(ctx.svc.city, report.category, ctx.lang)
        ),
        place_line(_, ctx.svc, report),
        _("Status: {status}").format(status=status_label(_, report.status)),
        _("Handled by: {opd}").format(opd=opd_label(ctx.svc.city, report.opd)),
        "",
        report.description,
        "",
        _("History:"),
    ]
    lines += history_lines(
        _,
        ctx.repo.events(report.id),
        tz=ctx.svc.city.city.timezone,
        lang=ctx.lang,
        view="citizen",
    )
    return "\n".join(lines)
