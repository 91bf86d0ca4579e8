"""The conversation core: a batch of inbound events in, outbox messages out, one transaction.

`run_batch()` is the one way in, for the inbox worker and for tests alike: it reads every
sender of the batch at once, then `handle()`s each item's events in order. `handle()` resolves
who wrote (a person with channel identities), then dispatches: commands → the command table;
global buttons (`menu:`, `lang:` …) → their handler; otherwise the handler of the person's
current step (stored in the `conversation` table, so a restart loses nothing); with no step,
the idle handler. Handlers never import a platform library, never run SQL and never reach
the network: they call `Repo` (whose writes the unit of work holds until its flush) and the
typed services; what is slow was looked up before the transaction and rides on the event.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any, Generic, TypeVar

from handlers.events import MAX_TEXT, PRIORITY_REPLY, Choice, Inbound, Outgoing, Reply
from handlers.services import Services
from handlers.style import command_text
from handlers.text import N_, Gettext
from storage.alert_repo import AlertRepo
from storage.repo import Repo
from storage.unit import UnitOfWork
from storage.views import IdentityView, NewIdentity, PersonView
from storage.work_repo import WorkRepo

log = logging.getLogger(__name__)

Handler = Callable[["Ctx"], None]
K = TypeVar("K", bound=Hashable)


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
    # Steps that take a typed place: the geocoder is asked for typed text there, before the
    # transaction (a shared location is always looked up).
    place_steps: set[str] = field(default_factory=set)
    # Steps a person may answer in a group chat (full step names): a text there that replies
    # to the bot runs the step when the step's data names that chat (`data["chat"]`).
    group_steps: set[str] = field(default_factory=set)

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

    @cached_property
    def work(self) -> WorkRepo:
        return self.repo.work

    @cached_property
    def alerts_repo(self) -> AlertRepo:
        return self.repo.alerts

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
            self._state = self.repo.conversation_state(self.identity.id) or (None, {})
        step, data = self._state
        return step, dict(data)

    def set_state(self, step: str, data: dict[str, Any]) -> None:
        self.repo.save_conversation(self.identity.id, step, data)
        self._state = (step, dict(data))

    def clear_state(self) -> None:
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
        page: int = 0,
        force_reply: bool = False,
    ) -> None:
        """Answer in the chat the event came from (commands named in the channel's style)."""
        self.out.append(
            Outgoing(
                channel=self.event.channel,
                address=self.event.chat_id or self.identity.address,
                identity_id=self.identity.id if self.event.chat_type == "private" else None,
                reply=Reply(
                    text=command_text(self.event.channel, text),
                    choices=tuple(choices),
                    ask_location=ask_location,
                    location_label=location_label,
                    photo=photo,
                    remove_keyboard=remove_keyboard,
                    page=page,
                    force_reply=force_reply,
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


class ItemFailed(Exception):
    """An item of a batch raised while it was decided; nothing of the batch is written.
    The caller throws the transaction away and runs the batch again without the item."""

    def __init__(self, key: Hashable, cause: BaseException) -> None:
        super().__init__(f"item {key!r}: {cause!r}")
        self.key = key
        self.cause = cause


@dataclass
class Core(Generic[K]):
    """The core bound to its services and registry (what the composition root builds)."""

    svc: Services
    registry: Registry
    on_event: Callable[[Inbound], None] | None = None  # e.g. metrics

    def run_batch(self, uow: UnitOfWork, items: Sequence[tuple[K, Sequence[Inbound]]]) -> None:
        """Decide a batch (one item per sender) into the unit of work; the caller flushes.

        Reads every sender once (`begin`), then each item's events in order; their messages
        go into the unit of work. The first item that raises stops the batch with
        `ItemFailed` (its key), before anything of the batch is written.
        """
        repo = Repo(uow)
        begin(repo, self.svc, [ev for _key, events in items for ev in events])
        for key, events in items:
            try:
                for ev in events:
                    if self.on_event is not None:
                        self.on_event(ev)
                    uow.send(handle(repo, self.svc, self.registry, ev))
            except Exception as exc:
                raise ItemFailed(key, exc) from exc

    def apology(self, uow: UnitOfWork, ev: Inbound) -> None:
        """After the last failed attempt at an update: tell the person, don't go silent."""
        repo = Repo(uow)
        ident, person, _new = repo.get_or_create_identity(
            ev.channel, ev.external_id, _address(ev), language=self.svc.i18n.default
        )
        lang = self.svc.i18n.lang(person.language)
        text = self.svc.i18n.gettext(
            lang, N_("Sorry, something went wrong on our side. Please try again.")
        )
        uow.send(
            [
                Outgoing(
                    channel=ev.channel,
                    address=ev.chat_id or ident.address,
                    identity_id=ident.id,
                    reply=Reply(text=text),
                    meta={"lang": lang},
                )
            ]
        )


def begin(repo: Repo, svc: Services, events: Sequence[Inbound]) -> None:
    """Before handling a batch's events: read every sender with one statement and create
    the first-time ones together, as `handle` would. A sender whose account may be stored
    under its phone number from before (WhatsApp, before the business-scoped user id) is
    found there too, and stays one person."""
    repo.read_senders(
        [(ev.channel, ev.external_id) for ev in events],
        former={(ev.channel, ev.external_id): ev.phone for ev in events if ev.phone},
    )
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
                username=ev.username,
            )
    repo.create_newcomers(list(newcomers.values()))


def _group_step(ctx: Ctx, registry: Registry) -> None:
    """An answer in a group to the bot's question there (e.g. the note after ✅ in the queue
    group): the sender's step runs if it may be answered in a group and names this chat."""
    step, data = ctx.state()
    if step in registry.group_steps and data.get("chat") == ctx.event.chat_id:
        registry.steps[step.split(".", 1)[0]](ctx)


def handle(repo: Repo, svc: Services, registry: Registry, ev: Inbound) -> list[Outgoing]:
    """Process one inbound event; returns the messages it makes (for the outbox)."""
    if ev.text is not None and len(ev.text) > MAX_TEXT:
        ev = replace(ev, text=ev.text[:MAX_TEXT])
    ident, person, is_new = repo.get_or_create_identity(
        ev.channel,
        ev.external_id,
        _address(ev),
        language=svc.i18n.default,
        display_name=ev.display_name,
        phone=ev.phone,
        username=ev.username,
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
        elif ev.kind == "text" and ev.reply_to_bot:
            _group_step(ctx, registry)
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
