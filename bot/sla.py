"""Moved to handlers/workdays.py (kept until every importer uses the new place)."""

from handlers.workdays import *  # noqa: F403
from handlers.workdays import FEEDBACK_CLOSE_DAYS, WorkCalendar, deadlines, reminder_at

__all__ = ["FEEDBACK_CLOSE_DAYS", "WorkCalendar", "deadlines", "reminder_at"]
