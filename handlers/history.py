"""A report's history as people read it: every event with its label from the catalogs, the
local time and (for officers) who did it; long histories in pages.

Two views: the citizen's (`/status`: public events, no officer names) and the officers'
(`/lihat`: internal events too, marked 🔒, with who did what). A citizen is named only when
the report is not anonymous and they agreed to share their contact.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

from handlers.events import Choice
from handlers.labels import format_when, status_label
from handlers.text import N_, Gettext

View = Literal["citizen", "officer", "public"]  # public: Open311 notes, the map's card

EVENT_LABELS = {
    "created": N_("report received"),
    "assigned": N_("taken by an officer"),
    "note": N_("internal note"),
    "handover": N_("handed over"),
    "reopened": N_("reopened"),
    "proof": N_("proof photo added"),
    "confirmed": N_("confirmed as solved"),
    "rating": N_("rating"),
    "closed": N_("closed"),
}
COMMENT_LABELS = {
    "citizen": N_("your comment"),
    "officer": N_("citizen's comment"),
    "public": N_("citizen's comment"),
}
ROLE_LABELS = {
    "citizen": N_("citizen"),
    "officer": N_("officer"),
    "head": N_("OPD head"),
    "admin": N_("admin"),
    "system": N_("system"),
}
UPDATE = N_("update")


def event_label(_: Gettext, kind: str, status_to: str | None, view: View = "citizen") -> str:
    """What happened, in the reader's language (never a stored key like "proof")."""
    if kind == "comment":
        return _(COMMENT_LABELS[view])
    if kind in EVENT_LABELS:
        return _(EVENT_LABELS[kind])
    if status_to:
        return status_label(_, status_to)
    return _(UPDATE)


def event_note(kind: str, note: str | None) -> str | None:
    if kind == "rating" and note and note.isdigit():
        return "⭐" * min(int(note), 5)
    return note


def actor_label(_: Gettext, ev: Any, report: Any, people: Mapping[int, Any]) -> str:
    """Who did it, for officers: "Budi (officer)"; a citizen only by role unless named with
    consent (and never on an anonymous report)."""
    role = _(ROLE_LABELS.get(ev.actor_role, ROLE_LABELS["system"]))
    person = people.get(ev.actor_person_id) if ev.actor_person_id is not None else None
    if person is None or ev.actor_role == "system":
        return role
    if ev.actor_role == "citizen" and (report.anonymous or not person.share_contact):
        return role
    return f"{person.display_name} ({role})" if person.display_name else role


def history_lines(
    _: Gettext,
    events: Sequence[Any],
    *,
    tz: str,
    lang: str,
    view: View,
    who: Callable[[Any], str] | None = None,
) -> list[str]:
    lines = []
    for ev in events:
        label = event_label(_, ev.kind, ev.status_to, view)
        lock = "🔒 " if ev.internal else ""
        line = f"• {format_when(ev.created_at, tz, lang)} – {lock}{label}"
        if who is not None:
            line += f" · {who(ev)}"
        note = event_note(ev.kind, ev.note)
        if note:
            line += f": {note}"
        lines.append(line)
    return lines


def pages(lines: Sequence[str], budget: int) -> list[list[str]]:
    """Lines grouped into pages of at most `budget` characters; a longer line is split over
    pages (nothing is cut off)."""
    out: list[list[str]] = [[]]
    size = 0
    for line in lines:
        for piece in [line[i : i + budget] for i in range(0, len(line), budget)] or [""]:
            if out[-1] and size + len(piece) + 1 > budget:
                out.append([])
                size = 0
            out[-1].append(piece)
            size += len(piece) + 1
    return out


def history_page(
    _: Gettext, code: str, lines: Sequence[str], page: int, budget: int, choice_prefix: str
) -> tuple[str, tuple[Choice, ...]]:
    """One page of a history with ⬅️/➡️ buttons (`<choice_prefix>:<page>`)."""
    grouped = pages(lines, budget)
    page = min(max(0, page), len(grouped) - 1)
    if len(grouped) == 1:
        head = _("History of {code}:").format(code=code)
    else:
        head = _("History of {code} (page {page} of {pages}):").format(
            code=code, page=page + 1, pages=len(grouped)
        )
    body = grouped[page] or [_("No events yet.")]
    choices = []
    if page > 0:
        choices.append(Choice(f"{choice_prefix}:{page - 1}", _("⬅️ Previous")))
    if page + 1 < len(grouped):
        choices.append(Choice(f"{choice_prefix}:{page + 1}", _("Next ➡️")))
    return "\n".join([head, *body]), tuple(choices)
