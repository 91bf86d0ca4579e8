"""Plain read models the core works with (read with Core SQL, not the ORM)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(slots=True)
class IdentityView:
    """A channel identity as the conversation core sees it."""

    id: int
    person_id: int
    channel: str
    external_id: str
    address: str
    active: bool
    last_inbound_at: datetime | None
    username: str | None = None  # the public handle on the channel (Telegram), if any


@dataclass(slots=True)
class PersonView:
    """The person behind an identity; change it through `Repo`, not by assignment."""

    id: int
    language: str
    display_name: str | None
    phone: str | None
    share_contact: bool


@dataclass(slots=True, frozen=True)
class NewIdentity:
    """Someone writing for the first time: what their person and identity start with."""

    channel: str
    external_id: str
    address: str
    language: str
    display_name: str | None = None
    phone: str | None = None
    username: str | None = None


@dataclass(slots=True)
class DueMessage:
    """An outbox row as the sender needs it."""

    id: int
    channel: str
    address: str
    identity_id: int | None
    kind: str
    priority: int
    payload: dict[str, Any]
    meta: dict[str, Any]
    attempts: int
    broadcast_id: int | None
    # the identity's last message to us, read with the claim (WhatsApp's 24-hour window)
    last_inbound_at: datetime | None = None
    paid: bool = False  # goes on the platform's paid lane (set when its Stars are reserved)
    more: bool = False  # its chat had more open rows when it was claimed


def identity_of(row: Any) -> IdentityView:
    """An `IdentityView` from a row that has the identity's columns by name."""
    m = row._mapping
    return IdentityView(
        m["id"],
        m["person_id"],
        m["channel"],
        m["external_id"],
        m["address"],
        m["active"],
        m["last_inbound_at"],
        m["username"],
    )


def person_of(row: Any) -> PersonView:
    """A `PersonView` from a row with the person's columns by name (its id as `person_id`)."""
    m = row._mapping
    return PersonView(
        m["person_id"],
        m["language"],
        m["display_name"],
        m["phone"],
        m["share_contact"],
    )
