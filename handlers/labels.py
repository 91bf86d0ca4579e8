"""Words the core shows about reports, shared by the citizen, officer and SLA modules."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from babel.dates import format_datetime

from handlers.events import Choice
from handlers.text import Gettext


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


def format_when(dt: datetime, tz: str, lang: str) -> str:
    """One format for every time a person reads: "2 Des 2026 14:05 WITA" (the zone's own
    abbreviation: WITA for Palu and Samarinda, WIB for Jakarta)."""
    zone = ZoneInfo(tz)
    if dt.tzinfo is None:  # stored times are UTC
        dt = dt.replace(tzinfo=UTC)
    local = dt.astimezone(zone)
    text = format_datetime(local, "d MMM yyyy HH:mm", tzinfo=zone, locale=lang)
    return f"{text} {local.tzname() or tz}"


def local_time(ctx_or_svc: Any, dt: Any, lang: str) -> str:
    svc = getattr(ctx_or_svc, "svc", ctx_or_svc)
    return format_when(dt, svc.city.city.timezone, lang)


def example_code(svc: Any) -> str:
    """A report code as this city writes them this month (for hints): "SMD-2612-0042"."""
    now = svc.clock().astimezone(ZoneInfo(svc.city.city.timezone))
    return f"{svc.city.city.prefix}-{now:%y%m}-0042"


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
