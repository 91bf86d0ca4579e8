"""Conversation state: each identity's current step and draft (a restart loses nothing)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam
from sqlalchemy import select as core_select

from storage.base import table_of
from storage.db import Database
from storage.models import Conversation
from storage.people import PeopleRepo
from storage.unit import UnitStore, copy_json

_CONV = table_of(Conversation)
_CONV_GET = core_select(_CONV.c.step, _CONV.c.data).where(_CONV.c.identity_id == bindparam("b_id"))


class ConversationRepo(UnitStore):
    def conversation_state(self, identity_id: int) -> tuple[str, dict[str, Any]] | None:
        """(step, draft data) of one identity's conversation, None without one; a copy."""
        uow = self.uow
        if identity_id not in uow.conv:
            row = self._s.connection().execute(_CONV_GET, {"b_id": identity_id}).first()
            uow.conv[identity_id] = None if row is None else (row.step, dict(row.data or {}))
            uow.stored[identity_id] = row is not None
        known = uow.conv[identity_id]
        return None if known is None else (known[0], copy_json(known[1]))

    def save_conversation(self, identity_id: int, step: str, data: dict[str, Any]) -> None:
        self.uow.set_conversation(identity_id, step, data)

    def clear_conversation(self, identity_id: int) -> None:
        self.uow.clear_conversation(identity_id)


def current_step(db: Database, channel: str, external_id: str) -> str | None:
    """A sender's current step, read in a short transaction of its own."""
    with db.session() as s:
        repo = ConversationRepo(s)
        who = PeopleRepo(s).who(channel, external_id)
        state = repo.conversation_state(who[0].id) if who else None
        return state[0] if state else None
