"""Warnings from outside sources: BMKG earthquakes, and CAP alerts from trusted senders and the
BMKG nowcast (who in this city they touch, their texts)."""

from __future__ import annotations

from shapely.geometry import mapping

from bot.alerts.audience import Everyone, KelMap, Kelurahan, Polygon, kelurahan_in
from bot.alerts.bmkg import Quake, Relevance
from bot.alerts.broadcasts import Broadcasts
from bot.alerts.cap import CapAlert, CapArea, cap_area_geometry
from bot.alerts.texts import LANGS, city_short_name, gettext_for, local_time
from bot.city import CityProfile
from handlers.services import I18nLike
from handlers.text import N_
from storage.alert_repo import AlertRepo
from storage.db import Database


class WarningSources:
    """Turns quakes and CAP alerts into warnings; built once by `bot.alerts.wiring`."""

    def __init__(
        self,
        db: Database,
        city: CityProfile,
        i18n: I18nLike,
        broadcasts: Broadcasts,
        *,
        kel_map: KelMap,
    ) -> None:
        self.db = db
        self.city = city
        self.i18n = i18n
        self.broadcasts = broadcasts
        self.kel_map = kel_map

    # --- BMKG earthquakes ---------------------------------------------------------------------
    def quake_texts(self, quake: Quake, rel: Relevance) -> dict[str, str]:
        texts = {}
        for lang in LANGS:
            _ = gettext_for(self.i18n, lang)
            lines = [
                _("🌏 Earthquake M{magnitude} – {region}").format(
                    magnitude=f"{quake.magnitude:.1f}", region=quake.region or "-"
                ),
                _("Time: {time}").format(time=local_time(self.city, quake.time, lang)),
                _("Depth: {depth} km · about {distance} km from {city}").format(
                    depth=f"{quake.depth_km:g}" if quake.depth_km is not None else "-",
                    distance=f"{rel.distance_km:.0f}",
                    city=city_short_name(self.city),
                ),
            ]
            if quake.dirasakan:
                lines.append(_("Felt: {felt}").format(felt=quake.dirasakan))
            # BMKG's own tsunami line, quoted word for word
            lines.append(_("Tsunami: “{potensi}”").format(potensi=quake.potensi or "-"))
            if rel.tsunami:
                lines.append(
                    _("Move away from the coast to higher ground now and follow BMKG and BPBD.")
                )
            else:
                lines.append(_("Stay calm and beware of aftershocks."))
            lines.append(_("Source: BMKG"))
            texts[lang] = "\n".join(lines)
        return texts

    def quake_warning(self, quake: Quake, rel: Relevance) -> int | None:
        """A warning for a relevant quake, once per event (survives restarts)."""
        level = "awas" if rel.tsunami else ("siaga" if quake.magnitude >= 6.0 else "waspada")
        with self.db.unit() as uow:
            arepo = AlertRepo(uow)
            if not arepo.mark_processed("bmkg_quake", quake.event_id):
                return None
            bc = self.broadcasts.new_warning(
                arepo,
                source="bmkg",
                level=level,
                audience=Everyone(),
                texts=self.quake_texts(quake, rel),
                ref=quake.event_id,
                event=N_("Earthquake"),
                category="Geo",
                areas=(
                    CapArea(
                        quake.region or "BMKG",
                        circles=(((quake.lat, quake.lon), max(rel.distance_km, 1.0)),),
                    ),
                ),
            )
            return bc.id

    # --- CAP in (trusted senders, BMKG nowcast) -------------------------------------------------
    def cap_audience(self, alert: CapAlert) -> frozenset[str]:
        """Kelurahan of this city touched by the alert's areas (polygons, circles, geocodes)."""
        info = alert.info_for("id")
        if info is None:
            return frozenset()
        touched: set[str] = set()
        for area in info.areas:
            geom = cap_area_geometry(area)
            if not geom.is_empty:
                touched |= kelurahan_in(Polygon(mapping(geom)), self.kel_map)  # type: ignore[arg-type]
            for _name, value in area.geocodes:
                value = value.strip()
                if value in self.kel_map:
                    touched.add(value)
                elif value == self.city.city.code:
                    touched |= set(self.kel_map)
                elif self.city.kecamatan_by_code(value):
                    touched |= {k.code for k in self.city.kelurahan_in(value)}
        return frozenset(touched)

    def cap_texts(self, alert: CapAlert) -> dict[str, str]:
        texts = {}
        for lang in LANGS:
            info = alert.info_for(lang)
            assert info is not None
            _ = gettext_for(self.i18n, lang)
            parts = [f"⚠️ {info.event}"]
            if info.headline:
                parts.append(info.headline)
            if info.description:
                parts.append(info.description)
            if info.instruction:
                parts.append(info.instruction)
            parts.append(_("Source: {sender}").format(sender=info.sender_name or alert.sender))
            texts[lang] = "\n\n".join(parts)[:3500]
        return texts

    def ingest_cap(self, alert: CapAlert, source: str = "cap") -> tuple[int | None, str]:
        """A CAP alert → a warning to the touched kelurahan.  Returns (broadcast id, note)."""
        if alert.status != "Actual":
            return None, f"status {alert.status}: not sent to citizens"
        if alert.msg_type not in ("Alert", "Update"):
            return None, f"msgType {alert.msg_type}: not sent to citizens"
        info = alert.info_for("id")
        if info is None:
            return None, "no <info>"
        codes = self.cap_audience(alert)
        key = f"{alert.sender},{alert.identifier}"[:160]
        with self.db.unit() as uow:
            arepo = AlertRepo(uow)
            if arepo.is_processed(source, key):
                return None, "duplicate"
            if not codes:
                arepo.mark_processed(source, key)
                return None, "no kelurahan of this city in the alert's area"
            level = {"Extreme": "awas", "Severe": "siaga"}.get(info.severity, "waspada")
            bc = self.broadcasts.new_warning(
                arepo,
                source=source,
                level=level,
                audience=Kelurahan(codes),
                texts=self.cap_texts(alert),
                ref=key,
                event=N_("Weather warning") if "Met" in info.categories else N_("Warning"),
                category=info.categories[0] if info.categories else "Met",
            )
            arepo.mark_processed(source, key, bc.id)
            return bc.id, f"{len(codes)} kelurahan"
