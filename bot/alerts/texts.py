"""Wording shared by every kind of warning: our languages, a text per language, city names and
the city's local time."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from bot.city import CityProfile
from handlers.services import I18nLike

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


def local_time(city: CityProfile, ts: datetime) -> str:
    local = ts.astimezone(ZoneInfo(city.city.timezone))
    return local.strftime("%d-%m-%Y %H:%M ") + (local.tzname() or "")


def kelurahan_names(city: CityProfile, codes: Iterable[str]) -> list[str]:
    found = (city.kelurahan_by_code(c) for c in sorted(codes))
    return [k.name for k in found if k is not None]


def kecamatan_names(city: CityProfile, codes: Iterable[str]) -> list[str]:
    found = (city.kecamatan_by_code(c) for c in sorted(codes))
    return [k.name for k in found if k is not None]
