"""A report's life after submission: who may act on it, and every status change.

Each change writes a `ReportEvent`, updates the tracking row (assignee, deadlines, feedback)
and queues the messages: the citizen (and followers) hear every step in their own language;
the OPD queue hears about new, handed-over and reopened reports.

    baru ──/proses──► diproses ──/selesai──► selesai ──"Ya"──► closed (rating 1–5)
      │                  │                      └──"Belum"──► diproses (reopened, same OPD)
      ├──/tolak──► ditolak                      (no answer in 10 working days → closed)
      └──/alihkan OPD──► baru at the other OPD (deadlines start again)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from handlers.cards import CardInput, card_reply, contact_parts, photo_ref
from handlers.events import KIND_CARD, Choice, MediaRef, Reply
from handlers.labels import local_time, opd_label
from handlers.notify import Notifier
from handlers.services import Services, WorkConfig
from handlers.text import Gettext
from handlers.workdays import deadlines
from storage.models import (
    OPEN_STATUSES,
    ROLE_ADMIN,
    ROLE_HEAD,
    ROLE_OFFICER,
    STATUS_IN_PROGRESS,
    STATUS_NEW,
    STATUS_REJECTED,
    STATUS_RESOLVED,
    Person,
    Photo,
    Report,
    ReportEvent,
    Staff,
)
from storage.repo import Repo
from storage.views import PersonView
from storage.work_models import FEEDBACK_NO, FEEDBACK_YES, ReportTrack


def config(svc: Services) -> WorkConfig:
    return svc.work


# --- who may act ------------------------------------------------------------------------------
def staff_of(repo: Repo, person: Person | PersonView) -> Staff | None:
    return repo.staff(person.id) if person.id is not None else None


def can_act(staff: Staff | None, report: Report) -> bool:
    """Admins act on every report; officers and heads on their own OPD's reports only."""
    if staff is None:
        return False
    if staff.role == ROLE_ADMIN:
        return True
    return staff.role in (ROLE_OFFICER, ROLE_HEAD) and staff.opd == report.opd


# --- tracking ---------------------------------------------------------------------------------
def ensure_track(repo: Repo, svc: Services, report: Report) -> ReportTrack:
    """The report's tracking row, created with its deadlines if missing."""
    assert report.id is not None
    track = repo.work.track(report.id)
    if track is None:
        track = new_track(svc, report, report.created_at)
        repo.work.save(track)
    return track


def new_track(svc: Services, report: Report, start: datetime) -> ReportTrack:
    assert report.id is not None
    response, resolution = svc.city.sla_for(report.category)
    d = deadlines(config(svc).calendar, start, response, resolution)
    return ReportTrack(
        report_id=report.id,
        cycle_started_at=start,
        response_due_at=d.response_due,
        resolution_due_at=d.resolution_due,
    )


def restart_deadlines(svc: Services, report: Report, track: ReportTrack, start: datetime) -> None:
    """A new cycle (hand-over, reopen): deadlines start again from `start`."""
    response, resolution = svc.city.sla_for(report.category)
    cal = config(svc).calendar
    d = deadlines(cal, start, response, resolution)
    track.cycle += 1
    track.cycle_started_at = start
    track.response_due_at = d.response_due
    track.resolution_due_at = (
        cal.add_workdays(start, resolution) if report.first_response_at else d.resolution_due
    )


def card_input(repo: Repo, report: Report, track: ReportTrack | None) -> CardInput:
    assert report.id is not None
    photos = repo.photos(report.id, role="report")
    assignee = None
    if track is not None and track.assigned_person_id is not None:
        assignee = repo.person(track.assigned_person_id)
    reporter = repo.person_view(report.person_id)
    contacts = []
    if reporter is not None and reporter.share_contact and not report.anonymous:
        contacts = contact_parts(reporter, repo.identities_of(report.person_id))
    return CardInput(
        report=report,
        track=track,
        reporter=reporter,
        photo=photos[0] if photos else None,
        assignee=assignee,
        contacts=contacts,
    )


