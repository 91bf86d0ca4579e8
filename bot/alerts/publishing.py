"""Our warnings as CAP 1.2 documents: the areas of an audience, and the published row that
`/warnings/feed.atom` and `/warnings/{id}.xml` serve."""

from __future__ import annotations

from bot.alerts.audience import (
    Audience,
    Circle,
    Kecamatan,
    Kelurahan,
    Polygon,
    audience_from_dict,
)
from bot.alerts.cap import CapArea, WarningDoc, WarningText, build_cap, kelurahan_geocodes
from bot.alerts.texts import LANGS, gettext_for, kecamatan_names, kelurahan_names, pick_text
from bot.city import CityProfile
from handlers.services import I18nLike
from storage.alert_models import Broadcast, PublishedWarning
from storage.alert_repo import AlertRepo

CAP_LANG = {"id": "id-ID", "en": "en-US"}


class CapPublisher:
    """Writes the CAP document of each warning; built once by `bot.alerts.wiring`."""

    def __init__(
        self, city: CityProfile, i18n: I18nLike, *, public_base_url: str | None = None
    ) -> None:
        self.city = city
        self.i18n = i18n
        self.public_base_url = (public_base_url or "").rstrip("/") or None

    def cap_areas(self, audience: Audience) -> tuple[CapArea, ...]:
        if isinstance(audience, Kelurahan):
            names = kelurahan_names(self.city, audience.codes)
            return (
                CapArea(
                    "Kel. " + ", ".join(names), geocodes=kelurahan_geocodes(sorted(audience.codes))
                ),
            )
        if isinstance(audience, Kecamatan):
            names = kecamatan_names(self.city, audience.codes)
            return (
                CapArea(
                    "Kec. " + ", ".join(names),
                    geocodes=tuple(("KEMENDAGRI", c) for c in sorted(audience.codes)),
                ),
            )
        if isinstance(audience, Circle):
            return (
                CapArea(
                    self.city.city.name,
                    circles=(((audience.lat, audience.lon), audience.radius_km),),
                ),
            )
        if isinstance(audience, Polygon):
            geom = audience.geometry
            polys = list(getattr(geom, "geoms", [geom]))
            rings = tuple(tuple((lat, lon) for lon, lat in p.exterior.coords) for p in polys)
            return (CapArea(self.city.city.name, polygons=rings),)
        return (CapArea(self.city.city.name, geocodes=(("KEMENDAGRI", self.city.city.code),)),)

    def publish_cap(
        self,
        arepo: AlertRepo,
        bc: Broadcast,
        event: str,
        category: str = "Met",
        areas: tuple[CapArea, ...] | None = None,
    ) -> PublishedWarning:
        assert bc.id is not None
        level = bc.level or "waspada"
        texts = []
        for lang in LANGS:
            body = pick_text(bc.texts, lang, self.i18n.default)
            headline = body.strip().splitlines()[0][:160] if body.strip() else event
            texts.append(
                WarningText(
                    language=CAP_LANG[lang],
                    event=gettext_for(self.i18n, lang)(event),
                    headline=headline,
                    description=body,
                )
            )
        identifier = f"lapor-warga-{self.city.city.key}-{bc.id}"
        web = f"{self.public_base_url}/warnings/feed.atom" if self.public_base_url else None
        doc = WarningDoc(
            identifier=identifier,
            sender=f"lapor-warga@{self.city.city.key}",
            sent=bc.created_at,
            level=level,
            sender_name=f"Lapor Warga {self.city.city.name}",
            texts=tuple(texts),
            areas=areas or self.cap_areas(audience_from_dict(bc.audience)),
            category=category,
            web=web,
        )
        return arepo.add_published_warning(
            PublishedWarning(
                identifier=identifier,
                source=bc.source,
                level=level,
                headline=texts[0].headline[:300],
                summary=texts[0].description,
                cap_xml=build_cap(doc).decode("utf-8"),
                broadcast_id=bc.id,
                sent_at=bc.created_at,
            )
        )
