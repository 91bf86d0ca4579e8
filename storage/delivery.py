"""What became of sent messages, for the health check: what could not be delivered."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from sqlalchemy import func
from sqlmodel import col, select

from storage.base import Store
from storage.models import OutboxItem


class DeliveryRepo(Store):
    def failed_by_channel(self, since: datetime) -> dict[str, int]:
        """Messages given up (permanent errors, retries exhausted) since `since`, per channel."""
        rows = self._s.exec(
            select(OutboxItem.channel, func.count())
            .where(OutboxItem.state == "failed", col(OutboxItem.created_at) >= since)
            .group_by(OutboxItem.channel)
        )
        return {channel: int(n) for channel, n in rows}

    def failed_with(self, error: str, since: datetime) -> dict[str, dict[str, int]]:
        """Messages given up with exactly this error since `since`: {channel: {kind: n}}."""
        rows = self._s.exec(
            select(OutboxItem.channel, OutboxItem.kind, func.count())
            .where(
                OutboxItem.state == "failed",
                OutboxItem.error == error,
                col(OutboxItem.created_at) >= since,
            )
            .group_by(OutboxItem.channel, OutboxItem.kind)
        )
        out: dict[str, dict[str, int]] = {}
        for channel, kind, n in rows:
            out.setdefault(channel, {})[kind] = int(n)
        return out

    def refused_after_send(
        self, error_prefix: str, since: datetime, except_kinds: Collection[str] = ()
    ) -> dict[str, dict[str, int]]:
        """Messages the platform took and reported undeliverable later (a `failed` delivery
        receipt whose error starts with `error_prefix`) since `since`, per channel and kind;
        `except_kinds`: kinds not counted (those sent again another way)."""
        q = (
            select(OutboxItem.channel, OutboxItem.kind, func.count())
            .where(
                OutboxItem.delivery_status == "failed",
                col(OutboxItem.error).startswith(error_prefix),
                col(OutboxItem.created_at) >= since,
            )
            .group_by(OutboxItem.channel, OutboxItem.kind)
        )
        if except_kinds:
            q = q.where(col(OutboxItem.kind).not_in(list(except_kinds)))
        out: dict[str, dict[str, int]] = {}
        for channel, kind, n in self._s.exec(q):
            out.setdefault(channel, {})[kind] = int(n)
        return out
