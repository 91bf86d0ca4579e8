"""What officers see: the report card (with buttons), the queue page, the statistics.

Pure rendering: the caller passes what was read from the database and a translator.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from handlers.events import Choice, MediaRef, Reply
from handlers.labels import category_label, local_time, opd_label, status_label
from handlers.style import contact_links
from handlers.text import Gettext
from storage.models import (
    OPEN_STATUSES,
    STATUS_IN_PROGRESS,
    STATUS_NEW,
    STATUS_REJECTED,
    STATUS_RESOLVED,
    Person,
    Photo,
    Report,
)
from storage.views import PersonView
from storage.work_models import ReportTrack

QUEUE_PAGE = 5
MAX_CARD_TEXT = 1000  # a photo caption holds 1024 characters


def map_url(lat: float, lon: float) -> str:
    return (
        f"https://www.openstreetmap.org/?mlat={lat:.6f}&mlon={lon:.6f}#map=18/{lat:.6f}/{lon:.6f}"
    )


def photo_ref(photo: Photo | None) -> MediaRef | None:
    if photo is None:
        return None
    return MediaRef(
        sha256=photo.sha256,
        mime=photo.mime,
        size=photo.size,
        path=photo.path,
        channel_file_id=None,  # a platform file id is only valid on its own channel
    )


def overdue_stage(report: Report, track: ReportTrack | None, now: datetime) -> str | None:
    """ "response" / "resolution" when that deadline has passed on an open report."""
    if track is None or report.status not in OPEN_STATUSES:
        return None
    if report.first_response_at is None and now > track.response_due_at:
        return "response"
    if now > track.resolution_due_at:
        return "resolution"
    return None


def place_line(_: Gettext, svc: Any, report: Report) -> str:
    kel = svc.city.kelurahan_by_code(report.kode_kel) if report.kode_kel else None
    kec = svc.city.kecamatan_by_code(report.kode_kec) if report.kode_kec else None
    if kel is not None:
        place = _("Kel. {kelurahan}, Kec. {kecamatan}").format(
            kelurahan=kel.name, kecamatan=kec.name if kec else "-"
        )
    else:
        place = report.place_text or "-"
    if report.place_text and kel is not None and report.place_text != kel.name:
        place = f"{place} ({report.place_text[:120]})"
    return _("Place: {place}").format(place=place)


def contact_parts(person: Person | PersonView, identities: Sequence[Any]) -> list[str]:
    """What a person shares when they agree to: their name, their chats (Telegram handle and
    a link to the chat, the WhatsApp number) and their phone if they gave it."""
    parts = [person.display_name] if person.display_name else []
    for ident in identities:
        parts += contact_links(ident.channel, ident.external_id, ident.username)
    phone = (person.phone or "").strip()
    digits = phone.lstrip("+")
    if phone and not any(p.endswith(f"/{digits}") for p in parts):
        parts.append(f"☎️ {phone}")
    return list(dict.fromkeys(parts))


def reporter_line(
    _: Gettext,
    report: Report,
    reporter: Person | PersonView | None,
    contacts: Sequence[str] = (),
) -> str:
    """Name and contact only with the reporter's consent; never for an anonymous report."""
    if report.anonymous:
        return _("Reporter: anonymous")
    if reporter is None or not reporter.share_contact:
        return _("Reporter: contact not shared")
    return _("Reporter: {who}").format(who=" · ".join(contacts) or "-")


@dataclass
class CardInput:
    report: Report
    track: ReportTrack | None
    reporter: Person | PersonView | None
    photo: Photo | None = None
    assignee: Person | None = None
    notes: list[str] = field(default_factory=list)  # e.g. the last change, already rendered
    contacts: list[str] = field(default_factory=list)  # the reporter's, with consent only


def card_text(
    _: Gettext,
    lang: str,
    svc: Any,
    c: CardInput,
    header: str,
    now: datetime,
    *,
    rest: str | None = None,
) -> str:
    """The card (≤ MAX_CARD_TEXT: a photo caption or a WhatsApp button message). A description
    that does not fit ends in "…" and says where the rest is (`rest`, default: /lihat)."""
    r = c.report
    lines = [
        header,
        _("Category: {category}").format(category=category_label(svc.city, r.category, lang)),
        place_line(_, svc, r),
    ]
    if r.lat is not None and r.lon is not None:
        lines.append(_("Map: {url}").format(url=map_url(r.lat, r.lon)))
    lines.append(_("Status: {status}").format(status=status_label(_, r.status)))
    lines.append(_("Handled by: {opd}").format(opd=opd_label(svc.city, r.opd)))
    if c.assignee is not None:
        lines.append(_("Officer: {name}").format(name=c.assignee.display_name or "-"))
    if c.track is not None and r.status in OPEN_STATUSES:
        if r.first_response_at is None:
            due = _("Response due: {when}").format(
                when=local_time(svc, c.track.response_due_at, lang)
            )
        else:
            due = _("Resolution due: {when}").format(
                when=local_time(svc, c.track.resolution_due_at, lang)
            )
        lines.append(due)
        if overdue_stage(r, c.track, now):
            lines.append(_("⏰ OVERDUE"))
    lines.append(reporter_line(_, r, c.reporter, c.contacts))
    if r.supporters:
        lines.append(_("Supporters: {n}").format(n=r.supporters))
    tail = ["", *c.notes] if c.notes else []
    head = "\n".join([*lines, ""])
    room = MAX_CARD_TEXT - len(head) - len("\n".join(tail)) - 1
    description = r.description
    if len(description) > room:
        more = "… " + (rest or _("(shortened; the whole text: /lihat {code})").format(code=r.code))
        description = description[: max(0, room - len(more))].rstrip() + more
    return "\n".join([head, description, *tail])[:MAX_CARD_TEXT]