def post_to_queue(
    n: Notifier,
    report: Report,
    header: Callable[[Gettext], str],
    *,
    skip: str | None = None,
    track: ReportTrack | None = None,
) -> None:
    """Post the report card to the OPD's queue group (or its officers)."""
    assert report.id is not None
    track = track or ensure_track(n.repo, n.svc, report)
    c = card_input(n.repo, report, track)
    now = n.svc.clock()
    n.to_opd_queue(
        report.opd,
        lambda _, lang: card_reply(_, lang, n.svc, c, header(_), now),
        report_id=report.id,
        skip_address=skip,
        kind=KIND_CARD,
    )


def refresh_cards(
    n: Notifier,
    report: Report,
    actor: Actor,
    change: Change,
    *,
    opd: str | None = None,
    open_card: bool = True,
) -> None:
    """After a change: the OPD's copies of the card show it (status, officer, the buttons that
    still apply, and the change itself with its time); where messages cannot be edited, a
    short line says what changed. `opd`: the queue holding the card (the old one after a
    hand-over, whose card then has no buttons)."""
    assert report.id is not None
    track = ensure_track(n.repo, n.svc, report)
    now = n.svc.clock()
    name = actor.name or "-"

    def card(_: Gettext, lang: str) -> Reply:
        c = card_input(n.repo, report, track)
        c.notes = [f"{change(_, name)} · {local_time(n.svc, now, lang)}"]
        header = _("Report {code}").format(code=report.code)
        return card_reply(_, lang, n.svc, c, header, now, buttons=open_card)

    def line(_: Gettext, lang: str) -> Reply:
        return Reply(text=f"{_('Report {code}').format(code=report.code)}: {change(_, name)}")

    n.to_opd_cards(opd or report.opd, card, line, report_id=report.id, skip_person=actor.person_id)


def change_note(_: Gettext, text: str, note: str | None, code: str) -> str:
    """A change with its note, cut for the card ("…" and where to read it all)."""
    if not note:
        return text
    if len(note) > CHANGE_NOTE_MAX:
        note = note[:CHANGE_NOTE_MAX].rstrip() + "… (/lihat " + code + ")"
    return f"{text}: {note}"


def on_report_created(n: Notifier, report: Report) -> None:
    """A new report (it has no track yet): deadlines, then the card in the OPD's queue."""
    track = new_track(n.svc, report, report.created_at)
    n.repo.work.add_track(track)
    post_to_queue(
        n, report, lambda _: _("🆕 New report {code}").format(code=report.code), track=track
    )


# --- changes ----------------------------------------------------------------------------------
@dataclass
class Actor:
    person_id: int
    role: str  # officer | head | admin | citizen
    name: str | None = None  # as the queue reads it ("Diambil oleh Budi")


Change = Callable[[Gettext, str], str]  # (gettext, actor's name) → what changed
CHANGE_NOTE_MAX = 200


def _event(
    n: Notifier,
    report: Report,
    actor: Actor,
    kind: str,
    *,
    status_to: str | None = None,
    note: str | None = None,
    internal: bool = False,
) -> ReportEvent:
    assert report.id is not None
    now = n.svc.clock()
    ev = ReportEvent(
        report_id=report.id,
        kind=kind,
        status_from=report.status if status_to else None,
        status_to=status_to,
        actor_person_id=actor.person_id,
        actor_role=actor.role,
        note=note,
        internal=internal,
        created_at=now,
    )
    if status_to:
        report.status = status_to
    report.updated_at = now
    n.repo.add_event(ev)
    n.repo.save_report(report)
    return ev


def _with_note(_: Gettext, text: str, note: str | None, label: str = "note") -> str:
    if not note:
        return text
    if label == "reason":
        return text + "\n" + _("Reason: {reason}").format(reason=note)
    return text + "\n" + _("Note: {note}").format(note=note)


def take(n: Notifier, report: Report, actor: Actor) -> None:
    track = ensure_track(n.repo, n.svc, report)
    track.assigned_person_id = actor.person_id
    n.work.save(track)
    _event(n, report, actor, "assigned", internal=True)
    refresh_cards(n, report, actor, lambda _, who: _("🙋 Taken by {name}").format(name=who))


