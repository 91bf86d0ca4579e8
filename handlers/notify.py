"""Queue messages to people and chats other than the one being answered.

Used by the officer commands (inside a `Ctx`) and by the scheduler's SLA jobs (no inbound
event at all).  A message is built per recipient language by `build(gettext, lang)`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any

from handlers.events import KIND_CARD, KIND_CARD_EDIT, PRIORITY_REPLY, Outgoing, Reply
from handlers.services import Services
from handlers.style import command_text, style
from handlers.text import Gettext
from storage.models import ROLE_ADMIN, ROLE_HEAD, ROLE_OFFICER, Report
from storage.repo import Repo

Build = Callable[[Gettext, str], Reply]


def styled(channel: str, reply: Reply) -> Reply:
    """The reply as `channel` names commands (WhatsApp: typed words without the slash)."""
    text = command_text(channel, reply.text)
    return reply if text == reply.text else replace(reply, text=text)


def _card_meta(kind: str, report_id: int | None) -> dict[str, Any]:
    """A queue card and its edits name their report: the transport finds the card to edit."""
    return {"card_of": report_id} if kind in (KIND_CARD, KIND_CARD_EDIT) else {}


class Notifier:
    """Appends `Outgoing` rows to `out` (the caller writes them in its transaction)."""

    def __init__(self, repo: Repo, svc: Services, out: list[Outgoing] | None = None) -> None:
        self.repo = repo
        self.work = repo.work
        self.svc = svc
        self.out: list[Outgoing] = out if out is not None else []

    def gettext_for(self, lang: str) -> Gettext:
        return lambda msgid: self.svc.i18n.gettext(lang, msgid)

    def to_person(
        self,
        person_id: int,
        build: Build,
        *,
        kind: str = "status",
        report_id: int | None = None,
        skip_address: str | None = None,
    ) -> int:
        """Every active identity of a person, in their language; returns how many."""
        person = self.repo.person(person_id)
        if person is None:
            return 0
        lang = self.svc.i18n.lang(person.language)
        reply = build(self.gettext_for(lang), lang)
        n = 0
        for ident in self.repo.identities_of(person_id):
            if skip_address is not None and ident.address == skip_address:
                continue
            self.out.append(
                Outgoing(
                    channel=ident.channel,
                    address=ident.address,
                    identity_id=ident.id,
                    reply=styled(ident.channel, reply),
                    priority=PRIORITY_REPLY,
                    kind=kind,
                    meta={"lang": lang, **_card_meta(kind, report_id)},
                    report_id=report_id,
                )
            )
            n += 1
        return n

    def to_people(self, person_ids: Iterable[int], build: Build, **kw: object) -> int:
        seen: set[int] = set()
        n = 0
        for pid in person_ids:
            if pid in seen:
                continue
            seen.add(pid)
            n += self.to_person(pid, build, **kw)  # type: ignore[arg-type]
        return n

    def to_chat(
        self,
        channel: str,
        address: str,
        build: Build,
        *,
        kind: str = "officer",
        report_id: int | None = None,
    ) -> None:
        """A group chat (no identity): in the city's default language."""
        lang = self.svc.i18n.default
        self.out.append(
            Outgoing(
                channel=channel,
                address=address,
                identity_id=None,
                reply=styled(channel, build(self.gettext_for(lang), lang)),
                priority=PRIORITY_REPLY,
                kind=kind,
                meta={"lang": lang, **_card_meta(kind, report_id)},
                report_id=report_id,
            )
        )

    def to_opd_queue(
        self,
        opd: str,
        build: Build,
        *,
        report_id: int | None = None,
        skip_address: str | None = None,
        kind: str = "officer",
    ) -> int:
        """The OPD's queue group if it has one, else each of its officers privately."""
        group = self.work.queue_group(opd)
        if group is not None:
            if group.chat_id != skip_address:
                self.to_chat(group.channel, group.chat_id, build, kind=kind, report_id=report_id)
            return 1
        return self.to_people(
            self._officers(opd),
            build,
            kind=kind,
            report_id=report_id,
            skip_address=skip_address,
        )

    def to_opd_cards(
        self, opd: str, card: Build, line: Build, *, report_id: int, skip_person: int | None
    ) -> int:
        """Keep the OPD's copies of a report card (`to_opd_queue(kind=KIND_CARD)`) current:
        where the channel edits messages (Telegram) the card is edited in place, elsewhere
        (WhatsApp) a short `line` says what changed; `skip_person` (who made the change and
        was answered already) gets no line."""
        group = self.work.queue_group(opd)
        if group is not None:
            edits = style(group.channel).edits
            self.to_chat(
                group.channel,
                group.chat_id,
                card if edits else line,
                kind=KIND_CARD_EDIT if edits else "officer",
                report_id=report_id,
            )
            return 1
        n = 0
        for pid in self._officers(opd):
            person = self.repo.person(pid)
            if person is None:
                continue
            lang = self.svc.i18n.lang(person.language)
            _ = self.gettext_for(lang)
            built: dict[bool, Reply] = {}
            for ident in self.repo.identities_of(pid):
                edits = style(ident.channel).edits
                if not edits and pid == skip_person:
                    continue
                if edits not in built:
                    built[edits] = (card if edits else line)(_, lang)
                kind = KIND_CARD_EDIT if edits else "officer"
                self.out.append(
                    Outgoing(
                        channel=ident.channel,
                        address=ident.address,
                        identity_id=ident.id,
                        reply=styled(ident.channel, built[edits]),
                        priority=PRIORITY_REPLY,
                        kind=kind,
                        meta={"lang": lang, **_card_meta(kind, report_id)},
                        report_id=report_id,
                    )
                )
                n += 1
        return n

    def _officers(self, opd: str) -> list[int]:
        people = [p.id for _st, p in self.work.staff_people(opd, (ROLE_OFFICER, ROLE_HEAD))]
        return [pid for pid in people if pid is not None]

    def to_heads_and_admins(self, opd: str, build: Build, *, report_id: int | None = None) -> int:
        heads = [p.id for _st, p in self.work.staff_people(opd, (ROLE_HEAD,))]
        admins = [p.id for _st, p in self.work.staff_people(None, (ROLE_ADMIN,))]
        return self.to_people(
            [pid for pid in heads + admins if pid is not None],
            build,
            kind="officer",
            report_id=report_id,
        )

    def to_reporter_and_followers(
        self, report: Report, build: Build, *, reporter_build: Build | None = None
    ) -> int:
        """The citizen who reported (with `reporter_build` if given) and every follower."""
        assert report.id is not None
        n = self.to_person(report.person_id, reporter_build or build, report_id=report.id)
        for pid in self.work.followers(report.id):
            if pid != report.person_id:
                n += self.to_person(pid, build, report_id=report.id)
        return n
