"""The citizen's side after submission: the duplicate check, following a report, and the
answer to "Is the problem solved?" (Yes → rating 1–5; Not yet → reopened, with a comment).

Steps: ``dup.choose`` (a similar report was found before sending) and ``feedback.comment``
(what is still wrong).  Buttons ``fb:...`` work at any step.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from handlers import workflow as wf
from handlers.citizen.flow import add_photo, ask_next, submit
from handlers.core import Ctx, Registry
from handlers.events import Choice
from handlers.labels import category_label, local_time, main_menu, opd_label, status_label
from handlers.notify import Notifier
from storage.models import STATUS_RESOLVED, Report
from storage.work_models import FEEDBACK_YES
from storage.work_repo import WorkRepo

MAX_COMMENT = 1000


# --- duplicate check: right after the place, and before sending -----------------------------
SAME_SPOT_M = 10  # closer than this is "the same spot", not "0 m from here"


def offer_duplicate_at_place(ctx: Ctx, data: dict[str, Any]) -> bool:
    """As soon as what and where are known (the hook `after_place`)."""
    return check_duplicate(ctx, data, at="place")


def check_duplicate(ctx: Ctx, data: dict[str, Any], at: str = "submit") -> bool:
    """An open report of the same category nearby → offer to support it. Looked up once per
    place (`dup_checked`); `at`: "place" (the report goes on after "no") or "submit".

    Returns True when it took over the conversation (the report is not sent yet).
    """
    if data.get("dup_checked") or data.get("lat") is None or data.get("lon") is None:
        return False
    data["dup_checked"] = True
    cfg = wf.config(ctx.svc)
    since = ctx.svc.clock() - timedelta(days=cfg.duplicate_days)
    found = WorkRepo(ctx.repo).nearby_open(
        data["category"],
        float(data["lat"]),
        float(data["lon"]),
        radius_m=cfg.duplicate_radius_m,
        since=since,
    )
    if not found:
        return False
    report, dist = found[0]
    assert report.id is not None
    _ = ctx.gettext
    data["dup_of"] = report.id
    data["dup_at"] = at
    ctx.set_state("dup.choose", data)
    where = (
        _("at the same spot")
        if dist < SAME_SPOT_M
        else _("{distance} m from here").format(distance=round(dist))
    )
    ctx.reply(
        _(
            "A similar report was already made {where}:\n\n"
            "{code} · {category} · {status} · {date}\n{description}\n\n"
            "You can support it: you will get its updates and it gains weight. "
            "Or go on with your own report."
        ).format(
            where=where,
            code=report.code,
            category=category_label(ctx.svc.city, report.category, ctx.lang),
            status=status_label(_, report.status),
            date=local_time(ctx, report.created_at, ctx.lang),
            description=_short(report.description, 200),
        ),
        duplicate_choices(_, report.id, at),
    )
    return True


def _short(text: str, size: int) -> str:
    return text if len(text) <= size else text[: size - 1].rstrip() + "…"


def duplicate_choices(_: Any, report_id: int, at: str = "submit") -> tuple[Choice, ...]:
    go_on = _("📝 Send a new report anyway") if at == "submit" else _("📝 No, go on with mine")
    return (
        Choice(f"dup:follow:{report_id}", _("👍 Support this report")),
        Choice("dup:new", go_on),
    )


def step_duplicate(ctx: Ctx) -> None:
    _ = ctx.gettext
    _step, data = ctx.state()
    ev = ctx.event
    choice = (ev.choice or "") if ev.kind == "choice" else ""
    at = str(data.get("dup_at") or "submit")
    if choice == "dup:new" and data.get("category"):
        data.pop("dup_of", None)
        if at == "submit":
            submit(ctx, data)
        else:
            ask_next(ctx, data)
        return
    if choice.startswith("dup:follow:") and data.get("dup_of"):
        report = ctx.repo.report(int(data["dup_of"]))
        ctx.clear_state()
        if report is None:
            ctx.reply(_("That report is no longer available."), main_menu(_))
            return
        follow(ctx, report)
        return
    if ev.kind == "photo" and add_photo(ctx, data):  # kept for the report, if it goes on
        ctx.set_state("dup.choose", data)
    ctx.reply(
        _("Please choose: support the existing report, or go on with yours."),
        duplicate_choices(_, int(data.get("dup_of") or 0), at),
    )


def follow(ctx: Ctx, report: Report) -> None:
    _ = ctx.gettext
    assert ctx.person.id is not None
    if report.person_id == ctx.person.id:
        ctx.reply(
            _("{code} is your own report; you already get its updates.").format(code=report.code),
            main_menu(_),
        )
        return
    added = WorkRepo(ctx.repo).follow(report, ctx.person.id, ctx.svc.clock())
    if not added:
        ctx.reply(_("You already support report {code}.").format(code=report.code), main_menu(_))
        return
    ctx.reply(
        _(
            "Thank you! You now support report {code} ({n} supporters). "
            "You will get a message every time its status changes."
        ).format(code=report.code, n=report.supporters),
        main_menu(_),
    )


# --- "Is the problem solved?" -------------------------------------------------------------------
def _parse(choice: str) -> tuple[str, int | None, int | None]:
    parts = choice.split(":")
    action = parts[1] if len(parts) > 1 else ""
    rid = int(parts[2]) if len(parts) > 2 and parts[2].isdigit() else None
    extra = int(parts[3]) if len(parts) > 3 and parts[3].isdigit() else None
    return action, rid, extra


def rating_choices(_: Any, report_id: int) -> tuple[Choice, ...]:
    return tuple(Choice(f"fb:nilai:{report_id}:{n}", "⭐" * n) for n in range(1, 6))


def on_feedback(ctx: Ctx) -> None:
    _ = ctx.gettext
    action, rid, extra = _parse(ctx.event.choice or "")
    report = ctx.repo.report(rid) if rid is not None else None
    if report is None or report.person_id != ctx.person.id or ctx.event.chat_type != "private":
        ctx.reply(_("That button is no longer active."))
        return
    assert ctx.person.id is not None and report.id is not None
    track = wf.ensure_track(ctx.repo, ctx.svc, report)
    n = Notifier(ctx.repo, ctx.svc, ctx.out)
    actor = wf.Actor(ctx.person.id, "citizen")
    if action == "skip":
        ctx.clear_state()
        ctx.reply(_("All right. Thank you!"), main_menu(_))
        return
    if action == "nilai":
        if track.feedback != FEEDBACK_YES or track.rating is not None or extra not in range(1, 6):
            ctx.reply(_("That button is no longer active."))
            return
        assert extra is not None
        wf.rate(n, report, actor, extra)
        ctx.reply(_("Thank you for your rating! 🙏"), main_menu(_))
        return
    pending = (
        report.status == STATUS_RESOLVED and track.feedback is None and track.closed_at is None
    )
    if not pending:
        ctx.reply(_("You already answered about report {code}.").format(code=report.code))
        return
    if action == "ya":
        wf.confirm_solved(n, report, actor)
        ctx.reply(
            _("Glad to hear it! How would you rate the handling of report {code}?").format(
                code=report.code
            ),
            rating_choices(_, report.id),
        )
        return
    if action == "belum":
        wf.reopen(n, report, actor)
        ctx.set_state("feedback.comment", {"report_id": report.id})
        ctx.reply(
            _(
                "Sorry about that. Report {code} is open again and back with {opd}. "
                "What is still wrong? Write a short comment, or press Skip."
            ).format(code=report.code, opd=opd_label(ctx.svc.city, report.opd)),
            (Choice(f"fb:skip:{report.id}", _("⏭️ Skip")),),
        )
        return
    ctx.reply(_("That button is no longer active."))


def step_feedback(ctx: Ctx) -> None:
    _ = ctx.gettext
    _step, data = ctx.state()
    ev = ctx.event
    report = ctx.repo.report(int(data.get("report_id") or 0))
    if report is None or report.person_id != ctx.person.id:
        ctx.clear_state()
        ctx.reply(_("That button is no longer active."), main_menu(_))
        return
    assert ctx.person.id is not None and report.id is not None
    if ev.kind != "text" or not (ev.text or "").strip():
        ctx.reply(
            _("Please write what is still wrong, or press Skip."),
            (Choice(f"fb:skip:{report.id}", _("⏭️ Skip")),),
        )
        return
    text = (ev.text or "").strip()[:MAX_COMMENT]
    n = Notifier(ctx.repo, ctx.svc, ctx.out)
    wf.citizen_comment(n, report, wf.Actor(ctx.person.id, "citizen"), text)
    ctx.clear_state()
    ctx.reply(
        _("Thank you. Your comment was sent to {opd}.").format(
            opd=opd_label(ctx.svc.city, report.opd)
        ),
        main_menu(_),
    )


def can_follower_see(ctx: Ctx, report: Report) -> bool:
    if report.id is None or ctx.person.id is None:
        return False
    return WorkRepo(ctx.repo).is_follower(report.id, ctx.person.id)


def register(reg: Registry) -> None:
    reg.choices["fb"] = on_feedback
    reg.steps["feedback"] = step_feedback
    reg.steps["dup"] = step_duplicate
