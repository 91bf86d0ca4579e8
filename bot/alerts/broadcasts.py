"""Broadcasts (announcements and warnings): audiences, creating them, fan-out into the outbox,
the scheduled start, cancelling and finishing.

    source ─► broadcast row (queued, or scheduled) ─► fan-out ─► outbox rows ─► Sender
                 + CAP document (warnings)            batches of persons, cursor

Fan-out: subscribers are walked in person-id order, `batch` persons per transaction.  A batch
writes the outbox rows of the matching persons (one per active identity, in the person's
language, `broadcast_id` set, priority 10 for warnings and 90 for announcements) and moves the
broadcast's cursor with a conditional UPDATE in the same transaction.  A crash loses at most the
batch being written (rolled back, redone); a second worker racing on the same broadcast fails
the cursor check and rolls back.  So nobody is skipped and nobody gets two rows.  Each step
re-picks the most urgent broadcast, so a warning overtakes a running announcement.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from bot.alerts.audience import (
    Audience,
    Circle,
    Everyone,
    Kecamatan,
    KelMap,
    Kelurahan,
    Polygon,
    SubscriberArea,
    audience_from_dict,
    audience_to_dict,
    kelurahan_in,
    matches,
)
from bot.alerts.cap import CapArea
from bot.alerts.publishing import CapPublisher
from bot.alerts.texts import (
    Gettext,
    broadcast_header,
    gettext_for,
    kecamatan_names,
    kelurahan_names,
    pick_text,
)
from bot.city import CityProfile
from handlers.events import PRIORITY_ANNOUNCEMENT, PRIORITY_WARNING, MediaRef, Outgoing, Reply
from handlers.services import I18nLike
from handlers.text import N_
from storage.alert_models import (
    BC_QUEUED,
    BC_SCHEDULED,
    KIND_ANNOUNCEMENT,
    KIND_WARNING,
    Broadcast,
)
from storage.alert_repo import AlertRepo, Recipient, SubscriberRow
from storage.db import Database
from storage.repo import Repo

log = logging.getLogger(__name__)

JOB_START_BROADCAST = "broadcast.start"


class _Lost(Exception):
    """Another worker moved the cursor, or the broadcast was cancelled: roll the batch back."""


class Broadcasts:
    """Everything about broadcasts that needs storage; built once by `bot.alerts.wiring`."""

    def __init__(
        self,
        db: Database,
        city: CityProfile,
        i18n: I18nLike,
        publisher: CapPublisher,
        *,
        kel_map: KelMap,
        wake_sender: Callable[[], None] = lambda: None,
        batch: int = 500,
    ) -> None:
        self.db = db
        self.city = city
        self.i18n = i18n
        self.publisher = publisher
        self.kel_map = kel_map
        self.wake_sender = wake_sender
        self.batch = batch
        self.clock = db.clock  # the one clock
        self._touched: dict[int, frozenset[str] | None] = {}
        self._wake = asyncio.Event()

    # --- audiences ----------------------------------------------------------------------
    def touched(self, audience: Audience) -> frozenset[str] | None:
        if isinstance(audience, Circle | Polygon):
            return frozenset(kelurahan_in(audience, self.kel_map))
        return None

    def select_page(
        self,
        audience: Audience,
        page: Sequence[SubscriberRow],
        touched: frozenset[str] | None,
        kind: str = KIND_WARNING,
    ) -> list[int]:
        out = []
        for row in page:
            if not consented(row, kind):
                continue
            sub = SubscriberArea(
                row.person_id, frozenset(row.kelurahan_codes), frozenset(), row.home
            )
            if matches(audience, sub, touched):
                out.append(row.person_id)
        return out

    def parse_audience(self, data: Mapping[str, Any]) -> Audience:
        return audience_from_dict(data)

    def count_recipients(
        self, arepo: AlertRepo, audience: Audience, kind: str = KIND_ANNOUNCEMENT
    ) -> int:
        """Persons a broadcast of `kind` to `audience` would reach now (with an active chat)."""
        touched = self.touched(audience)
        cursor, n = 0, 0
        while True:
            page = arepo.subscriber_page(cursor, 5000)
            if not page:
                return n
            persons = self.select_page(audience, page, touched, kind)
            n += sum(1 for r in arepo.recipients_of(persons).values() if r.identities)
            cursor = page[-1].person_id

    def describe_audience(
        self, audience: Audience, _: Gettext, kind: str = KIND_ANNOUNCEMENT
    ) -> str:
        if isinstance(audience, Everyone):
            if kind == KIND_WARNING:
                return _("everyone who subscribed to early warnings")
            return _("everyone who agreed to receive announcements")
        if isinstance(audience, Kecamatan):
            names = kecamatan_names(self.city, audience.codes)
            return _("Kec. {names}").format(names=", ".join(names) or "-")
        if isinstance(audience, Kelurahan):
            names = kelurahan_names(self.city, audience.codes)
            return _("Kel. {names}").format(names=", ".join(names) or "-")
        if isinstance(audience, Circle):
            return _("within {km} km of {lat}, {lon}").format(
                km=f"{audience.radius_km:g}", lat=f"{audience.lat:.5f}", lon=f"{audience.lon:.5f}"
            )
        return _("the warning area")

    # --- creating broadcasts -------------------------------------------------------------
    def new_broadcast(
        self,
        arepo: AlertRepo,
        *,
        source: str,
        audience: Audience,
        texts: Mapping[str, str],
        kind: str = KIND_ANNOUNCEMENT,
        level: str | None = None,
        ref: str | None = None,
        photo: MediaRef | None = None,
        created_by: int | None = None,
        scheduled_at: datetime | None = None,
    ) -> Broadcast:
        """A broadcast row in the caller's transaction (queued, or scheduled with its job)."""
        now = self.clock()
        bc = arepo.add_broadcast(
            Broadcast(
                kind=kind,
                source=source,
                level=level,
                ref=ref,
                audience=audience_to_dict(audience),
                texts=dict(texts),
                photo=_photo_dict(photo),
                priority=PRIORITY_WARNING if kind == KIND_WARNING else PRIORITY_ANNOUNCEMENT,
                state=BC_SCHEDULED if scheduled_at else BC_QUEUED,
                scheduled_at=scheduled_at,
                created_by=created_by,
                created_at=now,
            )
        )
        assert bc.id is not None
        if scheduled_at is not None:
            job = Repo(arepo).schedule_job(
                JOB_START_BROADCAST, scheduled_at, {"broadcast_id": bc.id}
            )
            bc.job_id = job.id
        return bc

    def new_warning(
        self,
        arepo: AlertRepo,
        *,
        source: str,
        level: str,
        audience: Audience,
        texts: Mapping[str, str],
        ref: str | None = None,
        event: str = N_("Warning"),
        category: str = "Met",
        areas: tuple[CapArea, ...] | None = None,
    ) -> Broadcast:
        """A warning broadcast plus its CAP 1.2 document (same transaction)."""
        bc = self.new_broadcast(
            arepo, source=source, audience=audience, texts=texts, kind=KIND_WARNING,
            level=level, ref=ref,
        )  # fmt: skip
        assert bc.id is not None
        self.publisher.publish_cap(arepo, bc, event, category, areas)
        return bc

    # --- fan-out -----------------------------------------------------------------------------
    def wake(self) -> None:
        """New broadcasts were committed (call from the event loop)."""
        self._wake.set()

    def fanout_step(self) -> int | None:
        """Write one batch of the most urgent running broadcast.

        Returns the number of outbox rows written (0 when a broadcast finished its fan-out), or
        None when there is nothing to do.
        """
        try:
            with self.db.unit() as uow:
                arepo = AlertRepo(uow)
                bc = arepo.next_fanout()
                if bc is None:
                    return None
                assert bc.id is not None
                page = arepo.subscriber_page(bc.cursor, self.batch)
                if not page:
                    arepo.finish_fanout(bc.id, bc.cursor)
                    self._touched.pop(bc.id, None)
                    log.info("broadcast %s: fan-out complete (%s messages)", bc.id, bc.messages)
                    return 0
                audience = audience_from_dict(bc.audience)
                if bc.id not in self._touched:
                    self._touched[bc.id] = self.touched(audience)
                persons = self.select_page(audience, page, self._touched[bc.id], bc.kind)
                recipients = arepo.recipients_of(persons)
                messages = broadcast_messages(bc, recipients, self.i18n, self.city)
                # identities read active in this transaction: the writer need not ask again
                uow.known_active.update(m.identity_id for m in messages if m.identity_id)
                uow.send(messages)
                last = page[-1].person_id
                if not arepo.advance_cursor(bc.id, bc.cursor, last, len(recipients), len(messages)):
                    raise _Lost  # another worker moved the cursor: nothing of this batch is written
                return len(messages)
        except _Lost:
            return 0

    async def run_fanout(self, stop: asyncio.Event) -> None:
        """Background loop: fan out queued broadcasts, then mark finished ones done."""
        last_finish = 0.0
        while not stop.is_set():
            try:
                written = await asyncio.to_thread(self.fanout_step)
            except Exception:
                log.exception("broadcast fan-out failed; retrying")
                written = None
                await asyncio.sleep(1.0)
            if written:
                self.wake_sender()
            if written is not None:
                continue
            if time.monotonic() - last_finish > 2.0:
                last_finish = time.monotonic()
                with contextlib.suppress(Exception):
                    done = await asyncio.to_thread(self._finish_sent)
                    for bid in done:
                        log.info("broadcast %s: done", bid)
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=0.5)

    def _finish_sent(self) -> list[int]:
        with self.db.unit() as uow:
            return AlertRepo(uow).finish_sent_broadcasts()

    async def on_scheduled_job(self, args: dict[str, Any]) -> None:
        """Scheduler job `broadcast.start`: a scheduled broadcast becomes queued."""
        bid = int(args["broadcast_id"])

        def start() -> bool:
            with self.db.unit() as uow:
                return AlertRepo(uow).start_scheduled(bid)

        if await asyncio.to_thread(start):
            log.info("broadcast %s: scheduled time reached, starting", bid)
            self.wake()

    def cancel(self, broadcast_id: int) -> int | None:
        with self.db.unit() as uow:
            return AlertRepo(uow).cancel_broadcast(broadcast_id)

    def sent_rate(self, arepo: AlertRepo, broadcast_id: int, window_s: float = 60.0) -> float:
        """Messages per second of a broadcast over the last `window_s` seconds."""
        since = self.clock() - timedelta(seconds=window_s)
        return arepo.broadcast_sent_since(broadcast_id, since) / window_s