def set_in_progress(n: Notifier, report: Report, actor: Actor, note: str | None) -> int:
    """baru → diproses (first response), or a progress update while diproses."""
    now = n.svc.clock()
    track = ensure_track(n.repo, n.svc, report)
    if track.assigned_person_id is None:
        track.assigned_person_id = actor.person_id
    if report.first_response_at is None:
        report.first_response_at = now
        _resp, resolution = n.svc.city.sla_for(report.category)
        track.resolution_due_at = config(n.svc).calendar.add_workdays(now, resolution)
    n.work.save(track)
    _event(n, report, actor, "status", status_to=STATUS_IN_PROGRESS, note=note)
    code = report.code
    refresh_cards(
        n,
        report,
        actor,
        lambda _, who: change_note(_, _("🔧 In progress, by {name}").format(name=who), note, code),
    )
    opd = opd_label(n.svc.city, report.opd)
    told = n.to_reporter_and_followers(
        report,
        lambda _, lang: Reply(
            text=_with_note(
                _,
                _("🔧 Your report {code} is being handled by {opd}.").format(
                    code=report.code, opd=opd
                ),
                note,
            )
        ),
    )
    return told


def feedback_choices(_: Gettext, report_id: int) -> tuple[Choice, ...]:
    return (
        Choice(f"fb:ya:{report_id}", _("👍 Yes, solved")),
        Choice(f"fb:belum:{report_id}", _("👎 Not yet")),
    )


def resolve(n: Notifier, report: Report, actor: Actor, note: str) -> int:
    """→ selesai: the citizen gets the note and is asked whether the problem is solved."""
    assert report.id is not None
    now = n.svc.clock()
    track = ensure_track(n.repo, n.svc, report)
    if report.first_response_at is None:
        report.first_response_at = now
    report.resolved_at = now
    track.feedback_asked_at = now
    track.feedback = None
    if track.assigned_person_id is None:
        track.assigned_person_id = actor.person_id
    n.work.save(track)
    _event(n, report, actor, "status", status_to=STATUS_RESOLVED, note=note)
    code = report.code
    refresh_cards(
        n,
        report,
        actor,
        lambda _, who: change_note(_, _("✅ Resolved by {name}").format(name=who), note, code),
    )
    opd = opd_label(n.svc.city, report.opd)
    rid = report.id

    def text(_: Gettext) -> str:
        return _with_note(
            _,
            _("✅ Your report {code} has been resolved by {opd}.").format(
                code=report.code, opd=opd
            ),
            note,
        )

    told = n.to_reporter_and_followers(
        report,
        lambda _, lang: Reply(text=text(_)),
        reporter_build=lambda _, lang: Reply(
            text=text(_) + "\n\n" + _("Is the problem solved?"),
            choices=feedback_choices(_, rid),
        ),
    )
    return told


def add_proof(n: Notifier, report: Report, actor: Actor, photo: MediaRef) -> None:
    """A photo sent after /selesai: stored as proof and sent to the citizen."""
    assert report.id is not None
    now = n.svc.clock()
    ev = _event(n, report, actor, "proof")
    n.repo.add_photo(
        Photo(
            report_id=report.id,
            event_id=ev.id,
            sha256=photo.sha256,
            path=photo.path,
            mime=photo.mime,
            size=photo.size,
            channel_file_id=photo.channel_file_id,
            role="proof",
            created_at=now,
        )
    )
    ref = MediaRef(photo.sha256, photo.mime, photo.size, photo.path, None)
    n.to_reporter_and_followers(
        report,
        lambda _, lang: Reply(
            text=_("📷 Proof of the work on report {code}.").format(code=report.code), photo=ref
        ),
    )


def reject(n: Notifier, report: Report, actor: Actor, reason: str) -> int:
    now = n.svc.clock()
    track = ensure_track(n.repo, n.svc, report)
    if report.first_response_at is None:
        report.first_response_at = now
    track.closed_at = now
    n.work.save(track)
    _event(n, report, actor, "status", status_to=STATUS_REJECTED, note=reason)
    code = report.code
    refresh_cards(
        n,
        report,
        actor,
        lambda _, who: change_note(_, _("⛔ Rejected by {name}").format(name=who), reason, code),
    )
    opd = opd_label(n.svc.city, report.opd)
    told = n.to_reporter_and_followers(
        report,
        lambda _, lang: Reply(
            text=_with_note(
                _,
                _("Your report {code} was rejected by {opd}.").format(code=report.code, opd=opd),
                reason,
                "reason",
            )
        ),
    )
    return told


