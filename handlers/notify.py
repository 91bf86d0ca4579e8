"""Queue messages to people and chats other than the one being answered.

Used by the officer commands (inside a `Ctx`) and by the scheduler's SLA jobs (no inbound
event at all).  A message is built per recipient language by `build(gettext, lang)`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from handlers.events import PRIORITY_REPLY, Outgoing, Reply
from handlers.services import Services
from handlers.text import Gettext
from storage.models import ROLE_ADMIN, ROLE_HEAD, ROLE_OFFICER, Report
from storage.repo import Repo

Build = Callable[[Gettext, str], Reply]


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
                    reply=reply,
                    priority=PRIORITY_REPLY,
                    kind=kind,
                    meta={"lang": lang},
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
                reply=build(self.gettext_for(lang), lang),
                priority=PRIORITY_REPLY,
                kind=kind,
                meta={"lang": lang},
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
    ) -> int:
        """The OPD's queue group if it has one, else each of its officers privately."""
        group = self.work.queue_group(opd)
        if group is not None:
            if group.chat_id != skip_address:
                self.to_chat(group.channel, group.chat_id, build, report_id=report_id)
            return 1
        people = [p.id for _st, p in self.work.staff_people(opd, (ROLE_OFFICER, ROLE_HEAD))]
        return self.to_people(
            [pid for pid in people if pid is not None],
            build,
            kind="officer",
            report_id=report_id,
            skip_address=skip_address,
        )

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
