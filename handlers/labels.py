"""Words the core shows about reports, shared by the citizen, officer and SLA modules."""

from __future__ import annotations

from typing import Any

from babel.dates import format_datetime

from handlers.events import Choice
from handlers.text import N_, Gettext


def status_label(_: Gettext, status: str) -> str:
    labels = {
        "baru": _("New"),
        "diproses": _("In progress"),
        "selesai": _("Resolved"),
        "ditolak": _("Rejected"),
    }
    return labels.get(status, status)


def category_label(svc_city: Any, key: str, lang: str) -> str:
    cat = svc_city.category(key)
    if cat is None:
        return key
    label = cat.label_id if lang == "id" else cat.label_en
    return f"{cat.emoji} {label}"


def opd_label(svc_city: Any, code: str) -> str:
    opd = svc_city.opd(code)
    return opd.short if opd is not None else code


def local_time(ctx_or_svc: Any, dt: Any, lang: str) -> str:
    svc = getattr(ctx_or_svc, "svc", ctx_or_svc)
    tz = svc.city.city.timezone
    return str(format_datetime(dt, "d MMM yyyy HH:mm", tzinfo=tz, locale=lang))


def place_text(_: Gettext, data: dict[str, Any]) -> str:
    if data.get("nama_kel"):
        return _("Kel. {kelurahan}, Kec. {kecamatan}").format(
            kelurahan=data["nama_kel"], kecamatan=data.get("nama_kec") or "-"
        )
    return str(data.get("place_text") or "-")


def main_menu(_: Gettext) -> tuple[Choice, ...]:
    return (
        Choice("menu:lapor", _("📝 New report")),
        Choice("menu:laporanku", _("📋 My reports")),
        Choice("menu:bantuan", _("❓ Help")),
    )


EVENT_LABELS = {
    "handover": N_("handed over"),
    "reopened": N_("reopened"),
    "proof": N_("proof photo added"),
    "comment": N_("your comment"),
    "confirmed": N_("confirmed as solved"),
    "rating": N_("rating"),
    "closed": N_("closed"),
}
