"""Water-level sensors: token check, readings, level changes, silent sensors.

Readings (MQTT or HTTP) are validated and stepped through `bot.alerts.levels` inside one
transaction that locks the sensor's state row; a level rise creates a warning at once, the
return to Normal an all clear; every change is stored.  A silent sensor alerts admins only.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from bot.alerts.audience import Kelurahan
from bot.alerts.broadcasts import Broadcasts
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
from bot.alerts.texts import LANGS, gettext_for, local_time
from bot.city import CityProfile, SensorConfig
from handlers.events import PRIORITY_WARNING, Outgoing, Reply
from handlers.services import I18nLike
from handlers.text import N_
from storage.alert_models import SensorLevelChange
from storage.alert_repo import AlertRepo
from storage.db import Database
from storage.repo import Repo

log = logging.getLogger(__name__)


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


@dataclass(frozen=True)
class IngestResult:
    accepted: bool
    reason: str | None = None  # rejection code
    level: str | None = None
    change: LevelChange | None = None
    broadcast_id: int | None = None


class Sensors:
    """The city's sensors, wired to storage and to warnings; built once by `bot.alerts.wiring`."""

    def __init__(
        self,
        db: Database,
        city: CityProfile,
        i18n: I18nLike,
        broadcasts: Broadcasts,
        *,
        tokens: Mapping[str, str] | None = None,
    ) -> None:
        self.db = db
        self.city = city
        self.i18n = i18n
        self.broadcasts = broadcasts
        self.clock = db.clock  # the one clock
        self.configs = {s.id: s for s in city.sensors}
        self.specs = {s.id: sensor_spec(s) for s in city.sensors}
        self.tokens = dict(tokens or {})
        self._locks = {s: threading.Lock() for s in self.configs}

    def topics(self) -> dict[str, str]:
        """MQTT topic → sensor id (``lapor/sensors/<id>`` unless the profile names one)."""
        return {(s.topic or f"lapor/sensors/{s.id}"): s.id for s in self.configs.values()}

    def check_token(self, sensor_id: str, token: str) -> bool:
        """Per-sensor token: from SENSOR_TOKENS, or its sha256 in the profile."""
        cfg = self.configs.get(sensor_id)
        if cfg is None or not token:
            return False
        expected = self.tokens.get(sensor_id)
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
        with self._locks[sensor_id], self.db.unit() as uow:
            arepo = AlertRepo(uow)
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
        cfg = self.configs[spec.id]
        bid = None
        if change.rising or change.all_clear:
            texts = {}
            for lang in LANGS:
                tpl = cfg.messages[change.new]
                texts[lang] = (tpl.id if lang == "id" else tpl.en).format(
                    name=cfg.name,
                    value=f"{change.value:.2f}",
                    unit=cfg.unit,
                    level=change.new.upper(),
                    source=f"{cfg.thresholds_source}, {cfg.thresholds_date}",
                )
            bc = self.broadcasts.new_warning(
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
            with self._locks[sensor_id], self.db.unit() as uow:
                arepo = AlertRepo(uow)
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
        repo = Repo(arepo)
        n = 0
        for person_id in arepo.admin_person_ids():
            person = repo.person(person_id)
            lang = self.i18n.lang(person.language if person else None)
            _ = gettext_for(self.i18n, lang)
            if what == "sensor_silent":
                text = _(
                    "⚠️ Sensor {name} has sent no reading for more than {minutes} minutes "
                    "(last: {last}). Citizens were not notified. Please check the device."
                ).format(
                    name=spec.name,
                    minutes=f"{spec.silent_minutes:g}",
                    last=local_time(self.city, last, lang) if last else "-",
                )
            else:
                assert reading is not None
                text = _("✅ Sensor {name} is reporting again ({value} {unit}).").format(
                    name=spec.name, value=f"{reading.value:.2f}", unit=spec.unit
                )
            for ident in repo.identities_of(person_id):
                repo.uow.send(
                    [
                        Outgoing(
                            channel=ident.channel,
                            address=ident.address,
                            identity_id=ident.id,
                            reply=Reply(text=text),
                            kind="admin_alert",
                            priority=PRIORITY_WARNING,
                            meta={"lang": lang, "sensor": spec.id},
                        )
                    ]
                )
                n += 1
        return n
