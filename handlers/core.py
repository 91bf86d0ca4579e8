"""The conversation core: one inbound event in, outbox messages out, in one transaction.

`handle()` resolves who wrote (a person with channel identities), then dispatches:
commands → the command table; otherwise the handler of the person's current step (stored
in the `conversation` table, so a restart loses nothing); with no step, the idle handler.
Handlers never import a platform library and never run SQL themselves: they call `Repo`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from handlers.events import (
    MAX_TEXT,
    PRIORITY_REPLY,
    Choice,
    Inbound,
    Outgoing,
    Reply,
)
from storage.repo import IdentityView, NewIdentity, PersonView, Repo

log = logging.getLogger(__name__)

Gettext = Callable[[str], str]


class I18nLike(Protocol):
    default: str

    def lang(self, code: str | None) -> str: ...

    def gettext(self, code: str | None, msgid: str) -> str: ...


@dataclass
class Services:
    """What handlers may use besides the repository (built by the composition root)."""

    city: Any  # bot.city.CityProfile
    areas: Any  # bot.geo.AreaIndex
    i18n: I18nLike
    clock: Callable[[], datetime]
    geocoder: Any = None  # bot.geocode.Geocoder | None
    triage: Any = None  # bot.triage.Triage | None
    extra: dict[str, Any] = field(default_factory=dict)


Handler = Callable[["Ctx"], None]


@dataclass
class Registry:
    """Which function answers which command, step or button (filled by each module)."""

    commands: dict[str, Handler] = field(default_factory=dict)
    group_commands: dict[str, Handler] = field(default_factory=dict)
    steps: dict[str, Handler] = field(default_factory=dict)  # by step prefix before "."
    # Global buttons by prefix before ":" (work at any step). Step buttons are not listed
    # here: the step handler sees them; with no step they are stale.
    choices: dict[str, Handler] = field(default_factory=dict)
    idle: Handler | None = None
    command_aliases: dict[str, str] = field(default_factory=dict)

    def command(self, *names: str, group: bool = False) -> Callable[[Handler], Handler]:
        def deco(fn: Handler) -> Handler:
            for n in names:
                self.commands[n] = fn
                if group:
                    self.group_commands[n] = fn
            return fn

        return deco

    def known_commands(self) -> set[str]:
        return set(self.commands) | set(self.command_aliases)


@dataclass
class Ctx:
    repo: Repo
    svc: Services
    event: Inbound
    identity: IdentityView
    person: PersonView
    out: list[Outgoing] = field(default_factory=list)
    is_new: bool = False
    _state: tuple[str | None, dict[str, Any]] | None = None  # read once per event

    # --- language -------------------------------------------------------------------------
    @property
    def lang(self) -> str:
        return self.svc.i18n.lang(self.person.language)

    def gettext(self, msgid: str) -> str:
        return self.svc.i18n.gettext(self.lang, msgid)

    def gettext_for(self, lang: str) -> Gettext:
        return lambda msgid: self.svc.i18n.gettext(lang, msgid)

    # --- state ----------------------------------------------------------------------------
    def state(self) -> tuple[str | None, dict[str, Any]]:
        """The stored step and a copy of its draft data."""
        if self._state is None:
            assert self.identity.id is not None
            self._state = self.repo.conversation_state(self.identity.id) or (None, {})
        step, data = self._state
        return step, dict(data)

    def set_state(self, step: str, data: dict[str, Any]) -> None:
        assert self.identity.id is not None
        self.repo.save_conversation(self.identity.id, step, data)
        self._state = (step, dict(data))

    def clear_state(self) -> None:
        assert self.identity.id is not None
        self.repo.clear_conversation(self.identity.id)
        self._state = (None, {})

    # --- output ---------------------------------------------------------------------------
    def reply(
        self,
        text: str,
        choices: tuple[Choice, ...] | list[Choice] = (),
        *,
        ask_location: bool = False,
        location_label: str | None = None,
        photo: Any = None,
        remove_keyboard: bool = False,
    ) -> None:
        """Answer in the chat the event came from."""
        address = self.event.chat_id or self.identity.address
        self.out.append(
            Outgoing(
                channel=self.event.channel,
                address=address,
                identity_id=self.identity.id if self.event.chat_type == "private" else None,
                reply=Reply(
                    text=text,
                    choices=tuple(choices),
                    ask_location=ask_location,
                    location_label=location_label,
                    photo=photo,
                    remove_keyboard=remove_keyboard,
                ),
                priority=PRIORITY_REPLY,
                kind="reply",
                meta={"lang": self.lang},
            )
        )


def _valid_event(ev: Inbound) -> bool:
    if ev.kind == "location":
        if ev.lat is None or ev.lon is None:
            return False
        if not (math.isfinite(ev.lat) and math.isfinite(ev.lon)):
            return False
        return -90 <= ev.lat <= 90 and -180 <= ev.lon <= 180
    return True


def _address(ev: Inbound) -> str:
    """Where replies to this sender go: their private chat, else their own id."""
    return ev.chat_id if (ev.chat_type == "private" and ev.chat_id) else ev.external_id


def begin_round(repo: Repo, svc: Services, events: Sequence[Inbound]) -> None:
    """Before handling a round of events (one per sender) in one transaction: read every
    sender with one statement and create the first-time ones together, as `handle` would."""
    repo.begin_round([(ev.channel, ev.external_id) for ev in events])
    newcomers: dict[tuple[str, str], NewIdentity] = {}
    for ev in events:
        key = (ev.channel, ev.external_id)
        if key not in newcomers and repo.unknown(*key):
            newcomers[key] = NewIdentity(
                ev.channel,
                ev.external_id,
                _address(ev),
                svc.i18n.default,
                display_name=ev.display_name,
                phone=ev.phone,
            )
    repo.create_newcomers(list(newcomers.values()))


def handle(repo: Repo, svc: Services, registry: Registry, ev: Inbound) -> list[Outgoing]:
    """Process one inbound event; returns what to put in the outbox (same transaction)."""
    if ev.text is not None and len(ev.text) > MAX_TEXT:
        ev = _replace(ev, text=ev.text[:MAX_TEXT])
    ident, person, is_new = repo.get_or_create_identity(
        ev.channel,
        ev.external_id,
        _address(ev),
        language=svc.i18n.default,
        display_name=ev.display_name,
        phone=ev.phone,
    )
    ctx = Ctx(repo=repo, svc=svc, event=ev, identity=ident, person=person, is_new=is_new)
    if not _valid_event(ev):
        ctx.reply(ctx.gettext("Sorry, I could not read that. Please try again."))
        return ctx.out
    if ev.chat_type == "group":
        # Group chats: only the commands that modules declared for groups; the rest is noise.
        if ev.kind == "command" and ev.command in registry.group_commands:
            registry.group_commands[ev.command](ctx)
        elif ev.kind == "choice" and ev.choice:
            fn = registry.choices.get(ev.choice.split(":", 1)[0])
            if fn is not None:
                fn(ctx)
        return ctx.out
    if ev.kind == "command" and ev.command is not None:
        name = registry.command_aliases.get(ev.command, ev.command)
        fn = registry.commands.get(name)
        if fn is None:
            ctx.reply(ctx.gettext("I don't know that command. Type /bantuan to see what I can do."))
        else:
            fn(ctx)
        return ctx.out
    if ev.kind == "choice" and ev.choice:
        # Buttons with a global prefix (menus, language) work at any step.
        choice_fn = registry.choices.get(ev.choice.split(":", 1)[0])
        if choice_fn is not None:
            choice_fn(ctx)
            return ctx.out
    step, _data = ctx.state()
    if step:
        step_fn = registry.steps.get(step.split(".", 1)[0])
        if step_fn is not None:
            step_fn(ctx)
            return ctx.out
        log.warning("unknown step %r; clearing", step)
        ctx.clear_state()
    if ev.kind == "choice":
        ctx.reply(ctx.gettext("That button is no longer active. Type /lapor to start a report."))
        return ctx.out
    if registry.idle is not None:
        registry.idle(ctx)
    return ctx.out


def _replace(ev: Inbound, **changes: Any) -> Inbound:
    from dataclasses import replace

    return replace(ev, **changes)
