"""Warnings and announcements, wired to storage and the outbox.

`AlertService` owns the flow shared by every source (admin `/siaran`, CLI, sensors, BMKG, CAP):

    source ─► broadcast row (queued, or scheduled) ─► fan-out ─► outbox rows ─► Sender
                 + CAP document (warnings)            batches of persons, cursor

Fan-out: subscribers are walked in person-id order, `batch` persons per transaction.  A batch
writes the outbox rows of the matching persons (one per active identity, in the person's
language, `broadcast_id` set, priority 10 for warnings and 90 for announcements) and moves the
broadcast's cursor with a conditional UPDATE in the same transaction.  A crash loses at most the
batch being written (rolled back, redone); a second worker racing on the same broadcast fails
the cursor check and rolls back.  So nobody is skipped and nobody gets two rows.  Each step
re-picks the most urgent broadcast, so a warning overtakes a running announcement.

Sensors: readings (MQTT or HTTP) are validated and stepped through `bot.alerts.levels` inside
one transaction that locks the sensor's state row; a level rise creates a warning at once, the
return to Normal an all clear; every change is stored.  A silent sensor alerts admins only.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import shapely
from shapely.geometry import mapping
from shapely.geometry.base import BaseGeometry

from bot.alerts.audience import (
    Audience,
    Circle,
    Everyone,
    Kecamatan,
    Kelurahan,
    Polygon,
    SubscriberArea,
    audience_from_dict,
    audience_to_dict,
    kelurahan_in,
    matches,
)
from bot.alerts.bmkg import Quake, Relevance
from bot.alerts.cap import (
    CapAlert,
    CapArea,
    WarningDoc,
    WarningText,
    build_cap,
    cap_area_geometry,
    kelurahan_geocodes,
)
from bot.alerts.levels import (
    LevelChange,
    Reading,
    RejectedReading,
    SensorSpec,
    SensorState,
    Thresholds,
    is_silent,
    step,
    validate_reading,
)
from bot.city import CityProfile, SensorConfig
from bot.i18n import N_
from handlers.events import PRIORITY_ANNOUNCEMENT, PRIORITY_WARNING, MediaRef, Reply
from storage.alert_models import (
    BC_QUEUED,
    BC_SCHEDULED,
    KIND_ANNOUNCEMENT,
    KIND_WARNING,
    Broadcast,
    PublishedWarning,
    SensorLevelChange,
)
from storage.alert_repo import AlertRepo
from storage.db import Database, utcnow
from storage.repo import Repo

log = logging.getLogger(__name__)

Gettext = Callable[[str], str]
KelMap = dict[str, BaseGeometry | tuple[float, float]]
JOB_START_BROADCAST = "broadcast.start"
CAP_LANG = {"id": "id-ID", "en": "en-US"}


class _Lost(Exception):
    """Another worker moved the cursor, or the broadcast was cancelled: roll the batch back."""


def sensor_spec(cfg: SensorConfig) -> SensorSpec:
    t = cfg.thresholds
    return SensorSpec(
        id=cfg.id,
        name=cfg.name,
        thresholds=Thresholds(waspada=t.get("waspada"), siaga=t.get("siaga"), awas=t.get("awas")),
        unit=cfg.unit,
        margin=cfg.margin,
        hold_minutes=cfg.hold_minutes,
        max_jump=cfg.max_jump_per_min,
        min_value=cfg.min_value,
        max_value=cfg.max_value,
        silent_minutes=cfg.silent_minutes,
    )


def kelurahan_map(city: CityProfile, polygons: Mapping[str, str] | None) -> KelMap:
    """Code → polygon (lon/lat) where imported, else → centroid (lat, lon)."""
    out: KelMap = {k.code: k.centroid for k in city.kelurahan}
    for code, text in (polygons or {}).items():
        if code in out:
            out[code] = shapely.from_geojson(text)
    return out


def pick_text(texts: Mapping[str, Any], lang: str, default: str) -> str:
    for key in (lang, default, "*"):
        if texts.get(key):
            return str(texts[key])
    return str(next(iter(texts.values()), ""))


@dataclass(frozen=True)
class IngestResult:
    accepted: bool
    reason: str | None = None  # rejection code
    level: str | None = None
    change: LevelChange | None = None
    broadcast_id: int | None = None


class AlertService:
    """Everything about warnings that needs storage; built once by the composition root."""

    def __init__(
        self,
        db: Database,
        city: CityProfile,
        i18n: Any,
        *,
        kel_map: KelMap,
        wake_sender: Callable[[], None] = lambda: None,
        batch: int = 500,
        sensor_tokens: Mapping[str, str] | None = None,
        public_base_url: str | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.db = db
        self.city = city
        self.i18n = i18n
        self.kel_map = kel_map
        self.wake_sender = wake_sender
        self.batch = batch
        self.clock = clock
        self.public_base_url = (public_base_url or "").rstrip("/") or None
        self.sensors = {s.id: s for s in city.sensors}
        self.specs = {s.id: sensor_spec(s) for s in city.sensors}
        self.sensor_tokens = dict(sensor_tokens or {})
        self._sensor_locks = {s: threading.Lock() for s in self.sensors}
        self._touched: dict[int, frozenset[str] | None] = {}
        self._wake = asyncio.Event()
        self.last_first_send: float | None = None

    # --- texts --------------------------------------------------------------------------
    def gettext_for(self, lang: str) -> Gettext:
        return lambda msgid: str(self.i18n.gettext(lang, msgid))

    def langs(self) -> tuple[str, ...]:
        return ("id", "en")

    def city_short_name(self) -> str:
        return self.city.city.name.removeprefix("Kota ").strip()

    # --- audiences ----------------------------------------------------------------------
    def touched(self, audience: Audience) -> frozenset[str] | None:
        if isinstance(audience, Circle | Polygon):
            return frozenset(kelurahan_in(audience, self.kel_map))
        return None

    def select_page(
        self,
        audience: Audience,
        page: Sequence[tuple[int, list[str], tuple[float, float] | None]],
        touched: frozenset[str] | None,
    ) -> list[int]:
        out = []
        for person_id, codes, home in page:
            sub = SubscriberArea(person_id, frozenset(codes), frozenset(), home)
            if matches(audience, sub, touched):
                out.append(person_id)
        return out

    def parse_audience(self, data: Mapping[str, Any]) -> Audience:
        return audience_from_dict(data)

    def count_recipients(self, arepo: AlertRepo, audience: Audience) -> int:
        """Persons a broadcast to `audience` would reach now (with an active chat)."""
        touched = self.touched(audience)
        cursor, n = 0, 0
        while True:
            page = arepo.subscriber_page(cursor, 5000)
            if not page:
                return n
            persons = self.select_page(audience, page, touched)
            n += sum(1 for _lang, idents in arepo.recipients_of(persons).values() if idents)
            cursor = page[-1][0]

    def _kel_names(self, codes: frozenset[str]) -> list[str]:
        found = (self.city.kelurahan_by_code(c) for c in sorted(codes))
        return [k.name for k in found if k is not None]

    def _kec_names(self, codes: frozenset[str]) -> list[str]:
        found = (self.city.kecamatan_by_code(c) for c in sorted(codes))
        return [k.name for k in found if k is not None]

    def describe_audience(self, audience: Audience, _: Gettext) -> str:
        if isinstance(audience, Everyone):
            return _("all subscribers")
        if isinstance(audience, Kecamatan):
            names = self._kec_names(audience.codes)
            return _("Kec. {names}").format(names=", ".join(names) or "-")
        if isinstance(audience, Kelurahan):
            names = self._kel_names(audience.codes)
            return _("Kel. {names}").format(names=", ".join(names) or "-")
        if isinstance(audience, Circle):
            return _("within {km} km of {lat}, {lon}").format(
                km=f"{audience.radius_km:g}", lat=f"{audience.lat:.5f}", lon=f"{audience.lon:.5f}"
            )
        return _("the warning area")

    # --- creating broadcasts -------------------------------------------------------------
    def new_broadcast(
        self,
        arepo: AlertRepo,
        *,
        source: str,
        audience: Audience,
        texts: Mapping[str, str],
        kind: str = KIND_ANNOUNCEMENT,
        level: str | None = None,
        ref: str | None = None,
        photo: MediaRef | None = None,
        created_by: int | None = None,
        scheduled_at: datetime | None = None,
    ) -> Broadcast:
        """A broadcast row in the caller's transaction (queued, or scheduled with its job)."""
        now = self.clock()
        bc = arepo.add_broadcast(
            Broadcast(
                kind=kind,
                source=source,
                level=level,
                ref=ref,
                audience=audience_to_dict(audience),
                texts=dict(texts),
                photo=_photo_dict(photo),
                priority=PRIORITY_WARNING if kind == KIND_WARNING else PRIORITY_ANNOUNCEMENT,
                state=BC_SCHEDULED if scheduled_at else BC_QUEUED,
                scheduled_at=scheduled_at,
                created_by=created_by,
                created_at=now,
            )
        )
        assert bc.id is not None
        if scheduled_at is not None:
            job = Repo(arepo.s).schedule_job(
                JOB_START_BROADCAST, scheduled_at, {"broadcast_id": bc.id}
            )
            bc.job_id = job.id
            arepo.s.add(bc)
        return bc

    def new_warning(
        self,
        arepo: AlertRepo,
        *,
        source: str,
        level: str,
        audience: Audience,
        texts: Mapping[str, str],
        ref: str | None = None,
        event: str = N_("Warning"),
        category: str = "Met",
        areas: tuple[CapArea, ...] | None = None,
    ) -> Broadcast:
        """A warning broadcast plus its CAP 1.2 document (same transaction)."""
        bc = self.new_broadcast(
            arepo, source=source, audience=audience, texts=texts, kind=KIND_WARNING,
            level=level, ref=ref,
        )  # fmt: skip
        assert bc.id is not None
        self.publish_cap(arepo, bc, event, category, areas)
        return bc

    # --- CAP out ---------------------------------------------------------------------------
    def cap_areas(self, audience: Audience) -> tuple[CapArea, ...]:
        if isinstance(audience, Kelurahan):
            names = self._kel_names(audience.codes)
            return (
                CapArea(
                    "Kel. " + ", ".join(names), geocodes=kelurahan_geocodes(sorted(audience.codes))
                ),
            )
        if isinstance(audience, Kecamatan):
            names = self._kec_names(audience.codes)
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
        for lang in self.langs():
            body = pick_text(bc.texts, lang, self.i18n.default)
            headline = body.strip().splitlines()[0][:160] if body.strip() else event
            texts.append(
                WarningText(
                    language=CAP_LANG[lang],
                    event=self.gettext_for(lang)(event),
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

    # --- fan-out -----------------------------------------------------------------------------
    def wake(self) -> None:
        """New broadcasts were committed (call from the event loop)."""
        self._wake.set()

    def fanout_step(self) -> int | None:
        """Write one batch of the most urgent running broadcast.

        Returns the number of outbox rows written (0 when a broadcast finished its fan-out), or
        None when there is nothing to do.
        """
        try:
            with self.db.session() as s:
                arepo = AlertRepo(s)
                active = arepo.active_broadcasts()
                if not active:
                    return None
                bc = active[0]
                assert bc.id is not None
                page = arepo.subscriber_page(bc.cursor, self.batch)
                if not page:
                    arepo.finish_fanout(bc.id, bc.cursor)
                    self._touched.pop(bc.id, None)
                    log.info("broadcast %s: fan-out complete (%s messages)", bc.id, bc.messages)
                    return 0
                audience = audience_from_dict(bc.audience)
                if bc.id not in self._touched:
                    self._touched[bc.id] = self.touched(audience)
                persons = self.select_page(audience, page, self._touched[bc.id])
                rows = self._rows(bc, arepo.recipients_of(persons))
                arepo.add_outbox_rows(rows)
                reached = len({r["meta"]["person_id"] for r in rows})
                if not arepo.advance_cursor(bc.id, bc.cursor, page[-1][0], reached, len(rows)):
                    raise _Lost
                return len(rows)
        except _Lost:
            return 0

    def _rows(self, bc: Broadcast, recipients: Mapping[int, tuple[str, list[Any]]]) -> list[Any]:
        now = self.clock()
        photo = MediaRef(**bc.photo) if bc.photo else None
        payloads: dict[str, dict[str, Any]] = {}
        rows = []
        kind = bc.kind
        for person_id, (lang_raw, idents) in recipients.items():
            lang = self.i18n.lang(lang_raw)
            if lang not in payloads:
                text = pick_text(bc.texts, lang, self.i18n.default)
                payloads[lang] = Reply(text=text, photo=photo).to_payload()
            for ident_id, channel, address in idents:
                rows.append(
                    {
                        "channel": channel,
                        "address": address,
                        "identity_id": ident_id,
                        "kind": kind,
                        "priority": bc.priority,
                        "payload": payloads[lang],
                        "meta": {"lang": lang, "broadcast_id": bc.id, "person_id": person_id},
                        "state": "pending",
                        "attempts": 0,
                        "next_attempt_at": now,
                        "broadcast_id": bc.id,
                        "created_at": now,
                    }
                )
        return rows

    async def run_fanout(self, stop: asyncio.Event) -> None:
        """Background loop: fan out queued broadcasts, then mark finished ones done."""
        last_finish = 0.0
        while not stop.is_set():
            try:
                written = await asyncio.to_thread(self.fanout_step)
            except Exception:
                log.exception("broadcast fan-out failed; retrying")
                written = None
                await asyncio.sleep(1.0)
            if written:
                self.wake_sender()
            if written is not None:
                continue
            if time.monotonic() - last_finish > 2.0:
                last_finish = time.monotonic()
                with contextlib.suppress(Exception):
                    done = await asyncio.to_thread(self._finish_sent)
                    for bid in done:
                        log.info("broadcast %s: done", bid)
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=0.5)

    def _finish_sent(self) -> list[int]:
        with self.db.session() as s:
            return AlertRepo(s).finish_sent_broadcasts()

    async def on_scheduled_job(self, args: dict[str, Any]) -> None:
        """Scheduler job `broadcast.start`: a scheduled broadcast becomes queued."""
        bid = int(args["broadcast_id"])

        def start() -> bool:
            with self.db.session() as s:
                return AlertRepo(s).start_scheduled(bid)

        if await asyncio.to_thread(start):
            log.info("broadcast %s: scheduled time reached, starting", bid)
            self.wake()

    def cancel(self, broadcast_id: int) -> int | None:
        with self.db.session() as s:
            return AlertRepo(s).cancel_broadcast(broadcast_id)

    # --- sensors -------------------------------------------------------------------------------
    def sensor_for_topic(self, topic: str) -> str | None:
        for s in self.sensors.values():
            if (s.topic or f"lapor/sensors/{s.id}") == topic:
                return s.id
        return None

    def check_token(self, sensor_id: str, token: str) -> bool:
        """Per-sensor token: from SENSOR_TOKENS, or its sha256 in the profile."""
        cfg = self.sensors.get(sensor_id)
        if cfg is None or not token:
            return False
        expected = self.sensor_tokens.get(sensor_id)
        if expected:
            return hmac.compare_digest(token.encode(), expected.encode())
        if cfg.token_sha256:
            digest = hashlib.sha256(token.encode()).hexdigest()
            return hmac.compare_digest(digest, cfg.token_sha256)
        return False

    def ingest_reading(
        self, sensor_id: str, payload: object, now: datetime | None = None
    ) -> IngestResult:
        """Validate and apply one reading (runs in a worker thread)."""
        spec = self.specs.get(sensor_id)
        if spec is None:
            return IngestResult(False, "unknown_sensor")
        now = now or self.clock()
        with self._sensor_locks[sensor_id], self.db.session() as s:
            arepo = AlertRepo(s)
            row = arepo.sensor_state_for_update(sensor_id, now)
            state = SensorState.from_dict(row.state) if row.state else SensorState()
            checked = validate_reading(spec, payload, now, state)
            if isinstance(checked, RejectedReading):
                row.rejected += 1
                arepo.save_sensor_state(row)
                log.warning(
                    "sensor %s: reading rejected (%s): %s",
                    sensor_id, checked.reason, checked.detail,
                )  # fmt: skip
                return IngestResult(False, checked.reason, state.level)
            new_state, change = step(spec, state, checked)
            row.state = new_state.to_dict()
            if row.silent_alerted:
                row.silent_alerted = False
                self._notify_admins(arepo, "sensor_back", spec, checked)
            arepo.save_sensor_state(row)
            bid = None
            if change is not None:
                bid = self._on_level_change(arepo, spec, change)
            return IngestResult(True, None, new_state.level, change, bid)

    def _on_level_change(
        self, arepo: AlertRepo, spec: SensorSpec, change: LevelChange
    ) -> int | None:
        cfg = self.sensors[spec.id]
        bid = None
        if change.rising or change.all_clear:
            texts = {}
            for lang in self.langs():
                tpl = cfg.messages[change.new]
                texts[lang] = (tpl.id if lang == "id" else tpl.en).format(
                    name=cfg.name,
                    value=f"{change.value:.2f}",
                    unit=cfg.unit,
                    level=change.new.upper(),
                    source=f"{cfg.thresholds_source}, {cfg.thresholds_date}",
                )
            bc = self.new_warning(
                arepo,
                source="sensor",
                level=change.new,
                audience=Kelurahan(cfg.audience_kelurahan),
                texts=texts,
                ref=f"{spec.id}:{change.ts.isoformat()}",
                event=N_("Flood"),
            )
            bid = bc.id
        arepo.add_level_change(
            SensorLevelChange(
                sensor_id=spec.id,
                old_level=change.old,
                new_level=change.new,
                value=change.value,
                reading_ts=change.ts,
                broadcast_id=bid,
                created_at=self.clock(),
            )
        )
        log.warning(
            "sensor %s: %s → %s at %.2f %s (broadcast %s)",
            spec.id, change.old, change.new, change.value, spec.unit, bid,
        )  # fmt: skip
        return bid

    def check_silent_sensors(self, now: datetime | None = None) -> list[str]:
        """Alert admins (only) about sensors silent for too long; returns their ids."""
        now = now or self.clock()
        alerted = []
        for sensor_id, spec in self.specs.items():
            with self._sensor_locks[sensor_id], self.db.session() as s:
                arepo = AlertRepo(s)
                row = arepo.sensor_state_for_update(sensor_id, now)
                state = SensorState.from_dict(row.state) if row.state else SensorState()
                if row.silent_alerted or not is_silent(spec, state, now, row.monitoring_since):
                    continue
                row.silent_alerted = True
                arepo.save_sensor_state(row)
                self._notify_admins(arepo, "sensor_silent", spec, None, state.last_ts)
                alerted.append(sensor_id)
                log.warning("sensor %s: silent; admins alerted", sensor_id)
        return alerted

    def _notify_admins(
        self,
        arepo: AlertRepo,
        what: str,
        spec: SensorSpec,
        reading: Reading | None,
        last: datetime | None = None,
    ) -> int:
        repo = Repo(arepo.s)
        n = 0
        for person_id in arepo.admin_person_ids():
            person = repo.person(person_id)
            lang = self.i18n.lang(person.language if person else None)
            _ = self.gettext_for(lang)
            if what == "sensor_silent":
                text = _(
                    "⚠️ Sensor {name} has sent no reading for more than {minutes} minutes "
                    "(last: {last}). Citizens were not notified. Please check the device."
                ).format(
                    name=spec.name,
                    minutes=f"{spec.silent_minutes:g}",
                    last=self.local_time(last) if last else "-",
                )
            else:
                assert reading is not None
                text = _("✅ Sensor {name} is reporting again ({value} {unit}).").format(
                    name=spec.name, value=f"{reading.value:.2f}", unit=spec.unit
                )
            for ident in repo.identities_of(person_id):
                repo.enqueue(
                    channel=ident.channel,
                    address=ident.address,
                    identity_id=ident.id,
                    payload=Reply(text=text).to_payload(),
                    kind="admin_alert",
                    priority=PRIORITY_WARNING,
                    meta={"lang": lang, "sensor": spec.id},
                )
                n += 1
        return n

    def local_time(self, ts: datetime) -> str:
        local = ts.astimezone(ZoneInfo(self.city.city.timezone))
        return local.strftime("%d-%m-%Y %H:%M ") + (local.tzname() or "")

    # --- BMKG earthquakes ---------------------------------------------------------------------
    def quake_texts(self, quake: Quake, rel: Relevance) -> dict[str, str]:
        texts = {}
        for lang in self.langs():
            _ = self.gettext_for(lang)
            lines = [
                _("🌏 Earthquake M{magnitude} – {region}").format(
                    magnitude=f"{quake.magnitude:.1f}", region=quake.region or "-"
                ),
                _("Time: {time}").format(time=self.local_time(quake.time)),
                _("Depth: {depth} km · about {distance} km from {city}").format(
                    depth=f"{quake.depth_km:g}" if quake.depth_km is not None else "-",
                    distance=f"{rel.distance_km:.0f}",
                    city=self.city_short_name(),
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
        with self.db.session() as s:
            arepo = AlertRepo(s)
            if not arepo.mark_processed("bmkg_quake", quake.event_id):
                return None
            bc = self.new_warning(
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
        for lang in self.langs():
            info = alert.info_for(lang)
            assert info is not None
            _ = self.gettext_for(lang)
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
        with self.db.session() as s:
            arepo = AlertRepo(s)
            if arepo.is_processed(source, key):
                return None, "duplicate"
            if not codes:
                arepo.mark_processed(source, key)
                return None, "no kelurahan of this city in the alert's area"
            level = {"Extreme": "awas", "Severe": "siaga"}.get(info.severity, "waspada")
            bc = self.new_warning(
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


def _photo_dict(photo: MediaRef | None) -> dict[str, Any] | None:
    if photo is None:
        return None
    return {
        "sha256": photo.sha256,
        "mime": photo.mime,
        "size": photo.size,
        "path": photo.path,
        "channel_file_id": photo.channel_file_id,
    }


def sent_rate(arepo: AlertRepo, broadcast_id: int, window_s: float = 60.0) -> float:
    """Messages per second of a broadcast over the last `window_s` seconds."""
    since = utcnow() - timedelta(seconds=window_s)
    return arepo.broadcast_sent_since(broadcast_id, since) / window_s
