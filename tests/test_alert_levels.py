"""Sensor level logic: validation, hysteresis, silence (bot/alerts/levels.py)."""

from __future__ import annotations

import itertools
import math
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.alerts.levels import (
    LEVELS,
    LevelChange,
    Reading,
    RejectedReading,
    SensorSpec,
    SensorState,
    Thresholds,
    is_silent,
    level_rank,
    step,
    validate_reading,
)

WITA = timezone(timedelta(hours=8))
T0 = datetime(2026, 11, 23, 10, 0, tzinfo=WITA)

# BPBD Samarinda (2022): Normal < 7.75 m, Siaga 7.75–8.20 m, Awas ≥ 8.25 m; no Waspada.
BENANGA = SensorSpec(
    id="benanga",
    name="Bendungan Benanga",
    thresholds=Thresholds(waspada=None, siaga=7.75, awas=8.25),
    margin=0.05,
    hold_minutes=15,
    max_jump=0.5,
    min_value=0.0,
    max_value=15.0,
)


def run(spec: SensorSpec, values: list[float], every_min: float = 1.0, start: datetime = T0):
    """Feed `values` one per `every_min` minutes; return (final state, changes)."""
    state = SensorState()
    changes: list[LevelChange] = []
    for i, v in enumerate(values):
        state, change = step(
            spec, state, Reading(spec.id, v, start + timedelta(minutes=i * every_min))
        )
        if change:
            changes.append(change)
    return state, changes


# --- thresholds ------------------------------------------------------------------------


def test_level_for_with_absent_waspada():
    th = BENANGA.thresholds
    assert th.level_for(7.5) == "normal"
    assert th.level_for(7.75) == "siaga"  # entered at the threshold itself
    assert th.level_for(8.24) == "siaga"
    assert th.level_for(8.25) == "awas"
    assert th.of("waspada") is None


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"waspada": 2.0, "siaga": 1.0}, {"siaga": 1.0, "awas": 1.0}, {"awas": math.nan}],
)
def test_bad_thresholds_rejected(kwargs):
    with pytest.raises(ValueError):
        Thresholds(**kwargs)


# --- validation ------------------------------------------------------------------------


def ok(raw, now=T0, state=None) -> Reading:
    r = validate_reading(BENANGA, raw, now, state)
    assert isinstance(r, Reading), r
    return r


def rejected(raw, now=T0, state=None) -> str:
    r = validate_reading(BENANGA, raw, now, state)
    assert isinstance(r, RejectedReading), r
    return r.reason


def test_valid_reading_keeps_offset():
    r = ok({"level_m": 7.96, "ts": "2026-11-23T10:00:00+08:00"})
    assert r.value == 7.96
    assert r.ts == datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
    assert ok({"level_m": 8, "ts": "2026-11-23T02:00:00Z"}).value == 8.0
    assert ok({"level_m": 8, "ts": T0.timestamp()}).ts == T0


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ([7.9], "bad_payload"),
        ("7.9", "bad_payload"),
        ({"ts": "2026-11-23T10:00:00+08:00"}, "bad_value"),
        ({"level_m": "7.9", "ts": "2026-11-23T10:00:00+08:00"}, "bad_value"),
        ({"level_m": True, "ts": "2026-11-23T10:00:00+08:00"}, "bad_value"),
        ({"level_m": math.nan, "ts": "2026-11-23T10:00:00+08:00"}, "bad_value"),
        ({"level_m": math.inf, "ts": "2026-11-23T10:00:00+08:00"}, "bad_value"),
        ({"level_m": None, "ts": "2026-11-23T10:00:00+08:00"}, "bad_value"),
        ({"level_m": -0.5, "ts": "2026-11-23T10:00:00+08:00"}, "out_of_range"),
        ({"level_m": 99.0, "ts": "2026-11-23T10:00:00+08:00"}, "out_of_range"),
        ({"level_m": 7.9, "ts": "kemarin"}, "bad_ts"),
        ({"level_m": 7.9, "ts": True}, "bad_ts"),
        ({"level_m": 7.9}, "bad_ts"),
        ({"level_m": 7.9, "ts": "2026-11-23T10:00:00"}, "naive_ts"),
        ({"level_m": 7.9, "ts": "2026-11-23T10:05:00+08:00"}, "future"),
        ({"level_m": 7.9, "ts": "2026-11-23T09:00:00+08:00"}, "too_old"),
    ],
)
def test_bad_readings_rejected(raw, reason):
    assert rejected(raw) == reason


