"""Deadlines on Indonesian working days (SLA of SP4N-LAPOR!).

A working day is a Monday–Friday that is not an Indonesian public holiday (the `holidays`
package), in the city's time zone.  "Within N working days" of a moment means: from that
moment (or, on a day off, from the start of the next working day) move forward N working
days, keeping the time of day.  A report sent on Monday 10:00 with 3 working days is due on
Thursday 10:00; one sent on Saturday is due on Thursday 00:00 (the end of Wednesday).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import holidays as holidays_lib

DEFAULT_RESPONSE_DAYS = 3
DEFAULT_RESOLUTION_DAYS = 5
FEEDBACK_CLOSE_DAYS = 10  # no answer to "is it solved?" in 10 working days closes the report


class WorkCalendar:
    """Working days of one city (weekends and public holidays off)."""

    def __init__(
        self,
        timezone: str,
        *,
        country: str = "ID",
        extra_holidays: Iterable[date] = (),
    ) -> None:
        self.tz = ZoneInfo(timezone)
        self._holidays = holidays_lib.country_holidays(country)
        self._extra = set(extra_holidays)

    def is_workday(self, day: date) -> bool:
        return day.weekday() < 5 and day not in self._holidays and day not in self._extra

    def local(self, moment: datetime) -> datetime:
        return _aware(moment).astimezone(self.tz)

    def next_workday(self, day: date) -> date:
        """The first working day strictly after `day`."""
        day += timedelta(days=1)
        while not self.is_workday(day):
            day += timedelta(days=1)
        return day

    def add_workdays(self, start: datetime, days: int) -> datetime:
        """The moment `days` working days after `start` (aware UTC)."""
        if days < 0:
            raise ValueError("days must be >= 0")
        local = self.local(start)
        if not self.is_workday(local.date()):
            first = self.next_workday(local.date())
            local = datetime.combine(first, time(0), tzinfo=self.tz)
        day = local.date()
        for _ in range(days):
            day = self.next_workday(day)
        result = datetime.combine(day, local.timetz().replace(tzinfo=None), tzinfo=self.tz)
        return result.astimezone(UTC)

    def workdays_between(self, start: datetime, end: datetime) -> float:
        """Working time from `start` to `end`, in working days (fractions count)."""
        a, b = self.local(start), self.local(end)
        if b <= a:
            return 0.0
        total = 0.0
        day = a.date()
        while day <= b.date():
            if self.is_workday(day):
                lo = datetime.combine(day, time(0), tzinfo=self.tz)
                hi = lo + timedelta(days=1)
                overlap = (min(hi, b) - max(lo, a)).total_seconds()
                if overlap > 0:
                    total += overlap / 86400
            day += timedelta(days=1)
        return total


@dataclass(frozen=True)
class Deadlines:
    response_due: datetime
    resolution_due: datetime


def deadlines(
    cal: WorkCalendar, start: datetime, response_days: int, resolution_days: int
) -> Deadlines:
    """First response within `response_days`; resolution `resolution_days` after that."""
    response_due = cal.add_workdays(start, response_days)
    return Deadlines(response_due, cal.add_workdays(response_due, resolution_days))


def reminder_at(cal: WorkCalendar, start: datetime, due: datetime) -> datetime:
    """When to remind about a deadline: one working day before it, or halfway for short ones."""
    local_due = cal.local(due)
    day = local_due.date()
    # the working day before the deadline, at the same time of day
    back = day - timedelta(days=1)
    while not cal.is_workday(back):
        back -= timedelta(days=1)
    candidate = datetime.combine(back, local_due.timetz().replace(tzinfo=None), tzinfo=cal.tz)
    start = _aware(start)
    if candidate.astimezone(UTC) <= start:
        return start + (_aware(due) - start) / 2
    return candidate.astimezone(UTC)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


__all__ = [
    "DEFAULT_RESOLUTION_DAYS",
    "DEFAULT_RESPONSE_DAYS",
    "FEEDBACK_CLOSE_DAYS",
    "Deadlines",
    "WorkCalendar",
    "deadlines",
    "reminder_at",
]
