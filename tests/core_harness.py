"""Drive the conversation core with plain inbound events (no platform, no HTTP)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from bot.city import load_city
from bot.geo import AreaIndex
from bot.i18n import I18n
from bot.inbox import write_outgoing
from handlers.core import Services, handle
from handlers.events import Inbound, MediaRef, Outgoing
from handlers.registry import build_registry
from storage.db import Database
from storage.repo import Repo


@dataclass
class Clock:
    now: datetime = field(default_factory=lambda: datetime(2026, 11, 23, 2, 0, tzinfo=UTC))

    def __call__(self) -> datetime:
        return self.now


class CoreHarness:
    def __init__(
        self, url: str, city: str = "palu", polygons: dict[str, str] | None = None, **services: Any
    ) -> None:
        self.db = Database(url)
        self.city = load_city(city)
        self.clock = Clock()
        self.svc = Services(
            city=self.city,
            areas=AreaIndex(self.city, polygons),
            i18n=I18n("id"),
            clock=self.clock,
            **services,
        )
        self.registry = build_registry()

    def send(self, ev: Inbound) -> list[Outgoing]:
        with self.db.session() as s:
            repo = Repo(s)
            outs = handle(repo, self.svc, self.registry, ev)
            write_outgoing(repo, outs)
        return outs

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