def test_small_clock_skew_allowed():
    ok({"level_m": 7.9, "ts": "2026-11-23T10:00:45+08:00"})


def test_naive_ts_with_assumed_offset():
    spec = SensorSpec(id="x", name="x", thresholds=Thresholds(siaga=1.0), assume_utc_offset_hours=8)
    r = validate_reading(spec, {"level_m": 0.5, "ts": "2026-11-23T10:00:00"}, T0)
    assert isinstance(r, Reading) and r.ts == T0


def test_jump_and_order_against_last_accepted():
    state = SensorState(last_value=7.5, last_ts=T0 - timedelta(minutes=2))
    assert rejected({"level_m": 9.0, "ts": T0.isoformat()}, state=state) == "jump"  # 1.5 m/2 min
    assert ok({"level_m": 8.4, "ts": T0.isoformat()}, state=state).value == 8.4  # 0.45 m/min
    # seconds apart: counted as one minute
    state = SensorState(last_value=7.5, last_ts=T0 - timedelta(seconds=5))
    assert rejected({"level_m": 8.1, "ts": T0.isoformat()}, state=state) == "jump"
    assert rejected(
        {"level_m": 7.5, "ts": (T0 - timedelta(seconds=5)).isoformat()}, state=state
    ) == ("not_newer")


# --- hysteresis ------------------------------------------------------------------------


def test_benanga_sequence():
    """7.5 → 7.8 (siaga) → 8.3 (awas) → 8.1 (still awas) → 7.0 (normal after the hold)."""
    spec = BENANGA
    state = SensorState()
    t = T0

    def feed(v: float, minutes: float) -> LevelChange | None:
        nonlocal state, t
        t = t + timedelta(minutes=minutes)
        state, change = step(spec, state, Reading(spec.id, v, t))
        return change

    assert feed(7.5, 0) is None and state.level == "normal"
    c = feed(7.8, 1)
    assert c and (c.old, c.new, c.rising, c.all_clear) == ("normal", "siaga", True, False)
    c = feed(8.3, 1)
    assert c and (c.old, c.new, c.rising) == ("siaga", "awas", True)
    awas_at = t
    # 8.1 is below 8.25 − 0.05: the hold starts, but the level stays Awas
    assert feed(8.1, 1) is None and state.level == "awas"
    low_from = t
    for _ in range(14):
        assert feed(7.6, 1) is None  # below the band but inside the hold
    assert state.level == "awas" and state.level_since == awas_at
    c = feed(7.0, 1)  # 15 minutes after the first low reading
    assert t - low_from == timedelta(minutes=15)
    assert c and (c.old, c.new, c.rising, c.all_clear) == ("awas", "normal", False, True)
    assert c.value == 7.0 and c.ts == t


def test_falling_drops_to_current_level_not_all_the_way():
    _, changes = run(BENANGA, [8.3] + [7.9] * 20)
    assert [(c.old, c.new) for c in changes] == [("normal", "awas"), ("awas", "siaga")]
    assert not changes[1].all_clear and not changes[1].rising


def test_reading_inside_band_resets_the_hold():
    # 14 min below, one reading back at 8.22 (inside the band), then low again
    values = [8.3] + [8.0] * 14 + [8.22] + [8.0] * 14
    _, changes = run(BENANGA, values)
    assert [c.new for c in changes] == ["awas"]  # no drop: never 15 unbroken minutes


