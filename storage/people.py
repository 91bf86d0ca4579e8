"""People, their channel identities and staff roles (a person is not a chat id)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import bindparam, or_, update
from sqlalchemy import select as core_select
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key
from sqlmodel import col, delete, select

from storage.base import table_of
from storage.merge import merge_rows
from storage.models import (
    ROLE_ADMIN,
    ROLE_HEAD,
    ROLE_OFFICER,
    ChannelIdentity,
    Conversation,
    Person,
    Staff,
)
from storage.unit import State, UnitStore
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
_STAFF = table_of(Staff)
_SENIORITY = {ROLE_ADMIN: 3, ROLE_HEAD: 2, ROLE_OFFICER: 1}

WHATSAPP = "whatsapp"
_PHONE_SEPARATORS = re.compile(r"[\s\-.()]")

Who = tuple[IdentityView, PersonView]


def phone_digits(raw: str) -> str | None:
    """A phone number as WhatsApp writes it (`wa_id`: country code first, digits only) from
    "+62 812-3456-7890", "6281234567890" and the like; None if it is not one (a local number
    starting with 0 has no country code)."""
    digits = _PHONE_SEPARATORS.sub("", raw.strip().removeprefix("+"))
    if not (digits.isascii() and digits.isdigit()) or digits.startswith("0"):
        return None
    return digits if 8 <= len(digits) <= 15 else None


def _trim(value: str | None, size: int) -> str | None:
    return value[:size] if value else None


class PeopleRepo(UnitStore):
    # --- a batch's senders ------------------------------------------------------------------
    def read_senders(
        self,
        keys: Sequence[tuple[str, str]],
        former: Mapping[tuple[str, str], str] | None = None,
    ) -> None:
        """Read the senders `(channel, external_id)` of a batch, with their people and
        conversations, in one statement (kept in the unit of work).

        `former` gives, for a sender, the id the same account was known by before (WhatsApp:
        the phone number `wa_id`, before Meta added the business-scoped user id). Read in the
        same statement: an account found only under it takes the new id, one found under
        both becomes one (`link_former`)."""
        uow = self.uow
        wanted = set(keys)
        older = {
            key: (key[0], old)
            for key, old in (former or {}).items()
            if key in wanted and old != key[1] and (key[0], old) not in wanted
        }
        uow.size = max(1, len(wanted))
        for key in wanted:
            uow.who.setdefault(key, None)
        if not wanted:
            return
        exts = {ext for _ch, ext in wanted} | {ext for _ch, ext in older.values()}
        rows = self._s.connection().execute(_WHO_MANY, {"b_exts": sorted(exts)})
        old_rows: dict[tuple[str, str], tuple[Who, State | None]] = {}
        olds = set(older.values())
        for row in rows:
            key = (row.channel, row.external_id)
            conv = None if row.step is None else (row.step, dict(row.data or {}))
            if key in olds:
                old_rows[key] = ((identity_of(row), person_of(row)), conv)
            if key not in wanted:
                continue
            ident = identity_of(row)
            uow.who[key] = (ident, person_of(row))
            uow.conv[ident.id] = conv
            uow.stored[ident.id] = row.step is not None
        for key, old_key in older.items():
            if old_key in old_rows:
                self.link_former(key, *old_rows[old_key])

    def link_former(self, key: tuple[str, str], old: Who, old_conv: State | None) -> None:
        """The account `key` was known as `old` before: one identity and one person from now.

        Only under the old id → that identity takes the new one (person, role, reports and
        conversation stay). Under both (written to us before and after the change) → the two
        people become one, the more senior staff member kept (admin, head, officer; else the
        older person), with every report, follower, subscription and queued message, and the
        identity of the new id stays, with its conversation if it has one."""
        uow = self.uow
        conn = self._s.connection()
        old_ident, old_person = old
        found = uow.who.get(key)
        if found is None:
            conn.execute(
                update(_IDENT).where(_IDENT.c.id == old_ident.id).values(external_id=key[1])
            )
            old_ident.external_id = key[1]
            uow.who[key] = old
            uow.conv[old_ident.id] = old_conv
            uow.stored[old_ident.id] = old_conv is not None
            return
        ident, person = found
        kept = person
        if old_person.id != person.id:
            kept, gone = self._senior(person, old_person)
            merge_rows(conn, _PERSON, kept.id, gone.id)
            for seen_key, seen in list(uow.who.items()):
                if seen is not None and seen[1].id == gone.id:
                    seen[0].person_id = kept.id
                    uow.who[seen_key] = (seen[0], kept)
        last = max(
            (t for t in (ident.last_inbound_at, old_ident.last_inbound_at) if t is not None),
            default=None,
        )
        merge_rows(conn, _IDENT, ident.id, old_ident.id)
        if last != ident.last_inbound_at:
            conn.execute(update(_IDENT).where(_IDENT.c.id == ident.id).values(last_inbound_at=last))
            ident.last_inbound_at = last
        if uow.conv.get(ident.id) is None and old_conv is not None:
            uow.conv[ident.id] = old_conv  # the old identity's conversation moved over
            uow.stored[ident.id] = True
        ident.person_id = kept.id
        uow.who[key] = (ident, kept)
        uow.memo.clear()  # staff and people changed

    def _senior(self, a: PersonView, b: PersonView) -> tuple[PersonView, PersonView]:
        """(kept, given up) of two people who are one: the higher staff role, else the older."""
        rows = self._s.connection().execute(
            core_select(_STAFF.c.person_id, _STAFF.c.role).where(
                _STAFF.c.person_id.in_([a.id, b.id])
            )
        )
        rank = {int(r.person_id): _SENIORITY.get(r.role, 0) for r in rows}
        first, second = sorted((a, b), key=lambda p: (-rank.get(p.id, 0), p.id))
        return first, second

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

    # --- people known by a phone number -----------------------------------------------------
    def phone_identity(self, channel: str, phone: str) -> ChannelIdentity | None:
        """The identity of the account with this phone number on `channel` (WhatsApp: keyed
        by the number, or by the business-scoped user id with the number as its address, or
        of a person with that number), the active and most recently heard one first."""
        q = (
            select(ChannelIdentity)
            .join(Person, col(Person.id) == col(ChannelIdentity.person_id))
            .where(
                ChannelIdentity.channel == channel,
                or_(
                    col(ChannelIdentity.external_id) == phone,
                    col(ChannelIdentity.address) == phone,
                    col(Person.phone) == phone,
                ),
            )
            .order_by(
                col(ChannelIdentity.active).desc(),
                col(ChannelIdentity.last_inbound_at).is_(None),
                col(ChannelIdentity.last_inbound_at).desc(),
                col(ChannelIdentity.id),
            )
        )
        return self._s.exec(q).first()

    def whatsapp_identity_for_phone(
        self, phone: str, *, language: str, person_id: int | None = None
    ) -> tuple[IdentityView, PersonView, bool]:
        """Find or create the WhatsApp identity for a phone number (`phone_digits`); True
        when it was created. Found: whoever has that number, also when they write under
        their business-scoped user id. Created: an identity that never wrote, so outside the
        24-hour window (no `last_inbound_at`): what is sent to it goes as a template; when
        the number writes, its identity takes the user id (`link_former`). `person_id`
        attaches a new identity to that person instead of a new one."""
        found = self.phone_identity(WHATSAPP, phone)
        if found is not None:
            who = self.who(WHATSAPP, found.external_id)
            assert who is not None
            return (*who, False)
        return self.register_identity(
            WHATSAPP, phone, phone, language=language, phone=phone, person_id=person_id
        )

    def register_identity(
        self,
        channel: str,
        external_id: str,
        address: str,
        *,
        language: str,
        phone: str | None = None,
        person_id: int | None = None,
        active: bool = True,
    ) -> tuple[IdentityView, PersonView, bool]:
        """The identity (channel, external_id), made for someone who has not written yet (an
        admin added from the command line, a reporter named by another city app, an API
        account: `active=False`, nothing is sent there): it has no `last_inbound_at`.
        `person_id`: whose identity it is (else a new person). True when it was created."""
        found = self.who(channel, external_id)
        if found is not None:
            return (*found, False)
        now = self.now()
        conn = self._s.connection()
        if person_id is None:
            person_id = int(
                conn.execute(
                    _PERSON_INSERT_MANY,
                    [
                        {
                            "language": language,
                            "phone": _trim(phone, 32),
                            "share_contact": False,
                            "created_at": now,
                        }
                    ],
                ).scalar_one()
            )
        row = {
            "person_id": person_id,
            "channel": channel,
            "external_id": external_id,
            "address": address,
            "active": active,
            "last_inbound_at": None,
            "created_at": now,
        }
        ident_id = int(conn.execute(_IDENT_INSERT_MANY, [row]).scalar_one())
        person = self.person_view(person_id)
        assert person is not None
        ident = IdentityView(ident_id, person_id, channel, external_id, address, active, None)
        self.uow.who[(channel, external_id)] = (ident, person)
        return ident, person, True

    def move_address(self, channel: str, old: str, new: str) -> int:
        """Identities whose chat moved (a Telegram group upgraded to a supergroup) are
        reached at `new` from now on; how many."""
        res = self._s.connection().execute(
            update(_IDENT)
            .where(_IDENT.c.channel == channel, _IDENT.c.address == old)
            .values(address=new)
        )
        for found in self.uow.who.values():
            if found is not None and found[0].channel == channel and found[0].address == old:
                found[0].address = new
        return int(res.rowcount or 0)

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

    def drop_staff_of_channel(self, channel: str) -> int:
        """Staff roles of people known only on `channel` (the web demo's personas) end;
        how many."""
        on_channel = select(ChannelIdentity.person_id).where(ChannelIdentity.channel == channel)
        elsewhere = select(ChannelIdentity.person_id).where(ChannelIdentity.channel != channel)
        res = self._s.execute(
            delete(Staff).where(
                col(Staff.person_id).in_(on_channel), col(Staff.person_id).not_in(elsewhere)
            )
        )
        self.uow.memo.clear()
        return int(res.rowcount or 0)  # type: ignore[attr-defined]

    def staff_list(self, opd: str | None = None, role: str | None = None) -> list[Staff]:
        q = select(Staff)
        if opd is not None:
            q = q.where(Staff.opd == opd)
        if role is not None:
            q = q.where(Staff.role == role)
        return list(self._s.exec(q.order_by(col(Staff.id))))