def hand_over(n: Notifier, report: Report, actor: Actor, to_opd: str, reason: str) -> int:
    """To another OPD: back to *baru* in its queue, deadlines start again."""
    now = n.svc.clock()
    from_opd = report.opd
    track = ensure_track(n.repo, n.svc, report)
    report.opd = to_opd
    report.first_response_at = None
    track.assigned_person_id = None
    restart_deadlines(n.svc, report, track, now)
    n.work.save(track)
    _event(
        n, report, actor, "handover", status_to=STATUS_NEW, note=f"{from_opd} → {to_opd}: {reason}"
    )
    new_label = opd_label(n.svc.city, to_opd)
    code = report.code
    refresh_cards(
        n,
        report,
        actor,
        lambda _, who: change_note(
            _, _("↪️ Handed over to {opd} by {name}").format(opd=new_label, name=who), reason, code
        ),
        opd=from_opd,
        open_card=False,
    )
    told = n.to_reporter_and_followers(
        report,
        lambda _, lang: Reply(
            text=_with_note(
                _,
                _("↪️ Your report {code} has been handed over to {opd}.").format(
                    code=report.code, opd=new_label
                ),
                reason,
                "reason",
            )
        ),
    )
    old_label = opd_label(n.svc.city, from_opd)
    post_to_queue(
        n,
        report,
        lambda _: (
            _("↪️ Report {code} handed over from {opd}").format(code=report.code, opd=old_label)
            + "\n"
            + _("Reason: {reason}").format(reason=reason)
        ),
    )
    return told


def add_note(n: Notifier, report: Report, actor: Actor, text: str) -> None:
    """An internal note: never shown to the citizen."""
    _event(n, report, actor, "note", note=text, internal=True)


def reopen(n: Notifier, report: Report, actor: Actor) -> None:
    """The citizen says it is not solved: back to the same OPD's queue, in progress."""
    now = n.svc.clock()
    track = ensure_track(n.repo, n.svc, report)
    track.feedback = FEEDBACK_NO
    track.feedback_asked_at = None
    track.reopen_count += 1
    report.resolved_at = None
    restart_deadlines(n.svc, report, track, now)
    n.work.save(track)
    _event(n, report, actor, "reopened", status_to=STATUS_IN_PROGRESS)
    post_to_queue(
        n, report, lambda _: _("🔁 Reopened by the citizen: report {code}").format(code=report.code)
    )


def citizen_comment(n: Notifier, report: Report, actor: Actor, text: str) -> None:
    """The citizen's comment after "Not yet": on the report and in the OPD queue."""
    _event(n, report, actor, "comment", note=text)
    n.to_opd_queue(
        report.opd,
        lambda _, lang: Reply(
            text=_("💬 Citizen's comment on report {code}:").format(code=report.code) + "\n" + text
        ),
        report_id=report.id,
    )


def confirm_solved(n: Notifier, report: Report, actor: Actor) -> None:
    now = n.svc.clock()
    track = ensure_track(n.repo, n.svc, report)
    track.feedback = FEEDBACK_YES
    track.closed_at = now
    n.work.save(track)
    _event(n, report, actor, "confirmed")


def rate(n: Notifier, report: Report, actor: Actor, stars: int) -> None:
    track = ensure_track(n.repo, n.svc, report)
    track.rating = stars
    n.work.save(track)
    _event(n, report, actor, "rating", note=str(stars))


def close_unanswered(n: Notifier, report: Report, track: ReportTrack) -> None:
    """No answer to "is it solved?" within the limit: close it and say so."""
    now = n.svc.clock()
    track.closed_at = now
    n.work.save(track)
    _event(n, report, Actor(report.person_id, "system"), "closed")
    n.to_person(
        report.person_id,
        lambda _, lang: Reply(
            text=_(
                "Report {code} is now closed, as we did not hear back from you. "
                "Thank you for reporting!"
            ).format(code=report.code)
        ),
        report_id=report.id,
    )


def is_open(report: Report) -> bool:
    return report.status in OPEN_STATUSES


__all__ = [
    "Actor",
    "WorkConfig",
    "can_act",
    "config",
    "photo_ref",
]
