"""Later pages of a long list of choices (a channel shows ≤ 10 at a time: WhatsApp lists).

The adapter renders the first page of a reply with a "More" row; picking it arrives here as
the choice `more:<outbox id>:<page>` through the inbox like any other answer, so the next
page is written to the outbox in that update's transaction (exactly once, even if the batch
runs again). Only the person the list was sent to can page it.
"""

from __future__ import annotations

import re

from handlers.core import Ctx, Registry
from handlers.events import Reply

_MORE = re.compile(r"^more:(\d{1,18}):(\d{1,4})$")


def on_more(ctx: Ctx) -> None:
    m = _MORE.match(ctx.event.choice or "")
    row = ctx.repo.outbox_item(int(m.group(1))) if m else None
    if m is None or row is None or row.identity_id != ctx.identity.id:
        ctx.reply(ctx.gettext("That button is no longer active. Type /lapor to start a report."))
        return
    earlier = Reply.from_payload(row.payload)
    page = int(m.group(2))
    if page >= len(earlier.choices):  # a page starts with one of the choices
        return
    ctx.reply(earlier.text, earlier.choices, page=page)


def register(reg: Registry) -> None:
    reg.choices["more"] = on_more
