"""Wording shared by every kind of warning: our languages, a text per language, city names,
the city's local time and the header of a broadcast's message."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

from bot.city import CityProfile
from handlers.labels import format_when
from handlers.services import I18nLike
from storage.alert_models import KIND_WARNING, Broadcast

Gettext = Callable[[str], str]
LANGS = ("id", "en")


def gettext_for(i18n: I18nLike, lang: str) -> Gettext:
    return lambda msgid: str(i18n.gettext(lang, msgid))


def pick_text(texts: Mapping[str, Any], lang: str, default: str) -> str:
    for key in (lang, default, "*"):
        if texts.get(key):
            return str(texts[key])
    return str(next(iter(texts.values()), ""))


def city_short_name(city: CityProfile) -> str:
    return city.city.name.removeprefix("Kota ").strip()


def local_time(city: CityProfile, ts: datetime, lang: str = "id") -> str:
    """The city's local time, as every message shows it ("2 Des 2026 14:05 WITA")."""
    return format_when(ts, city.city.timezone, lang)


def broadcast_header(city: CityProfile, _: Gettext, bc: Broadcast, lang: str) -> str:
    """The first line of a broadcast's message: what it is, from whom, and when."""
    if bc.kind == KIND_WARNING:
        title = _("✅ Early warning lifted") if bc.level == "normal" else _("⚠️ Early warning")
    else:
        title = _("📣 Announcement of the {city} city government").format(
            city=city_short_name(city)
        )
    return f"{title} · {local_time(city, bc.scheduled_at or bc.created_at, lang)}"


def kelurahan_names(city: CityProfile, codes: Iterable[str]) -> list[str]:
    found = (city.kelurahan_by_code(c) for c in sorted(codes))
    return [k.name for k in found if k is not None]


def kecamatan_names(city: CityProfile, codes: Iterable[str]) -> list[str]:
    found = (city.kecamatan_by_code(c) for c in sorted(codes))
    return [k.name for k in found if k is not None]
