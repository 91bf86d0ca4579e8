"""What became of sent messages, for the health check: what could not be delivered."""

from __future__ import annotations

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