def card_buttons(
    _: Gettext, report: Report, track: ReportTrack | None = None, *, open_card: bool = True
) -> tuple[Choice, ...]:
    """What may still be done: no "Take" once someone has it, no "In progress" while it is."""
    rid = report.id
    if report.status not in OPEN_STATUSES or not open_card:
        return ()
    out = []
    if track is None or track.assigned_person_id is None:
        out.append(Choice(f"op:ambil:{rid}", _("🙋 Take")))
    if report.status != STATUS_IN_PROGRESS:
        out.append(Choice(f"op:proses:{rid}", _("🔧 In progress")))
    out += [
        Choice(f"op:selesai:{rid}", _("✅ Resolved")),
        Choice(f"op:tolak:{rid}", _("⛔ Reject")),
        Choice(f"op:alihkan:{rid}", _("↪️ Hand over")),
    ]
    return tuple(out)


def card_reply(
    _: Gettext,
    lang: str,
    svc: Any,
    c: CardInput,
    header: str,
    now: datetime,
    *,
    rest: str | None = None,
    buttons: bool = True,
) -> Reply:
    return Reply(
        text=card_text(_, lang, svc, c, header, now, rest=rest),
        choices=card_buttons(_, c.report, c.track, open_card=buttons),
        photo=photo_ref(c.photo),
    )


def queue_page(
    _: Gettext,
    lang: str,
    svc: Any,
    rows: list[tuple[Report, ReportTrack | None]],
    *,
    page: int,
    total: int,
    scope: str,
    now: datetime,
) -> Reply:
    """One page of the queue, oldest first; overdue reports are marked."""
    if total == 0:
        return Reply(text=_("No open reports for {scope}. 🎉").format(scope=scope))
    pages = (total + QUEUE_PAGE - 1) // QUEUE_PAGE
    lines = [
        _("Open reports for {scope}: {n} (page {page} of {pages})").format(
            scope=scope, n=total, page=page + 1, pages=pages
        )
    ]
    choices: list[Choice] = []
    for r, t in rows:
        mark = "⏰ " if overdue_stage(r, t, now) else ""
        lines.append(
            f"{mark}{r.code} · {category_label(svc.city, r.category, lang)} · "
            f"{status_label(_, r.status)} · {local_time(svc, r.created_at, lang)}"
        )
        choices.append(Choice(f"op:lihat:{r.id}", f"{mark}{r.code}"))
    if overdue := sum(1 for r, t in rows if overdue_stage(r, t, now)):
        lines.append(_("⏰ = overdue ({n} on this page)").format(n=overdue))
    if page > 0:
        choices.append(Choice(f"op:q:{page - 1}", _("⬅️ Previous")))
    if page + 1 < pages:
        choices.append(Choice(f"op:q:{page + 1}", _("Next ➡️")))
    return Reply(text="\n".join(lines), choices=tuple(choices))


# --- statistics -------------------------------------------------------------------------------
@dataclass
class OpdStats:
    opd: str
    counts: dict[str, int]
    response_days: list[float]
    resolution_days: list[float]
    on_time: int
    finished: int  # resolved reports with a deadline (the base of "% on time")


def compute_stats(
    opd: str, rows: list[tuple[Report, ReportTrack | None]], calendar: Any
) -> OpdStats:
    counts = {s: 0 for s in (STATUS_NEW, STATUS_IN_PROGRESS, STATUS_RESOLVED, STATUS_REJECTED)}
    response: list[float] = []
    resolution: list[float] = []
    on_time = finished = 0
    for r, t in rows:
        counts[r.status] = counts.get(r.status, 0) + 1
        if r.first_response_at is not None:
            response.append(calendar.workdays_between(r.created_at, r.first_response_at))
        if r.status == STATUS_RESOLVED and r.resolved_at is not None:
            resolution.append(calendar.workdays_between(r.created_at, r.resolved_at))
            if t is not None:
                finished += 1
                if r.resolved_at <= t.resolution_due_at:
                    on_time += 1
    return OpdStats(opd, counts, response, resolution, on_time, finished)


def stats_text(_: Gettext, svc: Any, stats: list[OpdStats]) -> str:
    lines = [_("📊 Statistics")]
    for st in stats:
        c = st.counts
        lines.append("")
        lines.append(f"{opd_label(svc.city, st.opd)} ({st.opd})")
        lines.append(
            _(
                "New {new} · In progress {progress} · Resolved {resolved} · Rejected {rejected}"
            ).format(
                new=c.get(STATUS_NEW, 0),
                progress=c.get(STATUS_IN_PROGRESS, 0),
                resolved=c.get(STATUS_RESOLVED, 0),
                rejected=c.get(STATUS_REJECTED, 0),
            )
        )
        lines.append(
            _("Median to first response: {days} working days").format(
                days=_median(st.response_days)
            )
        )
        lines.append(
            _("Median to resolution: {days} working days").format(days=_median(st.resolution_days))
        )
        pct = f"{100 * st.on_time / st.finished:.0f} %" if st.finished else "-"
        lines.append(_("Resolved on time: {pct}").format(pct=pct))
    return "\n".join(lines)


def _median(values: list[float]) -> str:
    return f"{statistics.median(values):.1f}" if values else "-"
