"""The repository the core and the app use: one session (= one transaction), every aggregate.

Each aggregate's SQL lives in its own module; `Repo` puts them together on one session:
people and staff (`people.py`), conversations (`conversations.py`), reports with events and
photos (`reports.py`), inbox (`inbox.py`), outbox (`outbox.py`), jobs (`jobs.py`), kelurahan
polygons (`areas.py`). Writes the core makes in a batch are held by the session's unit of
work (`unit.py`) until its flush.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

from storage.areas import AreaRepo
from storage.conversations import ConversationRepo
from storage.inbox import InboxRepo
from storage.jobs import JobRepo
from storage.outbox import OutboxRepo
from storage.people import PeopleRepo
from storage.reports import ReportRepo
from storage.unit import UnitOfWork, copy_json
from storage.views import DueMessage, IdentityView, NewIdentity, PersonView

if TYPE_CHECKING:
    from storage.alert_repo import AlertRepo
    from storage.work_repo import WorkRepo

__all__ = [
    "DueMessage",
    "IdentityView",
    "NewIdentity",
    "PersonView",
    "Repo",
    "UnitOfWork",
    "copy_json",
]


class Repo(PeopleRepo, ConversationRepo, ReportRepo, InboxRepo, OutboxRepo, JobRepo, AreaRepo):
    """Every aggregate's queries on one session; `work` and `alerts` on the same session."""

    @cached_property
    def work(self) -> WorkRepo:
        from storage.work_repo import WorkRepo

        return WorkRepo(self)

    @cached_property
    def alerts(self) -> AlertRepo:
        from storage.alert_repo import AlertRepo

        return AlertRepo(self)
