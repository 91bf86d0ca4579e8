"""Officers at work, by chat command (private chat or the OPD's queue group).

    /daftar KODE              join as officer/head of an OPD (one-time invite code)
    /hubungkan OPD            (group) make this group the OPD's queue (admin or OPD head)
    /antrian [OPD]            open reports, oldest first, paged; ⏰ = overdue
    /lihat KODE               the report card with buttons
    /ambil KODE               assign to me
    /proses KODE [catatan]    in progress (first response)
    /selesai KODE catatan     resolved; a photo sent right after is the proof
    /tolak KODE alasan        rejected
    /alihkan KODE OPD alasan  hand over to another OPD
    /catatan KODE teks        internal note (never shown to the citizen)
    /statistik                admins: every OPD; heads: their OPD

Buttons (``op:<action>:<report id>``) do the same, in a private chat or on the card in the
queue group; ``op:riwayat:<id>:<page>`` pages a report's history.  Only officers of the owning
OPD and admins may act; anyone else is refused and nothing changes.  Steps: ``officer.note``
(the note or reason after ✅ / ⛔ / ↪️, asked where the button was pressed: in a group as a
question to reply to, answered only there) and ``officer.proof`` (the photo after /selesai,
in the private chat).  Every change edits the report's cards in the queue
(`workflow.refresh_cards`).
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from handlers import cards, history
from handlers import feedback as fb
from handlers import help as helptext
from handlers import workflow as wf
from handlers.citizen import on_idle
from handlers.core import Ctx, Registry
from handlers.events import Choice, Reply
from handlers.labels import example_code, opd_label, status_label
from handlers.notify import Notifier
from handlers.services import Services
from handlers.style import style
from handlers.text import N_, Gettext
from storage.models import ROLE_ADMIN, ROLE_HEAD, ROLE_OFFICER, Report, Staff
from storage.repo import Repo
from storage.work_repo import WorkRepo

MAX_NOTE = 1000
NOTE_STEP = "officer.note"  # the note or reason after a button (in the chat it was pressed)
CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I
INVITE_DAYS = 7


# --- invites ----------------------------------------------------------------------------------
def hash_code(code: str) -> str:
    norm = "".join(ch for ch in code.upper() if ch.isalnum())
    return hashlib.sha256(norm.encode()).hexdigest()


def create_invite(repo: Repo, opd: str, role: str, now: datetime, days: int = INVITE_DAYS) -> str:
    """A new one-time code (only its hash is stored); returned once, to be handed over."""
    raw = "".join(secrets.choice(CODE_ALPHABET) for _ in range(12))
    code = f"{raw[:4]}-{raw[4:8]}-{raw[8:]}"
    WorkRepo(repo).add_invite(hash_code(code), opd, role, now, now + timedelta(days=days))
    return code


def cmd_join(ctx: Ctx) -> None:
    _ = ctx.gettext
    if ctx.event.chat_type != "private":
        ctx.reply(_("Please send /daftar in a private chat with me, not in a group."))
        return
    code = (ctx.event.args or "").strip()
    if not code:
        ctx.reply(_("Please write the invite code, for example: /daftar ABCD-EFGH-JKLM"))
        return
    work = WorkRepo(ctx.repo)
    invite = work.invite_by_hash(hash_code(code[:40]))
    now = ctx.svc.clock()
    if invite is None or invite.used_at is not None or invite.expires_at <= now:
        ctx.reply(_("This invite code is not valid (unknown, already used or expired)."))
        return
    assert ctx.person.id is not None
    current = ctx.repo.staff(ctx.person.id)
    if current is not None and current.role == ROLE_ADMIN:
        ctx.reply(_("You are already an admin; an invite code is not needed."))
        return
    staff = ctx.repo.set_staff(ctx.person.id, invite.role, invite.opd)
    work.use_invite(invite, ctx.person.id, now)
    role = _("OPD head") if invite.role == ROLE_HEAD else _("officer")
    ctx.reply(
        _("Welcome! You are now {role} of {opd}.").format(
            role=role, opd=opd_label(ctx.svc.city, invite.opd)
        )
        + "\n\n"
        + helptext.help_text(_, helptext.roles_of(staff) - {helptext.CITIZEN}, ctx.event.channel)
    )
    ctx.out += helptext.menu_messages(ctx.repo, ctx.svc.i18n, ctx.person.id)


# --- who is asking ----------------------------------------------------------------------------
def _staff_or_refuse(ctx: Ctx) -> Staff | None:
    """The asker's staff row, or None after a refusal (citizens, unlinked groups)."""
    _ = ctx.gettext
    staff = wf.staff_of(ctx.repo, ctx.person)
    if staff is None or staff.role not in (ROLE_OFFICER, ROLE_HEAD, ROLE_ADMIN):
        ctx.reply(_("Sorry, this command is only for OPD officers."))
        return None
    if ctx.event.chat_type == "group" and not _group_opds(ctx):
        ctx.reply(
            _(
                "This group is not linked to an OPD. An admin or the OPD head can link it "
                "with /hubungkan OPD."
            )
        )
        return None
    return staff


