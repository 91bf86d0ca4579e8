"""Sensor readings → warning level, with hysteresis.

Levels are ordered ``normal < waspada < siaga < awas``.  A level is entered as soon as a
reading reaches its threshold (rising is immediate and may skip levels).  Falling is slow:
the readings must stay below ``threshold(current level) - margin`` continuously for
``hold_minutes`` before the level drops, and then it drops straight to the level the value
is in now.  Dropping back to ``normal`` is an *all clear*.  This keeps a value that hovers
around a threshold from producing a stream of changes.

Timestamps: readings must carry an explicit UTC offset (``2026-11-23T10:00:00+08:00``) or be
epoch seconds.  A naive timestamp is rejected unless the sensor spec sets
``assume_utc_offset_hours`` (e.g. ``8`` for a logger known to report WITA wall-clock time):
guessing the zone silently could shift a reading by up to 9 hours.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

LEVELS: tuple[str, ...] = ("normal", "waspada", "siaga", "awas")


def level_rank(level: str) -> int:
    """Position of `level` in `LEVELS` (ValueError for an unknown name)."""
    try:
        return LEVELS.index(level)
    except ValueError:
        raise ValueError(f"unknown level {level!r}") from None


@dataclass(frozen=True)
class Thresholds:
    """Lower bound of each level; ``None`` means the level does not exist for this sensor."""

    waspada: float | None = None
    siaga: float | None = None
    awas: float | None = None

    def __post_init__(self) -> None:
        defined = [v for v in (self.waspada, self.siaga, self.awas) if v is not None]
        if not defined:
            raise ValueError("at least one threshold is needed")
        if any(not math.isfinite(v) for v in defined):
            raise ValueError("thresholds must be finite numbers")
        if defined != sorted(defined) or len(set(defined)) != len(defined):
            raise ValueError("thresholds must increase: waspada < siaga < awas")

    def of(self, level: str) -> float | None:
        """The threshold of `level` (``None`` for normal or an absent level)."""
        if level == "normal":
            return None
        level_rank(level)
        value: float | None = getattr(self, level)
        return value

    def level_for(self, value: float) -> str:
        """The highest level whose threshold `value` reaches."""
        for level in reversed(LEVELS[1:]):
            thr = self.of(level)
            if thr is not None and value >= thr:
                return level
        return "normal"


@dataclass(frozen=True)
class SensorSpec:
    """One sensor and its rules (from the city profile)."""

    id: str
    name: str
    thresholds: Thresholds
    unit: str = "m"
    margin: float = 0.05  # hysteresis band below the current level's threshold
    hold_minutes: float = 15.0  # time below (threshold − margin) before the level drops
    max_jump: float = 0.5  # largest believable change per minute
    min_value: float = 0.0  # physical range of the instrument
    max_value: float = 30.0
    max_age_minutes: float = 30.0  # older readings are rejected
    max_future_seconds: float = 60.0  # clock skew allowed for readings "from the future"
    silent_minutes: float = 30.0  # no reading for this long → the sensor is silent
    value_key: str = "level_m"  # key of the value in the decoded JSON payload
    assume_utc_offset_hours: float | None = None  # for naive timestamps; None → reject

    def __post_init__(self) -> None:
        if self.margin < 0 or self.hold_minutes < 0 or self.max_jump <= 0:
            raise ValueError("margin/hold_minutes must be ≥ 0 and max_jump > 0")
        if self.min_value >= self.max_value:
            raise ValueError("min_value must be below max_value")


@dataclass(frozen=True)
class Reading:
    sensor_id: str
    value: float
    ts: datetime  # aware


@dataclass(frozen=True)
class RejectedReading:
    """Why a reading was not used.  `reason` is a stable code, `detail` is for logs."""

    sensor_id: str
    reason: str  # bad_payload | bad_value | out_of_range | bad_ts | naive_ts | future | too_old
    # | not_newer | jump
    detail: str = ""


@dataclass(frozen=True)
class LevelChange:
    sensor_id: str
    old: str
    new: str
    value: float
    ts: datetime
    rising: bool
    all_clear: bool


def _iso(ts: datetime | None) -> str | None:
    return ts.isoformat() if ts is not None else None


def _from_iso(raw: Any) -> datetime | None:
    if raw is None:
        return None
    ts = datetime.fromisoformat(str(raw))
    if ts.tzinfo is None:
        raise ValueError(f"naive timestamp in stored state: {raw!r}")
    return ts


@dataclass
class SensorState:
    """What we remember about a sensor between readings (stored as a JSON dict)."""

    level: str = "normal"
    level_since: datetime | None = None
    last_value: float | None = None
    last_ts: datetime | None = None
    below_since: datetime | None = None  # first of the unbroken run of readings below the band
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "level": self.level,
            "level_since": _iso(self.level_since),
            "last_value": self.last_value,
            "last_ts": _iso(self.last_ts),
            "below_since": _iso(self.below_since),
            "extra": dict(self.extra),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SensorState:
        level = str(data.get("level") or "normal")
        level_rank(level)
        last_value = data.get("last_value")
        return cls(
            level=level,
            level_since=_from_iso(data.get("level_since")),
            last_value=float(last_value) if last_value is not None else None,
            last_ts=_from_iso(data.get("last_ts")),
            below_since=_from_iso(data.get("below_since")),
            extra=dict(data.get("extra") or {}),
        )


def _parse_ts(spec: SensorSpec, raw: Any) -> datetime | str:
    """An aware datetime, or a rejection reason code."""
    if isinstance(raw, bool):
        return "bad_ts"
    if isinstance(raw, int | float):
        if not math.isfinite(raw):
            return "bad_ts"
        try:
            return datetime.fromtimestamp(raw, tz=UTC)
        except (OverflowError, OSError, ValueError):
            return "bad_ts"
    if not isinstance(raw, str) or not raw.strip():
        return "bad_ts"
    text = raw.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        ts = datetime.fromisoformat(text)
    except ValueError:
        return "bad_ts"
    if ts.tzinfo is None or ts.utcoffset() is None:
        if spec.assume_utc_offset_hours is None:
            return "naive_ts"
        ts = ts.replace(tzinfo=timezone(timedelta(hours=spec.assume_utc_offset_hours)))
    return ts


def validate_reading(
    spec: SensorSpec, raw: object, now: datetime, state: SensorState | None = None
) -> Reading | RejectedReading:
    """Check a decoded JSON reading such as ``{"level_m": 7.96, "ts": "...+08:00"}``.

    `now` must be aware.  With `state`, the reading must also be newer than the last accepted
    one and must not change faster than ``spec.max_jump`` per minute (an elapsed time below one
    minute counts as one minute, so two readings seconds apart may differ by ``max_jump``).
    """

    def reject(reason: str, detail: str = "") -> RejectedReading:
        return RejectedReading(spec.id, reason, detail)

    if not isinstance(raw, dict):
        return reject("bad_payload", f"expected an object, got {type(raw).__name__}")
    value = raw.get(spec.value_key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return reject("bad_value", f"{spec.value_key}={value!r}")
    value = float(value)
    if not math.isfinite(value):
        return reject("bad_value", f"{spec.value_key}={value!r}")
    if not spec.min_value <= value <= spec.max_value:
        return reject("out_of_range", f"{value} not in [{spec.min_value}, {spec.max_value}]")

    ts = _parse_ts(spec, raw.get("ts"))
    if isinstance(ts, str):
        return reject(ts, f"ts={raw.get('ts')!r}")
    if ts - now > timedelta(seconds=spec.max_future_seconds):
        return reject("future", f"{ts.isoformat()} is after {now.isoformat()}")
    if now - ts > timedelta(minutes=spec.max_age_minutes):
        return reject("too_old", f"{ts.isoformat()} is older than {spec.max_age_minutes} min")

    if state is not None and state.last_ts is not None:
        if ts <= state.last_ts:
            return reject("not_newer", f"{ts.isoformat()} <= {state.last_ts.isoformat()}")
        if state.last_value is not None:
            minutes = max((ts - state.last_ts).total_seconds() / 60.0, 1.0)
            if abs(value - state.last_value) > spec.max_jump * minutes:
                return reject("jump", f"{state.last_value} → {value} in {minutes:.1f} min")
    return Reading(spec.id, value, ts)


def step(
    spec: SensorSpec, state: SensorState, reading: Reading
) -> tuple[SensorState, LevelChange | None]:
    """Apply one accepted reading; returns the new state and the level change, if any.

    The input state is not modified.  If the current level has no threshold (the city profile
    changed), a lower level is taken at once.
    """
    value, ts = reading.value, reading.ts
    current = state.level
    target = spec.thresholds.level_for(value)
    new = replace(state, last_value=value, last_ts=ts, extra=dict(state.extra))
    if new.level_since is None:
        new.level_since = ts

    def change_to(level: str) -> tuple[SensorState, LevelChange]:
        rising = level_rank(level) > level_rank(current)
        new.level, new.level_since, new.below_since = level, ts, None
        return new, LevelChange(
            sensor_id=spec.id,
            old=current,
            new=level,
            value=value,
            ts=ts,
            rising=rising,
            all_clear=level == "normal" and not rising,
        )

    if level_rank(target) > level_rank(current):
        return change_to(target)

    threshold = spec.thresholds.of(current)
    if current == "normal":
        new.below_since = None
        return new, None
    if threshold is None:
        return change_to(target) if target != current else (new, None)
    if value >= threshold - spec.margin:
        new.below_since = None  # inside the band or above: the run of low readings is broken
        return new, None
    if new.below_since is None:
        new.below_since = ts
    if ts - new.below_since >= timedelta(minutes=spec.hold_minutes) and target != current:
        return change_to(target)
    return new, None


def is_silent(
    spec: SensorSpec, state: SensorState, now: datetime, since: datetime | None = None
) -> bool:
    """True when the last accepted reading is older than ``spec.silent_minutes``.

    A sensor that never reported is silent once ``since`` (when monitoring began) is that old;
    without `since` it counts as silent at once.
    """
    last = state.last_ts or since
    if last is None:
        return True
    return now - last > timedelta(minutes=spec.silent_minutes)