def consented(row: SubscriberRow, kind: str) -> bool:
    """Warnings go to who chose an area for them; announcements to who said yes to them."""
    if kind == KIND_ANNOUNCEMENT:
        return row.announcements
    return bool(row.kelurahan_codes) or row.home is not None


def broadcast_messages(
    bc: Broadcast, recipients: Mapping[int, Recipient], i18n: I18nLike, city: CityProfile
) -> list[Outgoing]:
    """The messages of one fan-out batch: one per active identity, in the person's language
    (one reply object per language, so the outbox writer builds each payload once), each under
    its header ("📣 Announcement …" / "⚠️ Early warning …" with the date)."""
    photo = MediaRef(**bc.photo) if bc.photo else None
    replies: dict[str, Reply] = {}
    out = []
    for person_id, recipient in recipients.items():
        lang = i18n.lang(recipient.language)
        if lang not in replies:
            head = broadcast_header(city, gettext_for(i18n, lang), bc, lang)
            body = pick_text(bc.texts, lang, i18n.default)
            replies[lang] = Reply(text=f"{head}\n\n{body}", photo=photo)
        for ident in recipient.identities:
            out.append(
                Outgoing(
                    channel=ident.channel,
                    address=ident.address,
                    reply=replies[lang],
                    identity_id=ident.identity_id,
                    priority=bc.priority,
                    kind=bc.kind,
                    meta={"lang": lang, "broadcast_id": bc.id, "person_id": person_id},
                    broadcast_id=bc.id,
                )
            )
    return out


def _photo_dict(photo: MediaRef | None) -> dict[str, Any] | None:
    if photo is None:
        return None
    return {
        "sha256": photo.sha256,
        "mime": photo.mime,
        "size": photo.size,
        "path": photo.path,
        "channel_file_id": photo.channel_file_id,
    }