def _group_opds(ctx: Ctx) -> list[str]:
    if ctx.event.chat_type != "group" or not ctx.event.chat_id:
        return []
    groups = WorkRepo(ctx.repo).groups_of_chat(ctx.event.channel, ctx.event.chat_id)
    return [g.opd for g in groups]


def _report_for(ctx: Ctx, staff: Staff, code: str) -> Report | None:
    """The report by code if this staff member may act on it; otherwise a refusal."""
    _ = ctx.gettext
    code = code.strip().upper()[:24]
    report = ctx.repo.report_by_code(code) if code else None
    if report is None:
        ctx.reply(_("Report {code} was not found.").format(code=code or "-"))
        return None
    if not wf.can_act(staff, report):
        ctx.reply(
            _("Report {code} belongs to {opd}. Only its officers can act on it.").format(
                code=report.code, opd=opd_label(ctx.svc.city, report.opd)
            )
        )
        return None
    return report


def _actor(ctx: Ctx, staff: Staff) -> wf.Actor:
    assert ctx.person.id is not None
    return wf.Actor(ctx.person.id, staff.role, ctx.person.display_name)


def _split(args: str, n: int) -> list[str]:
    text = (args or "").strip()
    parts = text.split(None, n - 1) if n > 1 else text.split()[:1]
    return parts + [""] * (n - len(parts))


# --- commands ---------------------------------------------------------------------------------
def cmd_link_group(ctx: Ctx) -> None:
    _ = ctx.gettext
    if ctx.event.chat_type != "group" or not ctx.event.chat_id:
        ctx.reply(_("Send /hubungkan OPD inside the Telegram group that should get the reports."))
        return
    staff = wf.staff_of(ctx.repo, ctx.person)
    code = (ctx.event.args or "").strip().split(" ")[0].upper()[:20]
    if not code or ctx.svc.city.opd(code) is None:
        codes = ", ".join(o.code for o in ctx.svc.city.opds)
        ctx.reply(
            _("Please name the OPD, for example /hubungkan DLH. OPDs: {codes}").format(codes=codes)
        )
        return
    allowed = staff is not None and (
        staff.role == ROLE_ADMIN or (staff.role == ROLE_HEAD and staff.opd == code)
    )
    if not allowed:
        ctx.reply(
            _("Sorry, only an admin or the head of {opd} can link a group to it.").format(
                opd=opd_label(ctx.svc.city, code)
            )
        )
        return
    WorkRepo(ctx.repo).link_group(
        code, ctx.event.channel, ctx.event.chat_id, ctx.person.id, ctx.svc.clock()
    )
    ctx.reply(
        _("This group is now the queue of {opd}. New reports will be posted here.").format(
            opd=opd_label(ctx.svc.city, code)
        )
    )


