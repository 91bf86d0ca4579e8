"""People, their channel identities and staff roles (a person is not a chat id)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import bindparam, update
from sqlalchemy import select as core_select
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key
from sqlmodel import col, select

from storage.base import table_of
from storage.models import ChannelIdentity, Conversation, Person, Staff
from storage.unit import UnitStore
from storage.views import IdentityView, NewIdentity, PersonView, identity_of, person_of

_IDENT = table_of(ChannelIdentity)
_PERSON = table_of(Person)
_CONV = table_of(Conversation)

_WHO_COLUMNS = (
    _IDENT.c.id,
    _IDENT.c.person_id,
    _IDENT.c.channel,
    _IDENT.c.external_id,
    _IDENT.c.address,
    _IDENT.c.active,
    _IDENT.c.last_inbound_at,
    _IDENT.c.username,
    _PERSON.c.language,
    _PERSON.c.display_name,
    _PERSON.c.phone,
    _PERSON.c.share_contact,
)
_WHO = (
    core_select(*_WHO_COLUMNS)
    .join_from(_IDENT, _PERSON, _PERSON.c.id == _IDENT.c.person_id)
    .where(_IDENT.c.channel == bindparam("b_channel"), _IDENT.c.external_id == bindparam("b_ext"))
)
# A batch reads all its senders, their people and their conversations in one statement;
# callers keep the rows whose channel matches.
_WHO_MANY = (
    core_select(*_WHO_COLUMNS, _CONV.c.step, _CONV.c.data)
    .join_from(_IDENT, _PERSON, _PERSON.c.id == _IDENT.c.person_id)
    .outerjoin(_CONV, _CONV.c.identity_id == _IDENT.c.id)
    .where(_IDENT.c.external_id.in_(bindparam("b_exts", expanding=True)))
)
# Newcomers: ids come back in the order of the rows given.
_PERSON_INSERT_MANY = _PERSON.insert().returning(_PERSON.c.id, sort_by_parameter_order=True)
_PERSON_GET = core_select(
    _PERSON.c.id.label("person_id"),
    _PERSON.c.language,
    _PERSON.c.display_name,
    _PERSON.c.phone,
    _PERSON.c.share_contact,
).where(_PERSON.c.id == bindparam("b_id"))
_IDENT_INSERT_MANY = _IDENT.insert().returning(_IDENT.c.id, sort_by_parameter_order=True)


def _trim(value: str | None, size: int) -> str | None:
    return value[:size] if value else None


class PeopleRepo(UnitStore):
    # --- a batch's senders ------------------------------------------------------------------
    def read_senders(self, keys: Sequence[tuple[str, str]]) -> None:
        """Read the senders `(channel, external_id)` of a batch, with their people and
        conversations, in one statement (kept in the unit of work)."""
        uow = self.uow
        wanted = set(keys)
        uow.size = max(1, len(wanted))
        for key in wanted:
            uow.who.setdefault(key, None)
        if not wanted:
            return
        rows = self._s.connection().execute(
            _WHO_MANY, {"b_exts": sorted({ext for _ch, ext in wanted})}
        )
        for row in rows:
            key = (row.channel, row.external_id)
            if key not in wanted:
                continue
            ident = identity_of(row)
            uow.who[key] = (ident, person_of(row))
            uow.conv[ident.id] = None if row.step is None else (row.step, dict(row.data or {}))
            uow.stored[ident.id] = row.step is not None

    def unknown(self, channel: str, external_id: str) -> bool:
        """This sender was read by `read_senders` and has never written."""
        key = (channel, external_id)
        return key in self.uow.who and self.uow.who[key] is None

    def create_newcomers(self, people: Sequence[NewIdentity]) -> None:
        """Create the people and identities of first-time senders together (two statements,
        not two per person); `get_or_create_identity` then finds them as new."""
        if not people:
            return
        uow = self.uow
        now = self.now()
        conn = self._s.connection()
        names = [_trim(p.display_name, 128) for p in people]
        phones = [_trim(p.phone, 32) for p in people]
        handles = [_trim(p.username, 64) for p in people]
        person_ids = [
            int(r.id)
            for r in conn.execute(
                _PERSON_INSERT_MANY,
                [
                    {
                        "language": p.language,
                        "display_name": name,
                        "phone": phone,
                        "share_contact": False,
                        "created_at": now,
                    }
                    for p, name, phone in zip(people, names, phones, strict=True)
                ],
            )
        ]
        ident_ids = [
            int(r.id)
            for r in conn.execute(
                _IDENT_INSERT_MANY,
                [
                    {
                        "person_id": pid,
                        "channel": p.channel,
                        "external_id": p.external_id,
                        "address": p.address,
                        "username": handle,
                        "active": True,
                        "last_inbound_at": now,
                        "created_at": now,
                    }
                    for p, pid, handle in zip(people, person_ids, handles, strict=True)
                ],
            )
        ]
        for p, pid, iid, name, phone, handle in zip(
            people, person_ids, ident_ids, names, phones, handles, strict=True
        ):
            key = (p.channel, p.external_id)
            uow.who[key] = (
                IdentityView(iid, pid, p.channel, p.external_id, p.address, True, now, handle),
                PersonView(pid, p.language, name, phone, False),
            )
            uow.conv[iid] = None
            uow.stored[iid] = False
            uow.created.add(key)
            uow.known_active.add(iid)

    # --- identities -------------------------------------------------------------------------
    def get_or_create_identity(
        self,
        channel: str,
        external_id: str,
        address: str,
        *,
        language: str,
        display_name: str | None = None,
        phone: str | None = None,
        username: str | None = None,
    ) -> tuple[IdentityView, PersonView, bool]:
        """The identity for (channel, external_id), creating a person for a newcomer.

        Runs on every update: read once per batch, and an UPDATE only when something
        changed (`last_inbound_at` at most once a minute)."""
        now = self.now()
        uow = self.uow
        conn = self._s.connection()
        key = (channel, external_id)
        found = self.who(channel, external_id)
        if found is not None and key in uow.created:
            uow.created.discard(key)  # made by create_newcomers just now
            return (*found, True)
        if found is not None:
            ident, person = found
            changes: dict[str, Any] = {}
            last = ident.last_inbound_at
            if last is None or (now - last).total_seconds() > 60:
                changes["last_inbound_at"] = ident.last_inbound_at = now
            if not ident.active:
                changes["active"] = ident.active = True  # writing to us again undoes "blocked"
            if ident.address != address:
                changes["address"] = ident.address = address
            # None: not known here; "": the platform says there is none (a handle given up is
            # forgotten: someone else may take it)
            handle = _trim(username, 64)
            if username is not None and ident.username != handle:
                changes["username"] = ident.username = handle
            if changes:
                conn.execute(update(_IDENT).where(_IDENT.c.id == ident.id).values(**changes))
            uow.known_active.add(ident.id)
            pchanges: dict[str, Any] = {}
            if display_name and person.display_name != display_name[:128]:
                pchanges["display_name"] = person.display_name = display_name[:128]
            if phone and person.phone != phone[:32]:
                pchanges["phone"] = person.phone = phone[:32]
            if pchanges:
                conn.execute(update(_PERSON).where(_PERSON.c.id == person.id).values(**pchanges))
            return ident, person, False
        self.create_newcomers(
            [NewIdentity(channel, external_id, address, language, display_name, phone, username)]
        )
        uow.created.discard(key)
        new = uow.who[key]
        assert new is not None
        return (*new, True)

    def who(self, channel: str, external_id: str) -> tuple[IdentityView, PersonView] | None:
        """Identity and person, read only; None for someone who never wrote."""
        uow = self.uow
        key = (channel, external_id)
        if key in uow.who:
            return uow.who[key]
        row = (
            self._s.connection().execute(_WHO, {"b_channel": channel, "b_ext": external_id}).first()
        )
        found = None if row is None else (identity_of(row), person_of(row))
        uow.who[key] = found
        return found

    def person_view(self, person_id: int) -> PersonView | None:
        """A person as the core sees it; from the batch when it read them already."""
        for found in self.uow.who.values():
            if found is not None and found[1].id == person_id:
                return found[1]
        row = self._s.connection().execute(_PERSON_GET, {"b_id": person_id}).first()
        return None if row is None else person_of(row)

    def identity(self, channel: str, external_id: str) -> ChannelIdentity | None:
        return self._s.exec(
            select(ChannelIdentity).where(
                ChannelIdentity.channel == channel, ChannelIdentity.external_id == external_id
            )
        ).first()

    def identity_by_id(self, identity_id: int) -> ChannelIdentity | None:
        return self._s.get(ChannelIdentity, identity_id)

    def person(self, person_id: int) -> Person | None:
        return self._s.get(Person, person_id)

    def identities_of(self, person_id: int, *, active_only: bool = True) -> list[ChannelIdentity]:
        q = select(ChannelIdentity).where(ChannelIdentity.person_id == person_id)
        if active_only:
            q = q.where(ChannelIdentity.active == True)  # noqa: E712
        return list(self._s.exec(q.order_by(col(ChannelIdentity.last_inbound_at).desc())))

    def set_language(self, person: PersonView, language: str) -> None:
        person.language = language
        self._s.connection().execute(
            update(_PERSON).where(_PERSON.c.id == person.id).values(language=language)
        )

    def set_share_contact(self, person: PersonView, value: bool) -> None:
        """The citizen's consent to show their name and contact to officers."""
        person.share_contact = value
        self._s.connection().execute(
            update(_PERSON).where(_PERSON.c.id == person.id).values(share_contact=value)
        )

    def deactivate_identity(self, identity_id: int) -> None:
        self.uow.known_active.discard(identity_id)
        self._s.flush()  # an ORM change to this row must not overwrite ours later
        self._s.connection().execute(
            update(_IDENT).where(_IDENT.c.id == identity_id).values(active=False)
        )
        ident = self._s.identity_map.get(identity_key(ChannelIdentity, identity_id))
        if ident is not None:  # keep a loaded object in step without writing it again
            set_committed_value(ident, "active", False)

    # --- staff roles --------------------------------------------------------------------------
    def staff(self, person_id: int) -> Staff | None:
        return self._s.exec(select(Staff).where(Staff.person_id == person_id)).first()

    def set_staff(self, person_id: int, role: str, opd: str | None) -> Staff:
        row = self.staff(person_id)
        if row is None:
            row = Staff(person_id=person_id, role=role, opd=opd, created_at=self.now())
        else:
            row.role, row.opd = role, opd
        self._s.add(row)
        self._s.flush()
        self.uow.memo.clear()  # what the batch remembered of staff is stale
        return row

    def remove_staff(self, person_id: int) -> bool:
        row = self.staff(person_id)
        if row is None:
            return False
        self._s.delete(row)
        self.uow.memo.clear()
        return True

    def staff_list(self, opd: str | None = None, role: str | None = None) -> list[Staff]:
        q = select(Staff)
        if opd is not None:
            q = q.where(Staff.opd == opd)
        if role is not None:
            q = q.where(Staff.role == role)
        return list(self._s.exec(q.order_by(col(Staff.id))))
