"""A pytest plugin: the wall clock a year and a day ahead for the whole run (time-machine).

`tests/test_any_date.py` runs the clock-dependent tests with `-p tests.clock_ahead`, so a
test that mixes its fixed clock with today's date fails today, not on some later day."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import time_machine

AHEAD = timedelta(days=366)
_travel = time_machine.travel(datetime.now(UTC) + AHEAD, tick=True)


def pytest_configure(config: object) -> None:
    _travel.start()


def pytest_unconfigure(config: object) -> None:
    _travel.stop()