def test_jump_normal_to_awas_at_once():
    _, changes = run(BENANGA, [7.0, 8.6])
    assert [(c.old, c.new) for c in changes] == [("normal", "awas")]


def test_monotone_rise_hits_each_level_once():
    spec = SensorSpec(id="s", name="s", thresholds=Thresholds(waspada=1.0, siaga=2.0, awas=3.0))
    values = [i * 0.05 for i in range(80)]  # 0 → 3.95
    _, changes = run(spec, values)
    assert [c.new for c in changes] == ["waspada", "siaga", "awas"]
    assert all(c.rising and not c.all_clear for c in changes)


def test_step_does_not_mutate_input_state():
    state = SensorState()
    new, _ = step(BENANGA, state, Reading("benanga", 8.3, T0))
    assert state.level == "normal" and state.last_value is None
    assert new.level == "awas"


@settings(max_examples=150, deadline=None)
@given(
    steps=st.lists(st.floats(min_value=-0.04, max_value=0.04), min_size=5, max_size=120),
    every=st.floats(min_value=0.2, max_value=3.0),
)
def test_random_walk_around_threshold_rises_at_most_once_per_hold(steps, every):
    """Hovering around Siaga (7.75 m): between two rises at least `hold_minutes` pass."""
    value, values = 7.75, []
    for d in steps:
        value = min(max(value + d, 7.55), 7.95)
        values.append(value)
    _, changes = run(BENANGA, values, every_min=every)
    rises = [c for c in changes if c.rising]
    for a, b in itertools.pairwise(rises):
        assert b.ts - a.ts >= timedelta(minutes=BENANGA.hold_minutes)
    # changes alternate rise / fall: never two rises or two falls in a row
    for a, b in itertools.pairwise(changes):
        assert a.rising != b.rising
    # a hovering walk below 8.20 never reaches Awas
    assert all(c.new in ("normal", "siaga") for c in changes)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(min_value=0.0, max_value=4.0), min_size=1, max_size=60))
def test_level_never_below_value_level(values):
    """Whatever happens, the current level is at least the level of the latest value."""
    spec = SensorSpec(id="s", name="s", thresholds=Thresholds(waspada=1.0, siaga=2.0, awas=3.0))
    state = SensorState()
    for i, v in enumerate(values):
        state, change = step(spec, state, Reading("s", v, T0 + timedelta(minutes=i)))
        assert level_rank(state.level) >= level_rank(spec.thresholds.level_for(v))
        if change:
            assert change.new == state.level and change.old != change.new


# --- silence and storage ----------------------------------------------------------------


def test_is_silent():
    state = SensorState(last_value=7.0, last_ts=T0)
    assert not is_silent(BENANGA, state, T0 + timedelta(minutes=30))
    assert is_silent(BENANGA, state, T0 + timedelta(minutes=31))
    fresh = SensorState()
    assert is_silent(BENANGA, fresh, T0)
    assert not is_silent(BENANGA, fresh, T0 + timedelta(minutes=5), since=T0)
    assert is_silent(BENANGA, fresh, T0 + timedelta(minutes=45), since=T0)


def test_state_round_trips_through_dict():
    state, _ = run(BENANGA, [8.3, 8.0, 8.0])
    assert state.below_since is not None
    data = state.to_dict()
    import json

    again = SensorState.from_dict(json.loads(json.dumps(data)))
    assert again == state
    # and the restored state continues the hold exactly where it was
    _, c1 = step(BENANGA, state, Reading("benanga", 7.0, state.below_since + timedelta(minutes=15)))
    _, c2 = step(BENANGA, again, Reading("benanga", 7.0, again.below_since + timedelta(minutes=15)))
    assert c1 == c2 and c1 is not None and c1.all_clear


def test_state_from_dict_rejects_unknown_level():
    with pytest.raises(ValueError):
        SensorState.from_dict({"level": "bahaya"})
    assert LEVELS == ("normal", "waspada", "siaga", "awas")
