"""What the platforms tell us about delivery after a send, and what the app does about it.

- WhatsApp delivery receipts (`whatsapp_status`, the webhook's `statuses`) are recorded on the
  outbox row. Meta usually answers a free-form message outside the 24-hour window with 200 and
  reports 131047 later, in a `failed` status: such a message is queued again as its kind's
  template (once per row, through the outbox: the transport sends rows marked `AS_TEMPLATE`
  as templates).
- A Telegram group upgraded to a supergroup gets a new chat id (`chat_moved`, from the
  service message or from the 400 answer of a send): queue groups and identities follow it.
- `health`: on /healthz, what could not be delivered in the last 24 hours.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any

from bot.channels.base import WINDOW_CLOSED
from bot.channels.wa_render import AS_TEMPLATE
from bot.channels.wa_webhook import status_error_code
from handlers.events import Outgoing, Reply
from storage.db import Database
from storage.delivery import DeliveryRepo
from storage.repo import Repo

log = logging.getLogger(__name__)

RE_ENGAGEMENT = 131047  # WhatsApp: more than 24 hours since the person's last message
HEALTH_SPAN = timedelta(hours=24)


class Delivery:
    def __init__(
        self,
        db: Database,
        wake: Callable[[], None],
        whatsapp_templates: Mapping[str, str] | None = None,
    ) -> None:
        """`wake` tells the sender new rows are queued; `whatsapp_templates`: which kinds
        have a WhatsApp template (`wa_render.template_names`)."""
        self.db = db
        self.wake = wake
        self.whatsapp_templates = dict(whatsapp_templates or {})

    # --- WhatsApp receipts ------------------------------------------------------------------
    async def whatsapp_status(self, message_id: str, status: str, error: str | None) -> None:
        if await asyncio.to_thread(self._record_whatsapp, message_id, status, error):
            self.wake()

    def _record_whatsapp(self, message_id: str, status: str, error: str | None) -> bool:
        """Record the receipt; True when the message was queued again as a template."""
        with self.db.unit() as uow:
            repo = Repo(uow)
            repo.outbox_set_delivery("whatsapp", message_id, status, error)
            if status != "failed" or status_error_code(error) != RE_ENGAGEMENT:
                return False
            row = repo.outbox_by_message_id("whatsapp", message_id)
            if row is None or row.id is None or (row.meta or {}).get(AS_TEMPLATE):
                return False
            if row.kind not in self.whatsapp_templates:
                log.info("whatsapp: %s %s was outside the window; no template", row.kind, row.id)
                return False
            if not repo.work.claim_notice(f"wa.template:{row.id}", uow.clock()):
                return False  # the same receipt again: queued once already
            uow.send(
                [
                    Outgoing(
                        channel=row.channel,
                        address=row.address,
                        reply=Reply.from_payload(row.payload),
                        identity_id=row.identity_id,
                        priority=row.priority,
                        kind=row.kind,
                        meta={**(row.meta or {}), AS_TEMPLATE: True, "template_for": row.id},
                        report_id=row.report_id,
                    )
                ]
            )
            log.info("whatsapp: outbox %s was outside the window; queued as template", row.id)
            return True

    # --- Telegram chats that moved ----------------------------------------------------------
    async def chat_moved(self, channel: str, old: str, new: str) -> None:
        """Chat `old` is `new` from now on (idempotent: a second notice finds nothing)."""

        def write() -> tuple[list[str], int]:
            with self.db.unit() as uow:
                repo = Repo(uow)
                return repo.work.move_group_chat(channel, old, new), repo.move_address(
                    channel, old, new
                )

        groups, identities = await asyncio.to_thread(write)
        if groups or identities:
            log.info(
                "%s: chat %s moved to %s: queue groups of %s, %d identities follow it",
                channel,
                old,
                new,
                ", ".join(groups) or "-",
                identities,
            )

    # --- health -----------------------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        """For /healthz: messages given up in the last 24 hours per channel, and those that
        could not reach the person because they were outside the platform's window, per kind
        (refused before the send, or reported 131047 after it with no template to send)."""
        since = self.db.clock() - HEALTH_SPAN
        with self.db.session() as s:
            repo = DeliveryRepo(s)
            outside = repo.failed_with(WINDOW_CLOSED, since)
            later = repo.refused_after_send(f"{RE_ENGAGEMENT}:", since, self.whatsapp_templates)
            failed = repo.failed_by_channel(since)
        for channel, kinds in later.items():
            mine = outside.setdefault(channel, {})
            for kind, n in kinds.items():
                mine[kind] = mine.get(kind, 0) + n
        return {"failed_24h": failed, "outside_window_24h": outside}
