"""Drive the conversation core with plain inbound events (no platform, no HTTP)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from bot.city import load_city
from bot.geo import AreaIndex
from bot.geocode import Geocoder, GeoLookup
from bot.i18n import I18n
from handlers import officer
from handlers.core import Core
from handlers.events import Inbound, MediaRef, Outgoing
from handlers.registry import build_registry
from handlers.services import Services, WorkConfig
from handlers.workdays import WorkCalendar
from storage.db import Database
from storage.repo import Repo


@dataclass
class Clock:
    now: datetime = field(default_factory=lambda: datetime(2026, 11, 23, 2, 0, tzinfo=UTC))

    def __call__(self) -> datetime:
        return self.now


class CoreHarness:
    """The core as the inbox worker runs it: each event is a batch of one, decided into a
    unit of work that is flushed and committed (`Core.run_batch`), on one fixed clock."""

    def __init__(
        self,
        url: str,
        city: str = "palu",
        polygons: dict[str, str] | None = None,
        *,
        officers: bool = False,
        **services: Any,
    ) -> None:
        self.clock = Clock()
        self.db = Database(url, clock=self.clock)
        self.city = load_city(city)
        self.svc = Services(
            city=self.city,
            areas=AreaIndex(self.city, polygons),
            i18n=I18n("id"),
            clock=self.clock,
            work=WorkConfig(calendar=WorkCalendar(self.city.city.timezone)),
            **services,
        )
        if officers:
            officer.install(self.svc)
        self.registry = build_registry()
        self.core: Core[int] = Core(self.svc, self.registry)
        self.lookup: GeoLookup | None = None

    def use_geocoder(self, geocoder: Geocoder) -> None:
        """Ask `geocoder` before each transaction, as `lapor run` does."""
        self.lookup = GeoLookup(geocoder, self.svc, self.db)

    def send(self, ev: Inbound) -> list[Outgoing]:
        return self.send_batch([ev])

    def send_batch(self, events: list[Inbound]) -> list[Outgoing]:
        """Several senders' events in one batch (one transaction), as the worker does."""
        if self.lookup is not None:
            events = [self.lookup.answer(ev) for ev in events]
        with self.db.unit() as uow:
            self.core.run_batch(uow, [(i, [ev]) for i, ev in enumerate(events)])
            outs = list(uow.outgoing)  # what the flush is about to write
        return outs  # type: ignore[return-value]

    # shorthands ---------------------------------------------------------------------------
    def text(self, user: str, text: str) -> list[Outgoing]:
        if text.startswith("/"):
            head, _, args = text[1:].partition(" ")
            return self.send(
                Inbound(
                    channel="telegram",
                    external_id=user,
                    chat_id=user,
                    kind="command",
                    command=head,
                    args=args,
                    text=text,
                )
            )
        return self.send(
            Inbound(channel="telegram", external_id=user, chat_id=user, kind="text", text=text)
        )

    def choose(self, user: str, choice: str) -> list[Outgoing]:
        return self.send(
            Inbound(
                channel="telegram", external_id=user, chat_id=user, kind="choice", choice=choice
            )
        )

    def location(self, user: str, lat: float, lon: float) -> list[Outgoing]:
        return self.send(
            Inbound(
                channel="telegram",
                external_id=user,
                chat_id=user,
                kind="location",
                lat=lat,
                lon=lon,
            )
        )

    def photo(self, user: str, sha: str = "a" * 64, error: str | None = None) -> list[Outgoing]:
        ref = (
            None
            if error
            else MediaRef(sha256=sha, mime="image/jpeg", size=1000, path=f"{sha[:2]}/{sha}.jpg")
        )
        return self.send(
            Inbound(
                channel="telegram",
                external_id=user,
                chat_id=user,
                kind="photo",
                photo=ref,
                photo_error=error,
            )
        )

    def step(self, user: str) -> str | None:
        with self.db.session() as s:
            repo = Repo(s)
            ident = repo.identity("telegram", user)
            if ident is None or ident.id is None:
                return None
            state = repo.conversation_state(ident.id)
            return state[0] if state else None

    def repo_call(self, fn: Any) -> Any:
        with self.db.session() as s:
            return fn(Repo(s))


def texts(outs: list[Outgoing]) -> str:
    return "\n---\n".join(o.reply.text for o in outs)


def choice_ids(outs: list[Outgoing]) -> list[str]:
    return [c.id for o in outs for c in o.reply.choices]