def _queue_scope(ctx: Ctx, staff: Staff, requested: str) -> str | None:
    """OPD code to list, or "*" for all (admins); None after a refusal."""
    _ = ctx.gettext
    requested = requested.strip().upper()[:20]
    if staff.role == ROLE_ADMIN:
        if requested and requested != "*":
            if ctx.svc.city.opd(requested) is None:
                ctx.reply(_("Unknown OPD {opd}.").format(opd=requested))
                return None
            return requested
        groups = _group_opds(ctx)
        return groups[0] if groups else "*"
    assert staff.opd is not None
    if requested and requested not in ("*", staff.opd):
        ctx.reply(
            _("You can only see the queue of {opd}.").format(opd=opd_label(ctx.svc.city, staff.opd))
        )
        return None
    return staff.opd


def show_queue(ctx: Ctx, staff: Staff, scope: str, page: int) -> None:
    _ = ctx.gettext
    work = WorkRepo(ctx.repo)
    opd = None if scope == "*" else scope
    total = work.count_open(opd)
    pages = max(1, (total + cards.QUEUE_PAGE - 1) // cards.QUEUE_PAGE)
    page = min(max(0, page), pages - 1)
    rows = work.open_reports(opd, limit=cards.QUEUE_PAGE, offset=page * cards.QUEUE_PAGE)
    label = _("all OPDs") if opd is None else opd_label(ctx.svc.city, opd)
    reply = cards.queue_page(
        _, ctx.lang, ctx.svc, rows, page=page, total=total, scope=label, now=ctx.svc.clock()
    )
    # keep the scope in the paging buttons
    choices = tuple(
        Choice(f"{c.id}:{scope}", c.label) if c.id.startswith("op:q:") else c for c in reply.choices
    )
    ctx.reply(reply.text, choices)


def cmd_queue(ctx: Ctx) -> None:
    staff = _staff_or_refuse(ctx)
    if staff is None:
        return
    scope = _queue_scope(ctx, staff, ctx.event.args or "")
    if scope is not None:
        show_queue(ctx, staff, scope, 0)


def show_card(ctx: Ctx, report: Report) -> None:
    """The card with its buttons, the whole description if the card had to shorten it, and
    the first page of the whole history."""
    _ = ctx.gettext
    track = wf.ensure_track(ctx.repo, ctx.svc, report)
    c = wf.card_input(ctx.repo, report, track)
    header = _("Report {code}").format(code=report.code)
    rest = _("(shortened; the whole text follows)")
    reply = cards.card_reply(_, ctx.lang, ctx.svc, c, header, ctx.svc.clock(), rest=rest)
    ctx.reply(reply.text, reply.choices, photo=reply.photo)
    if report.description not in reply.text:
        ctx.reply(
            _("Description of report {code}:").format(code=report.code) + "\n" + report.description
        )
    show_history(ctx, report, 0)


def show_history(ctx: Ctx, report: Report, page: int) -> None:
    _ = ctx.gettext
    assert report.id is not None
    events = ctx.repo.events(report.id, include_internal=True)
    people = {
        pid: p
        for pid in {e.actor_person_id for e in events if e.actor_person_id is not None}
        if (p := ctx.repo.person(pid)) is not None
    }
    lines = history.history_lines(
        _,
        events,
        tz=ctx.svc.city.city.timezone,
        lang=ctx.lang,
        view="officer",
        who=lambda ev: history.actor_label(_, ev, report, people),
    )
    budget = style(ctx.event.channel).page_chars - 120
    text, choices = history.history_page(
        _, report.code, lines, page, budget, f"op:riwayat:{report.id}"
    )
    ctx.reply(text, choices)


def cmd_view(ctx: Ctx) -> None:
    _ = ctx.gettext
    staff = _staff_or_refuse(ctx)
    if staff is None:
        return
    code = _split(ctx.event.args, 1)[0]
    if not code:
        ctx.reply(
            _("Please write the report code, for example: /lihat {code}").format(
                code=example_code(ctx.svc)
            )
        )
        return
    report = _report_for(ctx, staff, code)
    if report is not None:
        show_card(ctx, report)


def _open_or_refuse(ctx: Ctx, report: Report) -> bool:
    if wf.is_open(report):
        return True
    _ = ctx.gettext
    ctx.reply(
        _("Report {code} is already {status}; it cannot be changed.").format(
            code=report.code, status=status_label(_, report.status).lower()
        )
    )
    return False


def _tell_queue(ctx: Ctx, report: Report, build: Callable[[Gettext], str]) -> None:
    """Keep the OPD's queue group informed of a change made elsewhere."""
    group = WorkRepo(ctx.repo).queue_group(report.opd)
    if group is None or group.chat_id == ctx.event.chat_id:
        return
    n = Notifier(ctx.repo, ctx.svc, ctx.out)
    n.to_chat(
        group.channel, group.chat_id, lambda _, lang: Reply(text=build(_)), report_id=report.id
    )


def _who(ctx: Ctx) -> str:
    return ctx.person.display_name or "-"


def do_take(ctx: Ctx, staff: Staff, report: Report) -> None:
    _ = ctx.gettext
    if not _open_or_refuse(ctx, report):
        return
    wf.take(Notifier(ctx.repo, ctx.svc, ctx.out), report, _actor(ctx, staff))
    who = _who(ctx)
    if ctx.event.chat_type == "group":  # everyone there must see who took it
        ctx.reply(_("Report {code} was taken by {name}.").format(code=report.code, name=who))
    else:
        ctx.reply(_("Report {code} is now assigned to you.").format(code=report.code))
    _tell_queue(
        ctx,
        report,
        lambda _: _("Report {code} was taken by {name}.").format(code=report.code, name=who),
    )


def _told(_: Gettext, messages: int) -> str:
    """What the officer hears about the citizen: told only if a message was queued to them
    (someone who reported through another city's app may have no chat with us)."""
    if messages:
        return _("The citizen has been told.")
    return _("The citizen has no chat with us and could not be told.")


def do_progress(ctx: Ctx, staff: Staff, report: Report, note: str) -> None:
    _ = ctx.gettext
    if not _open_or_refuse(ctx, report):
        return
    told = wf.set_in_progress(
        Notifier(ctx.repo, ctx.svc, ctx.out), report, _actor(ctx, staff), note or None
    )
    ctx.reply(_("Report {code} is in progress.").format(code=report.code) + " " + _told(_, told))
    _tell_queue(ctx, report, lambda _: _("Report {code} is in progress.").format(code=report.code))


def do_resolve(ctx: Ctx, staff: Staff, report: Report, note: str) -> None:
    _ = ctx.gettext
    if not _open_or_refuse(ctx, report):
        return
    told = wf.resolve(Notifier(ctx.repo, ctx.svc, ctx.out), report, _actor(ctx, staff), note)
    until = ctx.svc.clock() + timedelta(minutes=wf.config(ctx.svc).proof_minutes)
    ctx.set_state("officer.proof", {"report_id": report.id, "until": until.isoformat()})
    hint = (
        _("Send a photo as proof now, in a private chat with me.")
        if ctx.event.chat_type == "group"
        else _("Send a photo as proof now (optional).")
    )
    ctx.reply(
        _("Report {code} is resolved.").format(code=report.code)
        + " "
        + _told(_, told)
        + "\n"
        + hint
    )
    _tell_queue(ctx, report, lambda _: _("Report {code} is resolved.").format(code=report.code))


def do_reject(ctx: Ctx, staff: Staff, report: Report, reason: str) -> None:
    _ = ctx.gettext
    if not _open_or_refuse(ctx, report):
        return
    told = wf.reject(Notifier(ctx.repo, ctx.svc, ctx.out), report, _actor(ctx, staff), reason)
    ctx.reply(_("Report {code} is rejected.").format(code=report.code) + " " + _told(_, told))
    _tell_queue(ctx, report, lambda _: _("Report {code} was rejected.").format(code=report.code))


def do_hand_over(ctx: Ctx, staff: Staff, report: Report, to_opd: str, reason: str) -> None:
    _ = ctx.gettext
    if not _open_or_refuse(ctx, report):
        return
    to_opd = to_opd.upper()
    if ctx.svc.city.opd(to_opd) is None:
        codes = ", ".join(o.code for o in ctx.svc.city.opds)
        ctx.reply(_("Unknown OPD {opd}. OPDs: {codes}").format(opd=to_opd, codes=codes))
        return
    if to_opd == report.opd:
        ctx.reply(
            _("Report {code} is already with {opd}.").format(
                code=report.code, opd=opd_label(ctx.svc.city, to_opd)
            )
        )
        return
    from_opd = report.opd
    notifier = Notifier(ctx.repo, ctx.svc, ctx.out)
    told = wf.hand_over(notifier, report, _actor(ctx, staff), to_opd, reason)
    label = opd_label(ctx.svc.city, to_opd)
    ctx.reply(
        _("Report {code} was handed over to {opd}.").format(code=report.code, opd=label)
        + " "
        + _told(_, told)
    )
    group = WorkRepo(ctx.repo).queue_group(from_opd)
    if group is not None and group.chat_id != ctx.event.chat_id:
        Notifier(ctx.repo, ctx.svc, ctx.out).to_chat(
            group.channel,
            group.chat_id,
            lambda _, lang: Reply(
                text=_("Report {code} was handed over to {opd}.").format(
                    code=report.code, opd=label
                )
            ),
            report_id=report.id,
        )


def do_note(ctx: Ctx, staff: Staff, report: Report, text: str) -> None:
    _ = ctx.gettext
    wf.add_note(Notifier(ctx.repo, ctx.svc, ctx.out), report, _actor(ctx, staff), text)
    ctx.reply(_("Internal note added to report {code}.").format(code=report.code))


def _command(
    usage: str, nargs: int, needs_text: bool, action: Callable[..., None]
) -> Callable[[Ctx], None]:
    """A command `/x CODE [ARG] [text]`: checks role, report, permission, then acts."""

    def handler(ctx: Ctx) -> None:
        _ = ctx.gettext
        staff = _staff_or_refuse(ctx)
        if staff is None:
            return
        parts = _split(ctx.event.args, nargs)
        if not parts[0] or (needs_text and not all(parts[1:])):
            ctx.reply(_("Usage: {usage}").format(usage=_(usage)))
            return
        report = _report_for(ctx, staff, parts[0])
        if report is None:
            return
        extra = [p[:MAX_NOTE] for p in parts[1:]]
        action(ctx, staff, report, *extra)

    return handler


# --- buttons ----------------------------------------------------------------------------------
def on_button(ctx: Ctx) -> None:
    """`op:<action>:<report id>[:<arg>]`, `op:q:<page>:<scope>`."""
    _ = ctx.gettext
    parts = (ctx.event.choice or "").split(":")
    action = parts[1] if len(parts) > 1 else ""
    staff = _staff_or_refuse(ctx)
    if staff is None:
        return
    if action == "q":
        page = int(parts[2]) if len(parts) > 2 and parts[2].isdigit() else 0
        scope = _queue_scope(ctx, staff, parts[3] if len(parts) > 3 else "")
        if scope is not None:
            show_queue(ctx, staff, scope, page)
        return
    rid = int(parts[2]) if len(parts) > 2 and parts[2].isdigit() else 0
    found = ctx.repo.report(rid)
    if found is None:
        ctx.reply(_("That button is no longer active."))
        return
    report = _report_for(ctx, staff, found.code)
    if report is None:
        return
    if action == "lihat":
        show_card(ctx, report)
    elif action == "riwayat":
        page = int(parts[3]) if len(parts) > 3 and parts[3].isdigit() else 0
        show_history(ctx, report, page)
    elif action == "ambil":
        do_take(ctx, staff, report)
    elif action == "proses":
        do_progress(ctx, staff, report, "")
    elif action in ("selesai", "tolak"):
        if _open_or_refuse(ctx, report):
            ask = (
                _("Write the closing note for report {code}:")
                if action == "selesai"
                else _("Write the reason for rejecting report {code}:")
            )
            _ask_note(ctx, {"action": action, "report_id": report.id}, ask.format(code=report.code))
    elif action == "alihkan":
        if not _open_or_refuse(ctx, report):
            return
        others = [o for o in ctx.svc.city.opds if o.code != report.opd]
        ctx.reply(
            _("Hand report {code} over to which OPD?").format(code=report.code),
            tuple(Choice(f"op:ke:{report.id}:{o.code}", o.short) for o in others),
        )
    elif action == "ke" and len(parts) > 3 and ctx.svc.city.opd(parts[3]) is not None:
        if _open_or_refuse(ctx, report):
            _ask_note(
                ctx,
                {"action": "alihkan", "report_id": report.id, "opd": parts[3]},
                _("Write the reason for the hand-over of report {code}:").format(code=report.code),
            )
    else:
        ctx.reply(_("That button is no longer active."))


def _ask_note(ctx: Ctx, data: dict[str, Any], question: str) -> None:
    """Ask for the note of a button where it was pressed. In a group the question names the
    officer and asks for an answer in place (a reply to it, which only they can give: the
    step is theirs and names this group)."""
    _ = ctx.gettext
    if ctx.event.chat_type == "group":
        data["chat"] = ctx.event.chat_id
        question = _("{name}, reply to this message.").format(name=_who(ctx)) + "\n" + question
    ctx.set_state(NOTE_STEP, data)
    ctx.reply(question, force_reply=ctx.event.chat_type == "group")


# --- steps ------------------------------------------------------------------------------------
def step_officer(ctx: Ctx) -> None:
    step, data = ctx.state()
    if step == "officer.proof":
        _step_proof(ctx, data)
    elif step == "officer.note":
        _step_note(ctx, data)
    else:
        ctx.clear_state()
        on_idle(ctx)


def _step_proof(ctx: Ctx, data: dict[str, Any]) -> None:
    _ = ctx.gettext
    ev = ctx.event
    until = datetime.fromisoformat(str(data.get("until")))
    report = ctx.repo.report(int(data.get("report_id") or 0))
    ctx.clear_state()
    if ev.kind != "photo" or report is None or ctx.svc.clock() > until:
        on_idle(ctx)  # not a proof photo: handle it as any other message
        return
    staff = wf.staff_of(ctx.repo, ctx.person)
    if not wf.can_act(staff, report):
        ctx.reply(_("Sorry, this command is only for OPD officers."))
        return
    if ev.photo is None:
        ctx.reply(_("I could not use that photo. Please send it again."))
        ctx.set_state("officer.proof", data)
        return
    assert staff is not None
    wf.add_proof(Notifier(ctx.repo, ctx.svc, ctx.out), report, _actor(ctx, staff), ev.photo)
    ctx.reply(
        _("Proof photo saved and sent to the citizen of report {code}.").format(code=report.code)
    )


def _step_note(ctx: Ctx, data: dict[str, Any]) -> None:
    _ = ctx.gettext
    ev = ctx.event
    here = ev.chat_id if ev.chat_type == "group" else None
    if data.get("chat") != here:  # asked in a group, but this came elsewhere: not the note
        ctx.clear_state()
        on_idle(ctx)
        return
    report = ctx.repo.report(int(data.get("report_id") or 0))
    staff = wf.staff_of(ctx.repo, ctx.person)
    if report is None or staff is None or not wf.can_act(staff, report):
        ctx.clear_state()
        ctx.reply(_("That button is no longer active."))
        return
    text = (ev.text or "").strip()[:MAX_NOTE] if ev.kind == "text" else ""
    if not text:
        ctx.reply(_("Please write the note as text, or /batal to cancel."))
        return
    ctx.clear_state()
    action = data.get("action")
    if action == "selesai":
        do_resolve(ctx, staff, report, text)
    elif action == "tolak":
        do_reject(ctx, staff, report, text)
    elif action == "alihkan":
        do_hand_over(ctx, staff, report, str(data.get("opd") or ""), text)


# --- statistics -------------------------------------------------------------------------------
def cmd_stats(ctx: Ctx) -> None:
    _ = ctx.gettext
    staff = wf.staff_of(ctx.repo, ctx.person)
    if staff is None or staff.role not in (ROLE_ADMIN, ROLE_HEAD):
        ctx.reply(_("Sorry, statistics are only for admins and OPD heads."))
        return
    if ctx.event.chat_type == "group" and not _group_opds(ctx):
        ctx.reply(
            _(
                "This group is not linked to an OPD. An admin or the OPD head can link it "
                "with /hubungkan OPD."
            )
        )
        return
    work = WorkRepo(ctx.repo)
    cal = wf.config(ctx.svc).calendar
    if staff.role == ROLE_ADMIN:
        opds = [o.code for o in ctx.svc.city.opds]
    else:
        assert staff.opd is not None
        opds = [staff.opd]
    stats = []
    rows = work.reports_with_track(None if staff.role == ROLE_ADMIN else staff.opd)
    for code in opds:
        mine = [(r, t) for r, t in rows if r.opd == code]
        if mine or staff.role != ROLE_ADMIN:
            stats.append(cards.compute_stats(code, mine, cal))
    if not stats:
        ctx.reply(_("No reports yet."))
        return
    ctx.reply(cards.stats_text(_, ctx.svc, stats))


# --- wiring -----------------------------------------------------------------------------------
def _created_hook(ctx: Ctx, report: Report) -> None:
    wf.on_report_created(Notifier(ctx.repo, ctx.svc, ctx.out), report)


def _staff_can_see(ctx: Ctx, report: Report) -> bool:
    return wf.can_act(wf.staff_of(ctx.repo, ctx.person), report)


def install(svc: Services) -> None:
    """This module's part in the citizen's flow (called by the composition root)."""
    hooks = svc.hooks
    hooks.on_report_created.append(_created_hook)
    hooks.can_see_report += [fb.can_follower_see, _staff_can_see]
    hooks.after_place.append(fb.offer_duplicate_at_place)
    hooks.before_submit.append(fb.check_duplicate)


def register(reg: Registry) -> None:
    reg.command("daftar", "join", group=True)(cmd_join)
    reg.command("hubungkan", group=True)(cmd_link_group)
    reg.command("antrian", "queue", group=True)(cmd_queue)
    reg.command("lihat", group=True)(cmd_view)
    reg.command("ambil", group=True)(_command(N_("/ambil CODE"), 1, False, do_take))
    reg.command("proses", group=True)(_command(N_("/proses CODE [note]"), 2, False, do_progress))
    reg.command("selesai", group=True)(_command(N_("/selesai CODE note"), 2, True, do_resolve))
    reg.command("tolak", group=True)(_command(N_("/tolak CODE reason"), 2, True, do_reject))
    reg.command("alihkan", group=True)(
        _command(N_("/alihkan CODE OPD reason"), 3, True, do_hand_over)
    )
    reg.command("catatan", group=True)(_command(N_("/catatan CODE text"), 2, True, do_note))
    reg.command("statistik", "stats", group=True)(cmd_stats)
    reg.choices["op"] = on_button
    reg.steps["officer"] = step_officer
    reg.group_steps.add(NOTE_STEP)
